// Package conformance is the test suite every connector.Source must pass
// (in the manner of redpanda-data/connect's per-kind conformance suites):
// one fixture table, defined here, that each connector's test creates in its
// own technology (a Postgres table, a MariaDB table, a CSV or Parquet file)
// and opens; Run then checks the whole contract against it: columns, counts
// under every filter operator, samples and their limit, rejection of bad
// filters, and staging into a real engine whose rows are compared value by
// value, money exactly.
//
// It is imported only from _test.go files.
package conformance

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/kalla-recon/kalla/internal/connector"
	"github.com/kalla-recon/kalla/internal/dialect"
	"github.com/kalla-recon/kalla/internal/engine"
	"github.com/kalla-recon/kalla/internal/kalla"
)

// Type is a fixture column's logical type; each connector's test maps it to
// its own type (Money is numeric(12,2) in Postgres, DECIMAL(12,2) in MySQL,
// a decimal text with two places in CSV).
type Type string

// The fixture's logical types.
const (
	Int   Type = "int"   // a 64-bit integer
	Text  Type = "text"  // Unicode text
	Money Type = "money" // an exact decimal with two places
	Date  Type = "date"  // a calendar date
)

// Column is a fixture column.
type Column struct {
	// Name is the column's name, case kept.
	Name string
	// Type is the column's logical type.
	Type Type
	// Nullable is false only for the key.
	Nullable bool
}

// Fixture is the table a connector's test must create. Rows hold each
// value's canonical text (nil for NULL): integers in decimal, money with
// exactly two places, dates as YYYY-MM-DD.
type Fixture struct {
	// Table is the name to give the table where the technology has table
	// names; it is mixed-case on purpose.
	Table string
	// Columns are the table's columns, in order.
	Columns []Column
	// Rows are the table's rows, values in column order.
	Rows [][]*string
}

func p(s string) *string { return &s }

// The fixture. Row 5's name holds LIKE's metacharacters, row 2 quotes and
// non-ASCII letters, row 4 CJK and an emoji; money holds the classic
// 0.30/0.29 pair that DOUBLE gets wrong, a negative amount and the largest
// numeric(12,2). Every nullable column has a NULL somewhere. No text value
// is empty, since CSV cannot tell an empty string from NULL.
var fixture = Fixture{
	Table: "RecItems",
	Columns: []Column{
		{Name: "id", Type: Int},
		{Name: "name", Type: Text, Nullable: true},
		{Name: "amount", Type: Money, Nullable: true},
		{Name: "issued", Type: Date, Nullable: true},
		{Name: "RefCode", Type: Text, Nullable: true},
	},
	Rows: [][]*string{
		{p("1"), p("alpha"), p("100.10"), p("2024-01-31"), p("INV-001")},
		{p("2"), p(`Café "Zürich"`), p("0.30"), p("2024-02-01"), nil},
		{p("3"), p("O'Brien, Ltd."), p("0.29"), p("2024-02-15"), p("INV-003")},
		{p("4"), p("東京 🌸"), p("15000.00"), p("2024-03-01"), p("INV-004")},
		{p("5"), p(`50% off_sale \ back`), p("-42.50"), p("2023-12-31"), p("INV-005")},
		{p("6"), nil, p("0.00"), p("2024-02-29"), p("INV-006")},
		{p("7"), p("multi\nline"), nil, p("2024-01-01"), p("INV-001")},
		{p("8"), p("max"), p("9999999999.99"), nil, p("INV-008")},
		{p("9"), p("tab\there"), p("12.34"), p("2024-04-30"), p("INV-009")},
		{p("10"), p("ALPHA"), p("100.10"), p("2024-02-10"), p("inv-010")},
	},
}

// Get returns the suite's fixture, for connector tests that create it
// outside Run (benchmarks, specific tests).
func Get() Fixture { return clone(fixture) }

func clone(f Fixture) Fixture {
	out := f
	out.Columns = slices.Clone(f.Columns)
	out.Rows = make([][]*string, len(f.Rows))
	for i, r := range f.Rows {
		out.Rows[i] = slices.Clone(r)
	}
	return out
}

// CSV renders the fixture as RFC 4180 CSV with a header row, NULL as an
// empty field.
func (f Fixture) CSV() []byte {
	var b bytes.Buffer
	w := csv.NewWriter(&b)
	hdr := make([]string, len(f.Columns))
	for i, c := range f.Columns {
		hdr[i] = c.Name
	}
	w.Write(hdr)
	for _, r := range f.Rows {
		rec := make([]string, len(r))
		for i, v := range r {
			if v != nil {
				rec[i] = *v
			}
		}
		w.Write(rec)
	}
	w.Flush()
	return b.Bytes()
}

// Args returns row i's values as arguments for an INSERT: strings, nil
// for NULL.
func (f Fixture) Args(i int) []any {
	out := make([]any, len(f.Rows[i]))
	for j, v := range f.Rows[i] {
		if v != nil {
			out[j] = *v
		}
	}
	return out
}

// Run checks src against the whole connector contract. open must create
// the fixture in the connector's technology and return a Source for it;
// Run closes it.
func Run(t *testing.T, open func(t *testing.T, fx Fixture) connector.Source) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	fx := Get()
	src := open(t, clone(fx))
	t.Cleanup(func() {
		if err := src.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})

	t.Run("columns", func(t *testing.T) { testColumns(ctx, t, src, fx) })
	t.Run("count", func(t *testing.T) { testCount(ctx, t, src, fx) })
	t.Run("sample", func(t *testing.T) { testSample(ctx, t, src, fx) })
	t.Run("load", func(t *testing.T) { testLoad(ctx, t, src, fx) })
	t.Run("bad filters", func(t *testing.T) { testBadFilters(ctx, t, src) })
	t.Run("stage", func(t *testing.T) { testStage(ctx, t, src, fx) })
	t.Run("stage filtered", func(t *testing.T) { testStageFiltered(ctx, t, src, fx) })
	t.Run("cancelled", func(t *testing.T) { testCancelled(ctx, t, src) })
}

func testColumns(ctx context.Context, t *testing.T, src connector.Source, fx Fixture) {
	cols, err := src.Columns(ctx)
	if err != nil {
		t.Fatalf("Columns: %v", err)
	}
	var got, want []string
	for _, c := range cols {
		got = append(got, c.Name)
		if c.DataType == "" || c.EngineType == "" {
			t.Errorf("column %q: DataType %q, EngineType %q: both must be set", c.Name, c.DataType, c.EngineType)
		}
	}
	for _, c := range fx.Columns {
		want = append(want, c.Name)
	}
	if !slices.Equal(got, want) {
		t.Fatalf("column names = %q, want %q (in order, case kept)", got, want)
	}
	for i, c := range cols {
		if fx.Columns[i].Type == Money && !strings.HasPrefix(strings.ToUpper(c.EngineType), "DECIMAL(") {
			t.Errorf("money column %q has EngineType %q, want an exact DECIMAL", c.Name, c.EngineType)
		}
	}
}

// filterCase is a set of filters and the ids of the fixture rows they match.
type filterCase struct {
	name    string
	filters string // JSON array of {column, op, value}
	ids     []int
}

var filterCases = []filterCase{
	{"none", `[]`, []int{1, 2, 3, 4, 5, 6, 7, 8, 9, 10}},
	{"eq int", `[{"column":"id","op":"eq","value":3}]`, []int{3}},
	{"eq text with quotes", `[{"column":"name","op":"eq","value":"Café \"Zürich\""}]`, []int{2}},
	{"eq text with apostrophe", `[{"column":"name","op":"eq","value":"O'Brien, Ltd."}]`, []int{3}},
	{"eq money", `[{"column":"amount","op":"eq","value":0.30}]`, []int{2}},
	{"eq money as text", `[{"column":"amount","op":"eq","value":"100.10"}]`, []int{1, 10}},
	{"eq money extra digits", `[{"column":"amount","op":"eq","value":100.104}]`, []int{}},
	{"neq", `[{"column":"RefCode","op":"neq","value":"INV-001"}]`, []int{3, 4, 5, 6, 8, 9, 10}},
	{"gt money", `[{"column":"amount","op":"gt","value":100.10}]`, []int{4, 8}},
	{"gte money", `[{"column":"amount","op":"gte","value":100.10}]`, []int{1, 4, 8, 10}},
	{"lt money", `[{"column":"amount","op":"lt","value":0.30}]`, []int{3, 5, 6}},
	{"lte money", `[{"column":"amount","op":"lte","value":"0.30"}]`, []int{2, 3, 5, 6}},
	{"gte date", `[{"column":"issued","op":"gte","value":"2024-03-01"}]`, []int{4, 9}},
	{"between dates", `[{"column":"issued","op":"between","value":["2024-02-01","2024-02-29"]}]`, []int{2, 3, 6, 10}},
	{"between money", `[{"column":"amount","op":"between","value":[0.29, 0.30]}]`, []int{2, 3}},
	{"in ints", `[{"column":"id","op":"in","value":[1,3,5,42]}]`, []int{1, 3, 5}},
	{"in text", `[{"column":"RefCode","op":"in","value":["INV-003","INV-009"]}]`, []int{3, 9}},
	{"like prefix", `[{"column":"name","op":"like","value":"Caf%"}]`, []int{2}},
	{"like unicode", `[{"column":"name","op":"like","value":"%🌸"}]`, []int{4}},
	{"like escaped metacharacters", `[{"column":"name","op":"like","value":"50\\% off\\_sale%"}]`, []int{5}},
	{"like underscore", `[{"column":"RefCode","op":"like","value":"INV-00_"}]`, []int{1, 3, 4, 5, 6, 7, 8, 9}},
	{"two filters", `[{"column":"amount","op":"gte","value":0},{"column":"issued","op":"lt","value":"2024-02-15"}]`, []int{1, 2, 10}},
	{"mixed-case column", `[{"column":"RefCode","op":"eq","value":"INV-001"}]`, []int{1, 7}},
}

func parseFilters(t *testing.T, s string) []kalla.Filter {
	t.Helper()
	var fs []kalla.Filter
	if err := json.Unmarshal([]byte(s), &fs); err != nil {
		t.Fatalf("suite filter %s: %v", s, err)
	}
	return fs
}

func testCount(ctx context.Context, t *testing.T, src connector.Source, fx Fixture) {
	for _, tc := range filterCases {
		t.Run(tc.name, func(t *testing.T) {
			n, err := src.Count(ctx, parseFilters(t, tc.filters))
			if err != nil {
				t.Fatalf("Count(%s): %v", tc.filters, err)
			}
			if n != int64(len(tc.ids)) {
				t.Errorf("Count(%s) = %d, want %d (ids %v)", tc.filters, n, len(tc.ids), tc.ids)
			}
		})
	}
}

// rowsByID indexes sample rows by their id text.
func rowsByID(t *testing.T, rows [][]*string) map[string][]*string {
	t.Helper()
	out := map[string][]*string{}
	for _, r := range rows {
		if len(r) == 0 || r[0] == nil {
			t.Fatalf("sample row %v has no id", show(r))
		}
		if _, dup := out[*r[0]]; dup {
			t.Fatalf("sample has id %s twice", *r[0])
		}
		out[*r[0]] = r
	}
	return out
}

func show(r []*string) string {
	parts := make([]string, len(r))
	for i, v := range r {
		if v == nil {
			parts[i] = "NULL"
		} else {
			parts[i] = fmt.Sprintf("%q", *v)
		}
	}
	return "[" + strings.Join(parts, " ") + "]"
}

func testSample(ctx context.Context, t *testing.T, src connector.Source, fx Fixture) {
	for _, tc := range filterCases {
		t.Run(tc.name, func(t *testing.T) {
			rows, err := src.Sample(ctx, parseFilters(t, tc.filters), 100)
			if err != nil {
				t.Fatalf("Sample(%s): %v", tc.filters, err)
			}
			got := rowsByID(t, rows)
			if len(got) != len(tc.ids) {
				t.Fatalf("Sample(%s) returned %d rows, want %d (ids %v)", tc.filters, len(got), len(tc.ids), tc.ids)
			}
			for _, id := range tc.ids {
				want := fx.Rows[id-1]
				row, ok := got[*want[0]]
				if !ok {
					t.Fatalf("Sample(%s) lacks id %d", tc.filters, id)
				}
				if len(row) != len(want) {
					t.Fatalf("id %d: %d values, want %d", id, len(row), len(want))
				}
				for c := range want {
					if !sameValue(row[c], want[c]) {
						t.Errorf("id %d column %s = %s, want %s", id, fx.Columns[c].Name, show(row[c:c+1]), show(want[c:c+1]))
					}
				}
			}
		})
	}
	t.Run("limit", func(t *testing.T) {
		for _, limit := range []int{1, 3, 10, 11} {
			rows, err := src.Sample(ctx, nil, limit)
			if err != nil {
				t.Fatalf("Sample(limit %d): %v", limit, err)
			}
			if want := min(limit, len(fx.Rows)); len(rows) != want {
				t.Errorf("Sample(limit %d) returned %d rows, want %d", limit, len(rows), want)
			}
			rowsByID(t, rows)
		}
		rows, err := src.Sample(ctx, parseFilters(t, `[{"column":"amount","op":"gte","value":0}]`), 2)
		if err != nil {
			t.Fatal(err)
		}
		if len(rows) != 2 {
			t.Errorf("Sample(filtered, limit 2) returned %d rows", len(rows))
		}
	})
}

// sameValue compares a sample's text with the fixture's canonical text:
// exactly, so money must come back with its two places.
func sameValue(got, want *string) bool {
	if got == nil || want == nil {
		return got == nil && want == nil
	}
	return *got == *want
}

func testLoad(ctx context.Context, t *testing.T, src connector.Source, fx Fixture) {
	pv, err := connector.Load(ctx, src, "fixture", parseFilters(t, `[{"column":"amount","op":"gte","value":0},{"column":"RefCode","op":"like","value":"INV-00%"}]`), 2)
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	if pv.TotalRows != 6 || pv.PreviewRows != 2 || len(pv.Rows) != 2 || len(pv.Columns) != len(fx.Columns) {
		t.Errorf("Load = total %d, preview %d, %d rows, %d columns; want 6, 2, 2, %d", pv.TotalRows, pv.PreviewRows, len(pv.Rows), len(pv.Columns), len(fx.Columns))
	}
}

func testBadFilters(ctx context.Context, t *testing.T, src connector.Source) {
	cases := []struct {
		name    string
		filters []kalla.Filter
	}{
		{"unknown column", parseFilters(t, `[{"column":"nope","op":"eq","value":1}]`)},
		{"unknown op", parseFilters(t, `[{"column":"id","op":"approx","value":1}]`)},
		{"text for a number", parseFilters(t, `[{"column":"amount","op":"eq","value":"abc"}]`)},
		{"impossible date", parseFilters(t, `[{"column":"issued","op":"eq","value":"2024-02-30"}]`)},
		{"between one value", parseFilters(t, `[{"column":"amount","op":"between","value":[1]}]`)},
		{"in scalar", parseFilters(t, `[{"column":"id","op":"in","value":1}]`)},
		{"injection as a column", []kalla.Filter{{Column: `id" = 1 OR "1`, Op: kalla.OpEq, Values: []kalla.Scalar{{Text: "1", IsNumber: true}}}}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := src.Count(ctx, tc.filters)
			if code := kalla.ErrorCode(err); code != kalla.EINVALID {
				t.Errorf("Count: error %v (code %s), want %s", err, code, kalla.EINVALID)
			}
			_, err = src.Sample(ctx, tc.filters, 5)
			if code := kalla.ErrorCode(err); code != kalla.EINVALID {
				t.Errorf("Sample: error %v (code %s), want %s", err, code, kalla.EINVALID)
			}
		})
	}
	t.Run("stage", func(t *testing.T) {
		e := newEngine(ctx, t)
		_, err := src.Stage(ctx, cases[0].filters, e.Sink("bad"))
		if code := kalla.ErrorCode(err); code != kalla.EINVALID {
			t.Errorf("Stage with an unknown column: error %v (code %s), want %s", err, code, kalla.EINVALID)
		}
	})
}

func newEngine(ctx context.Context, t *testing.T) *engine.Engine {
	t.Helper()
	e, err := engine.Open(ctx, engine.Options{Threads: 2})
	if err != nil {
		t.Fatalf("engine.Open: %v", err)
	}
	t.Cleanup(func() { e.Close() })
	return e
}

// staged reads a staged table back as one line per row, ordered by id,
// each value as DuckDB's text or NULL.
func staged(ctx context.Context, t *testing.T, sink connector.Sink, cols []Column) []string {
	t.Helper()
	parts := make([]string, len(cols))
	for i, c := range cols {
		parts[i] = "coalesce(CAST(" + dialect.DuckDB.QuoteIdent(c.Name) + " AS VARCHAR), 'NULL')"
	}
	q := "SELECT CAST(coalesce(to_json(list(concat_ws('|', " + strings.Join(parts, ", ") + `) ORDER BY "id")), '[]') AS VARCHAR) FROM ` + sink.Table()
	var raw string
	if err := sink.QueryRowContext(ctx, q).Scan(&raw); err != nil {
		t.Fatalf("read staged rows: %v", err)
	}
	var out []string
	if err := json.Unmarshal([]byte(raw), &out); err != nil {
		t.Fatalf("read staged rows: %v", err)
	}
	return out
}

func expected(fx Fixture, ids []int) []string {
	out := []string{}
	for _, id := range ids {
		r := fx.Rows[id-1]
		parts := make([]string, len(r))
		for i, v := range r {
			parts[i] = "NULL"
			if v != nil {
				parts[i] = *v
			}
		}
		out = append(out, strings.Join(parts, "|"))
	}
	return out
}

func testStage(ctx context.Context, t *testing.T, src connector.Source, fx Fixture) {
	e := newEngine(ctx, t)
	sink := e.Sink("staged_all")
	n, err := src.Stage(ctx, nil, sink)
	if err != nil {
		t.Fatalf("Stage: %v", err)
	}
	if n != int64(len(fx.Rows)) {
		t.Errorf("Stage staged %d rows, want %d", n, len(fx.Rows))
	}
	got := staged(ctx, t, sink, fx.Columns)
	want := expected(fx, []int{1, 2, 3, 4, 5, 6, 7, 8, 9, 10})
	if !slices.Equal(got, want) {
		t.Errorf("staged rows differ:\n got %q\nwant %q", got, want)
	}
	// Money is an exact decimal with two places, and compares exactly.
	var typ, sum string
	var within bool
	q := `SELECT any_value(typeof("amount")), CAST(sum("amount") AS VARCHAR),
		(SELECT a."amount" - b."amount" <= 0.01 FROM ` + sink.Table() + ` a, ` + sink.Table() + ` b WHERE a."id" = 2 AND b."id" = 3)
		FROM ` + sink.Table()
	if err := sink.QueryRowContext(ctx, q).Scan(&typ, &sum, &within); err != nil {
		t.Fatalf("check money: %v", err)
	}
	if !strings.HasPrefix(typ, "DECIMAL(") || !strings.HasSuffix(typ, ",2)") {
		t.Errorf("staged money type %s, want DECIMAL(p,2)", typ)
	}
	if sum != "10000015170.62" {
		t.Errorf("sum of staged money = %s, want 10000015170.62", sum)
	}
	if !within {
		t.Errorf("0.30 - 0.29 <= 0.01 is false on staged money: it is not exact")
	}
	var idType, dateType string
	if err := sink.QueryRowContext(ctx, `SELECT typeof("id"), typeof("issued") FROM `+sink.Table()+` LIMIT 1`).Scan(&idType, &dateType); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(idType, "INT") || dateType != "DATE" {
		t.Errorf("staged id is %s and issued %s, want an integer type and DATE", idType, dateType)
	}
}

func testStageFiltered(ctx context.Context, t *testing.T, src connector.Source, fx Fixture) {
	for _, tc := range filterCases {
		switch tc.name {
		case "gte money", "between dates", "like escaped metacharacters", "two filters", "neq":
		default:
			continue
		}
		t.Run(tc.name, func(t *testing.T) {
			e := newEngine(ctx, t)
			sink := e.Sink("staged")
			n, err := src.Stage(ctx, parseFilters(t, tc.filters), sink)
			if err != nil {
				t.Fatalf("Stage(%s): %v", tc.filters, err)
			}
			if n != int64(len(tc.ids)) {
				t.Errorf("Stage(%s) staged %d rows, want %d", tc.filters, n, len(tc.ids))
			}
			if got, want := staged(ctx, t, sink, fx.Columns), expected(fx, tc.ids); !slices.Equal(got, want) {
				t.Errorf("Stage(%s) rows differ:\n got %q\nwant %q", tc.filters, got, want)
			}
		})
	}
}

func testCancelled(ctx context.Context, t *testing.T, src connector.Source) {
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	e := newEngine(ctx, t)
	_, err := src.Stage(cctx, nil, e.Sink("cancelled"))
	if !errors.Is(err, context.Canceled) {
		t.Errorf("Stage with a cancelled context: error %v, want context.Canceled", err)
	}
	if _, err := src.Count(cctx, nil); !errors.Is(err, context.Canceled) {
		t.Errorf("Count with a cancelled context: error %v, want context.Canceled", err)
	}
	// The source still works afterwards (its connection went back to a
	// pool, or was discarded).
	if n, err := src.Count(ctx, nil); err != nil || n != 10 {
		t.Errorf("Count after a cancelled call = %d, %v; want 10", n, err)
	}
}
