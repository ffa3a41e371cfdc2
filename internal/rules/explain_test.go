package rules

import (
	"context"
	"database/sql"
	"fmt"
	"regexp"
	"strings"
	"testing"
)

// explainDB runs EXPLAIN on every statement that reads data before running
// it, and fails the test on a join DuckDB can only do by comparing every
// row with every row.
type explainDB struct {
	t     *testing.T
	conn  *sql.Conn
	joins map[string]int // join operators seen
	n     int            // statements explained
}

var forbidden = regexp.MustCompile(`NESTED_LOOP_JOIN|BLOCKWISE_NL_JOIN|CROSS_PRODUCT`)
var joinOp = regexp.MustCompile(`[A-Z_]*JOIN[A-Z_]*|CROSS_PRODUCT`)

func (d *explainDB) explain(ctx context.Context, q string, args ...any) {
	d.t.Helper()
	u := strings.ToUpper(strings.TrimSpace(q))
	if !(strings.Contains(u, " AS SELECT") || strings.HasPrefix(u, "INSERT") || strings.HasPrefix(u, "SELECT")) || strings.Contains(u, " VALUES ") {
		return
	}
	rows, err := d.conn.QueryContext(ctx, "EXPLAIN "+q, args...)
	if err != nil {
		d.t.Fatalf("EXPLAIN failed: %v\n%s", err, q)
	}
	defer rows.Close()
	var plan strings.Builder
	for rows.Next() {
		var k, v string
		if err := rows.Scan(&k, &v); err != nil {
			d.t.Fatal(err)
		}
		plan.WriteString(v)
	}
	d.n++
	for _, op := range joinOp.FindAllString(plan.String(), -1) {
		d.joins[op]++
	}
	if m := forbidden.FindString(plan.String()); m != "" {
		d.t.Errorf("%s in the plan of\n%s\n%s", m, q, plan.String())
	}
}

func (d *explainDB) Exec(ctx context.Context, q string, args ...any) error {
	d.explain(ctx, q, args...)
	_, err := d.conn.ExecContext(ctx, q, args...)
	return err
}

func (d *explainDB) Query(ctx context.Context, q string, each func(Row) error) error {
	d.explain(ctx, q)
	return QuerySQL(ctx, d.conn, q, each)
}

// explainData stages 20,000 left and 21,000 right rows: big enough that
// DuckDB plans as it would for real data (it nested-loops tiny inputs).
func explainData(t *testing.T) *testDB {
	d := newTestDB(t, "x\n1\n", "x\n1\n", nil, nil, 0)
	cols := `'K' || lpad(CAST(i AS VARCHAR), 6, '0') AS id,
		'REF-' || CAST(i %% 15000 AS VARCHAR) || '%s' AS ref,
		'Customer ' || CAST(i %% 50 AS VARCHAR) AS cust,
		CAST((i * 37) %% 10000 AS DECIMAL(18,2)) / 100 + %s AS amount,
		CAST(((i * 37) %% 10000) / 100.0 AS DOUBLE) AS famount,
		DATE '2026-01-01' + CAST(i %% 300 AS INTEGER) + %d AS d,
		TIMESTAMP '2026-01-01 08:00:00' + INTERVAL (i %% 300) HOUR AS ts,
		'B' || CAST(i // 20 AS VARCHAR) AS batch,
		CAST(i %% 5 AS VARCHAR) || 'EUR' AS memo`
	d.stageFile("left", "(SELECT "+fmt.Sprintf(cols, "", "0", 0)+" FROM range(20000) t(i))", []string{"id"})
	d.stageFile("right", "(SELECT "+fmt.Sprintf(cols, "-PART1", "0.01", 2)+" FROM range(21000) t(i))", []string{"id"})
	return d
}

// TestPlansKeepHashJoins compiles a rule for every condition kind and every
// pattern, runs it with EXPLAIN on every statement, and fails on nested
// loop joins or cross products (shared/FACTS.md: a tolerance written as
// ABS(...) inside an anti or outer join turns 7 ms into minutes).
func TestPlansKeepHashJoins(t *testing.T) {
	eqRef := `{"op": "eq", "left": "ref", "right": "ref", "strip_right": "-PART[0-9]+$"}`
	cases := []struct{ name, rules string }{
		{"eq", `[{"name": "r", "conditions": [{"op": "eq", "left": "id", "right": "id"}]}]`},
		{"eq normalised", `[{"name": "r", "conditions": [{"op": "eq", "left": "ref", "right": "ref", "normalize": ["trim", "casefold", "alnum"], "strip_right": "-PART[0-9]+$"}]}]`},
		{"eq month", `[{"name": "r", "conditions": [{"op": "eq", "left": "d", "right": "d", "truncate": "month"}, {"op": "eq", "left": "cust", "right": "cust"}]}]`},
		{"tolerance abs", `[{"name": "r", "conditions": [` + eqRef + `, {"op": "tolerance", "left": "amount", "right": "amount", "abs": 0.05}]}]`},
		{"tolerance pct larger", `[{"name": "r", "conditions": [` + eqRef + `, {"op": "tolerance", "left": "amount", "right": "famount", "abs": 0.01, "pct": 0.02, "pct_of": "larger"}]}]`},
		{"tolerance alone", `[{"name": "r", "conditions": [{"op": "tolerance", "left": "amount", "right": "amount", "pct": 0.0001}]}]`},
		{"tolerance larger alone", `[{"name": "r", "conditions": [{"op": "tolerance", "left": "amount", "right": "amount", "pct": 0.0001, "pct_of": "larger"}]}]`},
		{"date_within", `[{"name": "r", "conditions": [` + eqRef + `, {"op": "date_within", "left": "d", "right": "d", "days": 3}]}]`},
		{"date_within lag", `[{"name": "r", "conditions": [` + eqRef + `, {"op": "date_within", "left": "d", "right": "d", "days": 3, "direction": "after"}]}]`},
		{"date_within timestamps", `[{"name": "r", "conditions": [` + eqRef + `, {"op": "date_within", "left": "ts", "right": "d", "days": 1}]}]`},
		{"date_within alone", `[{"name": "r", "conditions": [{"op": "date_within", "left": "d", "right": "d", "days": 0}, {"op": "eq", "left": "cust", "right": "cust"}]}]`},
		{"contains", `[{"name": "r", "conditions": [` + eqRef + `, {"op": "contains", "left": "ref", "right": "ref"}]}]`},
		{"starts_with", `[{"name": "r", "conditions": [` + eqRef + `, {"op": "starts_with", "left": "ref", "right": "ref"}]}]`},
		{"ends_with", `[{"name": "r", "conditions": [` + eqRef + `, {"op": "ends_with", "left": "memo", "right": "cust", "haystack": "left"}]}]`},
		{"fuzzy", `[{"name": "r", "conditions": [` + eqRef + `, {"op": "fuzzy", "left": "cust", "right": "cust", "threshold": 0.8, "normalize": ["casefold"]}]}]`},
		{"gt gte lt lte", `[{"name": "r", "conditions": [` + eqRef + `, {"op": "gt", "left": "amount", "right": "famount"}, {"op": "gte", "left": "d", "right": "d"}, {"op": "lt", "left": "famount", "right": "amount"}, {"op": "lte", "left": "id", "right": "id"}]}]`},
		{"1:N", `[{"name": "r", "pattern": "1:N", "conditions": [` + eqRef + `, {"op": "tolerance", "left": "amount", "right": "amount", "pct": 0.02}, {"op": "date_within", "left": "d", "right": "d", "days": 5}]}]`},
		{"N:1", `[{"name": "r", "pattern": "N:1", "conditions": [{"op": "eq", "left": "batch", "right": "id"}, {"op": "tolerance", "left": "amount", "right": "amount", "abs": 1}]}]`},
		{"N:M", `[{"name": "r", "pattern": "N:M", "conditions": [{"op": "eq", "left": "cust", "right": "cust"}, {"op": "eq", "left": "d", "right": "d", "truncate": "month"}, {"op": "tolerance", "left": "amount", "right": "amount", "pct": 0.5, "pct_of": "larger"}, {"op": "date_within", "left": "d", "right": "d", "days": 40}]}]`},
		{"three passes", `[{"name": "exact", "conditions": [` + eqRef + `, {"op": "eq", "left": "amount", "right": "amount"}]},
			{"name": "tol", "min_score": 0.2, "auto_confirm": 0.9, "conditions": [` + eqRef + `, {"op": "tolerance", "left": "amount", "right": "amount", "pct": 0.02}]},
			{"name": "split", "pattern": "1:N", "conditions": [` + eqRef + `, {"op": "tolerance", "left": "amount", "right": "amount", "pct": 0.02}]}]`},
	}
	d := explainData(t)
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p := d.compile(c.rules)
			ex := &explainDB{t: t, conn: d.conn, joins: map[string]int{}}
			if err := p.Execute(t.Context(), ex); err != nil {
				t.Fatal(err)
			}
			if ex.n == 0 {
				t.Fatal("no statement was explained")
			}
			t.Logf("%d statements, joins %v", ex.n, ex.joins)
		})
	}
}
