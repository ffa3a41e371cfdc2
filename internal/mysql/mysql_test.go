package mysql_test

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"encoding/json"
	"errors"
	"net"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	gomysql "github.com/go-sql-driver/mysql"

	"github.com/kalla-recon/kalla/internal/connector"
	"github.com/kalla-recon/kalla/internal/connector/conformance"
	"github.com/kalla-recon/kalla/internal/dbpool"
	"github.com/kalla-recon/kalla/internal/dialect"
	"github.com/kalla-recon/kalla/internal/engine"
	"github.com/kalla-recon/kalla/internal/kalla"
	"github.com/kalla-recon/kalla/internal/mysql"
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

// admin opens the database at uri directly, for setting up tables.
func admin(t testing.TB, uri string) *sql.DB {
	t.Helper()
	u, err := url.Parse(uri)
	if err != nil {
		t.Fatal(err)
	}
	cfg := gomysql.NewConfig()
	cfg.Net, cfg.Addr, cfg.DBName = "tcp", u.Host, strings.TrimPrefix(u.Path, "/")
	cfg.User = u.User.Username()
	cfg.Passwd, _ = u.User.Password()
	c, err := gomysql.NewConnector(cfg)
	if err != nil {
		t.Fatal(err)
	}
	db := sql.OpenDB(c)
	t.Cleanup(func() { db.Close() })
	return db
}

func run(t testing.TB, uri string, stmts ...string) {
	t.Helper()
	db := admin(t, uri)
	for _, s := range stmts {
		if _, err := db.ExecContext(testCtx(t), s); err != nil {
			t.Fatalf("%s: %v", s, err)
		}
	}
}

func open(t testing.TB, pools *dbpool.Cache, uri string) *mysql.Source {
	t.Helper()
	src, err := mysql.Open(testCtx(t), uri, mysql.Options{Pools: pools})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { src.Close() })
	return src
}

func TestConformance(t *testing.T) {
	pools := newPools(t, dbpool.Options{})
	conformance.Run(t, func(t *testing.T, fx conformance.Fixture) connector.Source {
		uri := testenv.MySQL(t)
		db := admin(t, uri)
		defs := make([]string, len(fx.Columns))
		cols := make([]string, len(fx.Columns))
		ph := make([]string, len(fx.Columns))
		for i, c := range fx.Columns {
			typ := map[conformance.Type]string{conformance.Int: "BIGINT", conformance.Text: "VARCHAR(200)", conformance.Money: "DECIMAL(12,2)", conformance.Date: "DATE"}[c.Type]
			if !c.Nullable {
				typ += " NOT NULL"
			}
			cols[i] = dialect.MySQL.QuoteIdent(c.Name)
			defs[i] = cols[i] + " " + typ
			ph[i] = "?"
		}
		table := dialect.MySQL.QuoteIdent(fx.Table)
		ctx := testCtx(t)
		if _, err := db.ExecContext(ctx, "CREATE TABLE "+table+" ("+strings.Join(defs, ", ")+") CHARACTER SET utf8mb4"); err != nil {
			t.Fatal(err)
		}
		for i := range fx.Rows {
			if _, err := db.ExecContext(ctx, "INSERT INTO "+table+" ("+strings.Join(cols, ", ")+") VALUES ("+strings.Join(ph, ", ")+")", fx.Args(i)...); err != nil {
				t.Fatal(err)
			}
		}
		src, err := mysql.Open(ctx, withTable(t, uri, fx.Table), mysql.Options{Pools: pools})
		if err != nil {
			t.Fatalf("Open: %v", err)
		}
		return src
	})
}

// stagedText stages src and returns each row as DuckDB text ordered by
// the first column, NULL as "NULL", and the staged column types.
func stagedText(t *testing.T, src connector.Source) (rows [][]string, types []string) {
	t.Helper()
	ctx := testCtx(t)
	e, err := engine.Open(ctx, engine.Options{Threads: 2})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	sink := e.Sink("t")
	if _, err := src.Stage(ctx, nil, sink); err != nil {
		t.Fatalf("Stage: %v", err)
	}
	var raw string
	if err := sink.QueryRowContext(ctx, `SELECT CAST(to_json(list({'name': column_name, 'type': column_type})) AS VARCHAR) FROM (DESCRIBE `+sink.Table()+`)`).Scan(&raw); err != nil {
		t.Fatal(err)
	}
	var desc []struct{ Name, Type string }
	if err := json.Unmarshal([]byte(raw), &desc); err != nil {
		t.Fatal(err)
	}
	parts := make([]string, len(desc))
	for i, d := range desc {
		types = append(types, d.Type)
		parts[i] = "coalesce(CAST(" + dialect.DuckDB.QuoteIdent(d.Name) + " AS VARCHAR), 'NULL')"
	}
	q := "SELECT CAST(coalesce(to_json(list([" + strings.Join(parts, ", ") + "] ORDER BY " + dialect.DuckDB.QuoteIdent(desc[0].Name) + ")), '[]') AS VARCHAR) FROM " + sink.Table()
	if err := sink.QueryRowContext(ctx, q).Scan(&raw); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal([]byte(raw), &rows); err != nil {
		t.Fatal(err)
	}
	return rows, types
}

func TestTypes(t *testing.T) {
	uri := testenv.MySQL(t)
	run(t, uri, `CREATE TABLE types (
		id TINYINT, ut TINYINT UNSIGNED, b BOOLEAN, si SMALLINT, mi MEDIUMINT UNSIGNED, i INT, ubi BIGINT UNSIGNED,
		d DECIMAL(12,2), dw DECIMAL(38,10), dh DECIMAL(50,5), dz DECIMAL(65,0),
		f FLOAT, db DOUBLE,
		vc VARCHAR(20), tx TEXT, ch CHAR(5), en ENUM('a','b'), js JSON,
		dt DATE, dtt DATETIME(6), ts TIMESTAMP NULL, y YEAR, bt BIT(8), u UUID,
		vb VARBINARY(4), tm TIME)`,
		`INSERT INTO types VALUES
		(1, 255, TRUE, -32768, 16777215, 2147483647, 18446744073709551615,
		 100.10, 1234567890123456789012345678.0123456789, 123.45, 12345678901234567890123456789012345678901234567890,
		 0.5, 0.1,
		 'O''Brien "q"', '東京 🌸', 'ab', 'b', '{"a": 1}',
		 '2024-02-29', '2024-01-31 10:00:00.123456', '2024-01-31 10:00:00', 2024, b'00000101', 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11',
		 x'DEADBEEF', '838:59:59'),
		(2, 0, FALSE, 0, 0, -1, 0,
		 -0.01, -0.0000000001, -1, 0,
		 -1.5, 1e300,
		 'x\\y', '', 'x ', 'a', '[]',
		 '1000-01-01', '1970-01-01 00:00:00', '1999-12-31 23:59:59', 1901, b'0', '00000000-0000-0000-0000-000000000000',
		 x'', '-01:00:00'),
		(3, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL)`)
	pools := newPools(t, dbpool.Options{})
	src := open(t, pools, withTable(t, uri, "types"))
	cols, _ := src.Columns(testCtx(t))
	var got []string
	for _, c := range cols {
		got = append(got, c.Name+" "+c.DataType+" "+c.EngineType)
	}
	t.Logf("columns: %q", got)
	rows, types := stagedText(t, src)
	wantTypes := []string{"TINYINT", "UTINYINT", "TINYINT", "SMALLINT", "UINTEGER", "INTEGER", "UBIGINT",
		"DECIMAL(12,2)", "DECIMAL(38,10)", "DECIMAL(38,5)", "VARCHAR",
		"FLOAT", "DOUBLE", "VARCHAR", "VARCHAR", "VARCHAR", "VARCHAR", "VARCHAR",
		"DATE", "TIMESTAMP", "TIMESTAMP WITH TIME ZONE", "SMALLINT", "UBIGINT", "UUID", "VARCHAR", "VARCHAR"}
	if !slices.Equal(types, wantTypes) {
		t.Errorf("staged types:\n got %q\nwant %q", types, wantTypes)
	}
	want := [][]string{
		{"1", "255", "1", "-32768", "16777215", "2147483647", "18446744073709551615",
			"100.10", "1234567890123456789012345678.0123456789", "123.45000", "12345678901234567890123456789012345678901234567890",
			"0.5", "0.1",
			`O'Brien "q"`, "東京 🌸", "ab", "b", `{"a": 1}`,
			"2024-02-29", "2024-01-31 10:00:00.123456", "2024-01-31 10:00:00+00", "2024", "5", "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11",
			"DEADBEEF", "838:59:59"},
		{"2", "0", "0", "0", "0", "-1", "0",
			"-0.01", "-0.0000000001", "-1.00000", "0",
			"-1.5", "1e+300",
			`x\y`, "", "x", "a", "[]",
			"1000-01-01", "1970-01-01 00:00:00", "1999-12-31 23:59:59+00", "1901", "0", "00000000-0000-0000-0000-000000000000",
			"", "-01:00:00"},
	}
	if len(rows) != 3 {
		t.Fatalf("staged %d rows", len(rows))
	}
	for i := range want {
		for j := range want[i] {
			if rows[i][j] != want[i][j] {
				t.Errorf("row %d column %s: staged %q, want %q", i+1, cols[j].Name, rows[i][j], want[i][j])
			}
		}
	}
	for j, v := range rows[2][1:] {
		if v != "NULL" {
			t.Errorf("row 3 column %s = %q, want NULL", cols[j+1].Name, v)
		}
	}
	sample, err := src.Sample(testCtx(t), nil, 10)
	if err != nil || len(sample) != 3 {
		t.Fatalf("Sample: %d rows, %v", len(sample), err)
	}
	byName := map[string]string{}
	for j, c := range cols {
		if v := sample[0][j]; v != nil {
			byName[c.Name] = *v
		}
	}
	for name, w := range map[string]string{"d": "100.10", "dt": "2024-02-29", "ts": "2024-01-31 10:00:00", "vb": "DEADBEEF", "bt": "5", "b": "1"} {
		if byName[name] != w {
			t.Errorf("sample %s = %q, want %q", name, byName[name], w)
		}
	}
	for _, tc := range []struct {
		filter string
		want   int64
	}{
		{`{"column":"u","op":"eq","value":"A0EEBC99-9C0B-4EF8-BB6D-6BB9BD380A11"}`, 1},
		{`{"column":"b","op":"eq","value":"true"}`, 1},
		{`{"column":"ubi","op":"eq","value":18446744073709551615}`, 1},
		{`{"column":"vc","op":"eq","value":"x\\y"}`, 1},
		{`{"column":"vc","op":"like","value":"x\\\\y"}`, 1},
		{`{"column":"dtt","op":"gte","value":"2024-01-31T10:00:00"}`, 1},
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

func TestZeroDate(t *testing.T) {
	uri := testenv.MySQL(t)
	run(t, uri, `SET SESSION sql_mode = ''`)
	db := admin(t, uri)
	conn, err := db.Conn(testCtx(t))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	for _, s := range []string{`SET SESSION sql_mode = ''`, `CREATE TABLE zd (id INT, d DATE)`, `INSERT INTO zd VALUES (1, '2024-01-01'), (2, '0000-00-00')`} {
		if _, err := conn.ExecContext(testCtx(t), s); err != nil {
			t.Fatalf("%s: %v", s, err)
		}
	}
	pools := newPools(t, dbpool.Options{})
	src := open(t, pools, withTable(t, uri, "zd"))
	e, err := engine.Open(testCtx(t), engine.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	_, err = src.Stage(testCtx(t), nil, e.Sink("t"))
	if kalla.ErrorCode(err) != kalla.EINVALID || !strings.Contains(err.Error(), "0000-00-00") {
		t.Fatalf("Stage of a zero date: %v", err)
	}
	t.Logf("as expected: %v", err)
}

// TestURIParameters checks that a source URI carries only the parameters
// Kalla documents. The driver would run any other name as a SET statement
// on the source session, and some of its own parameters read files on the
// Kalla host (allowAllFiles) or weaken the connection: each is refused
// before any connection, naming the parameter.
func TestURIParameters(t *testing.T) {
	uri := testenv.MySQL(t)
	run(t, uri, "CREATE TABLE t (x INT)", "INSERT INTO t VALUES (1)")
	pools := newPools(t, dbpool.Options{ConnectTimeout: 2 * time.Second})
	ctx := testCtx(t)
	base := withTable(t, uri, "t")
	for _, tc := range []struct{ param, value string }{
		{"allowAllFiles", "true"},
		{"allowCleartextPasswords", "true"},
		{"allowFallbackToPlaintext", "true"},
		{"multiStatements", "true"},
		{"interpolateParams", "false"},
		{"parseTime", "true"},
		{"loc", "Local"},
		{"charset", "latin1"},
		{"collation", "latin1_swedish_ci"},
		{"sql_mode", "''"},
		{"autocommit", "0"},
		{"time_zone", "'+05:00'"},
		{"max_execution_time", "0"},
		{"serverPubKey", "kalla"},
		{"password", "x"},
	} {
		t.Run(tc.param, func(t *testing.T) {
			_, err := mysql.Open(ctx, base+"&"+tc.param+"="+url.QueryEscape(tc.value), mysql.Options{Pools: pools})
			want := `parameter "` + tc.param + `" is not allowed in a mysql URI`
			if kalla.ErrorCode(err) != kalla.EINVALID || !strings.Contains(kalla.ErrorMessage(err), want) {
				t.Fatalf("error %v, want EINVALID %q", err, want)
			}
			if err := mysql.CheckURI(base + "&" + tc.param + "=x"); kalla.ErrorCode(err) != kalla.EINVALID {
				t.Errorf("CheckURI: %v, want EINVALID", err)
			}
		})
	}
	if err := mysql.CheckURI(base + "&tls=false&tls=true"); kalla.ErrorCode(err) != kalla.EINVALID {
		t.Errorf("a parameter given twice: %v, want EINVALID", err)
	}
	// The documented parameters work against the real server; the session
	// keeps the server's own settings.
	src := open(t, pools, base+"&tls=false&timeout=5s&readTimeout=30s&writeTimeout=30s")
	if n, err := src.Count(ctx, nil); err != nil || n != 1 {
		t.Fatalf("Count = %d, %v", n, err)
	}
}

func TestNamesAndErrors(t *testing.T) {
	uri := testenv.MySQL(t)
	u, _ := url.Parse(uri)
	run(t, uri,
		"CREATE TABLE `Payments` (`Amount USD` DECIMAL(8,2), `select` VARCHAR(10))",
		"INSERT INTO `Payments` VALUES (1.10, 'a'), (2.20, 'b')",
		"CREATE TABLE `odd.name``q` (id INT)",
		"INSERT INTO `odd.name``q` VALUES (1)",
		"CREATE TABLE ten (x INT)",
		"INSERT INTO ten VALUES (0), (1), (2), (3), (4), (5), (6), (7), (8), (9)",
		// Ten billion rows to count: only the time limit ends it.
		"CREATE VIEW slow AS SELECT a.x FROM ten a, ten b, ten c, ten d, ten e, ten f, ten g, ten h, ten i, ten j",
	)
	pools := newPools(t, dbpool.Options{ConnectTimeout: 2 * time.Second})
	ctx := testCtx(t)
	dbName := strings.TrimPrefix(u.Path, "/")
	count := func(uri, filters string) (int64, error) {
		src, err := mysql.Open(ctx, uri, mysql.Options{Pools: pools})
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
		{"Payments", "", 2, ""},
		{"payments", "", 2, ""},
		{dbName + ".Payments", "", 2, ""},
		{"Payments", `[{"column":"Amount USD","op":"gt","value":2}]`, 1, ""},
		{"Payments", `[{"column":"select","op":"eq","value":"a"}]`, 1, ""},
		{"`odd.name``q`", "", 1, ""},
		{"nope", "", 0, kalla.ENOTFOUND},
		{"kt_nope.Payments", "", 0, kalla.ENOTFOUND},
		{"a.b.c", "", 0, kalla.EINVALID},
	} {
		t.Run(tc.table, func(t *testing.T) {
			n, err := count(withTable(t, uri, tc.table), tc.filters)
			if tc.code != "" {
				if kalla.ErrorCode(err) != tc.code {
					t.Fatalf("error %v (code %s), want %s", err, kalla.ErrorCode(err), tc.code)
				}
				t.Logf("as expected: %v", err)
				return
			}
			if err != nil || n != tc.want {
				t.Fatalf("Count = %d, %v; want %d", n, err, tc.want)
			}
		})
	}
	src := open(t, pools, withTable(t, uri, "Payments"))
	rows, types := stagedText(t, src)
	if len(rows) != 2 || rows[0][0] != "1.10" || types[0] != "DECIMAL(8,2)" {
		t.Errorf("staged %q %q", rows, types)
	}

	const badPW = "Sup3r-Secret_pw!"
	wrongPW := *u
	wrongPW.User = url.UserPassword(u.User.Username(), badPW)
	noDB := *u
	noDB.Path = "/kt_does_not_exist"
	silent := listenSilently(t)
	for _, tc := range []struct {
		name, uri, code, msg string
		within               time.Duration
	}{
		{"missing table param", uri, kalla.EINVALID, "missing ?table= in URI", time.Second},
		{"mariadb scheme", strings.Replace(withTable(t, uri, "Payments"), "mysql://", "mariadb://", 1), "", "", 2 * time.Second},
		{"password parameter", withTable(t, uri, "Payments") + "&password=" + badPW, kalla.EINVALID, "user part", time.Second},
		{"refused", "mysql://kalla:" + badPW + "@127.0.0.1:1/db?table=t", kalla.EUNAVAILABLE, "cannot reach source mysql://kalla:xxxxx@127.0.0.1:1/db?table=t", 3 * time.Second},
		{"silent server", "mysql://kalla:" + badPW + "@" + silent + "/db?table=t", kalla.EUNAVAILABLE, "cannot reach source", 5 * time.Second},
		{"wrong password", withTable(t, wrongPW.String(), "Payments"), kalla.EUNAVAILABLE, "rejected the user name or password", 5 * time.Second},
		{"no database", withTable(t, noDB.String(), "t"), kalla.ENOTFOUND, "database does not exist", 5 * time.Second},
	} {
		t.Run(tc.name, func(t *testing.T) {
			start := time.Now()
			src, err := mysql.Open(ctx, tc.uri, mysql.Options{Pools: pools})
			took := time.Since(start)
			if tc.code == "" {
				if err != nil {
					t.Fatal(err)
				}
				src.Close()
				return
			}
			if err == nil {
				t.Fatal("Open succeeded")
			}
			if kalla.ErrorCode(err) != tc.code {
				t.Errorf("code %s (%v), want %s", kalla.ErrorCode(err), err, tc.code)
			}
			for _, text := range []string{err.Error(), kalla.ErrorMessage(err)} {
				if strings.Contains(text, badPW) || strings.Contains(text, u.User.String()) {
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

	// A statement past its time limit is stopped by the server.
	slow, err := mysql.Open(ctx, withTable(t, uri, "slow"), mysql.Options{Pools: pools, PreviewTimeout: 300 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer slow.Close()
	start := time.Now()
	_, err = slow.Count(ctx, nil)
	took := time.Since(start)
	if kalla.ErrorCode(err) != kalla.EUNAVAILABLE || !strings.Contains(err.Error(), "time limit") || took > 3*time.Second {
		t.Errorf("Count past the time limit: %v after %v, want EUNAVAILABLE after about 300ms", err, took)
	}
	t.Logf("slow count: %v after %v", err, took.Round(time.Millisecond))
}

func TestStageCancelAndPool(t *testing.T) {
	uri := testenv.MySQL(t)
	run(t, uri,
		"CREATE TABLE big (id BIGINT PRIMARY KEY, s VARCHAR(40), amount DECIMAL(12,2))",
		`INSERT INTO big SELECT n, MD5(n), (n % 100000) / 100 FROM (
			SELECT 1 + a.d + 10*b.d + 100*c.d + 1000*e.d + 10000*f.d + 100000*g.d AS n
			FROM (SELECT 0 d UNION ALL SELECT 1 UNION ALL SELECT 2 UNION ALL SELECT 3 UNION ALL SELECT 4 UNION ALL SELECT 5 UNION ALL SELECT 6 UNION ALL SELECT 7 UNION ALL SELECT 8 UNION ALL SELECT 9) a,
			     (SELECT 0 d UNION ALL SELECT 1 UNION ALL SELECT 2 UNION ALL SELECT 3 UNION ALL SELECT 4 UNION ALL SELECT 5 UNION ALL SELECT 6 UNION ALL SELECT 7 UNION ALL SELECT 8 UNION ALL SELECT 9) b,
			     (SELECT 0 d UNION ALL SELECT 1 UNION ALL SELECT 2 UNION ALL SELECT 3 UNION ALL SELECT 4 UNION ALL SELECT 5 UNION ALL SELECT 6 UNION ALL SELECT 7 UNION ALL SELECT 8 UNION ALL SELECT 9) c,
			     (SELECT 0 d UNION ALL SELECT 1 UNION ALL SELECT 2 UNION ALL SELECT 3 UNION ALL SELECT 4 UNION ALL SELECT 5 UNION ALL SELECT 6 UNION ALL SELECT 7 UNION ALL SELECT 8 UNION ALL SELECT 9) e,
			     (SELECT 0 d UNION ALL SELECT 1 UNION ALL SELECT 2 UNION ALL SELECT 3 UNION ALL SELECT 4 UNION ALL SELECT 5 UNION ALL SELECT 6 UNION ALL SELECT 7 UNION ALL SELECT 8 UNION ALL SELECT 9) f,
			     (SELECT 0 d UNION ALL SELECT 1 UNION ALL SELECT 2) g) nums`,
	)
	pools := newPools(t, dbpool.Options{MaxConns: 2})
	src := open(t, pools, withTable(t, uri, "big"))
	e, err := engine.Open(testCtx(t), engine.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	n, err := src.Stage(testCtx(t), nil, e.Sink("all"))
	if err != nil || n != 300000 {
		t.Fatalf("Stage = %d, %v", n, err)
	}
	ctx, cancel := context.WithCancel(testCtx(t))
	sink := &cancellingSink{Sink: e.Sink("cancelled"), after: 50_000, cancel: cancel}
	_, err = src.Stage(ctx, nil, sink)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("Stage: %v, want context.Canceled", err)
	}
	if sink.rows > 150_000 {
		t.Errorf("%d rows appended after cancelling at 50000", sink.rows)
	}
	if took := time.Since(sink.at); took > 2*time.Second {
		t.Errorf("cancelled Stage returned after %v", took)
	}
	t.Logf("cancelled after %d rows; Stage returned %v later", sink.rows, time.Since(sink.at).Round(time.Millisecond))
	var wg sync.WaitGroup
	for range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if n, err := src.Count(testCtx(t), nil); err != nil || n != 300000 {
				t.Errorf("Count = %d, %v", n, err)
			}
		}()
	}
	wg.Wait()
	for _, s := range pools.Stats() {
		if s.MaxOpen > 2 {
			t.Errorf("pool %s opened %d connections, cap 2", s.Source, s.MaxOpen)
		}
		t.Logf("pool %+v", s)
	}
}

// cancellingSink cancels a context once after rows have been appended,
// so that a test cancels a Stage while rows are streaming.
type cancellingSink struct {
	connector.Sink
	after  int
	cancel context.CancelFunc
	rows   int
	at     time.Time
}

func (s *cancellingSink) Append(ctx context.Context, cols []kalla.Column, fill func(connector.RowWriter) error) (int64, error) {
	return s.Sink.Append(ctx, cols, func(w connector.RowWriter) error {
		return fill(writerFunc(func(vals ...driver.Value) error {
			s.rows++
			if s.rows == s.after {
				s.at = time.Now()
				s.cancel()
			}
			return w.WriteRow(vals...)
		}))
	})
}

type writerFunc func(vals ...driver.Value) error

func (f writerFunc) WriteRow(vals ...driver.Value) error { return f(vals...) }

// listenSilently starts a TCP listener that accepts and never answers.
func listenSilently(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var conns []net.Conn
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			c.Close()
		}
	})
	return ln.Addr().String()
}

// TestBoundedTotal checks a scoped load's total against the true count:
// exact within the cap, a labelled lower bound beyond it or past the time
// budget, exact on request.
func TestBoundedTotal(t *testing.T) {
	uri := testenv.MySQL(t)
	run(t, uri, "CREATE TABLE t (id INT, even BOOL)",
		"INSERT INTO t SELECT seq, seq % 2 = 0 FROM seq_1_to_50",
		"CREATE VIEW slow AS SELECT id FROM t WHERE SLEEP(0.01) = 0")
	pools := newPools(t, dbpool.Options{MaxConns: 1})
	ctx := testCtx(t)
	src := open(t, pools, withTable(t, uri, "t"))
	even := []kalla.Filter{{Column: "even", Op: kalla.OpEq, Values: []kalla.Scalar{{Text: "1", IsNumber: true}}}}
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
		{"filtered beyond the cap", even, 5, connector.LoadOptions{CountCap: 20}, 21, connector.TotalAtLeast},
		{"exact on request", even, 5, connector.LoadOptions{CountCap: 20, ExactTotal: true}, 25, connector.TotalExact},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, err := connector.LoadWith(ctx, src, "t", tc.filters, tc.limit, tc.opts)
			if err != nil {
				t.Fatal(err)
			}
			if p.TotalRows != tc.total || p.TotalKind != tc.kind || p.PreviewRows != min(tc.limit, int(tc.total)) {
				t.Errorf("total %d %s, %d rows; want %d %s", p.TotalRows, p.TotalKind, p.PreviewRows, tc.total, tc.kind)
			}
		})
	}
	slow := open(t, pools, withTable(t, uri, "slow"))
	p, err := connector.LoadWith(ctx, slow, "slow", nil, 2, connector.LoadOptions{CountBudget: 100 * time.Millisecond})
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
