package engine

import (
	"context"
	"strings"
	"testing"
)

func openTest(t *testing.T) *Engine {
	t.Helper()
	e, err := Open(context.Background(), Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.Close() })
	return e
}

func TestWithIdentity(t *testing.T) {
	e := openTest(t)
	left, right := sideNames{view: "left_src", alias: "invoices"}, sideNames{view: "right_src", alias: "payments"}
	cases := []struct {
		name, sql string
		want      []string // substrings of the rewritten SQL
		err       string   // substring of the error, "" for success
	}{
		{"join", "SELECT l.id FROM left_src l JOIN right_src r ON l.id = r.ref", []string{"l.__kalla_left_rid AS __kalla_lrid", "r.__kalla_right_rid AS __kalla_rrid"}, ""},
		{"aliases", "SELECT i.id FROM invoices i, payments AS p WHERE i.id = p.ref", []string{"i.__kalla_left_rid AS __kalla_lrid", "p.__kalla_right_rid AS __kalla_rrid"}, ""},
		{"no table alias", "SELECT left_src.id FROM left_src JOIN right_src USING (id)", []string{"left_src.__kalla_left_rid", "right_src.__kalla_right_rid"}, ""},
		{"subquery beside", "SELECT l.id FROM left_src l JOIN (SELECT ref, sum(a) s FROM right_src GROUP BY ref) t ON t.ref = l.id JOIN right_src r ON r.ref = l.id", []string{"r.__kalla_right_rid AS __kalla_rrid"}, ""},
		{"star", "SELECT * FROM left_src l JOIN right_src r ON true", []string{"l.__kalla_left_rid"}, ""},
		{"syntax", "SELECT l.id FROM left_src l JOIN right_src r ON\n  l.id = = r.ref", nil, "line 2, column"},
		{"two statements", "SELECT 1; SELECT 2", nil, "exactly one SELECT statement"},
		{"union", "SELECT l.id FROM left_src l JOIN right_src r ON l.id=r.ref UNION SELECT 1", nil, "UNION"},
		{"group by", "SELECT l.id, count(*) FROM left_src l JOIN right_src r ON l.id = r.ref GROUP BY l.id", nil, "GROUP BY"},
		{"self join", "SELECT a.id FROM left_src a JOIN left_src b ON a.id = b.id JOIN right_src r ON true", nil, "appears 2 times"},
		{"right only in subquery", "SELECT l.id FROM left_src l WHERE l.id IN (SELECT ref FROM right_src)", nil, "right_src (or payments) must appear in the top-level FROM"},
		// The sandbox check lets through what reads only the sides.
		{"own cte and generators", "WITH t AS (SELECT ref, sum(a) AS s FROM payments GROUP BY ref) SELECT l.id, x FROM left_src l JOIN right_src r ON l.id = r.ref JOIN t ON t.ref = l.id, range(2) g(x) WHERE l.id IN (SELECT unnest(['a'])) AND r.ref IN (SELECT id FROM main.left_src)", []string{"__kalla_lrid"}, ""},
		{"cte name used outside its query", "SELECT l.id FROM left_src l JOIN right_src r ON l.id = r.ref WHERE EXISTS (WITH t AS (SELECT 1) SELECT * FROM t) AND EXISTS (SELECT * FROM t)", nil, `table "t" is not allowed`},
		{"other table", "SELECT l.id FROM left_src l JOIN right_src r ON l.id = r.ref JOIN __kalla_match m ON true", nil, "may read only left_src and right_src (and the aliases invoices, payments): table \"__kalla_match\" is not allowed"},
		{"cte shadows", "WITH right_src AS (SELECT 1 AS ref) SELECT l.id FROM left_src l JOIN right_src r ON true", nil, "must appear in the top-level FROM"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := e.withIdentity(context.Background(), c.sql, left, right)
			if c.err != "" {
				if err == nil || !strings.Contains(err.Error(), c.err) {
					t.Fatalf("error = %v, want %q", err, c.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			for _, w := range c.want {
				if !strings.Contains(got.sql, w) {
					t.Errorf("rewritten SQL %q lacks %q", got.sql, w)
				}
			}
		})
	}
}

// TestToleranceMatchExact pins the money semantics: tolerance_match is
// exact at the values' scale for every numeric representation.
func TestToleranceMatchExact(t *testing.T) {
	e := openTest(t)
	cases := []struct {
		expr string
		want bool
	}{
		{"tolerance_match(0.30, 0.29, 0.01)", true},
		{"tolerance_match(CAST(0.30 AS DOUBLE), CAST(0.29 AS DOUBLE), 0.01)", true},
		{"tolerance_match('0.30', '0.29', '0.01')", true},
		{"tolerance_match(CAST(0.30 AS DECIMAL(18,2)), CAST(0.29 AS DECIMAL(18,2)), 0.01)", true},
		{"tolerance_match(0.30, 0.28, 0.01)", false},
		{"tolerance_match(100, 102, 2)", true},
		{"tolerance_match(100, 102, 1)", false},
		{"tolerance_match(-5.00, -5.02, 0.02)", true},
		{"tolerance_match(12345678901.123456789, 12345678901.123456788, 0.000000001)", true},
		{"tolerance_match(NULL, 1, 1) IS NULL", true},
	}
	for _, c := range cases {
		var got bool
		if err := e.conn.QueryRowContext(context.Background(), "SELECT "+c.expr).Scan(&got); err != nil {
			t.Fatalf("%s: %v", c.expr, err)
		}
		if got != c.want {
			t.Errorf("%s = %v, want %v", c.expr, got, c.want)
		}
	}
	// Text that is not a number is an error, never a silent false.
	var b bool
	if err := e.conn.QueryRowContext(context.Background(), "SELECT tolerance_match('abc', 1, 1)").Scan(&b); err == nil {
		t.Error("tolerance_match('abc', 1, 1) did not fail")
	}
}
