package dialect_test

import (
	"context"
	"database/sql"
	"errors"
	"math/big"
	"regexp"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/go-sql-driver/mysql"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/kalla-recon/kalla/internal/dialect"
	"github.com/kalla-recon/kalla/internal/kalla"
	"github.com/kalla-recon/kalla/internal/testenv"
)

// The fuzz table has an id, a text column under the fuzzed name and an
// amount; the canary table holds a secret no statement may read, drop or
// change.
const (
	fuzzTable   = "kalla_fuzz"
	fuzzID      = "kalla_id"
	fuzzAmount  = "kalla_amount"
	canaryTable = "kalla_canary"
	canaryValue = "kalla-canary-secret"
)

// fuzzText are the text values of the fuzz table besides the two fuzzed
// values; nil is NULL.
var fuzzText = []*string{
	ptr(""), ptr("a"), ptr("A"), ptr("abc"), ptr("'; DROP TABLE kalla_canary; --"), ptr(`\`),
	ptr("%"), ptr("_"), ptr("é"), ptr("名前"), nil, ptr("a "), ptr(canaryValue),
}

// fuzzAmounts cycle over the rows, as each dialect prints numeric(12,2).
var fuzzAmounts = []*string{ptr("100.10"), ptr("100.00"), ptr("-5.50"), ptr("0.00"), ptr("12345.67"), nil}

func ptr(s string) *string { return &s }

// fuzzRow is one row of the fuzz table.
type fuzzRow struct {
	id     int
	text   *string
	amount *string
}

func fuzzRows(d dialect.Dialect, a, b string) []fuzzRow {
	texts := append([]*string(nil), fuzzText...)
	for _, v := range []string{a, b} {
		// Only values the server can store; others are still filtered on.
		if utf8.ValidString(v) && len(v) <= 60000 && !(d == dialect.Postgres && strings.IndexByte(v, 0) >= 0) {
			texts = append(texts, ptr(v))
		}
	}
	rows := make([]fuzzRow, len(texts))
	for i, t := range texts {
		rows[i] = fuzzRow{id: i + 1, text: t, amount: fuzzAmounts[i%len(fuzzAmounts)]}
	}
	return rows
}

// fuzzFilter builds the filter a fuzz input describes. sel picks the
// operator (low 4 bits, modulo the number of operators) and: 0x10 targets
// the amount column instead of the fuzzed one, 0x20 marks the values as
// JSON numbers, 0x40 spells the column in upper case, 0x80 uses a itself as
// the column name.
func fuzzFilter(name string, sel uint8, a, b string) kalla.Filter {
	f := kalla.Filter{Column: name, Op: kalla.Ops[int(sel&0x0f)%len(kalla.Ops)]}
	if sel&0x10 != 0 {
		f.Column = fuzzAmount
	}
	if sel&0x40 != 0 {
		f.Column = strings.ToUpper(f.Column)
	}
	if sel&0x80 != 0 {
		f.Column = a
	}
	num := sel&0x20 != 0
	switch f.Op {
	case kalla.OpBetween, kalla.OpIn:
		f.IsArray = true
		f.Values = []kalla.Scalar{{Text: a, IsNumber: num}, {Text: b, IsNumber: num}}
	case kalla.OpIsNull, kalla.OpIsNotNull:
		// No value, unless b's length is odd: then one the oracle refuses.
		if len(b)%2 == 1 {
			f.Values = []kalla.Scalar{{Text: a, IsNumber: num}}
		}
	default:
		f.Values = []kalla.Scalar{{Text: a, IsNumber: num}}
	}
	return f
}

// verdict is what the oracle expects of Where.
type verdict int

const (
	mustAccept verdict = iota
	mustReject
	mayReject // a number beyond a dialect's DECIMAL range
)

var oracleNumber = regexp.MustCompile(`^[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?([0-9]+))?$`)

// oracle decides, independently of package dialect, whether Where must
// accept f on the columns [fuzzID, name, fuzzAmount], and which column it
// targets (0, 1, 2).
func oracle(d dialect.Dialect, f kalla.Filter, name string) (verdict, int) {
	if strings.TrimSpace(f.Column) == "" {
		return mustReject, -1
	}
	if f.Op == kalla.OpLike && f.Values[0].IsNumber {
		return mustReject, -1
	}
	if !f.Op.TakesValue() && len(f.Values) > 0 {
		return mustReject, -1
	}
	names := []string{fuzzID, name, fuzzAmount}
	target := -1
	for i, n := range names {
		if n == f.Column {
			target = i
			break
		}
	}
	if target < 0 {
		for i, n := range names {
			if strings.EqualFold(n, f.Column) {
				if target >= 0 {
					return mustReject, -1 // ambiguous
				}
				target = i
			}
		}
	}
	if target < 0 {
		return mustReject, -1
	}
	for _, v := range f.Values {
		if !utf8.ValidString(v.Text) || (d == dialect.Postgres && strings.IndexByte(v.Text, 0) >= 0) {
			return mustReject, target
		}
	}
	if f.Op == kalla.OpLike {
		p := f.Values[0].Text
		if n := len(p) - len(strings.TrimRight(p, `\`)); n%2 == 1 {
			return mustReject, target
		}
		return mustAccept, target
	}
	if target == 1 {
		return mustAccept, target
	}
	v := mustAccept
	for _, s := range f.Values {
		m := oracleNumber.FindStringSubmatch(s.Text)
		if m == nil {
			return mustReject, target
		}
		if len(m[3]) > 2 || len(m[1]) > 30 {
			v = mayReject
		}
	}
	return v, target
}

// rat parses a number the oracle accepted.
func rat(s string) *big.Rat {
	r, ok := new(big.Rat).SetString(strings.TrimPrefix(s, "+"))
	if !ok {
		panic("oracle accepted " + s)
	}
	return r
}

// likeMatch is LIKE as Kalla defines it: % any run, _ one character, \
// escapes the next character; case-sensitive.
func likeMatch(s, p string) bool {
	sr, pr := []rune(s), []rune(p)
	var match func(i, j int) bool
	memo := map[[2]int]bool{}
	match = func(i, j int) bool {
		k := [2]int{i, j}
		if v, ok := memo[k]; ok {
			return v
		}
		var r bool
		switch {
		case j == len(pr):
			r = i == len(sr)
		case pr[j] == '%':
			r = match(i, j+1) || (i < len(sr) && match(i+1, j))
		case pr[j] == '_':
			r = i < len(sr) && match(i+1, j+1)
		case pr[j] == '\\' && j+1 < len(pr):
			r = i < len(sr) && sr[i] == pr[j+1] && match(i+1, j+2)
		default:
			r = i < len(sr) && sr[i] == pr[j] && match(i+1, j+1)
		}
		memo[k] = r
		return r
	}
	return match(0, 0)
}

// expectedCount counts, in Go, the rows f selects from the target column.
func expectedCount(rows []fuzzRow, f kalla.Filter, target int) int64 {
	var n int64
	for _, r := range rows {
		var v *string
		switch target {
		case 0:
			v = ptr(big.NewInt(int64(r.id)).String())
		case 1:
			v = r.text
		case 2:
			v = r.amount
		}
		switch {
		case f.Op == kalla.OpIsNull:
			if v == nil {
				n++
			}
			continue
		case f.Op == kalla.OpIsNotNull:
			if v != nil {
				n++
			}
			continue
		case v == nil:
			continue // NULL matches nothing else
		}
		vals := f.Values
		var cmp func(x, y string) int
		if target == 1 || f.Op == kalla.OpLike {
			cmp = strings.Compare
		} else {
			cmp = func(x, y string) int { return rat(x).Cmp(rat(y)) }
		}
		var ok bool
		switch f.Op {
		case kalla.OpEq:
			ok = cmp(*v, vals[0].Text) == 0
		case kalla.OpNeq:
			ok = cmp(*v, vals[0].Text) != 0
		case kalla.OpGt:
			ok = cmp(*v, vals[0].Text) > 0
		case kalla.OpGte:
			ok = cmp(*v, vals[0].Text) >= 0
		case kalla.OpLt:
			ok = cmp(*v, vals[0].Text) < 0
		case kalla.OpLte:
			ok = cmp(*v, vals[0].Text) <= 0
		case kalla.OpBetween:
			ok = cmp(*v, vals[0].Text) >= 0 && cmp(*v, vals[1].Text) <= 0
		case kalla.OpIn:
			ok = cmp(*v, vals[0].Text) == 0 || cmp(*v, vals[1].Text) == 0
		case kalla.OpLike:
			ok = likeMatch(*v, vals[0].Text)
		}
		if ok {
			n++
		}
	}
	return n
}

var placeholderRE = map[dialect.Dialect]*regexp.Regexp{
	dialect.Postgres: regexp.MustCompile(`\$[0-9]+`),
	dialect.DuckDB:   regexp.MustCompile(`\$[0-9]+`),
	dialect.MySQL:    regexp.MustCompile(`\?`),
}

// checkShape checks the clause alone: once the one quoted identifier is
// removed, it holds exactly one placeholder per argument and none of the
// values' text.
func checkShape(t *testing.T, d dialect.Dialect, clause string, args []any, col string) {
	t.Helper()
	rest := strings.ReplaceAll(clause, d.QuoteIdent(col), "")
	if got := len(placeholderRE[d].FindAllString(rest, -1)); got != len(args) {
		t.Fatalf("%s: %d placeholders for %d args in %q", d, got, len(args), clause)
	}
	if !regexp.MustCompile(`^ WHERE \([A-Za-z0-9_ (),$?=<>'.\\]*\)$`).MatchString(rest) {
		t.Fatalf("%s: clause has unexpected text outside the identifier: %q", d, clause)
	}
}

// fuzzTarget is one server the fuzz inputs run on.
type fuzzTarget struct {
	name string
	d    dialect.Dialect
	run  func(t *testing.T, name string, rows []fuzzRow, f kalla.Filter)
}

// FuzzWhere throws arbitrary column names and values at Where and runs the
// result on real servers: DuckDB in memory, and Postgres and MariaDB when
// testenv has them (each in both its server-side and client-side binding
// modes). For each input it creates a table with a column under the fuzzed
// name, fills it, and runs SELECT count(*) ... WHERE. The statement must
// either be refused by Where with EINVALID, or run and return exactly the
// count computed in Go from the rows; a canary table must still exist,
// unchanged, and its secret must never come back.
func FuzzWhere(f *testing.F) {
	seeds := []struct {
		name string
		sel  uint8
		a, b string
	}{
		{"col", 0, "a", "b"},
		{"'; DROP TABLE kalla_canary; --", 0, "'; DROP TABLE kalla_canary; --", "x"},
		{"x", 1, "' OR '1'='1", "' OR 1=1 --"},
		{`"`, 2, `"`, `""`},
		{"`", 3, "`", "``"},
		{`\`, 4, `\`, `\\`},
		{"a\x00b", 0, "a\x00b", "\x00"},
		{"名前", 6, "名前", "é"},
		{"select", 7, "a", "名前"},
		{`Weird "Col"`, 8, `%\_%`, "x"},
		{"x` = 1 OR `y", 0, "x", "y"},
		{`x" = 1 OR "y`, 1, "x", "y"},
		{"c", 8, `a%\`, ""},
		{"c", 8, `\%`, ""},
		{"c", 0x10, "100.10", "1e3"},
		{"c", 0x12 | 0x20, "-5.5", "0"},
		{"c", 0x16, "99.999", "100.101"},
		{"c", 0x17, "100.1", "12345.670"},
		{"c", 0x10, "abc", "1"},
		{"c", 0x10, "1; DROP TABLE kalla_canary", "1"},
		{"c", 0x13, "1e-400", "1e400"},
		{"c", 0x90, "KALLA_ID", "3"},
		{"c", 0x80, "nope", "x"},
		{"c", 0x80, "", "x"},
		{"Mixed", 0x40, "a", "A"},
		{"c", 0x10, "0) UNION SELECT secret FROM kalla_canary --", "1"},
		{"c", 0, "\xff\xfe", "x"},
		{"\xff", 0, "x", "y"},
		{"  ", 0, "x", "y"},
		{"trailing ", 0, "a ", "a"},
		{strings.Repeat("n", 70), 0, "a", "b"},
		{"kalla_amount", 0, "a", "b"},
		{"c", 5, canaryValue, "x"},
		// Placeholder and comment syntax inside names: client-side
		// interpolation (pgx simple protocol, go-sql-driver
		// interpolateParams) must not read these as placeholders.
		{"$1", 0, "$1", "?"},
		{"?", 7, "?", "$1"},
		{"a -- b", 1, "--", "#"},
		{"/* x", 2, "*/", "/*"},
		{"#", 3, "# x\n", "x"},
		{"$$", 4, "$$", "$a$"},
		{"$a$ x $a$", 0, "$a$", "x"},
	}
	for _, s := range seeds {
		f.Add(s.name, s.sel, s.a, s.b)
	}

	ctx := context.Background()
	targets := []fuzzTarget{duckFuzzTarget(f, ctx)}
	if uri := optional(f, testenv.EnvPostgresURL, testenv.Postgres); uri != "" {
		targets = append(targets, pgFuzzTarget(f, ctx, uri))
	}
	if uri := optional(f, testenv.EnvMySQLURL, testenv.MySQL); uri != "" {
		targets = append(targets, mysqlFuzzTargets(f, ctx, uri)...)
	}

	f.Fuzz(func(t *testing.T, name string, sel uint8, a, b string) {
		filter := fuzzFilter(name, sel, a, b)
		for _, tg := range targets {
			if name == "" || strings.IndexByte(name, 0) >= 0 || !utf8.ValidString(name) {
				// No server holds such a column: Where alone must refuse to
				// use it, and may use the other columns.
				cols := []kalla.Column{{Name: fuzzID, DataType: "integer"}, {Name: name, DataType: "text"}, {Name: fuzzAmount, DataType: "numeric(12,2)"}}
				clause, args, err := tg.d.Where([]kalla.Filter{filter}, cols, 1)
				v, target := oracle(tg.d, filter, name)
				switch {
				case err != nil && kalla.ErrorCode(err) != kalla.EINVALID:
					t.Fatalf("%s: Where error is not EINVALID: %v", tg.name, err)
				case err != nil:
				case target == 1 || v == mustReject:
					t.Fatalf("%s: Where accepted %+v on column %q: %q", tg.name, filter, name, clause)
				default:
					checkShape(t, tg.d, clause, args, cols[target].Name)
				}
				continue
			}
			tg.run(t, name, fuzzRows(tg.d, a, b), filter)
		}
	})
}

// checkWhere runs Where on the real columns and the oracle; it returns the
// clause to run, or ok=false when Where rightly refused the filter.
func checkWhere(t *testing.T, tg string, d dialect.Dialect, f kalla.Filter, name string, cols []kalla.Column) (clause string, args []any, target int, ok bool) {
	t.Helper()
	clause, args, err := d.Where([]kalla.Filter{f}, cols, 1)
	v, target := oracle(d, f, name)
	switch {
	case err != nil && kalla.ErrorCode(err) != kalla.EINVALID:
		t.Fatalf("%s: Where %+v: error is not EINVALID: %v", tg, f, err)
	case err != nil && v == mustAccept:
		t.Fatalf("%s: Where refused a valid filter %+v: %v", tg, f, err)
	case err != nil:
		return "", nil, target, false
	case v == mustReject:
		t.Fatalf("%s: Where accepted an invalid filter %+v: %q %q", tg, f, clause, args)
	}
	checkShape(t, d, clause, args, cols[target].Name)
	return clause, args, target, true
}

// columnsMatch fails unless the table's columns, read back from the
// server, are exactly the three the DDL meant: a quoting slip would have
// created other columns or failed with a syntax error.
func columnsMatch(t *testing.T, tg string, cols []kalla.Column, name string) {
	t.Helper()
	if len(cols) != 3 || cols[0].Name != fuzzID || cols[1].Name != name || cols[2].Name != fuzzAmount {
		t.Fatalf("%s: table created from name %q has columns %+v", tg, name, cols)
	}
}

// fuzzDDL creates the fuzz table. Its text column compares bytewise (code
// point order) in every dialect, without padding, so that Go's string
// comparison is the oracle.
func fuzzDDL(d dialect.Dialect, name string) string {
	types := map[dialect.Dialect][2]string{
		dialect.Postgres: {`text COLLATE "C"`, "numeric(12,2)"},
		dialect.MySQL:    {"text CHARACTER SET utf8mb4 COLLATE utf8mb4_nopad_bin", "decimal(12,2)"},
		dialect.DuckDB:   {"VARCHAR", "DECIMAL(12,2)"},
	}[d]
	text, num := types[0], types[1]
	temp := ""
	if d == dialect.MySQL {
		temp = "TEMPORARY "
	}
	return "CREATE " + temp + "TABLE " + d.QuoteIdent(fuzzTable) + " (" + d.QuoteIdent(fuzzID) + " integer, " +
		d.QuoteIdent(name) + " " + text + ", " + d.QuoteIdent(fuzzAmount) + " " + num + ")"
}

func fuzzInsert(d dialect.Dialect, name string, rows []fuzzRow) (string, []any) {
	var vals []string
	var args []any
	for _, r := range rows {
		n := len(args)
		vals = append(vals, "("+d.Placeholder(n+1)+", "+d.Placeholder(n+2)+", "+d.Placeholder(n+3)+")")
		var text, amount any
		if r.text != nil {
			text = *r.text
		}
		if r.amount != nil {
			amount = *r.amount
		}
		args = append(args, r.id, text, amount)
	}
	return "INSERT INTO " + d.QuoteIdent(fuzzTable) + " (" + d.QuoteIdent(fuzzID) + ", " + d.QuoteIdent(name) + ", " +
		d.QuoteIdent(fuzzAmount) + ") VALUES " + strings.Join(vals, ", "), args
}

func canaryDDL(d dialect.Dialect) string {
	return "CREATE TABLE " + d.QuoteIdent(canaryTable) + " (secret varchar(100))"
}

func canaryInsert(d dialect.Dialect) string {
	return "INSERT INTO " + d.QuoteIdent(canaryTable) + " VALUES (" + d.Placeholder(1) + ")"
}

func canaryCheck(d dialect.Dialect) string {
	return "SELECT count(*) FROM " + d.QuoteIdent(canaryTable) + " WHERE secret = " + d.Placeholder(1)
}

func duckFuzzTarget(f *testing.F, ctx context.Context) fuzzTarget {
	d := dialect.DuckDB
	db := duckDB(f)
	for _, q := range []string{canaryDDL(d)} {
		if _, err := db.ExecContext(ctx, q); err != nil {
			f.Fatal(err)
		}
	}
	if _, err := db.ExecContext(ctx, canaryInsert(d), canaryValue); err != nil {
		f.Fatal(err)
	}
	q := sqlQuerier{db}
	return fuzzTarget{name: "duckdb", d: d, run: func(t *testing.T, name string, rows []fuzzRow, filter kalla.Filter) {
		if _, err := db.ExecContext(ctx, fuzzDDL(d, name)); err != nil {
			if strings.Contains(err.Error(), "already exists") {
				return // a duplicate column name, case-insensitively
			}
			t.Fatalf("duckdb: create with column %q: %v", name, err)
		}
		defer func() {
			if _, err := db.ExecContext(ctx, "DROP TABLE "+d.QuoteIdent(fuzzTable)); err != nil {
				t.Fatalf("duckdb: drop: %v", err)
			}
		}()
		ins, args := fuzzInsert(d, name, rows)
		if _, err := db.ExecContext(ctx, ins, args...); err != nil {
			t.Fatalf("duckdb: insert: %v", err)
		}
		cols := readColumns(t, ctx, d, q, fuzzTable)
		columnsMatch(t, "duckdb", cols, name)
		runCount(t, ctx, "duckdb", d, q.ints, rows, filter, name, cols)
	}}
}

// runCount runs the count for filter and checks it and the canary.
func runCount(t *testing.T, ctx context.Context, tg string, d dialect.Dialect, ints func(context.Context, string, ...any) ([]int64, error),
	rows []fuzzRow, filter kalla.Filter, name string, cols []kalla.Column) {
	t.Helper()
	clause, args, target, ok := checkWhere(t, tg, d, filter, name, cols)
	if ok {
		q := "SELECT count(*) FROM " + d.QuoteIdent(fuzzTable) + clause
		got, err := ints(ctx, q, args...)
		if err != nil {
			t.Fatalf("%s: %s %q: %v", tg, q, args, err)
		}
		if want := expectedCount(rows, filter, target); len(got) != 1 || got[0] != want {
			t.Fatalf("%s: %s %q: got %v, want [%d]", tg, q, args, got, want)
		}
	}
	n, err := ints(ctx, canaryCheck(d), canaryValue)
	if err != nil || len(n) != 1 || n[0] != 1 {
		t.Fatalf("%s: canary after %+v: %v, %v", tg, filter, n, err)
	}
}

func pgFuzzTarget(f *testing.F, ctx context.Context, uri string) fuzzTarget {
	d := dialect.Postgres
	// DescribeExec types parameters like the default cache mode without
	// caching statements across tables that are created and dropped.
	conn := pgConnect(f, uri, pgx.QueryExecModeDescribeExec)
	if _, err := conn.Exec(ctx, canaryDDL(d)); err != nil {
		f.Fatal(err)
	}
	if _, err := conn.Exec(ctx, canaryInsert(d), canaryValue); err != nil {
		f.Fatal(err)
	}
	return fuzzTarget{name: "postgres", d: d, run: func(t *testing.T, name string, rows []fuzzRow, filter kalla.Filter) {
		tx, err := conn.Begin(ctx)
		if err != nil {
			t.Fatal(err)
		}
		defer func() {
			if err := tx.Rollback(ctx); err != nil {
				t.Fatalf("rollback: %v", err)
			}
			n, err := pgQuerier{conn}.ints(ctx, canaryCheck(d), canaryValue)
			if err != nil || len(n) != 1 || n[0] != 1 {
				t.Fatalf("postgres: canary after the transaction: %v, %v", n, err)
			}
		}()
		if len(name) > 63 {
			// Postgres truncates identifiers to 63 bytes, so the column gets
			// another name: Where must not find the long one.
			if _, err := tx.Exec(ctx, fuzzDDL(d, name)); err != nil {
				t.Fatalf("postgres: create with long column %q: %v", name, err)
			}
			cols := readColumns(t, ctx, d, pgQuerier{tx.Conn()}, fuzzTable)
			if _, _, err := d.Where([]kalla.Filter{{Column: name, Op: kalla.OpEq, Values: []kalla.Scalar{{Text: "x"}}}}, cols, 1); kalla.ErrorCode(err) != kalla.EINVALID {
				t.Fatalf("postgres: truncated column %q: Where gave %v", name, err)
			}
			return
		}
		if _, err := tx.Exec(ctx, fuzzDDL(d, name)); err != nil {
			var pe *pgconn.PgError
			if errors.As(err, &pe) && pe.Code == "42701" { // duplicate_column
				return
			}
			t.Fatalf("postgres: create with column %q: %v", name, err)
		}
		ins, args := fuzzInsert(d, name, rows)
		if _, err := tx.Exec(ctx, ins, args...); err != nil {
			t.Fatalf("postgres: insert: %v", err)
		}
		q := pgQuerier{tx.Conn()}
		cols := readColumns(t, ctx, d, q, fuzzTable)
		columnsMatch(t, "postgres", cols, name)
		for _, mode := range []pgx.QueryExecMode{pgx.QueryExecModeDescribeExec, pgx.QueryExecModeSimpleProtocol} {
			ints := func(ctx context.Context, query string, args ...any) ([]int64, error) {
				return q.ints(ctx, query, append([]any{mode}, args...)...)
			}
			runCount(t, ctx, "postgres/"+mode.String(), d, ints, rows, filter, name, cols)
		}
	}}
}

// mysqlFuzzTargets returns MariaDB with server-side prepared statements and
// with the driver's client-side interpolation, each on one pinned
// connection holding its own temporary fuzz table (fast to create and drop).
func mysqlFuzzTargets(f *testing.F, ctx context.Context, uri string) []fuzzTarget {
	d := dialect.MySQL
	var out []fuzzTarget
	for i, interpolate := range []bool{false, true} {
		db := openSQL(f, "mysql", mysqlDSN(f, uri, interpolate))
		conn, err := db.Conn(ctx)
		if err != nil {
			f.Fatal(err)
		}
		f.Cleanup(func() { conn.Close() })
		if i == 0 {
			if _, err := conn.ExecContext(ctx, canaryDDL(d)); err != nil {
				f.Fatal(err)
			}
			if _, err := conn.ExecContext(ctx, canaryInsert(d), canaryValue); err != nil {
				f.Fatal(err)
			}
		}
		tg := map[bool]string{false: "mysql/prepared", true: "mysql/interpolated"}[interpolate]
		q := sqlQuerier{conn}
		out = append(out, fuzzTarget{name: tg, d: d, run: func(t *testing.T, name string, rows []fuzzRow, filter kalla.Filter) {
			if _, err := conn.ExecContext(ctx, fuzzDDL(d, name)); err != nil {
				var me *mysql.MySQLError
				// 1059 identifier too long, 1060 duplicate column (MariaDB
				// compares names case- and accent-insensitively), 1166
				// incorrect column name (trailing space, characters beyond
				// the BMP).
				if errors.As(err, &me) && (me.Number == 1059 || me.Number == 1060 || me.Number == 1166) {
					return
				}
				t.Fatalf("%s: create with column %q: %v", tg, name, err)
			}
			defer func() {
				if _, err := conn.ExecContext(ctx, "DROP TEMPORARY TABLE "+d.QuoteIdent(fuzzTable)); err != nil {
					t.Fatalf("%s: drop: %v", tg, err)
				}
			}()
			ins, args := fuzzInsert(d, name, rows)
			if _, err := conn.ExecContext(ctx, ins, args...); err != nil {
				t.Fatalf("%s: insert: %v", tg, err)
			}
			cols := showColumns(t, ctx, conn)
			columnsMatch(t, tg, cols, name)
			runCount(t, ctx, tg, d, q.ints, rows, filter, name, cols)
		}})
	}
	return out
}

// showColumns reads a temporary table's columns, which information_schema
// does not list in MariaDB 10.
func showColumns(t *testing.T, ctx context.Context, conn *sql.Conn) []kalla.Column {
	t.Helper()
	rows, err := conn.QueryContext(ctx, "SHOW COLUMNS FROM "+dialect.MySQL.QuoteIdent(fuzzTable))
	if err != nil {
		t.Fatalf("show columns: %v", err)
	}
	defer rows.Close()
	var cols []kalla.Column
	for rows.Next() {
		var field, typ, null string
		var key, def, extra sql.NullString
		if err := rows.Scan(&field, &typ, &null, &key, &def, &extra); err != nil {
			t.Fatalf("show columns: %v", err)
		}
		cols = append(cols, kalla.Column{Name: field, DataType: typ, Nullable: null == "YES"})
	}
	if err := rows.Err(); err != nil {
		t.Fatalf("show columns: %v", err)
	}
	return cols
}
