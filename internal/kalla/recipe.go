package kalla

import (
	"bytes"
	"encoding/json"
	"fmt"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"

	"go.yaml.in/yaml/v3"
)

// Source types a recipe side may name. An empty type is inferred from the URI.
const (
	SourceCSV      = "csv"
	SourceParquet  = "parquet"
	SourcePostgres = "postgres"
	SourceMySQL    = "mysql"
)

// Recipe is a reconciliation: two sources and how their records match. The
// JSON form is the original Kalla recipe format.
type Recipe struct {
	RecipeID         string  `json:"recipe_id"`
	Name             string  `json:"name,omitempty"`
	Description      string  `json:"description,omitempty"`
	MatchSQL         string  `json:"match_sql,omitempty"`
	MatchDescription string  `json:"match_description,omitempty"`
	Sources          Sources `json:"sources"`
	// Rules are structured match rules, applied in order as passes; a
	// recipe has either MatchSQL or Rules.
	Rules []Rule `json:"rules,omitempty"`
	// Engine names the engine the recipe runs on when the run does not
	// choose one: EngineDuckDB or EngineSpark; empty means the default
	// (DuckDB). A recipe written for a lake next to a Spark cluster says so
	// once instead of every caller repeating it.
	Engine string `json:"engine,omitempty"`
}

// Engine names. A recipe or a run names one of these; whether a process can
// run it depends on how it was started (Spark needs a Spark Connect
// endpoint).
const (
	// EngineDuckDB is the embedded engine, always available.
	EngineDuckDB = "duckdb"
	// EngineSpark hands the run to an Apache Spark cluster through Spark
	// Connect.
	EngineSpark = "spark"
)

// KnownEngine reports whether name is an engine Kalla has; "" is the
// default engine.
func KnownEngine(name string) bool {
	return name == "" || name == EngineDuckDB || name == EngineSpark
}

// Sources holds the two sides of a recipe.
type Sources struct {
	Left  SourceSpec `json:"left"`
	Right SourceSpec `json:"right"`
}

// SourceSpec says where one side's records come from and what identifies a
// record. The match SQL sees the side as left_src/right_src and as Alias.
type SourceSpec struct {
	Alias      string   `json:"alias"`
	Type       string   `json:"type,omitempty"`
	URI        string   `json:"uri"`
	PrimaryKey []string `json:"primary_key"`
	// Schema overrides inferred column types (file sources), column name to
	// DuckDB type, for example {"amount": "DECIMAL(18,2)"}.
	Schema map[string]string `json:"schema,omitempty"`
	// Filters scope the side; they are pushed down to the source for a run.
	Filters []Filter `json:"filters,omitempty"`
	// CSV holds CSV dialect settings for CSV sources.
	CSV *CSVOptions `json:"csv,omitempty"`
	// AmountColumn and CurrencyColumn name the side's money: the summary
	// then gives open and matched totals per currency (Summary.Amounts).
	// Without AmountColumn the amount is the one a rule's tolerance (or the
	// match SQL's tolerance_match) compares; without CurrencyColumn the
	// totals are one figure, not split by currency: Kalla does not guess
	// which column is a currency.
	AmountColumn   string `json:"amount_column,omitempty"`
	CurrencyColumn string `json:"currency_column,omitempty"`
}

// CSVOptions are the CSV dialect settings a recipe may give. Kalla reads CSV
// strictly (RFC 4180, a header row, comma delimiter) unless told otherwise.
type CSVOptions struct {
	Delimiter string `json:"delimiter,omitempty"`
	// DateFormat and TimestampFormat read dates written other than ISO
	// 8601, in strftime notation ("%d/%m/%Y"). Without them such columns
	// stay text: 04/03/2026 is the 4th of March or the 3rd of April, and
	// Kalla does not guess.
	DateFormat      string `json:"date_format,omitempty"`
	TimestampFormat string `json:"timestamp_format,omitempty"`
	// Encoding is the file's character set: "utf-8" (the default),
	// "latin-1" (ISO-8859-1) or "windows-1252". Other encodings are
	// transcoded to UTF-8 before the file is read; a file that is not
	// valid in its encoding is refused, never read with replaced bytes.
	Encoding string `json:"encoding,omitempty"`
	// DecimalSeparator is "." (the default) or ",": with ",", numbers
	// written 1234,50 are read as 1234.50, exactly (a value with a
	// thousands separator, 1.234,50, stays text).
	DecimalSeparator string `json:"decimal_separator,omitempty"`
}

// CSV encodings a recipe may name in CSVOptions.Encoding.
const (
	EncodingUTF8        = "utf-8"
	EncodingLatin1      = "latin-1"
	EncodingWindows1252 = "windows-1252"
)

// CSVEncodings lists the values CSVOptions.Encoding accepts.
var CSVEncodings = []string{EncodingUTF8, EncodingLatin1, EncodingWindows1252}

var idPattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$`)
var aliasPattern = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]{0,62}$`)

// ParseRecipe reads a recipe from JSON or YAML (the format is detected from
// the content) and validates it. Unknown fields are rejected, since a
// misspelt field such as "primary_keys" must not be silently ignored.
func ParseRecipe(data []byte) (*Recipe, error) {
	trimmed := bytes.TrimSpace(data)
	if len(trimmed) == 0 {
		return nil, Errorf(EINVALID, "recipe is empty")
	}
	if trimmed[0] != '{' {
		var doc any
		if err := yaml.Unmarshal(data, &doc); err != nil {
			return nil, Errorf(EINVALID, "recipe is neither JSON nor YAML: %v", err)
		}
		j, err := json.Marshal(yamlToJSON(doc))
		if err != nil {
			return nil, Errorf(EINVALID, "recipe YAML: %v", err)
		}
		trimmed = j
	}
	var r Recipe
	dec := json.NewDecoder(bytes.NewReader(trimmed))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&r); err != nil {
		var ke *Error
		if asErr(err, &ke) {
			return nil, ke
		}
		return nil, Errorf(EINVALID, "recipe: %s", jsonErrorText(trimmed, err))
	}
	if err := r.Validate(); err != nil {
		return nil, err
	}
	return &r, nil
}

// yamlToJSON turns YAML maps with interface keys into JSON-compatible maps.
func yamlToJSON(v any) any {
	switch t := v.(type) {
	case map[string]any:
		for k, x := range t {
			t[k] = yamlToJSON(x)
		}
		return t
	case map[any]any:
		m := make(map[string]any, len(t))
		for k, x := range t {
			m[fmt.Sprint(k)] = yamlToJSON(x)
		}
		return m
	case []any:
		for i, x := range t {
			t[i] = yamlToJSON(x)
		}
		return t
	default:
		return v
	}
}

func jsonErrorText(data []byte, err error) string {
	var se *json.SyntaxError
	if asErr(err, &se) {
		line := 1 + bytes.Count(data[:min(int(se.Offset), len(data))], []byte("\n"))
		return fmt.Sprintf("invalid JSON at line %d: %v", line, err)
	}
	var te *json.UnmarshalTypeError
	if asErr(err, &te) {
		return fmt.Sprintf("field %q must be %s, not a JSON %s", te.Field, te.Type, te.Value)
	}
	return strings.TrimPrefix(err.Error(), "json: ")
}

// Validate checks the recipe's fields. It returns an EINVALID error listing
// every problem, each with what to change.
func (r *Recipe) Validate() error {
	var probs []string
	if r.RecipeID == "" {
		probs = append(probs, `"recipe_id" is required (letters, digits, ".", "_", "-")`)
	} else if !idPattern.MatchString(r.RecipeID) {
		probs = append(probs, fmt.Sprintf(`"recipe_id" %q may contain only letters, digits, ".", "_" and "-" (at most 128)`, Excerpt(r.RecipeID)))
	}
	switch hasSQL := strings.TrimSpace(r.MatchSQL) != ""; {
	case !hasSQL && len(r.Rules) == 0:
		probs = append(probs, `"match_sql" is required (a SELECT over left_src and right_src), unless the recipe gives "rules"`)
	case hasSQL && len(r.Rules) > 0:
		probs = append(probs, `give either "match_sql" or "rules", not both: Kalla cannot tell which one decides the matches`)
	}
	probs = append(probs, rulesProblems(r.Rules)...)
	if !KnownEngine(r.Engine) {
		probs = append(probs, fmt.Sprintf(`"engine" %q is not an engine: use %q or %q (or leave it out for %s)`, Excerpt(r.Engine), EngineDuckDB, EngineSpark, EngineDuckDB))
	}
	probs = append(probs, r.Sources.Left.problems("left")...)
	probs = append(probs, r.Sources.Right.problems("right")...)
	if r.Sources.Left.Alias != "" && strings.EqualFold(r.Sources.Left.Alias, r.Sources.Right.Alias) {
		probs = append(probs, fmt.Sprintf(`sources.left and sources.right have the same alias %q: give each side its own`, Excerpt(r.Sources.Left.Alias)))
	}
	if len(probs) > 0 {
		return Errorf(EINVALID, "invalid recipe:\n  - %s", strings.Join(probs, "\n  - "))
	}
	return nil
}

func (s *SourceSpec) problems(side string) []string {
	var probs []string
	p := "sources." + side
	switch {
	case s.Alias == "":
		probs = append(probs, fmt.Sprintf(`%s.alias is required (a SQL name such as "invoices")`, p))
	case !aliasPattern.MatchString(s.Alias):
		probs = append(probs, fmt.Sprintf(`%s.alias %q must be a plain SQL name: letters, digits and "_", not starting with a digit`, p, Excerpt(s.Alias)))
	case strings.EqualFold(s.Alias, "left_src") || strings.EqualFold(s.Alias, "right_src"):
		probs = append(probs, fmt.Sprintf(`%s.alias %q is reserved: left_src and right_src are always defined`, p, Excerpt(s.Alias)))
	}
	if strings.TrimSpace(s.URI) == "" {
		probs = append(probs, fmt.Sprintf(`%s.uri is required (a file path, file://, s3://, https://, postgres:// or mysql:// URI)`, p))
	} else if t := s.SourceType(); t == "" {
		probs = append(probs, fmt.Sprintf(`%s.type is required: the type of %s cannot be told from its URI (use csv, parquet, postgres or mysql)`, p, Excerpt(Redact(s.URI))))
	} else if t != SourceCSV && t != SourceParquet && t != SourcePostgres && t != SourceMySQL {
		probs = append(probs, fmt.Sprintf(`%s.type %q is not supported (use csv, parquet, postgres or mysql)`, p, Excerpt(s.Type)))
	}
	if len(s.PrimaryKey) == 0 {
		probs = append(probs, fmt.Sprintf(`%s.primary_key is required: the column(s) that identify a record, for example ["invoice_id"]`, p))
	}
	seen := map[string]bool{}
	for _, k := range s.PrimaryKey {
		if strings.TrimSpace(k) == "" {
			probs = append(probs, fmt.Sprintf(`%s.primary_key has an empty column name`, p))
		} else if seen[k] {
			probs = append(probs, fmt.Sprintf(`%s.primary_key names %q twice`, p, Excerpt(k)))
		}
		seen[k] = true
	}
	keys := make([]string, 0, len(s.Schema))
	for k := range s.Schema {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		if strings.TrimSpace(s.Schema[k]) == "" {
			probs = append(probs, fmt.Sprintf(`%s.schema.%s has no type`, p, Excerpt(k)))
		}
	}
	for _, f := range s.Filters {
		if err := f.Validate(); err != nil {
			probs = append(probs, fmt.Sprintf("%s.filters: %s", p, ErrorMessage(err)))
		}
	}
	if s.CSV != nil && len([]rune(s.CSV.Delimiter)) > 1 {
		probs = append(probs, fmt.Sprintf(`%s.csv.delimiter must be a single character`, p))
	}
	if s.CSV != nil && s.CSV.DecimalSeparator != "" && s.CSV.DecimalSeparator != "." && s.CSV.DecimalSeparator != "," {
		probs = append(probs, fmt.Sprintf(`%s.csv.decimal_separator is "." or ",", not %q`, p, Excerpt(s.CSV.DecimalSeparator)))
	}
	if s.CSV != nil && s.CSV.DecimalSeparator == "," && (s.CSV.Delimiter == "" || s.CSV.Delimiter == ",") {
		probs = append(probs, fmt.Sprintf(`%s.csv: a decimal comma needs another delimiter (such as ";")`, p))
	}
	if s.CSV != nil && s.CSV.Encoding != "" && !slices.Contains(CSVEncodings, s.CSV.Encoding) {
		probs = append(probs, fmt.Sprintf(`%s.csv.encoding %q is not supported (use one of %s)`, p, s.CSV.Encoding, strings.Join(CSVEncodings, ", ")))
	}
	return probs
}

// SourceType returns the explicit type, or the type implied by the URI's
// scheme or file extension, or "" when it cannot be told.
func (s *SourceSpec) SourceType() string {
	if s.Type != "" {
		t := strings.ToLower(s.Type)
		if t == "postgresql" {
			return SourcePostgres
		}
		return t
	}
	return TypeFromURI(s.URI)
}

// TypeFromURI infers a source type from a URI's scheme or file extension.
func TypeFromURI(uri string) string {
	lower := strings.ToLower(uri)
	switch {
	case strings.HasPrefix(lower, "postgres://"), strings.HasPrefix(lower, "postgresql://"):
		return SourcePostgres
	case strings.HasPrefix(lower, "mysql://"), strings.HasPrefix(lower, "mariadb://"):
		return SourceMySQL
	}
	path := lower
	if i := strings.IndexAny(path, "?#"); i >= 0 && strings.Contains(path, "://") {
		path = path[:i]
	}
	// A compressed CSV file (the codecs Kalla reads) is a CSV file.
	compressed := false
	for _, ext := range []string{".gz", ".zst", ".bz2"} {
		if p, ok := strings.CutSuffix(path, ext); ok {
			path, compressed = p, true
			break
		}
	}
	switch filepath.Ext(path) {
	case ".csv", ".tsv", ".txt":
		return SourceCSV
	case ".parquet", ".pq":
		if !compressed {
			return SourceParquet
		}
	}
	return ""
}

// Match patterns a rule may have.
const (
	Pattern1to1 = "1:1" // one left record with one right record
	Pattern1toN = "1:N" // one left record with a group of right records
	PatternNto1 = "N:1" // a group of left records with one right record
	PatternNtoM = "N:M" // a group on each side, sharing a key
)

// Condition operators.
const (
	CondEq         = "eq"
	CondTolerance  = "tolerance"
	CondDateWithin = "date_within"
	CondContains   = "contains"
	CondStartsWith = "starts_with"
	CondEndsWith   = "ends_with"
	CondFuzzy      = "fuzzy"
	CondGt         = "gt"
	CondGte        = "gte"
	CondLt         = "lt"
	CondLte        = "lte"
)

// Normalisations an eq, contains, starts_with, ends_with or fuzzy condition
// may apply to both values before comparing.
const (
	NormTrim     = "trim"     // remove leading and trailing white space
	NormCaseFold = "casefold" // compare case-insensitively
	NormAlnum    = "alnum"    // keep only letters and digits
)

// Rule is one pass of structured matching. Rules run in the order the
// recipe lists them, and a record matched by an earlier rule is not offered
// to a later one: strict rules first, loose ones after, so a loose rule
// cannot take a record a strict rule would have paired.
type Rule struct {
	Name string `json:"name"`
	// Pattern is 1:1 (the default), 1:N, N:1 or N:M. In a grouped pattern
	// the eq conditions are the group key and tolerance conditions compare
	// the groups' sums.
	Pattern    string      `json:"pattern,omitempty"`
	Conditions []Condition `json:"conditions"`
	// MinScore drops candidate pairs scoring below it.
	MinScore *float64 `json:"min_score,omitempty"`
	// AutoConfirm: pairs scoring below it are reported as "suggested"
	// rather than "confirmed". Without it every pair is confirmed.
	AutoConfirm *float64 `json:"auto_confirm,omitempty"`
	// Evidence says why the rule was proposed (kalla recipe suggest); it
	// does not change what the rule matches.
	Evidence []string `json:"evidence,omitempty"`
}

// Condition relates a column of the left source to a column of the right.
type Condition struct {
	Op    string `json:"op"`
	Left  string `json:"left"`
	Right string `json:"right"`

	// Normalize lists normalisations (trim, casefold, alnum) applied to both
	// values of a text condition.
	Normalize []string `json:"normalize,omitempty"`
	// StripLeft and StripRight are regular expressions whose matches are
	// removed from that side's value first (e.g. "-PART[0-9]+$").
	StripLeft  string `json:"strip_left,omitempty"`
	StripRight string `json:"strip_right,omitempty"`
	// Truncate compares dates of an eq condition by period: day, week,
	// month, quarter or year.
	Truncate string `json:"truncate,omitempty"`

	// Abs and Pct are a tolerance's absolute and relative allowance (0.02
	// is 2 %); with both, either suffices. PctOf says what Pct is a share
	// of: "left" (the default) or "larger" (the larger absolute value).
	Abs   json.Number `json:"abs,omitempty"`
	Pct   json.Number `json:"pct,omitempty"`
	PctOf string      `json:"pct_of,omitempty"`

	// Days is date_within's window; Direction is "both" (the default, ±
	// Days), "after" (right 0 to Days days after left) or "before".
	Days      *int   `json:"days,omitempty"`
	Direction string `json:"direction,omitempty"`

	// Haystack is the side whose value must contain (start with, end with)
	// the other's: "right" (the default) or "left".
	Haystack string `json:"haystack,omitempty"`

	// Threshold is fuzzy's minimum Jaro-Winkler similarity, in (0, 1].
	Threshold *float64 `json:"threshold,omitempty"`
}

// Joins reports whether a condition can drive a join by itself without a
// nested loop: equality (hash join) or a range (range join).
func (c Condition) Joins() bool {
	switch c.Op {
	case CondEq, CondTolerance, CondDateWithin:
		return true
	}
	return false
}

// RulePattern returns the rule's pattern, 1:1 when none is given.
func (r Rule) RulePattern() string {
	if r.Pattern == "" {
		return Pattern1to1
	}
	return strings.ToUpper(r.Pattern)
}

var decimalPattern = regexp.MustCompile(`^[0-9]+(\.[0-9]+)?$`)

// rulesProblems checks rules for what can be told without the sources:
// known operators and options, sane numbers, unique names, and a condition
// that lets the engine join the sides by hash or range.
func rulesProblems(rules []Rule) []string {
	var probs []string
	names := map[string]bool{}
	for i, r := range rules {
		p := fmt.Sprintf("rules[%d]", i)
		if strings.TrimSpace(r.Name) == "" {
			probs = append(probs, fmt.Sprintf("%s.name is required (it names the rule in matched pairs)", p))
		} else {
			p = fmt.Sprintf("rules[%d] %q", i, Excerpt(r.Name))
			if names[strings.ToLower(r.Name)] {
				probs = append(probs, fmt.Sprintf("%s: another rule has the same name; give each rule its own", p))
			}
			names[strings.ToLower(r.Name)] = true
		}
		pat := r.RulePattern()
		grouped := false
		switch pat {
		case Pattern1to1:
		case Pattern1toN, PatternNto1, PatternNtoM:
			grouped = true
		default:
			probs = append(probs, fmt.Sprintf("%s.pattern %q is not a pattern (use 1:1, 1:N, N:1 or N:M)", p, Excerpt(r.Pattern)))
		}
		for _, f := range []struct {
			name string
			v    *float64
		}{{"min_score", r.MinScore}, {"auto_confirm", r.AutoConfirm}} {
			if f.v != nil && (*f.v < 0 || *f.v > 1) {
				probs = append(probs, fmt.Sprintf("%s.%s must be between 0 and 1", p, f.name))
			}
		}
		if len(r.Conditions) == 0 {
			probs = append(probs, fmt.Sprintf("%s.conditions: a rule needs at least one condition", p))
			continue
		}
		joins, eqs, tols := false, 0, 0
		for j, c := range r.Conditions {
			probs = append(probs, c.problems(fmt.Sprintf("%s.conditions[%d]", p, j))...)
			joins = joins || c.Joins()
			switch c.Op {
			case CondEq:
				eqs++
			case CondTolerance:
				tols++
			case CondDateWithin:
			default:
				if grouped {
					probs = append(probs, fmt.Sprintf("%s.conditions[%d]: %s cannot compare groups in a %s rule (use eq for the group key, tolerance for sums, date_within for dates), or put it in a 1:1 rule", p, j, c.Op, pat))
				}
			}
		}
		if !joins {
			probs = append(probs, fmt.Sprintf("%s: needs an eq, tolerance or date_within condition; with only %s conditions every left record would be compared with every right one", p, Excerpt(r.Conditions[0].Op)))
		}
		if grouped && (eqs == 0 || tols == 0) {
			probs = append(probs, fmt.Sprintf("%s: a %s rule needs an eq condition (the group key) and a tolerance condition (the sums to compare)", p, pat))
		}
	}
	return probs
}

// problems checks one condition's operator and options.
func (c Condition) problems(p string) []string {
	var probs []string
	if strings.TrimSpace(c.Left) == "" || strings.TrimSpace(c.Right) == "" {
		probs = append(probs, fmt.Sprintf("%s: left and right name the columns to compare", p))
	}
	text := c.Op == CondEq || c.Op == CondContains || c.Op == CondStartsWith || c.Op == CondEndsWith || c.Op == CondFuzzy
	switch c.Op {
	case CondEq, CondContains, CondStartsWith, CondEndsWith, CondFuzzy, CondGt, CondGte, CondLt, CondLte:
	case CondTolerance:
		if c.Abs == "" && c.Pct == "" {
			probs = append(probs, fmt.Sprintf("%s: tolerance needs abs (e.g. 0.05) and/or pct (e.g. 0.02 for 2 %%)", p))
		}
		for _, v := range []struct{ name, val string }{{"abs", c.Abs.String()}, {"pct", c.Pct.String()}} {
			if v.val != "" && !decimalPattern.MatchString(v.val) {
				probs = append(probs, fmt.Sprintf("%s.%s %q must be a plain non-negative number such as 0.05", p, v.name, Excerpt(v.val)))
			}
		}
		if c.Pct != "" && decimalPattern.MatchString(c.Pct.String()) {
			if f, _ := c.Pct.Float64(); f >= 1 {
				probs = append(probs, fmt.Sprintf("%s.pct %s is a share: 0.02 means 2 %%; it must be below 1", p, c.Pct))
			}
		}
		if c.PctOf != "" && c.PctOf != "left" && c.PctOf != "larger" {
			probs = append(probs, fmt.Sprintf("%s.pct_of %q: use left or larger", p, Excerpt(c.PctOf)))
		}
	case CondDateWithin:
		if c.Days == nil || *c.Days < 0 {
			probs = append(probs, fmt.Sprintf("%s: date_within needs days, a whole number of days ≥ 0", p))
		}
		if c.Direction != "" && c.Direction != "both" && c.Direction != "after" && c.Direction != "before" {
			probs = append(probs, fmt.Sprintf("%s.direction %q: use both, after (right 0 to days after left) or before", p, Excerpt(c.Direction)))
		}
	case "":
		probs = append(probs, fmt.Sprintf("%s.op is required (eq, tolerance, date_within, contains, starts_with, ends_with, fuzzy, gt, gte, lt, lte)", p))
	default:
		probs = append(probs, fmt.Sprintf("%s.op %q is not an operator (use eq, tolerance, date_within, contains, starts_with, ends_with, fuzzy, gt, gte, lt, lte)", p, Excerpt(c.Op)))
	}
	if c.Op == CondFuzzy && (c.Threshold == nil || *c.Threshold <= 0 || *c.Threshold > 1) {
		probs = append(probs, fmt.Sprintf("%s: fuzzy needs threshold, a similarity in (0, 1] such as 0.9", p))
	}
	if c.Op != CondFuzzy && c.Threshold != nil {
		probs = append(probs, fmt.Sprintf("%s.threshold applies only to fuzzy", p))
	}
	if !text && (len(c.Normalize) > 0 || c.StripLeft != "" || c.StripRight != "") {
		probs = append(probs, fmt.Sprintf("%s: normalize, strip_left and strip_right apply only to eq, contains, starts_with, ends_with and fuzzy", p))
	}
	for _, n := range c.Normalize {
		if n != NormTrim && n != NormCaseFold && n != NormAlnum {
			probs = append(probs, fmt.Sprintf("%s.normalize %q: use trim, casefold or alnum", p, Excerpt(n)))
		}
	}
	for _, s := range []struct{ name, re string }{{"strip_left", c.StripLeft}, {"strip_right", c.StripRight}} {
		if s.re == "" {
			continue
		}
		if _, err := regexp.Compile(s.re); err != nil {
			probs = append(probs, fmt.Sprintf("%s.%s: %v", p, s.name, err))
		}
	}
	if c.Truncate != "" {
		switch {
		case c.Op != CondEq:
			probs = append(probs, fmt.Sprintf("%s.truncate applies only to eq", p))
		case c.Truncate != "day" && c.Truncate != "week" && c.Truncate != "month" && c.Truncate != "quarter" && c.Truncate != "year":
			probs = append(probs, fmt.Sprintf("%s.truncate %q: use day, week, month, quarter or year", p, Excerpt(string(c.Truncate))))
		}
	}
	if c.Op != CondTolerance && (c.Abs != "" || c.Pct != "" || c.PctOf != "") {
		probs = append(probs, fmt.Sprintf("%s: abs, pct and pct_of apply only to tolerance", p))
	}
	if c.Op != CondDateWithin && (c.Days != nil || c.Direction != "") {
		probs = append(probs, fmt.Sprintf("%s: days and direction apply only to date_within", p))
	}
	if c.Haystack != "" && (c.Op != CondContains && c.Op != CondStartsWith && c.Op != CondEndsWith || c.Haystack != "left" && c.Haystack != "right") {
		probs = append(probs, fmt.Sprintf("%s.haystack %q: left or right, for contains, starts_with and ends_with", p, Excerpt(string(c.Haystack))))
	}
	return probs
}

// RulesReport is what a rules recipe adds to a run's summary: what each
// rule matched and how the matched pairs still differ.
type RulesReport struct {
	Rules  []RuleStats   `json:"rules"`
	Breaks []BreakColumn `json:"breaks"`
	// Reasons counts the unmatched records of each side by the kind of
	// reason they were given (no_candidate, conditions_failed, taken,
	// below_min_score).
	Reasons map[string]map[string]int64 `json:"reasons,omitempty"`
	// UnmatchedSamples shows the first few unmatched records of each side
	// (in source order) with their reasons.
	UnmatchedSamples map[string][]UnmatchedSample `json:"unmatched_samples,omitempty"`
}

// UnmatchedSample is one unmatched record and why.
type UnmatchedSample struct {
	Row              int64  `json:"row"`
	Key              string `json:"key"`
	Reason           string `json:"reason"`
	ClosestCandidate string `json:"closest_candidate,omitempty"`
}

// RuleStats counts what one rule (one pass) matched.
type RuleStats struct {
	Name         string `json:"name"`
	Pattern      string `json:"pattern"`
	Pairs        int64  `json:"pairs"`
	LeftRecords  int64  `json:"left_records"`
	RightRecords int64  `json:"right_records"`
	Confirmed    int64  `json:"confirmed"`
	Suggested    int64  `json:"suggested"`
}

// BreakColumn reports one compared column pair over the matched pairs: how
// many were compared, how many differ, by how much at most and in total
// (numbers: right − left; dates: days), with the largest differences as
// samples. In grouped rules amounts are compared as the groups' sums.
type BreakColumn struct {
	LeftColumn      string        `json:"left_column"`
	RightColumn     string        `json:"right_column"`
	Compared        int64         `json:"compared"`
	Differing       int64         `json:"differing"`
	MaxDifference   *float64      `json:"max_difference,omitempty"`
	TotalDifference *float64      `json:"total_difference,omitempty"`
	Samples         []BreakSample `json:"samples"`
}

// BreakSample is one matched pair (or group) whose values differ.
type BreakSample struct {
	Rule       string   `json:"rule"`
	LeftKey    string   `json:"left_key"`
	RightKey   string   `json:"right_key"`
	LeftValue  *string  `json:"left_value"`
	RightValue *string  `json:"right_value"`
	Difference *float64 `json:"difference,omitempty"`
}
