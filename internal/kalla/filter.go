package kalla

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
)

// Op is a filter operator.
type Op string

// The filter operators. Every dialect renders each of them with bound
// parameters; see package dialect.
const (
	OpEq      Op = "eq"
	OpNeq     Op = "neq"
	OpGt      Op = "gt"
	OpGte     Op = "gte"
	OpLt      Op = "lt"
	OpLte     Op = "lte"
	OpBetween Op = "between"
	OpIn      Op = "in"
	OpLike    Op = "like"
	// OpIsNull and OpIsNotNull select rows whose column is (is not) NULL:
	// the only way to ask for missing values, since no other operator
	// matches NULL. They take no value.
	OpIsNull    Op = "is_null"
	OpIsNotNull Op = "is_not_null"
)

// Ops lists every operator, in the order documentation shows them.
var Ops = []Op{OpEq, OpNeq, OpGt, OpGte, OpLt, OpLte, OpBetween, OpIn, OpLike, OpIsNull, OpIsNotNull}

// TakesValue reports whether op needs a value: every operator but is_null
// and is_not_null.
func (op Op) TakesValue() bool { return op != OpIsNull && op != OpIsNotNull }

// Scalar is one filter value as the user wrote it. Numbers keep their exact
// decimal text (never a float64), so that 100.10 stays 100.10 when bound.
type Scalar struct {
	Text     string
	IsNumber bool
}

// Filter is one scoping condition on a source column: {column, op, value}.
// Value is a string, a number, or an array of strings/numbers. Values are
// always bound as parameters, never spliced into SQL text.
type Filter struct {
	Column string   `json:"column"`
	Op     Op       `json:"op"`
	Values []Scalar `json:"-"`
	// IsArray records whether the value was written as a JSON array, so that
	// `between` and `in` keep their array form and scalar operators can
	// reject one.
	IsArray bool `json:"-"`
}

// String renders the condition for error messages.
func (f Filter) String() string {
	b, _ := json.Marshal(f)
	return Excerpt(string(b))
}

type filterJSON struct {
	Column string          `json:"column"`
	Op     Op              `json:"op"`
	Value  json.RawMessage `json:"value"`
}

// UnmarshalJSON reads {column, op, value}, keeping an array value an array.
func (f *Filter) UnmarshalJSON(b []byte) error {
	var raw filterJSON
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&raw); err != nil {
		return Errorf(EINVALID, "filter %s: %v", Excerpt(strings.TrimSpace(string(b))), err)
	}
	f.Column, f.Op, f.Values, f.IsArray = raw.Column, raw.Op, nil, false
	v := bytes.TrimSpace(raw.Value)
	if len(v) == 0 || bytes.Equal(v, []byte("null")) {
		return nil // Validate reports the missing value with the condition.
	}
	if v[0] == '[' {
		f.IsArray = true
		var items []json.RawMessage
		if err := json.Unmarshal(v, &items); err != nil {
			return Errorf(EINVALID, "filter on %q: value: %v", Excerpt(raw.Column), err)
		}
		for _, it := range items {
			s, err := parseScalar(it)
			if err != nil {
				return Errorf(EINVALID, "filter on %q: %v", Excerpt(raw.Column), err)
			}
			f.Values = append(f.Values, s)
		}
		return nil
	}
	s, err := parseScalar(v)
	if err != nil {
		return Errorf(EINVALID, "filter on %q: %v", Excerpt(raw.Column), err)
	}
	f.Values = []Scalar{s}
	return nil
}

func parseScalar(v json.RawMessage) (Scalar, error) {
	v = bytes.TrimSpace(v)
	switch {
	case len(v) > 0 && v[0] == '"':
		var s string
		if err := json.Unmarshal(v, &s); err != nil {
			return Scalar{}, err
		}
		return Scalar{Text: s}, nil
	case len(v) > 0 && (v[0] == '-' || (v[0] >= '0' && v[0] <= '9')):
		var n json.Number
		if err := json.Unmarshal(v, &n); err != nil {
			return Scalar{}, err
		}
		return Scalar{Text: n.String(), IsNumber: true}, nil
	default:
		return Scalar{}, fmt.Errorf("value %s must be a string, a number or an array of them", Excerpt(string(v)))
	}
}

// MarshalJSON writes the filter back in the form it was read.
func (f Filter) MarshalJSON() ([]byte, error) {
	enc := func(s Scalar) json.RawMessage {
		if s.IsNumber {
			return json.RawMessage(s.Text)
		}
		b, _ := json.Marshal(s.Text)
		return b
	}
	out := struct {
		Column string `json:"column"`
		Op     Op     `json:"op"`
		Value  any    `json:"value,omitempty"` // none for is_null, is_not_null
	}{Column: f.Column, Op: f.Op}
	switch {
	case f.IsArray:
		vs := make([]json.RawMessage, 0, len(f.Values))
		for _, s := range f.Values {
			vs = append(vs, enc(s))
		}
		out.Value = vs
	case len(f.Values) == 1:
		out.Value = enc(f.Values[0])
	}
	return json.Marshal(out)
}

// Validate checks that the operator is known and that the value fits it:
// scalar operators take exactly one scalar, `between` exactly two values
// (neither empty),
// `in` one or more, `is_null` and `is_not_null` none (JSON null counts as
// none). Column existence is checked against the source's real
// columns by ValidateFilters. It returns an EINVALID error naming the
// condition.
func (f Filter) Validate() error {
	if strings.TrimSpace(f.Column) == "" {
		return Errorf(EINVALID, "filter %s: column is required", f)
	}
	switch f.Op {
	case OpEq, OpNeq, OpGt, OpGte, OpLt, OpLte, OpLike:
		if f.IsArray || len(f.Values) != 1 {
			return Errorf(EINVALID, "filter %s: operator %q takes exactly one value (a string or a number), not %s", f, f.Op, describeValues(f))
		}
		if f.Op == OpLike && f.Values[0].IsNumber {
			return Errorf(EINVALID, "filter %s: operator \"like\" takes a string pattern", f)
		}
	case OpBetween:
		if !f.IsArray || len(f.Values) != 2 {
			return Errorf(EINVALID, "filter %s: operator \"between\" takes an array of exactly two values [low, high], not %s", f, describeValues(f))
		}
		// An empty end is a range of nothing (text) or an error at load
		// time (dates, numbers): refused here, naming the end.
		for i, end := range []string{"low", "high"} {
			if v := f.Values[i]; !v.IsNumber && strings.TrimSpace(v.Text) == "" {
				return Errorf(EINVALID, "filter %s: operator \"between\" needs both ends of the range, and the %s end is empty", f, end)
			}
		}
	case OpIn:
		if !f.IsArray || len(f.Values) == 0 {
			return Errorf(EINVALID, "filter %s: operator \"in\" takes an array of one or more values, not %s", f, describeValues(f))
		}
	case OpIsNull, OpIsNotNull:
		if f.IsArray || len(f.Values) > 0 {
			return Errorf(EINVALID, "filter %s: operator %q takes no value, not %s: leave \"value\" out", f, f.Op, describeValues(f))
		}
	case "":
		return Errorf(EINVALID, "filter %s: op is required (one of %s)", f, opList())
	default:
		return Errorf(EINVALID, "filter %s: unknown op %q (use one of %s)", f, Excerpt(string(f.Op)), opList())
	}
	return nil
}

func describeValues(f Filter) string {
	switch {
	case f.IsArray:
		return fmt.Sprintf("an array of %d", len(f.Values))
	case len(f.Values) == 0:
		return "no value"
	default:
		return "a single value"
	}
}

func opList() string {
	s := make([]string, len(Ops))
	for i, o := range Ops {
		s[i] = string(o)
	}
	return strings.Join(s, ", ")
}

// ValidateFilters validates every filter and checks each column against the
// source's real columns, naming the source and the available columns when
// one is unknown.
func ValidateFilters(source string, filters []Filter, cols []Column) error {
	for _, f := range filters {
		if err := f.Validate(); err != nil {
			return err
		}
		if FindColumn(cols, f.Column) < 0 {
			return Errorf(EINVALID, "filter %s: source %s has no column %q (columns: %s)", f, source, Excerpt(f.Column), ColumnNames(cols))
		}
	}
	return nil
}
