package spark

import "testing"

// TestToSparkCountStar checks that DuckDB's rendering of count(*) reaches
// Spark as count(*) (Spark has no count_star), and that a user function of
// that name with arguments is left for Spark to refuse.
func TestToSparkCountStar(t *testing.T) {
	for in, want := range map[string]string{
		`SELECT count_star() AS n FROM left_src`:    `SELECT count(*) AS n FROM left_src`,
		`SELECT count_star( ) AS n FROM left_src`:   `SELECT count(*) AS n FROM left_src`,
		`SELECT count_star("x") AS n FROM left_src`: `SELECT count_star("x") AS n FROM left_src`,
		`SELECT 'count_star()' AS n FROM left_src`:  `SELECT 'count_star()' AS n FROM left_src`,
	} {
		got, err := toSpark(in)
		if err != nil || got != want {
			t.Errorf("toSpark(%s) = %s, %v; want %s", in, got, err, want)
		}
	}
}
