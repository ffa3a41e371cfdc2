package postgres_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/url"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/kalla-recon/kalla/internal/connector"
	"github.com/kalla-recon/kalla/internal/connector/conformance"
	"github.com/kalla-recon/kalla/internal/dbpool"
	"github.com/kalla-recon/kalla/internal/dialect"
	"github.com/kalla-recon/kalla/internal/engine"
	"github.com/kalla-recon/kalla/internal/kalla"
	"github.com/kalla-recon/kalla/internal/postgres"
	"github.com/kalla-recon/kalla/internal/testenv"
)

func testCtx(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

func newPools(t testing.TB, opts dbpool.Options) *dbpool.Cache {
	c := dbpool.New(opts)
	t.Cleanup(func() { c.Close() })
	return c
}

// withTable returns uri with ?table= set to table.
func withTable(t testing.TB, uri, table string) string {
	t.Helper()
	u, err := url.Parse(uri)
	if err != nil {
		t.Fatal(err)
	}
	q := u.Query()
	q.Set("table", table)
	u.RawQuery = q.Encode()
	return u.String()
}

// run executes statements on the database at uri.
func run(t testing.TB, uri string, stmts ...string) {
	t.Helper()
	ctx := testCtx(t)
	conn, err := pgx.Connect(ctx, uri)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	for _, s := range stmts {
		if _, err := conn.Exec(ctx, s); err != nil {
			t.Fatalf("%s: %v", s, err)
		}
	}
}

func open(t testing.TB, pools *dbpool.Cache, uri string) *postgres.Source {
	t.Helper()
	src, err := postgres.Open(testCtx(t), uri, postgres.Options{Pools: pools})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { src.Close() })
	return src
}

// createFixture creates the conformance fixture as table name in the
// database at uri.
func createFixture(t testing.TB, uri, name string, fx conformance.Fixture) {
	t.Helper()
	ctx := testCtx(t)
	conn, err := pgx.Connect(ctx, uri)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	defs := make([]string, len(fx.Columns))
	cols := make([]string, len(fx.Columns))
	ph := make([]string, len(fx.Columns))
	for i, c := range fx.Columns {
		typ := map[conformance.Type]string{conformance.Int: "bigint", conformance.Text: "text", conformance.Money: "numeric(12,2)", conformance.Date: "date"}[c.Type]
		if !c.Nullable {
			typ += " NOT NULL"
		}
		cols[i] = pgx.Identifier{c.Name}.Sanitize()
		defs[i] = cols[i] + " " + typ
		ph[i] = "$" + string(rune('1'+i))
	}
	table := pgx.Identifier{name}.Sanitize()
	if _, err := conn.Exec(ctx, "CREATE TABLE "+table+" ("+strings.Join(defs, ", ")+")"); err != nil {
		t.Fatal(err)
	}
	for i := range fx.Rows {
		if _, err := conn.Exec(ctx, "INSERT INTO "+table+" ("+strings.Join(cols, ", ")+") VALUES ("+strings.Join(ph, ", ")+")", fx.Args(i)...); err != nil {
			t.Fatal(err)
		}
	}
}

func TestConformance(t *testing.T) {
	pools := newPools(t, dbpool.Options{})
	conformance.Run(t, func(t *testing.T, fx conformance.Fixture) connector.Source {
		uri := testenv.Postgres(t)
		createFixture(t, uri, fx.Table, fx)
		src, err := postgres.Open(testCtx(t), withTable(t, uri, fx.Table), postgres.Options{Pools: pools})
		if err != nil {
			t.Fatalf("Open: %v", err)
		}
		return src
	})
}

// stagedText stages src and returns each row as DuckDB text, ordered by
// the first column, NULL as "NULL", plus the staged column types.
func stagedText(t *testing.T, src connector.Source, filters []kalla.Filter) (rows [][]string, types []string) {
	t.Helper()
	ctx := testCtx(t)
	e, err := engine.Open(ctx, engine.Options{Threads: 2})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	sink := e.Sink("t")
	if _, err := src.Stage(ctx, filters, sink); err != nil {
		t.Fatalf("Stage: %v", err)
	}
	var raw string
	q := `SELECT CAST(to_json(list({'name': column_name, 'type': column_type})) AS VARCHAR) FROM (DESCRIBE ` + sink.Table() + `)`
	if err := sink.QueryRowContext(ctx, q).Scan(&raw); err != nil {
		t.Fatal(err)
	}
	var desc []struct{ Name, Type string }
	if err := json.Unmarshal([]byte(raw), &desc); err != nil {
		t.Fatal(err)
	}
	parts := make([]string, len(desc))
	for i, d := range desc {
		types = append(types, d.Type)
		parts[i] = `coalesce(CAST(` + dialect.DuckDB.QuoteIdent(d.Name) + ` AS VARCHAR), 'NULL')`
	}
	q = "SELECT CAST(coalesce(to_json(list([" + strings.Join(parts, ", ") + "] ORDER BY " + dialect.DuckDB.QuoteIdent(desc[0].Name) + ")), '[]') AS VARCHAR) FROM " + sink.Table()
	if err := sink.QueryRowContext(ctx, q).Scan(&raw); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal([]byte(raw), &rows); err != nil {
		t.Fatal(err)
	}
	return rows, types
}

func TestTypes(t *testing.T) {
	uri := testenv.Postgres(t)
	run(t, uri, `CREATE TABLE types (
		id int2, i4 integer, i8 bigint,
		money12 numeric(12,2), wide numeric(38,10), loose numeric, huge numeric(50,5),
		f4 real, f8 double precision,
		t text, vc varchar(10), ch char(5),
		d date, ts timestamp, tstz timestamptz,
		b boolean, u uuid, j json, jb jsonb,
		iv interval, arr int[], m money, by bytea, tm time)`,
		`INSERT INTO types VALUES
		(1, 2147483647, 9223372036854775807,
		 100.10, 1234567890123456789012345678.0123456789, 1.005, 123456789012345678901234567890123456789012345.12345,
		 0.5, 0.1,
		 'text', 'varchar', 'ab',
		 '2024-02-29', '2024-01-31 10:00:00.123456', '2024-01-31 12:00:00+02',
		 true, 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', '{"a": 1,  "b": [1,2]}', '{"b": [1,2], "a": 1}',
		 '1 day 02:00:00', '{1,2,3}', 12.34, '\xDEADBEEF', '10:30:00'),
		(2, -2147483648, -9223372036854775808,
		 -0.01, -0.0000000001, 12345678901.123456789, -1,
		 -1.5, 1e300,
		 'O''Brien "q"', '東京', 'x',
		 '0001-01-01', '1970-01-01 00:00:00', '1999-12-31 23:59:59.999999+00',
		 false, '00000000-0000-0000-0000-000000000000', 'null', '[]',
		 '-3 months', '{}', -0.5, '\x', '00:00:00'),
		(3, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL)`)
	pools := newPools(t, dbpool.Options{})
	src := open(t, pools, withTable(t, uri, "types"))
	cols, err := src.Columns(testCtx(t))
	if err != nil {
		t.Fatal(err)
	}
	wantCols := []string{
		"id smallint SMALLINT", "i4 integer INTEGER", "i8 bigint BIGINT",
		"money12 numeric(12,2) DECIMAL(12,2)", "wide numeric(38,10) DECIMAL(38,10)", "loose numeric DECIMAL(38,10)", "huge numeric(50,5) DECIMAL(38,10)",
		"f4 real FLOAT", "f8 double precision DOUBLE",
		"t text VARCHAR", "vc character varying VARCHAR", "ch character VARCHAR",
		"d date DATE", "ts timestamp without time zone TIMESTAMP", "tstz timestamp with time zone TIMESTAMPTZ",
		"b boolean BOOLEAN", "u uuid UUID", "j json VARCHAR", "jb jsonb VARCHAR",
		"iv interval VARCHAR", "arr _int4 VARCHAR", "m money DECIMAL(38,10)", "by bytea VARCHAR", "tm time without time zone VARCHAR",
	}
	var got []string
	for _, c := range cols {
		got = append(got, c.Name+" "+c.DataType+" "+c.EngineType)
		if !c.Nullable {
			t.Errorf("column %s is not nullable", c.Name)
		}
	}
	if !slices.Equal(got, wantCols) {
		t.Errorf("columns:\n got %q\nwant %q", got, wantCols)
	}

	rows, types := stagedText(t, src, nil)
	wantTypes := []string{"SMALLINT", "INTEGER", "BIGINT",
		"DECIMAL(12,2)", "DECIMAL(38,10)", "DECIMAL(38,9)", "VARCHAR",
		"FLOAT", "DOUBLE", "VARCHAR", "VARCHAR", "VARCHAR",
		"DATE", "TIMESTAMP", "TIMESTAMP WITH TIME ZONE",
		"BOOLEAN", "UUID", "VARCHAR", "VARCHAR",
		"VARCHAR", "VARCHAR", "DECIMAL(38,2)", "VARCHAR", "VARCHAR"}
	if !slices.Equal(types, wantTypes) {
		t.Errorf("staged types:\n got %q\nwant %q", types, wantTypes)
	}
	want := [][]string{
		{"1", "2147483647", "9223372036854775807",
			"100.10", "1234567890123456789012345678.0123456789", "1.005000000", "123456789012345678901234567890123456789012345.12345",
			"0.5", "0.1",
			"text", "varchar", "ab",
			"2024-02-29", "2024-01-31 10:00:00.123456", "2024-01-31 10:00:00+00",
			"true", "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11", `{"a": 1,  "b": [1,2]}`, `{"a": 1, "b": [1, 2]}`,
			"1 day 02:00:00", "{1,2,3}", "12.34", `\xdeadbeef`, "10:30:00"},
		{"2", "-2147483648", "-9223372036854775808",
			"-0.01", "-0.0000000001", "12345678901.123456789", "-1.00000",
			"-1.5", "1e+300",
			`O'Brien "q"`, "東京", "x",
			"0001-01-01", "1970-01-01 00:00:00", "1999-12-31 23:59:59.999999+00",
			"false", "00000000-0000-0000-0000-000000000000", "null", "[]",
			"-3 mons", "{}", "-0.50", `\x`, "00:00:00"},
		{"3", "NULL", "NULL", "NULL", "NULL", "NULL", "NULL", "NULL", "NULL", "NULL", "NULL", "NULL", "NULL", "NULL", "NULL", "NULL", "NULL", "NULL", "NULL", "NULL", "NULL", "NULL", "NULL", "NULL"},
	}
	if len(rows) != len(want) {
		t.Fatalf("staged %d rows, want %d", len(rows), len(want))
	}
	for i := range want {
		for j := range want[i] {
			if rows[i][j] != want[i][j] {
				t.Errorf("row %d column %s: staged %q, want %q", i+1, cols[j].Name, rows[i][j], want[i][j])
			}
		}
	}

	// Sample shows Postgres's own text, in UTC.
	sample, err := src.Sample(testCtx(t), nil, 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(sample) != 3 {
		t.Fatalf("sample has %d rows", len(sample))
	}
	byName := map[string]string{}
	for j, c := range cols {
		if v := sample[0][j]; v != nil {
			byName[c.Name] = *v
		}
	}
	for name, w := range map[string]string{
		"money12": "100.10", "loose": "1.005", "tstz": "2024-01-31 10:00:00+00", "ts": "2024-01-31 10:00:00.123456",
		"b": "true", "j": `{"a": 1,  "b": [1,2]}`, "m": "12.34", "ch": "ab", "d": "2024-02-29",
	} {
		if byName[name] != w {
			t.Errorf("sample %s = %q, want %q", name, byName[name], w)
		}
	}
	for j, v := range sample[2][1:] {
		if v != nil {
			t.Errorf("sample row 3 column %s = %q, want NULL", cols[j+1].Name, *v)
		}
	}

	// Filters on the types the dialect binds specially.
	for _, tc := range []struct {
		filter string
		want   int64
	}{
		{`{"column":"u","op":"eq","value":"A0EEBC99-9C0B-4EF8-BB6D-6BB9BD380A11"}`, 1},
		{`{"column":"jb","op":"eq","value":"[]"}`, 1},
		{`{"column":"b","op":"eq","value":"true"}`, 1},
		{`{"column":"tstz","op":"eq","value":"2024-01-31T10:00:00Z"}`, 1},
		{`{"column":"loose","op":"eq","value":1.005}`, 1},
		{`{"column":"i8","op":"gt","value":9223372036854775806}`, 1},
	} {
		var f kalla.Filter
		if err := json.Unmarshal([]byte(tc.filter), &f); err != nil {
			t.Fatal(err)
		}
		n, err := src.Count(testCtx(t), []kalla.Filter{f})
		if err != nil || n != tc.want {
			t.Errorf("Count(%s) = %d, %v; want %d", tc.filter, n, err, tc.want)
		}
	}
}

func TestNumericEdges(t *testing.T) {
	uri := testenv.Postgres(t)
	run(t, uri,
		`CREATE TABLE nan_loose (id int, v numeric)`,
		`INSERT INTO nan_loose VALUES (1, 1.5), (2, 'NaN')`,
		`CREATE TABLE wide_loose (id int, v numeric)`,
		`INSERT INTO wide_loose VALUES (1, 1.5), (2, 123456789012345678901234567890.123456789)`,
		`CREATE TABLE int_loose (id int, v numeric)`,
		`INSERT INTO int_loose VALUES (1, 12345678901234567890123456789012345678), (2, -7)`,
		`CREATE TABLE nan_fixed (id int, v numeric(10,2))`,
		`INSERT INTO nan_fixed VALUES (1, 1.5), (2, 'NaN')`,
		`CREATE TABLE inf_date (id int, d date)`,
		`INSERT INTO inf_date VALUES (1, '2024-01-01'), (2, 'infinity')`,
		`CREATE TABLE empty_loose (id int, v numeric)`,
	)
	pools := newPools(t, dbpool.Options{})
	cases := []struct {
		table    string
		wantType string
		want     []string
		code     string
	}{
		{"nan_loose", "VARCHAR", []string{"1.5", "NaN"}, ""},
		{"wide_loose", "VARCHAR", []string{"1.5", "123456789012345678901234567890.123456789"}, ""},
		{"int_loose", "DECIMAL(38,0)", []string{"12345678901234567890123456789012345678", "-7"}, ""},
		{"nan_fixed", "", nil, kalla.EINVALID},
		{"inf_date", "", nil, kalla.EINVALID},
		{"empty_loose", "DECIMAL(38,10)", nil, ""},
	}
	for _, tc := range cases {
		t.Run(tc.table, func(t *testing.T) {
			src := open(t, pools, withTable(t, uri, tc.table))
			if tc.code != "" {
				e, err := engine.Open(testCtx(t), engine.Options{})
				if err != nil {
					t.Fatal(err)
				}
				defer e.Close()
				_, err = src.Stage(testCtx(t), nil, e.Sink("t"))
				if kalla.ErrorCode(err) != tc.code {
					t.Fatalf("Stage: %v (code %s), want code %s", err, kalla.ErrorCode(err), tc.code)
				}
				t.Logf("as expected: %v", err)
				return
			}
			rows, types := stagedText(t, src, nil)
			if types[1] != tc.wantType {
				t.Errorf("staged as %s, want %s", types[1], tc.wantType)
			}
			var got []string
			for _, r := range rows {
				got = append(got, r[1])
			}
			if !slices.Equal(got, tc.want) {
				t.Errorf("staged %q, want %q", got, tc.want)
			}
		})
	}
}

func TestSchemaAndQuotedNames(t *testing.T) {
	uri := testenv.Postgres(t)
	run(t, uri,
		`CREATE TABLE invoices (id int, who text)`,
		`INSERT INTO invoices VALUES (1, 'public')`,
		`CREATE SCHEMA billing`,
		`CREATE TABLE billing.invoices (id int, who text)`,
		`INSERT INTO billing.invoices VALUES (1, 'billing'), (2, 'billing')`,
		`CREATE SCHEMA "Odd Schema"`,
		`CREATE TABLE "Odd Schema"."My.Table ""q""" ("Amount ""USD""" numeric(8,2), "Name" text, "select" text)`,
		`INSERT INTO "Odd Schema"."My.Table ""q""" VALUES (1.10, 'Upper', 'lower'), (2.20, 'U2', 'l2')`,
		`CREATE TABLE cased ("Name" text, "name" text)`,
		`INSERT INTO cased VALUES ('Upper', 'lower')`,
		`CREATE TABLE "Invoices2" (id int)`,
		`INSERT INTO "Invoices2" VALUES (1), (2), (3)`,
		`CREATE TABLE "dup" (id int)`, `CREATE TABLE "DUP" (id int)`,
	)
	pools := newPools(t, dbpool.Options{})
	ctx := testCtx(t)
	count := func(table string, filters string) (int64, error) {
		src, err := postgres.Open(ctx, withTable(t, uri, table), postgres.Options{Pools: pools})
		if err != nil {
			return 0, err
		}
		defer src.Close()
		var fs []kalla.Filter
		if filters != "" {
			if err := json.Unmarshal([]byte(filters), &fs); err != nil {
				t.Fatal(err)
			}
		}
		return src.Count(ctx, fs)
	}
	for _, tc := range []struct {
		table, filters string
		want           int64
		code           string
	}{
		{"invoices", "", 1, ""},
		{"public.invoices", "", 1, ""},
		{"billing.invoices", "", 2, ""},
		{"Billing.Invoices", "", 2, ""}, // case-insensitive fallback
		{`"Odd Schema"."My.Table ""q"""`, "", 2, ""},
		{`"Odd Schema"."My.Table ""q"""`, `[{"column":"Amount \"USD\"","op":"gte","value":2}]`, 1, ""},
		{`"Odd Schema"."My.Table ""q"""`, `[{"column":"Name","op":"eq","value":"Upper"}]`, 1, ""},
		{`"Odd Schema"."My.Table ""q"""`, `[{"column":"select","op":"eq","value":"lower"}]`, 1, ""},
		{`cased`, `[{"column":"name","op":"eq","value":"lower"}]`, 1, ""},
		{`cased`, `[{"column":"Name","op":"eq","value":"lower"}]`, 0, ""},
		{"Invoices2", "", 3, ""},
		{"invoices2", "", 3, ""},
		{"dup", "", 0, ""},
		{"Dup", "", 0, kalla.EINVALID}, // two tables match ignoring case
		{"nope", "", 0, kalla.ENOTFOUND},
		{"billing.nope", "", 0, kalla.ENOTFOUND},
		{"nope.invoices", "", 0, kalla.ENOTFOUND},
		{"a.b.c", "", 0, kalla.EINVALID},
		{`"unclosed`, "", 0, kalla.EINVALID},
	} {
		t.Run(tc.table, func(t *testing.T) {
			n, err := count(tc.table, tc.filters)
			if tc.code != "" {
				if kalla.ErrorCode(err) != tc.code {
					t.Fatalf("error %v (code %s), want code %s", err, kalla.ErrorCode(err), tc.code)
				}
				t.Logf("as expected: %v", err)
				return
			}
			if err != nil || n != tc.want {
				t.Fatalf("Count = %d, %v; want %d", n, err, tc.want)
			}
		})
	}
	// Quoted, mixed-case and reserved column names stage under their own
	// names.
	src := open(t, pools, withTable(t, uri, `"Odd Schema"."My.Table ""q"""`))
	rows, types := stagedText(t, src, nil)
	if len(rows) != 2 || rows[0][0] != "1.10" || rows[0][1] != "Upper" || rows[0][2] != "lower" || types[0] != "DECIMAL(8,2)" {
		t.Errorf("staged %q %q", rows, types)
	}
	// DuckDB's names ignore case: columns that differ only in case cannot
	// be staged, and Stage says so before touching the engine.
	cased := open(t, pools, withTable(t, uri, "cased"))
	e, err := engine.Open(ctx, engine.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	if _, err := cased.Stage(ctx, nil, e.Sink("cased")); kalla.ErrorCode(err) != kalla.EINVALID || !strings.Contains(err.Error(), "differ only in case") {
		t.Errorf("Stage of columns differing in case: %v", err)
	}
	_, err = count("nope", "")
	if !strings.Contains(kalla.ErrorMessage(err), "table nope not found in schema public") {
		t.Errorf("message %q", kalla.ErrorMessage(err))
	}
}

func TestURIErrors(t *testing.T) {
	pools := newPools(t, dbpool.Options{ConnectTimeout: 2 * time.Second})
	ctx := testCtx(t)
	uri := testenv.Postgres(t)
	u, _ := url.Parse(uri)
	const badPW = "Sup3r-Secret_pw!"
	wrongPW := *u
	wrongPW.User = url.UserPassword(u.User.Username(), badPW)
	noDB := *u
	noDB.Path = "/kt_does_not_exist"

	for _, tc := range []struct {
		name, uri, code, msg string
		within               time.Duration
	}{
		{"missing table param", uri, kalla.EINVALID, "missing ?table= in URI", time.Second},
		{"empty table param", uri + "?table=", kalla.EINVALID, "missing ?table= in URI", time.Second},
		{"not a URL", "postgres://a:" + badPW + "@[::1", kalla.EINVALID, "not a valid postgres://", time.Second},
		{"refused", "postgres://kalla:" + badPW + "@127.0.0.1:1/db?table=t", kalla.EUNAVAILABLE, "cannot reach source postgres://kalla:xxxxx@127.0.0.1:1/db?table=t", 3 * time.Second},
		{"unresolvable host", "postgres://kalla:" + badPW + "@kalla-no-such-host.invalid:5432/db?table=t", kalla.EUNAVAILABLE, "cannot reach source", 5 * time.Second},
		{"wrong password", withTable(t, wrongPW.String(), "t"), kalla.EUNAVAILABLE, "rejected the user name or password", 5 * time.Second},
		{"password in a parameter", withTable(t, uri, "t") + "&password=" + url.QueryEscape(badPW) + "&user=nobody_here", kalla.EINVALID, `parameter "password" is not allowed in a postgres URI`, time.Second},
		{"no database", withTable(t, noDB.String(), "t"), kalla.ENOTFOUND, "database does not exist", 5 * time.Second},
		{"bad sslmode", withTable(t, uri, "t") + "&sslmode=bogus", kalla.EINVALID, "invalid connection settings", time.Second},
	} {
		t.Run(tc.name, func(t *testing.T) {
			start := time.Now()
			_, err := postgres.Open(ctx, tc.uri, postgres.Options{Pools: pools})
			took := time.Since(start)
			if err == nil {
				t.Fatal("Open succeeded")
			}
			if kalla.ErrorCode(err) != tc.code {
				t.Errorf("code %s (%v), want %s", kalla.ErrorCode(err), err, tc.code)
			}
			for _, text := range []string{err.Error(), kalla.ErrorMessage(err)} {
				if strings.Contains(text, badPW) || strings.Contains(text, url.QueryEscape(badPW)) || strings.Contains(text, u.User.String()) {
					t.Errorf("error text carries a password: %s", text)
				}
			}
			if !strings.Contains(kalla.ErrorMessage(err), tc.msg) {
				t.Errorf("message %q does not contain %q", kalla.ErrorMessage(err), tc.msg)
			}
			if took > tc.within {
				t.Errorf("took %v, want at most %v", took, tc.within)
			}
			t.Logf("%v: %s", took.Round(time.Millisecond), kalla.ErrorMessage(err))
		})
	}
}

// TestURIParameters checks that a source URI carries only the parameters
// Kalla documents: the ones that make pgx read files on the Kalla host or
// change the source session are refused before any connection, naming the
// parameter, and what pgx would take from the Kalla host's environment and
// home folder (a password file, a password) never reaches the source.
func TestURIParameters(t *testing.T) {
	pools := newPools(t, dbpool.Options{ConnectTimeout: 2 * time.Second})
	ctx := testCtx(t)
	uri := testenv.Postgres(t)
	run(t, uri, `CREATE TABLE t (x int)`, `INSERT INTO t VALUES (1)`)
	base := withTable(t, uri, "t")
	secret := t.TempDir() + "/secret"
	for _, tc := range []struct{ param, value string }{
		{"passfile", secret},
		{"sslcert", secret},
		{"sslkey", secret},
		{"sslrootcert", secret},
		{"sslpassword", "x"},
		{"service", "kalla"},
		{"servicefile", secret},
		{"options", "-c default_transaction_read_only=off"},
		{"search_path", "evil"},
		{"default_transaction_read_only", "off"},
		{"pool_max_conns", "100"},
		{"host", "/var/run/postgresql"},
		{"PASSFILE", secret},
		{"ssl", "true"},
	} {
		t.Run(tc.param, func(t *testing.T) {
			_, err := postgres.Open(ctx, base+"&"+url.QueryEscape(tc.param)+"="+url.QueryEscape(tc.value), postgres.Options{Pools: pools})
			want := `parameter "` + tc.param + `" is not allowed in a postgres URI`
			if kalla.ErrorCode(err) != kalla.EINVALID || !strings.Contains(kalla.ErrorMessage(err), want) {
				t.Fatalf("error %v, want EINVALID %q", err, want)
			}
			if err := postgres.CheckURI(base + "&" + tc.param + "=x"); kalla.ErrorCode(err) != kalla.EINVALID {
				t.Errorf("CheckURI: %v, want EINVALID", err)
			}
		})
	}
	for name, bad := range map[string]string{
		"unix socket": "postgres://u@/postgres?table=t",
		"no host":     "postgres:///postgres?table=t",
		"host list":   "postgres://u@a,b/postgres?table=t",
		"twice":       base + "&sslmode=disable&sslmode=require",
		"table twice": base + "&table=u",
		"fragment":    base + "#x",
	} {
		if err := postgres.CheckURI(bad); kalla.ErrorCode(err) != kalla.EINVALID {
			t.Errorf("%s: CheckURI(%s) = %v, want EINVALID", name, bad, err)
		}
	}

	// The documented parameters work against the real server, and reach it.
	src := open(t, pools, base+"&sslmode=disable&connect_timeout=5&application_name=kalla_params_test&target_session_attrs=any&channel_binding=prefer")
	if n, err := src.Count(ctx, nil); err != nil || n != 1 {
		t.Fatalf("Count = %d, %v", n, err)
	}

	// Without a password in the URI, pgx would take one from PGPASSWORD or
	// a password file on the Kalla host: neither is used.
	u, _ := url.Parse(base)
	pw, _ := u.User.Password()
	noPW := *u
	noPW.User = url.User(u.User.Username())
	passfile := t.TempDir() + "/pgpass"
	if err := os.WriteFile(passfile, []byte("*:*:*:*:"+pw+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PGPASSFILE", passfile)
	_, err := postgres.Open(ctx, noPW.String(), postgres.Options{Pools: pools})
	if kalla.ErrorCode(err) != kalla.EUNAVAILABLE || !strings.Contains(kalla.ErrorMessage(err), "password") {
		t.Errorf("with the password only in PGPASSFILE: %v, want the server to refuse the login", err)
	}
	t.Setenv("PGPASSFILE", "")
	t.Setenv("PGPASSWORD", pw)
	_, err = postgres.Open(ctx, noPW.String(), postgres.Options{Pools: newPools(t, dbpool.Options{ConnectTimeout: 2 * time.Second})})
	if kalla.ErrorCode(err) != kalla.EUNAVAILABLE || !strings.Contains(kalla.ErrorMessage(err), "password") {
		t.Errorf("with the password only in PGPASSWORD: %v, want the server to refuse the login", err)
	}
}

func TestConnectTimeout(t *testing.T) {
	// A listener that accepts TCP connections but never answers: the
	// connection setup must give up after ConnectTimeout.
	ln := listenSilently(t)
	pools := newPools(t, dbpool.Options{ConnectTimeout: 500 * time.Millisecond})
	start := time.Now()
	_, err := postgres.Open(testCtx(t), "postgres://u:pw123456@"+ln+"/db?table=t&sslmode=disable", postgres.Options{Pools: pools})
	took := time.Since(start)
	if kalla.ErrorCode(err) != kalla.EUNAVAILABLE || !strings.Contains(kalla.ErrorMessage(err), "cannot reach source") {
		t.Fatalf("error %v, want EUNAVAILABLE cannot reach source", err)
	}
	if took > 3*time.Second {
		t.Errorf("took %v with a 500ms connect timeout", took)
	}
	t.Logf("%v: %s", took.Round(time.Millisecond), kalla.ErrorMessage(err))
}

func TestReadOnlyAndTimeout(t *testing.T) {
	uri := testenv.Postgres(t)
	run(t, uri,
		`CREATE TABLE log (x int)`,
		`CREATE FUNCTION writes() RETURNS int LANGUAGE sql VOLATILE AS $$ INSERT INTO log VALUES (1); SELECT 1 $$`,
		`CREATE VIEW sneaky AS SELECT writes() AS x`,
		`CREATE VIEW slow AS SELECT 1 AS x FROM pg_sleep(2)`,
	)
	pools := newPools(t, dbpool.Options{})
	ctx := testCtx(t)
	src := open(t, pools, withTable(t, uri, "sneaky"))
	if _, err := src.Count(ctx, nil); err == nil {
		t.Error("a view that writes was read without error: the transaction is not read-only")
	}
	run(t, uri, `DO $$ BEGIN IF (SELECT count(*) FROM log) > 0 THEN RAISE 'log has rows'; END IF; END $$`)

	slow, err := postgres.Open(ctx, withTable(t, uri, "slow"), postgres.Options{Pools: pools, PreviewTimeout: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer slow.Close()
	start := time.Now()
	_, err = slow.Count(ctx, nil)
	if kalla.ErrorCode(err) != kalla.EUNAVAILABLE || !strings.Contains(err.Error(), "timeout") || time.Since(start) > 1500*time.Millisecond {
		t.Errorf("Count of a slow view: %v after %v, want EUNAVAILABLE timeout after ~200ms", err, time.Since(start))
	}
}

func TestStageCancel(t *testing.T) {
	uri := testenv.Postgres(t)
	run(t, uri, `CREATE TABLE big AS SELECT g AS id, md5(g::text) AS s, (g % 100000) / 100.0 :: numeric(12,2) AS amount FROM generate_series(1, 1000000) g`)
	pools := newPools(t, dbpool.Options{})
	src := open(t, pools, withTable(t, uri, "big"))
	e, err := engine.Open(testCtx(t), engine.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	ctx, cancel := context.WithCancel(testCtx(t))
	sink := &cancellingSink{Sink: e.Sink("t"), after: 100_000, cancel: cancel}
	n, err := src.Stage(ctx, nil, sink)
	took := time.Since(sink.at)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("Stage = %d rows, %v; want context.Canceled", n, err)
	}
	if sink.rows < 100_000 || sink.rows > 400_000 {
		t.Errorf("%d rows were appended: the cancellation was not honoured mid-stream", sink.rows)
	}
	if took > 2*time.Second {
		t.Errorf("Stage returned %v after being cancelled", took)
	}
	t.Logf("cancelled after %d rows; Stage returned %v later", sink.rows, took.Round(time.Millisecond))
	// The server is not left running the query, and the pool still works.
	deadline := time.Now().Add(5 * time.Second)
	for {
		var active int
		conn, err := pgx.Connect(testCtx(t), uri)
		if err != nil {
			t.Fatal(err)
		}
		err = conn.QueryRow(testCtx(t), `SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid() AND state = 'active'`).Scan(&active)
		conn.Close(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if active == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d queries still active on the server 5s after cancelling", active)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if n, err := src.Count(testCtx(t), nil); err != nil || n != 1000000 {
		t.Errorf("Count after cancel = %d, %v", n, err)
	}
}

func TestPoolSharing(t *testing.T) {
	uri := testenv.Postgres(t)
	run(t, uri, `CREATE TABLE t AS SELECT g AS id FROM generate_series(1, 1000) g`)
	// The janitor never runs (an hour apart): pools age by skew, and the
	// test evicts with EvictIdle when it has moved the clock.
	var skew atomic.Int64
	const idle = time.Minute
	pools := newPools(t, dbpool.Options{MaxConns: 2, IdleTimeout: idle, JanitorInterval: time.Hour,
		Now: func() time.Time { return time.Now().Add(time.Duration(skew.Load())) }})
	ctx := testCtx(t)
	a, err := postgres.Open(ctx, withTable(t, uri, "t"), postgres.Options{Pools: pools})
	if err != nil {
		t.Fatal(err)
	}
	b, err := postgres.Open(ctx, withTable(t, uri, "t")+"&application_name=other", postgres.Options{Pools: pools})
	if err != nil {
		t.Fatal(err)
	}
	c, err := postgres.Open(ctx, withTable(t, uri, "t"), postgres.Options{Pools: pools})
	if err != nil {
		t.Fatal(err)
	}
	st := pools.Stats()
	if len(st) != 2 || st[0].Leases+st[1].Leases != 3 {
		t.Fatalf("stats %+v: want two pools (the URIs differ in a parameter) with three leases", st)
	}
	for _, s := range st {
		if strings.Contains(s.Source, "kalla_test_pw") {
			t.Errorf("stats name a password: %+v", s)
		}
	}
	var wg sync.WaitGroup
	for range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := a.Count(ctx, nil); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	for _, s := range pools.Stats() {
		if s.MaxOpen > 2 {
			t.Errorf("pool %s opened %d connections, cap 2", s.Source, s.MaxOpen)
		}
	}
	a.Close()
	b.Close()
	skew.Add(int64(2 * idle))
	pools.EvictIdle()
	st = pools.Stats()
	if len(st) != 1 || st[0].Leases != 1 {
		t.Fatalf("after idling: %+v, want only the pool still leased", st)
	}
	c.Close()
	skew.Add(int64(2 * idle))
	pools.EvictIdle()
	if st := pools.Stats(); len(st) != 0 || pools.OpenConns() != 0 {
		t.Fatalf("after idling: %+v, want no pools", st)
	}
	// A closed cache refuses to open.
	pools.Close()
	if _, err := postgres.Open(ctx, withTable(t, uri, "t"), postgres.Options{Pools: pools}); kalla.ErrorCode(err) != kalla.EUNAVAILABLE {
		t.Errorf("Open on a closed cache: %v", err)
	}
}

// TestShortPasswordNotMangled: the driver's message keeps its words when
// the password is one of them ("tcp"), and the masked URI does not give
// the password away.
func TestShortPasswordNotMangled(t *testing.T) {
	pools := newPools(t, dbpool.Options{ConnectTimeout: 2 * time.Second})
	_, err := postgres.Open(testCtx(t), "postgres://kalla:tcp@127.0.0.1:1/db?table=t", postgres.Options{Pools: pools})
	if err == nil {
		t.Fatal("Open succeeded")
	}
	msg := kalla.ErrorMessage(err)
	if !strings.Contains(msg, "postgres://kalla:xxxxx@127.0.0.1:1/db") || strings.Contains(msg, "kalla:tcp@") {
		t.Errorf("URI not masked by position: %s", msg)
	}
	if strings.Contains(msg, "dial xxxxx") || !strings.Contains(msg, "tcp") {
		t.Errorf("message mangled: %s", msg)
	}
	t.Logf("%s", msg)
}

// TestBoundedTotal checks a scoped load's total against the true count:
// exact when the sample holds every match or the bounded count stays within
// its cap, a lower bound (labelled) beyond the cap or past the time budget,
// and exact on request.
func TestBoundedTotal(t *testing.T) {
	uri := testenv.Postgres(t)
	run(t, uri, `CREATE TABLE t AS SELECT g AS id, g % 2 = 0 AS even FROM generate_series(1, 50) g`,
		`CREATE VIEW slow AS SELECT t.* FROM t WHERE (SELECT true FROM pg_sleep(0.01 + 0 * t.id))`)
	pools := newPools(t, dbpool.Options{MaxConns: 1})
	ctx := testCtx(t)
	src := open(t, pools, withTable(t, uri, "t"))
	even := []kalla.Filter{{Column: "even", Op: kalla.OpEq, Values: []kalla.Scalar{{Text: "true"}}}}
	for _, tc := range []struct {
		name    string
		filters []kalla.Filter
		limit   int
		opts    connector.LoadOptions
		total   int64
		kind    string
	}{
		{"sample holds every row", nil, 100, connector.LoadOptions{CountCap: 10}, 50, connector.TotalExact},
		{"within the cap", nil, 10, connector.LoadOptions{}, 50, connector.TotalExact},
		{"beyond the cap", nil, 10, connector.LoadOptions{CountCap: 20}, 21, connector.TotalAtLeast},
		{"filtered beyond the cap", even, 5, connector.LoadOptions{CountCap: 20}, 21, connector.TotalAtLeast},
		{"filtered within the cap", even, 5, connector.LoadOptions{CountCap: 25}, 25, connector.TotalExact},
		{"exact on request", nil, 10, connector.LoadOptions{CountCap: 20, ExactTotal: true}, 50, connector.TotalExact},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, err := connector.LoadWith(ctx, src, "t", tc.filters, tc.limit, tc.opts)
			if err != nil {
				t.Fatal(err)
			}
			if p.TotalRows != tc.total || p.TotalKind != tc.kind || p.TotalExact != (tc.kind == connector.TotalExact) || p.PreviewRows != min(tc.limit, int(tc.total)) {
				t.Errorf("total %d %s (exact %v), %d rows; want %d %s", p.TotalRows, p.TotalKind, p.TotalExact, p.PreviewRows, tc.total, tc.kind)
			}
		})
	}
	// Past the budget the server stops the count; the answer is the sample
	// as a lower bound, and the one pooled connection is still usable.
	slow := open(t, pools, withTable(t, uri, "slow"))
	p, err := connector.LoadWith(ctx, slow, "slow", nil, 2, connector.LoadOptions{CountBudget: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if p.TotalRows != 2 || p.TotalKind != connector.TotalAtLeast {
		t.Errorf("slow count: total %d %s, want at least 2", p.TotalRows, p.TotalKind)
	}
	if n, err := src.Count(ctx, nil); err != nil || n != 50 {
		t.Errorf("after a count past its budget: %d, %v", n, err)
	}
}
