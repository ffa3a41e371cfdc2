package dialect_test

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"

	"github.com/kalla-recon/kalla/internal/dialect"
	"github.com/kalla-recon/kalla/internal/kalla"
)

// filters parses filters from their JSON form, the way recipes and the API
// receive them.
func filters(t testing.TB, js ...string) []kalla.Filter {
	t.Helper()
	out := make([]kalla.Filter, len(js))
	for i, j := range js {
		if err := json.Unmarshal([]byte(j), &out[i]); err != nil {
			t.Fatalf("filter %s: %v", j, err)
		}
	}
	return out
}

// renderCols are one source's columns as each dialect's metadata reports
// them: format_type names for Postgres, COLUMN_TYPE for MySQL, DuckDB types
// as EngineType.
var renderCols = map[dialect.Dialect][]kalla.Column{
	dialect.Postgres: {
		{Name: "id", DataType: "integer"},
		{Name: "Amount", DataType: "numeric(12,2)"},
		{Name: "name", DataType: "text"},
		{Name: "day", DataType: "date"},
		{Name: "at", DataType: "timestamp without time zone"},
		{Name: "at_tz", DataType: "timestamp with time zone"},
		{Name: "ok", DataType: "boolean"},
		{Name: "uid", DataType: "uuid"},
		{Name: "doc", DataType: "json"},
		{Name: "docb", DataType: "jsonb"},
		{Name: "ratio", DataType: "real"},
		{Name: "tags", DataType: "text[]"},
		{Name: `Weird "Col"`, DataType: "text"},
		{Name: "select", DataType: "text"},
	},
	dialect.MySQL: {
		{Name: "id", DataType: "int(11)"},
		{Name: "Amount", DataType: "decimal(12,2)"},
		{Name: "name", DataType: "varchar(40)"},
		{Name: "day", DataType: "date"},
		{Name: "at", DataType: "datetime"},
		{Name: "at_tz", DataType: "timestamp"},
		{Name: "ok", DataType: "tinyint(1)"},
		{Name: "uid", DataType: "uuid"},
		{Name: "doc", DataType: "json"},
		{Name: "docb", DataType: "longtext"},
		{Name: "ratio", DataType: "float"},
		{Name: "tags", DataType: "set('a','b')"},
		{Name: "Weird `Col`", DataType: "varchar(10)"},
		{Name: "select", DataType: "varchar(10)"},
	},
	dialect.DuckDB: {
		{Name: "id", DataType: "integer", EngineType: "INTEGER"},
		{Name: "Amount", DataType: "numeric(12,2)", EngineType: "DECIMAL(12,2)"},
		{Name: "name", DataType: "text", EngineType: "VARCHAR"},
		{Name: "day", DataType: "date", EngineType: "DATE"},
		{Name: "at", DataType: "timestamp", EngineType: "TIMESTAMP"},
		{Name: "at_tz", DataType: "timestamptz", EngineType: "TIMESTAMP WITH TIME ZONE"},
		{Name: "ok", DataType: "boolean", EngineType: "BOOLEAN"},
		{Name: "uid", DataType: "uuid", EngineType: "UUID"},
		{Name: "doc", DataType: "json", EngineType: "JSON"},
		{Name: "docb", DataType: "jsonb", EngineType: "JSON"},
		{Name: "ratio", DataType: "real", EngineType: "FLOAT"},
		{Name: "tags", DataType: "text[]", EngineType: "VARCHAR[]"},
		{Name: `Weird "Col"`, DataType: "text", EngineType: "VARCHAR"},
		{Name: "select", DataType: "text", EngineType: "VARCHAR"},
	},
}

type renderCase struct {
	name     string
	filters  []string
	argStart int
	sql      string
	args     []any
}

func TestWhereRender(t *testing.T) {
	tests := map[dialect.Dialect][]renderCase{
		dialect.Postgres: {
			{name: "no filters", sql: "", args: nil},
			{name: "eq integer", filters: []string{`{"column":"id","op":"eq","value":7}`},
				sql: ` WHERE ("id" = CAST($1 AS bigint))`, args: []any{"7"}},
			{name: "neq integer from string", filters: []string{`{"column":"id","op":"neq","value":"7"}`},
				sql: ` WHERE ("id" <> CAST($1 AS bigint))`, args: []any{"7"}},
			{name: "gt fractional on integer", filters: []string{`{"column":"id","op":"gt","value":1.5}`},
				sql: ` WHERE ("id" > CAST($1 AS numeric))`, args: []any{"1.5"}},
			{name: "lt integer beyond int64", filters: []string{`{"column":"id","op":"lt","value":99999999999999999999}`},
				sql: ` WHERE ("id" < CAST($1 AS numeric))`, args: []any{"99999999999999999999"}},
			{name: "gte decimal keeps digits", filters: []string{`{"column":"amount","op":"gte","value":100.10}`},
				sql: ` WHERE ("Amount" >= CAST($1 AS numeric))`, args: []any{"100.1"}},
			{name: "lte exponent", filters: []string{`{"column":"Amount","op":"lte","value":1.5e3}`},
				sql: ` WHERE ("Amount" <= CAST($1 AS numeric))`, args: []any{"1500"}},
			{name: "between", filters: []string{`{"column":"Amount","op":"between","value":[10,"20.50"]}`},
				sql: ` WHERE ("Amount" BETWEEN CAST($1 AS numeric) AND CAST($2 AS numeric))`, args: []any{"10", "20.5"}},
			{name: "in", filters: []string{`{"column":"id","op":"in","value":[1,2,3]}`},
				sql: ` WHERE ("id" IN (CAST($1 AS bigint), CAST($2 AS bigint), CAST($3 AS bigint)))`, args: []any{"1", "2", "3"}},
			{name: "like text", filters: []string{`{"column":"name","op":"like","value":"Acme%"}`},
				sql: ` WHERE ("name" LIKE $1)`, args: []any{"Acme%"}},
			{name: "like non-text", filters: []string{`{"column":"Amount","op":"like","value":"100.%"}`},
				sql: ` WHERE (CAST("Amount" AS text) LIKE $1)`, args: []any{"100.%"}},
			{name: "eq text keeps number text", filters: []string{`{"column":"name","op":"eq","value":100.10}`},
				sql: ` WHERE ("name" = $1)`, args: []any{"100.10"}},
			{name: "date", filters: []string{`{"column":"day","op":"gte","value":"2024-01-31"}`},
				sql: ` WHERE ("day" >= CAST($1 AS date))`, args: []any{"2024-01-31"}},
			{name: "timestamp", filters: []string{`{"column":"at","op":"lt","value":"2024-01-31T10:00"}`},
				sql: ` WHERE ("at" < CAST($1 AS timestamp))`, args: []any{"2024-01-31 10:00:00"}},
			{name: "timestamptz", filters: []string{`{"column":"at_tz","op":"lt","value":"2024-01-31T10:00:00.250Z"}`},
				sql: ` WHERE ("at_tz" < CAST($1 AS timestamptz))`, args: []any{"2024-01-31 10:00:00.25+00:00"}},
			{name: "bool", filters: []string{`{"column":"ok","op":"eq","value":"TRUE"}`},
				sql: ` WHERE ("ok" = CAST($1 AS boolean))`, args: []any{"true"}},
			{name: "bool from number", filters: []string{`{"column":"ok","op":"eq","value":0}`},
				sql: ` WHERE ("ok" = CAST($1 AS boolean))`, args: []any{"false"}},
			{name: "uuid", filters: []string{`{"column":"uid","op":"eq","value":"A0EEBC999C0B4EF8BB6D6BB9BD380A11"}`},
				sql: ` WHERE ("uid" = CAST($1 AS uuid))`, args: []any{"a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11"}},
			{name: "json", filters: []string{`{"column":"doc","op":"eq","value":"{\"a\": 1}"}`},
				sql: ` WHERE (CAST("doc" AS jsonb) = CAST($1 AS jsonb))`, args: []any{`{"a": 1}`}},
			{name: "jsonb", filters: []string{`{"column":"docb","op":"neq","value":"[1]"}`},
				sql: ` WHERE ("docb" <> CAST($1 AS jsonb))`, args: []any{`[1]`}},
			{name: "real uses inference", filters: []string{`{"column":"ratio","op":"eq","value":0.10}`},
				sql: ` WHERE ("ratio" = $1)`, args: []any{"0.1"}},
			{name: "unknown type bound as text", filters: []string{`{"column":"tags","op":"eq","value":"{a,b}"}`},
				sql: ` WHERE ("tags" = $1)`, args: []any{"{a,b}"}},
			{name: "quoted identifiers", filters: []string{`{"column":"weird \"col\"","op":"eq","value":"x"}`, `{"column":"SELECT","op":"neq","value":"y"}`},
				sql: ` WHERE ("Weird ""Col""" = $1) AND ("select" <> $2)`, args: []any{"x", "y"}},
			{name: "argStart", argStart: 4, filters: []string{`{"column":"id","op":"between","value":[1,2]}`, `{"column":"name","op":"in","value":["a"]}`},
				sql: ` WHERE ("id" BETWEEN CAST($4 AS bigint) AND CAST($5 AS bigint)) AND ("name" IN ($6))`, args: []any{"1", "2", "a"}},
			{name: "injection text stays a value", filters: []string{`{"column":"name","op":"eq","value":"'; DROP TABLE t; --"}`},
				sql: ` WHERE ("name" = $1)`, args: []any{"'; DROP TABLE t; --"}},
		},
		dialect.MySQL: {
			{name: "no filters", sql: "", args: nil},
			{name: "eq integer", filters: []string{`{"column":"id","op":"eq","value":7}`},
				sql: " WHERE (`id` = CAST(? AS DECIMAL(1,0)))", args: []any{"7"}},
			{name: "neq negative", filters: []string{`{"column":"id","op":"neq","value":-70}`},
				sql: " WHERE (`id` <> CAST(? AS DECIMAL(2,0)))", args: []any{"-70"}},
			{name: "gt fractional", filters: []string{`{"column":"id","op":"gt","value":1.5}`},
				sql: " WHERE (`id` > CAST(? AS DECIMAL(2,1)))", args: []any{"1.5"}},
			{name: "gte decimal", filters: []string{`{"column":"amount","op":"gte","value":100.10}`},
				sql: " WHERE (`Amount` >= CAST(? AS DECIMAL(4,1)))", args: []any{"100.1"}},
			{name: "lt small fraction", filters: []string{`{"column":"Amount","op":"lt","value":0.005}`},
				sql: " WHERE (`Amount` < CAST(? AS DECIMAL(3,3)))", args: []any{"0.005"}},
			{name: "lte zero", filters: []string{`{"column":"Amount","op":"lte","value":-0.0}`},
				sql: " WHERE (`Amount` <= CAST(? AS DECIMAL(1,0)))", args: []any{"0"}},
			{name: "between", filters: []string{`{"column":"Amount","op":"between","value":[10,"20.50"]}`},
				sql: " WHERE (`Amount` BETWEEN CAST(? AS DECIMAL(2,0)) AND CAST(? AS DECIMAL(3,1)))", args: []any{"10", "20.5"}},
			{name: "in", filters: []string{`{"column":"id","op":"in","value":[1,22]}`},
				sql: " WHERE (`id` IN (CAST(? AS DECIMAL(1,0)), CAST(? AS DECIMAL(2,0))))", args: []any{"1", "22"}},
			{name: "like", filters: []string{`{"column":"name","op":"like","value":"Acme\\_%"}`},
				sql: " WHERE (`name` LIKE ? ESCAPE CHAR(92))", args: []any{`Acme\_%`}},
			{name: "like non-text", filters: []string{`{"column":"Amount","op":"like","value":"100.%"}`},
				sql: " WHERE (`Amount` LIKE ? ESCAPE CHAR(92))", args: []any{"100.%"}},
			{name: "date", filters: []string{`{"column":"day","op":"gte","value":"2024-01-31"}`},
				sql: " WHERE (`day` >= CAST(? AS DATE))", args: []any{"2024-01-31"}},
			{name: "datetime", filters: []string{`{"column":"at","op":"lt","value":"2024-01-31 10:00:05.5"}`},
				sql: " WHERE (`at` < CAST(? AS DATETIME(6)))", args: []any{"2024-01-31 10:00:05.5"}},
			{name: "timestamp", filters: []string{`{"column":"at_tz","op":"gt","value":"2024-01-31"}`},
				sql: " WHERE (`at_tz` > CAST(? AS DATETIME(6)))", args: []any{"2024-01-31 00:00:00"}},
			{name: "boolean is tinyint(1)", filters: []string{`{"column":"ok","op":"eq","value":"true"}`},
				sql: " WHERE (`ok` = CAST(? AS DECIMAL(1,0)))", args: []any{"1"}},
			{name: "uuid", filters: []string{`{"column":"uid","op":"eq","value":"A0EEBC99-9C0B-4EF8-BB6D-6BB9BD380A11"}`},
				sql: " WHERE (`uid` = ?)", args: []any{"a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11"}},
			{name: "json", filters: []string{`{"column":"doc","op":"eq","value":"{\"a\":1}"}`},
				sql: " WHERE (JSON_EXTRACT(`doc`, '$') = JSON_EXTRACT(?, '$'))", args: []any{`{"a":1}`}},
			{name: "MariaDB json is longtext", filters: []string{`{"column":"docb","op":"eq","value":"{\"a\":1}"}`},
				sql: " WHERE (`docb` = ?)", args: []any{`{"a":1}`}},
			{name: "float", filters: []string{`{"column":"ratio","op":"gt","value":1e-2}`},
				sql: " WHERE (`ratio` > ?)", args: []any{"0.01"}},
			{name: "quoted identifiers", filters: []string{"{\"column\":\"Weird `Col`\",\"op\":\"eq\",\"value\":\"x\"}", `{"column":"select","op":"gt","value":"y"}`},
				sql: " WHERE (`Weird ``Col``` = ?) AND (`select` > ?)", args: []any{"x", "y"}},
			{name: "argStart does not number", argStart: 3, filters: []string{`{"column":"name","op":"in","value":["a","b"]}`},
				sql: " WHERE (`name` IN (?, ?))", args: []any{"a", "b"}},
			{name: "backslash and quote stay values", filters: []string{`{"column":"name","op":"eq","value":"\\'; DROP TABLE t; --"}`},
				sql: " WHERE (`name` = ?)", args: []any{`\'; DROP TABLE t; --`}},
		},
		dialect.DuckDB: {
			{name: "no filters", sql: "", args: nil},
			{name: "eq integer", filters: []string{`{"column":"id","op":"eq","value":7}`},
				sql: ` WHERE ("id" = CAST($1 AS BIGINT))`, args: []any{"7"}},
			{name: "neq huge integer", filters: []string{`{"column":"id","op":"neq","value":99999999999999999999}`},
				sql: ` WHERE ("id" <> CAST($1 AS HUGEINT))`, args: []any{"99999999999999999999"}},
			{name: "gt fractional on integer", filters: []string{`{"column":"id","op":"gt","value":1.5}`},
				sql: ` WHERE ("id" > CAST($1 AS DECIMAL(2,1)))`, args: []any{"1.5"}},
			{name: "gte decimal finer than column", filters: []string{`{"column":"Amount","op":"gte","value":100.005}`},
				sql: ` WHERE ("Amount" >= CAST($1 AS DECIMAL(6,3)))`, args: []any{"100.005"}},
			{name: "lt", filters: []string{`{"column":"Amount","op":"lt","value":"12"}`},
				sql: ` WHERE ("Amount" < CAST($1 AS DECIMAL(2,0)))`, args: []any{"12"}},
			{name: "lte", filters: []string{`{"column":"Amount","op":"lte","value":-3.25}`},
				sql: ` WHERE ("Amount" <= CAST($1 AS DECIMAL(3,2)))`, args: []any{"-3.25"}},
			{name: "between", filters: []string{`{"column":"Amount","op":"between","value":[10,20.5]}`},
				sql: ` WHERE ("Amount" BETWEEN CAST($1 AS DECIMAL(2,0)) AND CAST($2 AS DECIMAL(3,1)))`, args: []any{"10", "20.5"}},
			{name: "in text", filters: []string{`{"column":"name","op":"in","value":["a",1]}`},
				sql: ` WHERE ("name" IN ($1, $2))`, args: []any{"a", "1"}},
			{name: "like", filters: []string{`{"column":"name","op":"like","value":"a\\%%"}`},
				sql: ` WHERE ("name" LIKE $1 ESCAPE '\')`, args: []any{`a\%%`}},
			{name: "like non-text", filters: []string{`{"column":"day","op":"like","value":"2024-%"}`},
				sql: ` WHERE (CAST("day" AS VARCHAR) LIKE $1 ESCAPE '\')`, args: []any{"2024-%"}},
			{name: "date", filters: []string{`{"column":"day","op":"eq","value":"2024-02-29"}`},
				sql: ` WHERE ("day" = CAST($1 AS DATE))`, args: []any{"2024-02-29"}},
			{name: "timestamp", filters: []string{`{"column":"at","op":"gte","value":"2024-01-31 10:00:00.000001"}`},
				sql: ` WHERE ("at" >= CAST($1 AS TIMESTAMP))`, args: []any{"2024-01-31 10:00:00.000001"}},
			{name: "timestamptz", filters: []string{`{"column":"at_tz","op":"gte","value":"2024-01-31 12:00+0200"}`},
				sql: ` WHERE ("at_tz" >= CAST($1 AS TIMESTAMPTZ))`, args: []any{"2024-01-31 12:00:00+02:00"}},
			{name: "bool", filters: []string{`{"column":"ok","op":"neq","value":"f"}`},
				sql: ` WHERE ("ok" <> CAST($1 AS BOOLEAN))`, args: []any{"false"}},
			{name: "uuid", filters: []string{`{"column":"uid","op":"in","value":["a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11"]}`},
				sql: ` WHERE ("uid" IN (CAST($1 AS UUID)))`, args: []any{"a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11"}},
			{name: "json", filters: []string{`{"column":"doc","op":"eq","value":"{\"a\": 1}"}`},
				sql: ` WHERE (json("doc") = json($1))`, args: []any{`{"a": 1}`}},
			{name: "float", filters: []string{`{"column":"ratio","op":"eq","value":0.1}`},
				sql: ` WHERE ("ratio" = $1)`, args: []any{"0.1"}},
			{name: "list bound as text", filters: []string{`{"column":"tags","op":"eq","value":"[a, b]"}`},
				sql: ` WHERE ("tags" = $1)`, args: []any{"[a, b]"}},
			{name: "quoted identifiers", filters: []string{`{"column":"Weird \"Col\"","op":"eq","value":"x"}`, `{"column":"select","op":"lte","value":"y"}`},
				sql: ` WHERE ("Weird ""Col""" = $1) AND ("select" <= $2)`, args: []any{"x", "y"}},
			{name: "argStart", argStart: 2, filters: []string{`{"column":"id","op":"in","value":[1,2.5]}`},
				sql: ` WHERE ("id" IN (CAST($2 AS BIGINT), CAST($3 AS DECIMAL(2,1))))`, args: []any{"1", "2.5"}},
		},
	}
	for d, cases := range tests {
		for _, tc := range cases {
			t.Run(d.String()+"/"+tc.name, func(t *testing.T) {
				start := tc.argStart
				if start == 0 {
					start = 1
				}
				sql, args, err := d.Where(filters(t, tc.filters...), renderCols[d], start)
				if err != nil {
					t.Fatalf("Where: %v", err)
				}
				if sql != tc.sql {
					t.Errorf("sql:\n got %s\nwant %s", sql, tc.sql)
				}
				if !reflect.DeepEqual(args, tc.args) {
					t.Errorf("args: got %#v, want %#v", args, tc.args)
				}
			})
		}
	}
}

// TestWhereRenderEveryOp checks that every operator kalla knows renders in
// every dialect, so a new operator cannot be added to kalla without this
// package learning it.
func TestWhereRenderEveryOp(t *testing.T) {
	for _, d := range []dialect.Dialect{dialect.Postgres, dialect.MySQL, dialect.DuckDB} {
		for _, op := range kalla.Ops {
			value := `"x"`
			switch op {
			case kalla.OpBetween:
				value = `["a","b"]`
			case kalla.OpIn:
				value = `["a","b","c"]`
			case kalla.OpIsNull, kalla.OpIsNotNull:
				value = `null`
			}
			f := filters(t, `{"column":"name","op":"`+string(op)+`","value":`+value+`}`)
			sql, args, err := d.Where(f, renderCols[d], 1)
			if err != nil {
				t.Errorf("%s %s: %v", d, op, err)
				continue
			}
			if !strings.HasPrefix(sql, " WHERE (") || (len(args) == 0) == op.TakesValue() {
				t.Errorf("%s %s: got %q %v", d, op, sql, args)
			}
		}
	}
}

func TestWhereErrors(t *testing.T) {
	cols := renderCols[dialect.Postgres]
	tests := []struct {
		name    string
		d       dialect.Dialect
		filter  string
		raw     *kalla.Filter // instead of filter, for what JSON cannot carry
		cols    []kalla.Column
		wantMsg []string // substrings of the message
	}{
		{name: "unknown column", filter: `{"column":"nope","op":"eq","value":1}`,
			wantMsg: []string{`"nope"`, "no column", `{"column":"nope","op":"eq","value":1}`}},
		{name: "bad op", filter: `{"column":"id","op":"regex","value":1}`, wantMsg: []string{`unknown op "regex"`}},
		{name: "between needs two", filter: `{"column":"id","op":"between","value":[1]}`, wantMsg: []string{"exactly two"}},
		{name: "scalar op with array", filter: `{"column":"id","op":"eq","value":[1]}`, wantMsg: []string{"exactly one value"}},
		{name: "not a number", filter: `{"column":"Amount","op":"gte","value":"abc"}`,
			wantMsg: []string{`{"column":"Amount","op":"gte","value":"abc"}`, `column "Amount" is numeric(12,2)`, `"abc" is not a number`}},
		{name: "not a number in list", filter: `{"column":"id","op":"in","value":[1,"2x"]}`, wantMsg: []string{`column "id" is integer`, `"2x" is not a number`}},
		{name: "NaN", filter: `{"column":"Amount","op":"eq","value":"NaN"}`, wantMsg: []string{"is not a number"}},
		{name: "huge exponent", filter: `{"column":"Amount","op":"eq","value":1e999999999}`, wantMsg: []string{"more than 1000 digits"}},
		{name: "mysql too many decimals", d: dialect.MySQL, cols: renderCols[dialect.MySQL],
			filter: `{"column":"Amount","op":"eq","value":0.0000000000000000000000000000001}`, wantMsg: []string{"MySQL's DECIMAL"}},
		{name: "duckdb too many digits", d: dialect.DuckDB, cols: renderCols[dialect.DuckDB],
			filter: `{"column":"Amount","op":"eq","value":1234567890123456789012345678901234567.89}`, wantMsg: []string{"DuckDB's DECIMAL"}},
		{name: "bad date", filter: `{"column":"day","op":"eq","value":"2023-02-29"}`, wantMsg: []string{`column "day" is date`, "not a calendar date"}},
		{name: "date with time", filter: `{"column":"day","op":"eq","value":"2024-01-31 10:00"}`, wantMsg: []string{"YYYY-MM-DD"}},
		{name: "number for date", filter: `{"column":"day","op":"eq","value":20240131}`, wantMsg: []string{"YYYY-MM-DD"}},
		{name: "offset on timestamp", filter: `{"column":"at","op":"eq","value":"2024-01-31 10:00+02"}`, wantMsg: []string{"without time zone"}},
		{name: "nanoseconds", filter: `{"column":"at","op":"eq","value":"2024-01-31 10:00:00.1234567"}`, wantMsg: []string{"6 fractional digits"}},
		{name: "hour 24", filter: `{"column":"at_tz","op":"eq","value":"2024-01-31 24:00Z"}`, wantMsg: []string{"out of range"}},
		{name: "bad bool", filter: `{"column":"ok","op":"eq","value":"maybe"}`, wantMsg: []string{"not a boolean"}},
		{name: "mysql bool", d: dialect.MySQL, cols: renderCols[dialect.MySQL], filter: `{"column":"ok","op":"eq","value":"maybe"}`,
			wantMsg: []string{"tinyint(1)", "not a number"}},
		{name: "bad uuid", filter: `{"column":"uid","op":"eq","value":"xyz"}`, wantMsg: []string{"not a UUID"}},
		{name: "bad json", filter: `{"column":"doc","op":"eq","value":"{a:1}"}`, wantMsg: []string{"not valid JSON"}},
		{name: "like trailing escape", filter: `{"column":"name","op":"like","value":"100%\\"}`, wantMsg: []string{`ends with the escape character`}},
		{name: "like number", filter: `{"column":"name","op":"like","value":1}`, wantMsg: []string{"string pattern"}},
		{name: "is_null with a value", filter: `{"column":"name","op":"is_null","value":"x"}`, wantMsg: []string{`operator "is_null" takes no value`, "a single value"}},
		{name: "is_not_null with an empty array", filter: `{"column":"name","op":"is_not_null","value":[]}`, wantMsg: []string{`operator "is_not_null" takes no value`, "an array of 0"}},
		{name: "postgres NUL", filter: `{"column":"name","op":"eq","value":"a\u0000b"}`, wantMsg: []string{"NUL"}},
		{name: "invalid utf-8", raw: &kalla.Filter{Column: "name", Op: kalla.OpEq, Values: []kalla.Scalar{{Text: "a\xffb"}}}, wantMsg: []string{"UTF-8"}},
		{name: "number marked but not one", raw: &kalla.Filter{Column: "Amount", Op: kalla.OpEq, Values: []kalla.Scalar{{Text: "abc", IsNumber: true}}},
			wantMsg: []string{`column "Amount"`, `{column "Amount", op "eq"`, `"abc" is not a number`}},
		{name: "invalid utf-8 pattern", d: dialect.DuckDB, cols: renderCols[dialect.DuckDB],
			raw: &kalla.Filter{Column: "name", Op: kalla.OpLike, Values: []kalla.Scalar{{Text: "a\xff%"}}}, wantMsg: []string{"UTF-8"}},
		{name: "NUL in real column name", cols: []kalla.Column{{Name: "a\x00b", DataType: "text"}},
			filter: `{"column":"a\u0000b","op":"eq","value":"x"}`, wantMsg: []string{"cannot be used in SQL"}},
		{name: "ambiguous case-insensitive column", cols: []kalla.Column{{Name: "Ab", DataType: "text"}, {Name: "aB", DataType: "text"}},
			filter: `{"column":"ab","op":"eq","value":"x"}`, wantMsg: []string{"no column"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			d, c := tc.d, tc.cols
			if d == 0 {
				d = dialect.Postgres
			}
			if c == nil {
				c = cols
			}
			var f kalla.Filter
			if tc.raw != nil {
				f = *tc.raw
			} else if err := json.Unmarshal([]byte(tc.filter), &f); err != nil {
				t.Fatalf("unmarshal: %v", err)
			}
			sql, args, err := d.WhereFor("orders", []kalla.Filter{f}, c, 1)
			if err == nil {
				t.Fatalf("want error, got %q %v", sql, args)
			}
			if code := kalla.ErrorCode(err); code != kalla.EINVALID {
				t.Errorf("code %q, want %q (%v)", code, kalla.EINVALID, err)
			}
			for _, s := range tc.wantMsg {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("message %q does not contain %q", err.Error(), s)
				}
			}
			if sql != "" || args != nil {
				t.Errorf("error with output %q %v", sql, args)
			}
		})
	}
}

func TestWhereTooManyValues(t *testing.T) {
	f := kalla.Filter{Column: "name", Op: kalla.OpIn, IsArray: true}
	for range 65530 {
		f.Values = append(f.Values, kalla.Scalar{Text: "v"})
	}
	for d, wantErr := range map[dialect.Dialect]bool{dialect.Postgres: true, dialect.MySQL: true, dialect.DuckDB: false} {
		if _, args, err := d.Where([]kalla.Filter{f}, renderCols[d], 1); err != nil || len(args) != 65530 {
			t.Errorf("%s: 65530 values: %d args, %v", d, len(args), err)
		}
		_, _, err := d.Where([]kalla.Filter{f}, renderCols[d], 7)
		if wantErr && kalla.ErrorCode(err) != kalla.EINVALID {
			t.Errorf("%s: 65530 values from $7: got %v, want EINVALID", d, err)
		}
		if !wantErr && err != nil {
			t.Errorf("%s: %v", d, err)
		}
	}
}

func TestWhereInternalErrors(t *testing.T) {
	f := filters(t, `{"column":"id","op":"eq","value":1}`)
	if _, _, err := dialect.Dialect(0).Where(f, renderCols[dialect.Postgres], 1); kalla.ErrorCode(err) != kalla.EINTERNAL {
		t.Errorf("zero dialect: %v", err)
	}
	if _, _, err := dialect.Postgres.Where(f, renderCols[dialect.Postgres], 0); kalla.ErrorCode(err) != kalla.EINTERNAL {
		t.Errorf("argStart 0: %v", err)
	}
}

func TestQuoteIdent(t *testing.T) {
	tests := []struct {
		in            string
		pg, my, duckb string
	}{
		{"a", `"a"`, "`a`", `"a"`},
		{"", `""`, "``", `""`},
		{`Weird "Col"`, `"Weird ""Col"""`, "`Weird \"Col\"`", `"Weird ""Col"""`},
		{"a`b", "\"a`b\"", "`a``b`", "\"a`b\""},
		{`a\`, `"a\"`, "`a\\`", `"a\"`},
		{"select", `"select"`, "`select`", `"select"`},
		{"x\"; DROP TABLE t; --", `"x""; DROP TABLE t; --"`, "`x\"; DROP TABLE t; --`", `"x""; DROP TABLE t; --"`},
		{"a\x00b", `"ab"`, "`ab`", `"ab"`},
		{"été 名", `"été 名"`, "`été 名`", `"été 名"`},
	}
	for _, tc := range tests {
		for d, want := range map[dialect.Dialect]string{dialect.Postgres: tc.pg, dialect.MySQL: tc.my, dialect.DuckDB: tc.duckb} {
			if got := d.QuoteIdent(tc.in); got != want {
				t.Errorf("%s.QuoteIdent(%q) = %s, want %s", d, tc.in, got, want)
			}
		}
	}
}

func TestQuoteQualified(t *testing.T) {
	if got, want := dialect.Postgres.QuoteQualified("public", `my"table`), `"public"."my""table"`; got != want {
		t.Errorf("got %s, want %s", got, want)
	}
	if got, want := dialect.MySQL.QuoteQualified("db", "t.x"), "`db`.`t.x`"; got != want {
		t.Errorf("got %s, want %s", got, want)
	}
	if got, want := dialect.DuckDB.QuoteQualified("", "t"), `"t"`; got != want {
		t.Errorf("got %s, want %s", got, want)
	}
	if got := dialect.DuckDB.QuoteQualified(); got != "" {
		t.Errorf("no parts: got %q", got)
	}
}

func TestPlaceholder(t *testing.T) {
	for d, want := range map[dialect.Dialect][2]string{
		dialect.Postgres: {"$1", "$12"},
		dialect.MySQL:    {"?", "?"},
		dialect.DuckDB:   {"$1", "$12"},
	} {
		if got := [2]string{d.Placeholder(1), d.Placeholder(12)}; got != want {
			t.Errorf("%s: got %v, want %v", d, got, want)
		}
	}
	defer func() {
		if recover() == nil {
			t.Error("Placeholder(0) did not panic")
		}
	}()
	dialect.Postgres.Placeholder(0)
}

func TestParseDialect(t *testing.T) {
	for in, want := range map[string]dialect.Dialect{
		"postgres": dialect.Postgres, "PostgreSQL": dialect.Postgres, "mysql": dialect.MySQL,
		"mariadb": dialect.MySQL, "duckdb": dialect.DuckDB,
	} {
		got, err := dialect.ParseDialect(in)
		if err != nil || got != want {
			t.Errorf("ParseDialect(%q) = %v, %v", in, got, err)
		}
		if got.String() != map[dialect.Dialect]string{dialect.Postgres: "postgres", dialect.MySQL: "mysql", dialect.DuckDB: "duckdb"}[want] {
			t.Errorf("String: %s", got)
		}
	}
	if _, err := dialect.ParseDialect("oracle"); kalla.ErrorCode(err) != kalla.EINVALID {
		t.Errorf("oracle: %v", err)
	}
	if s := dialect.Dialect(0).String(); s != "Dialect(0)" {
		t.Errorf("zero: %s", s)
	}
	defer func() {
		if recover() == nil {
			t.Error("QuoteIdent on the zero Dialect did not panic")
		}
	}()
	dialect.Dialect(0).QuoteIdent("x")
}

func TestQuoteString(t *testing.T) {
	cases := []struct {
		d       dialect.Dialect
		in, out string
	}{
		{dialect.DuckDB, "plain", "'plain'"},
		{dialect.DuckDB, "O'Brien's", "'O''Brien''s'"},
		{dialect.DuckDB, `C:\data\x.csv`, `'C:\data\x.csv'`},
		{dialect.Postgres, "it's", "'it''s'"},
		{dialect.MySQL, `a\'b`, `'a\\''b'`},
	}
	for _, c := range cases {
		if got := c.d.QuoteString(c.in); got != c.out {
			t.Errorf("%s.QuoteString(%q) = %s, want %s", c.d, c.in, got, c.out)
		}
	}
}

// TestWhereErrorQuotesAnExcerpt: an error about a huge filter quotes a
// bounded excerpt of it (a 60,000-value "in" once made a 349,072-character
// message), and says how much it left out.
func TestWhereErrorQuotesAnExcerpt(t *testing.T) {
	f := kalla.Filter{Column: "id", Op: kalla.OpIn, IsArray: true}
	for i := range 60000 {
		f.Values = append(f.Values, kalla.Scalar{Text: strings.Repeat("9", i%7+1), IsNumber: true})
	}
	f.Values[59999] = kalla.Scalar{Text: "not a number " + strings.Repeat("x", 100000)}
	_, _, err := dialect.Postgres.Where([]kalla.Filter{f}, renderCols[dialect.Postgres], 1)
	if kalla.ErrorCode(err) != kalla.EINVALID {
		t.Fatalf("got %v, want EINVALID", err)
	}
	msg := err.Error()
	if len(msg) > 2000 || !strings.Contains(msg, "characters cut") {
		t.Errorf("message of %d characters: %.300s", len(msg), msg)
	}
	t.Logf("%s", msg)
}
