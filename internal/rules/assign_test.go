package rules

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
)

// greedy is the definition the assignment must meet: walk the edges in
// rank order and take each whose units are both still free.
func greedy(edges [][3]int64) []string {
	slices.SortFunc(edges, func(x, y [3]int64) int { return int(x[2] - y[2]) })
	ua, ub := map[int64]bool{}, map[int64]bool{}
	var out []string
	for _, e := range edges {
		if ua[e[0]] || ub[e[1]] {
			continue
		}
		ua[e[0]], ub[e[1]] = true, true
		out = append(out, fmt.Sprintf("%d-%d", e[0], e[1]))
	}
	slices.Sort(out)
	return out
}

// TestAssignIsGreedy checks the SQL rounds and the Go fallback against the
// plain greedy definition on random bipartite graphs, dense and sparse.
func TestAssignIsGreedy(t *testing.T) {
	d := newTestDB(t, "x\n1\n", "x\n1\n", nil, nil, 0)
	p := &Plan{d: DuckDB, edgeCols: map[int][]string{0: {"a", "b", "score", "rk"}}}
	ps := &pass{}
	run := func(what string, qs ...string) error {
		for _, q := range qs {
			if _, err := d.conn.ExecContext(t.Context(), q); err != nil {
				return err
			}
		}
		return nil
	}
	defer func(r int, y float64) { sqlRounds, minRoundYield = r, y }(sqlRounds, minRoundYield)
	rng := rand.New(rand.NewPCG(1, 2))
	for trial := range 60 {
		nA, nB := 1+rng.IntN(40), 1+rng.IntN(40)
		density := []float64{0.05, 0.3, 1}[trial%3]
		var edges [][3]int64
		var vals []string
		ranks := rng.Perm(nA * nB)
		for a := range nA {
			for b := range nB {
				if rng.Float64() < density {
					rk := int64(ranks[a*nB+b]) + 1
					edges = append(edges, [3]int64{int64(a), int64(b), rk})
					vals = append(vals, fmt.Sprintf("(%d, %d, 1.0, %d)", a, b, rk))
				}
			}
		}
		want := greedy(slices.Clone(edges))
		for _, mode := range []struct {
			name   string
			rounds int
			yield  float64
		}{{"sql", 1 << 20, 0}, {"go", 0, 0}, {"mixed", 2, 0.5}} {
			sqlRounds, minRoundYield = mode.rounds, mode.yield
			d.exec(fmt.Sprintf("CREATE OR REPLACE TABLE %s (a BIGINT, b BIGINT, score DOUBLE, rk BIGINT)", edgesTable))
			if len(vals) > 0 {
				d.exec(fmt.Sprintf("INSERT INTO %s VALUES %s", edgesTable, strings.Join(vals, ", ")))
			}
			for _, q := range DuckDB.CreateTableAs(chosenTable, "SELECT * FROM "+edgesTable+" LIMIT 0") {
				d.exec(q)
			}
			if err := p.assign(t.Context(), SQLDB{d.conn}, run, ps, "test", "rk", [2]bool{}); err != nil {
				t.Fatal(err)
			}
			got := d.query(fmt.Sprintf("SELECT a || '-' || b FROM %s ORDER BY 1", chosenTable))
			if !slices.Equal(got, want) {
				t.Fatalf("trial %d (%dx%d, density %v), %s: got %v, want %v", trial, nA, nB, density, mode.name, got, want)
			}
		}
	}
}

// TestUnitsUnique checks when a pass may skip counting one side's units:
// only when the other side is records with a checked unique single-column
// key and a plain eq condition compares that key.
func TestUnitsUnique(t *testing.T) {
	csv := "id,ref,name,amount\nA1,R1,x,1.00\n"
	for _, c := range []struct {
		name      string
		rules     string
		leftPK    []string
		leftUniq  bool
		rightUniq bool
		want      [2]bool // left units, right units
	}{
		{"plain eq on the left key", `[{"name": "r", "conditions": [{"op": "eq", "left": "id", "right": "ref"}]}]`, []string{"id"}, true, false, [2]bool{false, true}},
		{"left key not checked", `[{"name": "r", "conditions": [{"op": "eq", "left": "id", "right": "ref"}]}]`, []string{"id"}, false, false, [2]bool{}},
		{"eq on another column", `[{"name": "r", "conditions": [{"op": "eq", "left": "ref", "right": "ref"}]}]`, []string{"id"}, true, false, [2]bool{}},
		{"normalised eq", `[{"name": "r", "conditions": [{"op": "eq", "left": "id", "right": "ref", "normalize": ["casefold"]}]}]`, []string{"id"}, true, false, [2]bool{}},
		{"composite key", `[{"name": "r", "conditions": [{"op": "eq", "left": "id", "right": "ref"}]}]`, []string{"id", "name"}, true, false, [2]bool{}},
		{"grouped left side", `[{"name": "r", "pattern": "N:1", "conditions": [{"op": "eq", "left": "id", "right": "ref"}, {"op": "tolerance", "left": "amount", "right": "amount", "abs": 1}]}]`, []string{"id"}, true, false, [2]bool{}},
		{"grouped right side", `[{"name": "r", "pattern": "1:N", "conditions": [{"op": "eq", "left": "id", "right": "ref"}, {"op": "tolerance", "left": "amount", "right": "amount", "abs": 1}]}]`, []string{"id"}, true, false, [2]bool{false, true}},
		{"both keys", `[{"name": "r", "conditions": [{"op": "eq", "left": "id", "right": "id"}]}]`, []string{"id"}, true, true, [2]bool{true, true}},
	} {
		t.Run(c.name, func(t *testing.T) {
			d := newTestDB(t, csv, csv, c.leftPK, []string{"id"}, 0)
			d.left.UniqueKey, d.right.UniqueKey = c.leftUniq, c.rightUniq
			p := d.compile(c.rules)
			if got := p.unitsUnique(p.passes[0]); got != c.want {
				t.Errorf("unitsUnique = %v, want %v", got, c.want)
			}
		})
	}
}
