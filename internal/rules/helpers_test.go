package rules

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	_ "github.com/duckdb/duckdb-go/v2"

	"github.com/kalla-recon/kalla/internal/kalla"
)

// testDB is a DuckDB database staged the way the engine stages a run:
// tables __kalla_left/__kalla_right and views left_src/right_src with the
// hidden row ids.
type testDB struct {
	t     *testing.T
	conn  *sql.Conn
	left  Side
	right Side
}

// newTestDB stages two CSV texts (headers included).
func newTestDB(t *testing.T, leftCSV, rightCSV string, leftPK, rightPK []string, threads int) *testDB {
	t.Helper()
	db, err := sql.Open("duckdb", "")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	conn, err := db.Conn(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	tdb := &testDB{t: t, conn: conn}
	if threads > 0 {
		tdb.exec(fmt.Sprintf("SET threads = %d", threads))
	}
	dir := t.TempDir()
	for i, data := range []string{leftCSV, rightCSV} {
		name := []string{"left", "right"}[i]
		path := filepath.Join(dir, name+".csv")
		if err := os.WriteFile(path, []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
		tdb.stageFile(name, fmt.Sprintf("read_csv('%s', header = true, auto_type_candidates = ['BIGINT', 'DECIMAL(38,10)', 'DATE', 'TIMESTAMP', 'VARCHAR'])", path), [][]string{leftPK, rightPK}[i])
	}
	return tdb
}

// stageFile creates side name's table from a table function or query.
func (d *testDB) stageFile(name, from string, pk []string) {
	d.t.Helper()
	table := "__kalla_" + name
	d.exec(fmt.Sprintf("CREATE OR REPLACE TABLE %s AS SELECT * FROM %s", table, from))
	d.exec(fmt.Sprintf("CREATE OR REPLACE VIEW %s_src AS SELECT *, rowid AS __kalla_%s_rid FROM %s", name, name, table))
	rows, err := d.conn.QueryContext(context.Background(), "SELECT column_name, column_type FROM (DESCRIBE "+table+")")
	if err != nil {
		d.t.Fatal(err)
	}
	defer rows.Close()
	var cols []kalla.Column
	for rows.Next() {
		var c kalla.Column
		if err := rows.Scan(&c.Name, &c.EngineType); err != nil {
			d.t.Fatal(err)
		}
		c.DataType = c.EngineType
		cols = append(cols, c)
	}
	var n int64
	if err := d.conn.QueryRowContext(context.Background(), "SELECT coalesce(max(rowid) + 1, 0) FROM "+table).Scan(&n); err != nil {
		d.t.Fatal(err)
	}
	s := Side{Name: name, Alias: name + "s", View: name + "_src", RID: "__kalla_" + name + "_rid", Cols: cols, PK: pk, IDs: n}
	if name == "left" {
		d.left = s
	} else {
		d.right = s
	}
}

func (d *testDB) exec(q string) {
	d.t.Helper()
	if _, err := d.conn.ExecContext(context.Background(), q); err != nil {
		d.t.Fatalf("%v\n%s", err, q)
	}
}

// compile compiles rules given as JSON (a list) against the staged sides.
func (d *testDB) compile(rulesJSON string) *Plan {
	d.t.Helper()
	rec := `{"recipe_id": "t", "sources": {"left": {"alias": "lefts", "uri": "l.csv", "primary_key": ["x"]}, "right": {"alias": "rights", "uri": "r.csv", "primary_key": ["x"]}}, "rules": ` + rulesJSON + `}`
	r, err := kalla.ParseRecipe([]byte(rec))
	if err != nil {
		d.t.Fatalf("parse rules: %v", err)
	}
	p, err := Compile(Input{Rules: r.Rules, Left: d.left, Right: d.right}, DuckDB)
	if err != nil {
		d.t.Fatalf("compile: %v", err)
	}
	return p
}

// pairs returns the matched pairs as "leftpk rightpk rule" lines, ordered.
func (d *testDB) pairs() []string {
	d.t.Helper()
	rows, err := d.conn.QueryContext(context.Background(), `SELECT CAST(__kalla_lpk0 AS VARCHAR), CAST(__kalla_rpk0 AS VARCHAR), __kalla_rule, __kalla_status, __kalla_score FROM __kalla_match ORDER BY __kalla_lrid, __kalla_rrid`)
	if err != nil {
		d.t.Fatal(err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var l, r, rule, status sql.NullString
		var score float64
		if err := rows.Scan(&l, &r, &rule, &status, &score); err != nil {
			d.t.Fatal(err)
		}
		out = append(out, fmt.Sprintf("%s %s %s", l.String, r.String, rule.String))
	}
	return out
}

// query returns the rows of q as lines with fields joined by " | ".
func (d *testDB) query(q string) []string {
	d.t.Helper()
	rows, err := d.conn.QueryContext(context.Background(), q)
	if err != nil {
		d.t.Fatalf("%v\n%s", err, q)
	}
	defer rows.Close()
	cols, _ := rows.Columns()
	var out []string
	for rows.Next() {
		vals := make([]sql.NullString, len(cols))
		ptrs := make([]any, len(cols))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		if err := rows.Scan(ptrs...); err != nil {
			d.t.Fatal(err)
		}
		s := make([]string, len(cols))
		for i, v := range vals {
			s[i] = v.String
		}
		out = append(out, strings.Join(s, " | "))
	}
	return out
}

// recordingDB runs statements on conn and keeps them, so a test can check
// the plan of every statement a plan ran.
type recordingDB struct {
	conn *sql.Conn
	stmt []string
}

func (r *recordingDB) Exec(ctx context.Context, q string, args ...any) error {
	r.stmt = append(r.stmt, q)
	_, err := r.conn.ExecContext(ctx, q, args...)
	return err
}

func (r *recordingDB) Query(ctx context.Context, q string, each func(Row) error) error {
	r.stmt = append(r.stmt, q)
	return QuerySQL(ctx, r.conn, q, each)
}

// execute runs plan p on the test database and returns its report.
func (d *testDB) execute(p *Plan) *kalla.RulesReport {
	d.t.Helper()
	if err := p.Execute(d.t.Context(), SQLDB{d.conn}); err != nil {
		d.t.Fatal(err)
	}
	rep, err := p.Report(d.t.Context(), SQLDB{d.conn})
	if err != nil {
		d.t.Fatal(err)
	}
	return rep
}
