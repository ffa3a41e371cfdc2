package dialect_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/kalla-recon/kalla/internal/dialect"
	"github.com/kalla-recon/kalla/internal/kalla"
)

// fixtureTable has a space and mixed case so that every statement quotes it.
const fixtureTable = "Kalla Fixture"

// fixtureDDL creates the fixture in each dialect: the same logical columns
// in each server's closest types. Text columns name their collation so the
// expected orderings below do not depend on how the server was initialised:
// bytewise "C" in Postgres (DuckDB compares bytes too), MariaDB's default
// case-insensitive utf8mb4_general_ci.
func fixtureDDL(d dialect.Dialect) string {
	q := d.QuoteIdent
	cols := []string{q("id") + " integer PRIMARY KEY"}
	add := func(name, pg, my, duck string) {
		cols = append(cols, q(name)+" "+map[dialect.Dialect]string{dialect.Postgres: pg, dialect.MySQL: my, dialect.DuckDB: duck}[d])
	}
	add("amount", "numeric(12,2)", "decimal(12,2)", "DECIMAL(12,2)")
	add("name", `text COLLATE "C"`, "varchar(100) COLLATE utf8mb4_general_ci", "VARCHAR")
	add("day", "date", "date", "DATE")
	add("at", "timestamp", "datetime(6)", "TIMESTAMP")
	add("at_tz", "timestamptz", "timestamp(6) NULL", "TIMESTAMPTZ")
	add("ok", "boolean", "boolean", "BOOLEAN")
	add("uid", "uuid", "uuid", "UUID")
	add("doc", "json", "json", "JSON")
	add(`Weird "Col"`, `text COLLATE "C"`, "varchar(20)", "VARCHAR")
	add("Back`tick", `text COLLATE "C"`, "varchar(20)", "VARCHAR")
	add("select", `text COLLATE "C"`, "varchar(20)", "VARCHAR")
	add("MixedCase", "integer", "int", "INTEGER")
	add("big", "bigint", "bigint", "BIGINT")
	return "CREATE TABLE " + q(fixtureTable) + " (" + strings.Join(cols, ", ") + ")"
}

// fixtureRows are the rows, id first, in fixtureDDL's column order; nil is
// NULL. Row 5 is NULL everywhere but id. Booleans and zoned timestamps are
// written per dialect by rowArgs.
var fixtureRows = [][]any{
	{"1", "100.10", "Acme", "2024-01-31", "2024-01-31 10:00:00", "2024-01-31 10:00:00+00", true, "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a01", `{"a": 1}`, "x", "p", "from", "10", "9007199254740993"},
	{"2", "100.00", "acme corp", "2024-02-29", "2024-02-29 23:59:59.5", "2024-02-29 23:59:59.5+00", false, "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a02", `{"a": 2}`, `y"z`, "q`r", "where", "20", "9007199254740992"},
	{"3", "-5.50", "O'Brien", "2023-12-31", "2023-12-31 00:00:00", "2024-01-01 00:00:00+02", true, "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a03", `[1, 2]`, "x", nil, nil, "30", "-1"},
	{"4", "12345.67", `100%_sure\`, "2024-03-01", "2024-03-01 12:00:00", nil, nil, "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a04", `{"b": "é"}`, nil, "p", "select", nil, nil},
	{"5", nil, nil, nil, nil, nil, nil, nil, nil, nil, nil, nil, nil, nil},
	{"6", "0.00", "", "2024-01-01", "2024-01-01 00:00:00.000001", "2024-01-01 00:00:00+00", false, "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a06", `{}`, "", "", "", "0", "0"},
}

// mysqlNaiveTZ is at_tz as MariaDB's TIMESTAMP holds it: no offset, in the
// session time zone; the instants are those of fixtureRows in UTC.
var mysqlNaiveTZ = map[string]string{
	"2024-01-31 10:00:00+00":   "2024-01-31 10:00:00",
	"2024-02-29 23:59:59.5+00": "2024-02-29 23:59:59.5",
	"2024-01-01 00:00:00+02":   "2023-12-31 22:00:00",
	"2024-01-01 00:00:00+00":   "2024-01-01 00:00:00",
}

func rowArgs(d dialect.Dialect, row []any) []any {
	out := slices.Clone(row)
	for i, v := range out {
		switch v := v.(type) {
		case bool:
			if d == dialect.MySQL {
				out[i] = map[bool]string{true: "1", false: "0"}[v]
			} else {
				out[i] = fmt.Sprint(v)
			}
		case string:
			if n, ok := mysqlNaiveTZ[v]; ok && d == dialect.MySQL {
				out[i] = n
			}
		}
	}
	return out
}

// setupFixture creates and fills the fixture and returns its columns as the
// server reports them.
func setupFixture(t testing.TB, ctx context.Context, s server) []kalla.Column {
	t.Helper()
	d := s.d
	if err := s.q.exec(ctx, "DROP TABLE IF EXISTS "+d.QuoteIdent(fixtureTable)); err != nil {
		t.Fatalf("drop: %v", err)
	}
	if err := s.q.exec(ctx, fixtureDDL(d)); err != nil {
		t.Fatalf("create: %v\n%s", err, fixtureDDL(d))
	}
	cols := readColumns(t, ctx, d, s.q, fixtureTable)
	if len(cols) != len(fixtureRows[0]) {
		t.Fatalf("fixture has %d columns, want %d: %+v", len(cols), len(fixtureRows[0]), cols)
	}
	names := make([]string, len(cols))
	phs := make([]string, len(cols))
	for i, c := range cols {
		names[i] = d.QuoteIdent(c.Name)
		phs[i] = d.Placeholder(i + 1)
		if d == dialect.MySQL && c.Name == "doc" && c.DataType == "longtext" {
			// MariaDB's JSON is LONGTEXT with a json_valid check; report it
			// as MySQL does, so the JSON comparison path runs on a real server.
			cols[i].DataType = "json"
		}
	}
	insert := "INSERT INTO " + d.QuoteIdent(fixtureTable) + " (" + strings.Join(names, ", ") + ") VALUES (" + strings.Join(phs, ", ") + ")"
	for _, row := range fixtureRows {
		if err := s.q.exec(ctx, insert, rowArgs(d, row)...); err != nil {
			t.Fatalf("insert %v: %v", row, err)
		}
	}
	return cols
}

type execCase struct {
	name    string
	filters []string
	want    []int64                     // ids, computed by hand from fixtureRows
	per     map[dialect.Dialect][]int64 // where a dialect's semantics differ
	only    []dialect.Dialect           // nil: every dialect
}

var (
	pgDuck = []dialect.Dialect{dialect.Postgres, dialect.DuckDB}
	myOnly = []dialect.Dialect{dialect.MySQL}
)

func ids(n ...int64) []int64 { return n }

// execCases pins each operator on each type. NULL row 5 matches nothing:
// it is absent from every neq result.
var execCases = []execCase{
	// numeric(12,2)
	{name: "amount eq", filters: []string{`{"column":"amount","op":"eq","value":100.10}`}, want: ids(1)},
	{name: "amount eq string", filters: []string{`{"column":"amount","op":"eq","value":"100.1"}`}, want: ids(1)},
	{name: "amount eq exponent", filters: []string{`{"column":"amount","op":"eq","value":1e2}`}, want: ids(2)},
	{name: "amount eq finer than column", filters: []string{`{"column":"amount","op":"eq","value":100.104}`}, want: nil},
	{name: "amount eq finer than column rounds up", filters: []string{`{"column":"amount","op":"eq","value":100.095}`}, want: nil},
	{name: "amount neq excludes NULL", filters: []string{`{"column":"amount","op":"neq","value":100.10}`}, want: ids(2, 3, 4, 6)},
	{name: "amount gt", filters: []string{`{"column":"amount","op":"gt","value":100.099}`}, want: ids(1, 4)},
	{name: "amount gt half cent", filters: []string{`{"column":"amount","op":"gt","value":100.005}`}, want: ids(1, 4)},
	{name: "amount gte", filters: []string{`{"column":"amount","op":"gte","value":100}`}, want: ids(1, 2, 4)},
	{name: "amount lt", filters: []string{`{"column":"amount","op":"lt","value":0}`}, want: ids(3)},
	{name: "amount lte", filters: []string{`{"column":"AMOUNT","op":"lte","value":"0"}`}, want: ids(3, 6)},
	{name: "amount between", filters: []string{`{"column":"amount","op":"between","value":[-5.5,100]}`}, want: ids(2, 3, 6)},
	{name: "amount between reversed", filters: []string{`{"column":"amount","op":"between","value":[100,-5.5]}`}, want: nil},
	{name: "amount in", filters: []string{`{"column":"amount","op":"in","value":[100.1,0,7]}`}, want: ids(1, 6)},
	{name: "amount like", filters: []string{`{"column":"amount","op":"like","value":"100.%"}`}, want: ids(1, 2)},

	// integer
	{name: "id gt fraction", filters: []string{`{"column":"id","op":"gt","value":1.5}`}, want: ids(2, 3, 4, 5, 6)},
	{name: "id lte fraction", filters: []string{`{"column":"id","op":"lte","value":2.5}`}, want: ids(1, 2)},
	{name: "id lt beyond int32", filters: []string{`{"column":"id","op":"lt","value":99999999999}`}, want: ids(1, 2, 3, 4, 5, 6)},
	{name: "id eq beyond int64", filters: []string{`{"column":"id","op":"eq","value":99999999999999999999}`}, want: nil},
	{name: "id in", filters: []string{`{"column":"id","op":"in","value":[1,3.0,"4"]}`}, want: ids(1, 3, 4)},
	{name: "id between", filters: []string{`{"column":"id","op":"between","value":[2,4]}`}, want: ids(2, 3, 4)},
	{name: "id neq", filters: []string{`{"column":"id","op":"neq","value":1}`}, want: ids(2, 3, 4, 5, 6)},
	{name: "id like", filters: []string{`{"column":"id","op":"like","value":"1%"}`}, want: ids(1)},
	{name: "mixed case column", filters: []string{`{"column":"mixedcase","op":"gte","value":20}`}, want: ids(2, 3)},
	{name: "mixed case neq excludes NULL", filters: []string{`{"column":"MixedCase","op":"neq","value":0}`}, want: ids(1, 2, 3)},
	{name: "bigint beyond float64", filters: []string{`{"column":"big","op":"eq","value":9007199254740993}`}, want: ids(1)},
	{name: "bigint gt beyond float64", filters: []string{`{"column":"big","op":"gt","value":9007199254740992}`}, want: ids(1)},

	// text: bytewise in Postgres ("C") and DuckDB, case-insensitive in MariaDB
	{name: "name eq", filters: []string{`{"column":"name","op":"eq","value":"Acme"}`}, want: ids(1)},
	{name: "name eq other case", filters: []string{`{"column":"name","op":"eq","value":"acme"}`}, want: nil, per: map[dialect.Dialect][]int64{dialect.MySQL: ids(1)}},
	{name: "name eq empty", filters: []string{`{"column":"name","op":"eq","value":""}`}, want: ids(6)},
	{name: "name eq number keeps text", filters: []string{`{"column":"name","op":"eq","value":100}`}, want: nil},
	{name: "name neq excludes NULL", filters: []string{`{"column":"name","op":"neq","value":""}`}, want: ids(1, 2, 3, 4)},
	{name: "name gt", filters: []string{`{"column":"name","op":"gt","value":"a"}`}, want: ids(2), per: map[dialect.Dialect][]int64{dialect.MySQL: ids(1, 2, 3)}},
	{name: "name gte", filters: []string{`{"column":"name","op":"gte","value":"O'Brien"}`}, want: ids(2, 3), per: map[dialect.Dialect][]int64{dialect.MySQL: ids(3)}},
	{name: "name lt", filters: []string{`{"column":"name","op":"lt","value":"B"}`}, want: ids(1, 4, 6), per: map[dialect.Dialect][]int64{dialect.MySQL: ids(1, 2, 4, 6)}},
	{name: "name lte", filters: []string{`{"column":"name","op":"lte","value":""}`}, want: ids(6)},
	{name: "name between", filters: []string{`{"column":"name","op":"between","value":["A","Z"]}`}, want: ids(1, 3), per: map[dialect.Dialect][]int64{dialect.MySQL: ids(1, 2, 3)}},
	{name: "name in", filters: []string{`{"column":"name","op":"in","value":["Acme","O'Brien","nobody"]}`}, want: ids(1, 3)},
	{name: "name like prefix", filters: []string{`{"column":"name","op":"like","value":"Acme%"}`}, want: ids(1), per: map[dialect.Dialect][]int64{dialect.MySQL: ids(1, 2)}},
	{name: "name like underscore", filters: []string{`{"column":"name","op":"like","value":"O_Brien"}`}, want: ids(3)},
	{name: "name like wildcards literal", filters: []string{`{"column":"name","op":"like","value":"%\\%\\_sure\\\\"}`}, want: ids(4)},
	{name: "name like percent is wildcard", filters: []string{`{"column":"name","op":"like","value":"100%"}`}, want: ids(4)},
	{name: "name like everything excludes NULL", filters: []string{`{"column":"name","op":"like","value":"%"}`}, want: ids(1, 2, 3, 4, 6)},
	{name: "name injection is a value", filters: []string{`{"column":"name","op":"eq","value":"'; DROP TABLE \"Kalla Fixture\"; --"}`}, want: nil},

	// identifiers that need quoting
	{name: "weird eq", filters: []string{`{"column":"Weird \"Col\"","op":"eq","value":"x"}`}, want: ids(1, 3)},
	{name: "weird neq", filters: []string{`{"column":"weird \"col\"","op":"neq","value":"x"}`}, want: ids(2, 6)},
	{name: "weird eq quote", filters: []string{`{"column":"Weird \"Col\"","op":"eq","value":"y\"z"}`}, want: ids(2)},
	{name: "weird in", filters: []string{`{"column":"Weird \"Col\"","op":"in","value":["x",""]}`}, want: ids(1, 3, 6)},
	{name: "backtick eq", filters: []string{"{\"column\":\"Back`tick\",\"op\":\"eq\",\"value\":\"q`r\"}"}, want: ids(2)},
	{name: "backtick like", filters: []string{"{\"column\":\"back`TICK\",\"op\":\"like\",\"value\":\"p\"}"}, want: ids(1, 4)},
	{name: "select eq", filters: []string{`{"column":"select","op":"eq","value":"select"}`}, want: ids(4)},
	{name: "select in", filters: []string{`{"column":"SELECT","op":"in","value":["from","where"]}`}, want: ids(1, 2)},
	{name: "select neq", filters: []string{`{"column":"select","op":"neq","value":"from"}`}, want: ids(2, 4, 6)},

	// date
	{name: "day eq leap", filters: []string{`{"column":"day","op":"eq","value":"2024-02-29"}`}, want: ids(2)},
	{name: "day neq", filters: []string{`{"column":"day","op":"neq","value":"2024-01-31"}`}, want: ids(2, 3, 4, 6)},
	{name: "day gt", filters: []string{`{"column":"day","op":"gt","value":"2024-01-31"}`}, want: ids(2, 4)},
	{name: "day gte", filters: []string{`{"column":"day","op":"gte","value":"2024-01-31"}`}, want: ids(1, 2, 4)},
	{name: "day lt", filters: []string{`{"column":"day","op":"lt","value":"2024-01-01"}`}, want: ids(3)},
	{name: "day lte", filters: []string{`{"column":"day","op":"lte","value":"2024-01-01"}`}, want: ids(3, 6)},
	{name: "day between", filters: []string{`{"column":"day","op":"between","value":["2024-01-01","2024-01-31"]}`}, want: ids(1, 6)},
	{name: "day in", filters: []string{`{"column":"day","op":"in","value":["2023-12-31","2024-03-01"]}`}, want: ids(3, 4)},
	{name: "day like", filters: []string{`{"column":"day","op":"like","value":"2024-0%"}`}, want: ids(1, 2, 4, 6)},

	// timestamp
	{name: "at eq fraction", filters: []string{`{"column":"at","op":"eq","value":"2024-02-29 23:59:59.5"}`}, want: ids(2)},
	{name: "at eq midnight misses microsecond", filters: []string{`{"column":"at","op":"eq","value":"2024-01-01"}`}, want: nil},
	{name: "at gt T separator", filters: []string{`{"column":"at","op":"gt","value":"2024-02-29T23:59:59"}`}, want: ids(2, 4)},
	{name: "at gte date only", filters: []string{`{"column":"at","op":"gte","value":"2024-01-01"}`}, want: ids(1, 2, 4, 6)},
	{name: "at lt microsecond", filters: []string{`{"column":"at","op":"lt","value":"2024-01-01 00:00:00.000001"}`}, want: ids(3)},
	{name: "at lte microsecond", filters: []string{`{"column":"at","op":"lte","value":"2024-01-01 00:00:00.000001"}`}, want: ids(3, 6)},
	{name: "at between", filters: []string{`{"column":"at","op":"between","value":["2024-01-31","2024-01-31 10:00"]}`}, want: ids(1)},
	{name: "at neq", filters: []string{`{"column":"at","op":"neq","value":"2024-01-31 10:00:00"}`}, want: ids(2, 3, 4, 6)},
	{name: "at in", filters: []string{`{"column":"at","op":"in","value":["2023-12-31","2024-03-01T12:00"]}`}, want: ids(3, 4)},
	{name: "at like", filters: []string{`{"column":"at","op":"like","value":"2024-01-31 10:00:00%"}`}, want: ids(1)},

	// timestamp with time zone (MariaDB: TIMESTAMP in the session zone)
	{name: "at_tz eq other offset", only: pgDuck, filters: []string{`{"column":"at_tz","op":"eq","value":"2023-12-31T22:00:00Z"}`}, want: ids(3)},
	{name: "at_tz eq same offset", only: pgDuck, filters: []string{`{"column":"at_tz","op":"eq","value":"2024-01-01 00:00:00+02:00"}`}, want: ids(3)},
	{name: "at_tz lt", only: pgDuck, filters: []string{`{"column":"at_tz","op":"lt","value":"2024-01-01T00:00Z"}`}, want: ids(3)},
	{name: "at_tz gte", only: pgDuck, filters: []string{`{"column":"at_tz","op":"gte","value":"2024-01-31 12:00:00+02"}`}, want: ids(1, 2)},
	{name: "at_tz neq", only: pgDuck, filters: []string{`{"column":"at_tz","op":"neq","value":"2024-01-31 10:00:00Z"}`}, want: ids(2, 3, 6)},
	{name: "mysql timestamp eq", only: myOnly, filters: []string{`{"column":"at_tz","op":"eq","value":"2023-12-31 22:00:00"}`}, want: ids(3)},
	{name: "mysql timestamp lt", only: myOnly, filters: []string{`{"column":"at_tz","op":"lt","value":"2024-01-01"}`}, want: ids(3)},
	{name: "mysql timestamp gte", only: myOnly, filters: []string{`{"column":"at_tz","op":"gte","value":"2024-01-31 10:00"}`}, want: ids(1, 2)},

	// boolean (MariaDB: TINYINT(1))
	{name: "ok eq", filters: []string{`{"column":"ok","op":"eq","value":"true"}`}, want: ids(1, 3)},
	{name: "ok eq number", filters: []string{`{"column":"ok","op":"eq","value":0}`}, want: ids(2, 6)},
	{name: "ok neq excludes NULL", filters: []string{`{"column":"ok","op":"neq","value":"TRUE"}`}, want: ids(2, 6)},
	{name: "ok in", filters: []string{`{"column":"ok","op":"in","value":["t","f"]}`}, want: ids(1, 2, 3, 6)},
	{name: "ok like", filters: []string{`{"column":"ok","op":"like","value":"t%"}`}, want: ids(1, 3), per: map[dialect.Dialect][]int64{dialect.MySQL: nil}},

	// uuid
	{name: "uid eq upper", filters: []string{`{"column":"uid","op":"eq","value":"A0EEBC99-9C0B-4EF8-BB6D-6BB9BD380A02"}`}, want: ids(2)},
	{name: "uid in unhyphenated", filters: []string{`{"column":"uid","op":"in","value":["a0eebc999c0b4ef8bb6d6bb9bd380a01","a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a03"]}`}, want: ids(1, 3)},
	{name: "uid gt", filters: []string{`{"column":"uid","op":"gt","value":"a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a03"}`}, want: ids(4, 6)},
	{name: "uid neq", filters: []string{`{"column":"uid","op":"neq","value":"a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a03"}`}, want: ids(1, 2, 4, 6)},
	{name: "uid like", filters: []string{`{"column":"uid","op":"like","value":"%04"}`}, want: ids(4)},

	// json: compared as JSON values where the server can (whitespace does
	// not matter), as text by like
	{name: "doc eq", filters: []string{`{"column":"doc","op":"eq","value":"{\"a\":1}"}`}, want: ids(1)},
	{name: "doc eq array", filters: []string{`{"column":"doc","op":"eq","value":"[1,2]"}`}, want: ids(3)},
	{name: "doc neq", filters: []string{`{"column":"doc","op":"neq","value":"{\"a\": 1}"}`}, want: ids(2, 3, 4, 6)},
	{name: "doc in", filters: []string{`{"column":"doc","op":"in","value":["{}","{\"b\":\"é\"}"]}`}, want: ids(4, 6)},
	{name: "doc like", filters: []string{`{"column":"doc","op":"like","value":"%\"a\"%"}`}, want: ids(1, 2)},

	// is_null, is_not_null: the only operators that match NULL
	{name: "amount is_null", filters: []string{`{"column":"amount","op":"is_null"}`}, want: ids(5)},
	{name: "amount is_not_null", filters: []string{`{"column":"amount","op":"is_not_null"}`}, want: ids(1, 2, 3, 4, 6)},
	{name: "name is_null with JSON null", filters: []string{`{"column":"Name","op":"is_null","value":null}`}, want: ids(5)},
	{name: "name is_not_null keeps empty text", filters: []string{`{"column":"name","op":"is_not_null"}`}, want: ids(1, 2, 3, 4, 6)},
	{name: "ok is_null", filters: []string{`{"column":"ok","op":"is_null"}`}, want: ids(4, 5)},
	{name: "day is_not_null", filters: []string{`{"column":"day","op":"is_not_null"}`}, want: ids(1, 2, 3, 4, 6)},
	{name: "uid is_null", filters: []string{`{"column":"uid","op":"is_null"}`}, want: ids(5)},
	{name: "doc is_not_null", filters: []string{`{"column":"doc","op":"is_not_null"}`}, want: ids(1, 2, 3, 4, 6)},
	{name: "weird is_null", filters: []string{`{"column":"Weird \"Col\"","op":"is_null"}`}, want: ids(4, 5)},
	{name: "is_null and eq", filters: []string{`{"column":"Weird \"Col\"","op":"is_null"}`, `{"column":"name","op":"like","value":"100%"}`}, want: ids(4)},

	// several filters are ANDed
	{name: "and", filters: []string{`{"column":"amount","op":"gte","value":0}`, `{"column":"name","op":"like","value":"%c%"}`}, want: ids(1, 2)},
	{name: "and three", filters: []string{`{"column":"day","op":"gte","value":"2024-01-01"}`, `{"column":"ok","op":"eq","value":"false"}`, `{"column":"Weird \"Col\"","op":"eq","value":""}`}, want: ids(6)},
}

// TestWhereExecutes runs every case on every available server and binding
// mode, twice: alone (placeholders from 1) and after a placeholder of the
// caller's (from 2), and checks the exact rows.
func TestWhereExecutes(t *testing.T) {
	ctx := context.Background()
	for _, s := range servers(t) {
		t.Run(s.name, func(t *testing.T) {
			cols := setupFixture(t, ctx, s)
			d := s.d
			table := d.QuoteIdent(fixtureTable)
			for _, tc := range execCases {
				if tc.only != nil && !slices.Contains(tc.only, d) {
					continue
				}
				want := tc.want
				if w, ok := tc.per[d]; ok {
					want = w
				}
				t.Run(tc.name, func(t *testing.T) {
					fs := filters(t, tc.filters...)
					where, args, err := d.WhereFor(fixtureTable, fs, cols, 1)
					if err != nil {
						t.Fatalf("Where: %v", err)
					}
					q := "SELECT " + d.QuoteIdent("id") + " FROM " + table + where + " ORDER BY 1"
					got, err := s.q.ints(ctx, q, args...)
					if err != nil {
						t.Fatalf("%s %v: %v", q, args, err)
					}
					if !slices.Equal(got, want) {
						t.Errorf("%s %v\n got ids %v\nwant ids %v", q, args, got, want)
					}

					// The same after one placeholder of the caller's.
					where2, args2, err := d.WhereFor(fixtureTable, fs, cols, 2)
					if err != nil {
						t.Fatalf("Where from 2: %v", err)
					}
					q2 := "SELECT s.id FROM (SELECT * FROM " + table + " WHERE id >= " + d.Placeholder(1) + ") s" + where2 + " ORDER BY 1"
					got2, err := s.q.ints(ctx, q2, append([]any{"2"}, args2...)...)
					if err != nil {
						t.Fatalf("%s: %v", q2, err)
					}
					want2 := slices.DeleteFunc(slices.Clone(want), func(id int64) bool { return id < 2 })
					if !slices.Equal(got2, want2) {
						t.Errorf("%s %v\n got ids %v\nwant ids %v", q2, args2, got2, want2)
					}
				})
			}
			// The injection attempt left the table alone.
			n, err := s.q.ints(ctx, "SELECT count(*) FROM "+table)
			if err != nil || len(n) != 1 || n[0] != int64(len(fixtureRows)) {
				t.Errorf("fixture after the cases: %v rows, %v", n, err)
			}
		})
	}
}

// TestWhereRejectsBeforeQuery shows that values that cannot be compared
// with the column are EINVALID errors from Where, where the server would
// otherwise fail at run time (Postgres, DuckDB) or silently match nothing
// (MariaDB compares "abc" with a number as 0).
func TestWhereRejectsBeforeQuery(t *testing.T) {
	ctx := context.Background()
	for _, s := range servers(t) {
		t.Run(s.name, func(t *testing.T) {
			cols := setupFixture(t, ctx, s)
			for _, f := range []string{
				`{"column":"amount","op":"gte","value":"abc"}`,
				`{"column":"id","op":"eq","value":"1; DROP TABLE x"}`,
				`{"column":"day","op":"eq","value":"2024-02-30"}`,
				`{"column":"uid","op":"eq","value":"not-a-uuid"}`,
				`{"column":"name","op":"like","value":"abc\\"}`,
				`{"column":"nope","op":"eq","value":1}`,
				`{"column":"amount","op":"is_null","value":0}`,
				`{"column":"name","op":"is_not_null","value":["x"]}`,
				`{"column":"nope","op":"is_null"}`,
			} {
				_, _, err := s.d.WhereFor(fixtureTable, filters(t, f), cols, 1)
				if kalla.ErrorCode(err) != kalla.EINVALID {
					t.Errorf("%s: got %v, want an EINVALID error", f, err)
				}
			}
		})
	}
}
