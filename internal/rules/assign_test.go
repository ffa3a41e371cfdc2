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
	p := &Plan{d: DuckDB}
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
			d.exec(chosenSQL)
			if err := p.assign(t.Context(), d.conn, run, "test", "rk"); err != nil {
				t.Fatal(err)
			}
			got := d.query(fmt.Sprintf("SELECT a || '-' || b FROM %s ORDER BY 1", chosenTable))
			if !slices.Equal(got, want) {
				t.Fatalf("trial %d (%dx%d, density %v), %s: got %v, want %v", trial, nA, nB, density, mode.name, got, want)
			}
		}
	}
}
