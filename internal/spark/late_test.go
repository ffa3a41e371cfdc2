package spark_test

import (
	"database/sql"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kalla-recon/kalla/internal/kalla"
	"github.com/kalla-recon/kalla/internal/spark"
)

// TestLateMisfitsBothEngines: a date, a timestamp and a boolean column
// whose one misfit comes after DuckDB's sniffer sample (20,480 rows), and a
// timestamp column with one time written to seven decimals (L2, unmatched:
// DuckDB's TIMESTAMP would cut the seventh), are text on both engines,
// with the same outputs and column types. Spark types
// a CSV column from the whole column; DuckDB used to type it from the
// sample and fail the run on the late value.
func TestLateMisfitsBothEngines(t *testing.T) {
	e := newEngine(t)
	dir := t.TempDir()
	var b strings.Builder
	b.WriteString("id,d,ts,ok,t7,amount\n")
	for i := 1; i <= 22000; i++ {
		d, ts, ok := fmt.Sprintf("2024-01-%02d", i%28+1), fmt.Sprintf("2024-01-%02d 10:00:00", i%28+1), []string{"true", "false"}[i%2]
		t7 := fmt.Sprintf("2024-01-%02d 10:00:00.123456", i%28+1)
		switch i {
		case 21001:
			d = "2024-02-30"
		case 21002:
			ts = "yesterday"
		case 21003:
			ok = "maybe"
		case 2:
			t7 = "2024-01-03 10:00:00.1234567"
		}
		fmt.Fprintf(&b, "L%d,%s,%s,%s,%s,%d.50\n", i, d, ts, ok, t7, i)
	}
	files := map[string]string{
		"left.csv":  b.String(),
		"right.csv": "ref,paid\nL1,1.50\nL21001,21001.50\nL21002,21002.50\nL21003,21003.50\nL99,1.00\n",
		// The filter keeps the outputs small; both engines type the
		// columns on the whole file before it applies.
		"recipe.json": `{"recipe_id": "late", "match_sql": "SELECT l.id, r.ref, l.d, l.ts, l.ok, l.t7, r.paid FROM left_src l JOIN right_src r ON r.ref = l.id AND r.paid = l.amount",
  "sources": {
    "left": {"alias": "ledger", "uri": "left.csv", "primary_key": ["id"],
             "filters": [{"column": "id", "op": "in", "value": ["L1", "L2", "L21001", "L21002", "L21003"]}]},
    "right": {"alias": "bank", "uri": "right.csv", "primary_key": ["ref"]}}}`,
	}
	for name, data := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	db, err := sql.Open("duckdb", "")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	duckOut, duckSum := duckRun(t, filepath.Join(dir, "recipe.json"), "parquet,csv")
	types := map[string]string{}
	for _, c := range duckSum.Sources.Left.Columns {
		types[c.Name] = c.DataType
	}
	if types["d"] != "VARCHAR" || types["ts"] != "VARCHAR" || types["ok"] != "VARCHAR" || types["t7"] != "VARCHAR" || types["amount"] != "DECIMAL(18,2)" {
		t.Fatalf("DuckDB typed the left columns %v; want d, ts, ok and t7 VARCHAR, amount DECIMAL(18,2)", types)
	}
	if duckSum.MatchedCount != 4 || duckSum.UnmatchedLeftCount != 1 || duckSum.UnmatchedRightCount != 1 {
		t.Fatalf("DuckDB: %d matched, %d and %d unmatched; want 4, 1, 1", duckSum.MatchedCount, duckSum.UnmatchedLeftCount, duckSum.UnmatchedRightCount)
	}
	out := t.TempDir()
	formats := []string{kalla.FormatParquet, kalla.FormatCSV}
	if _, err := e.Execute(t.Context(), spark.Job{Recipe: loadRecipe(t, dir), OutDir: out, Formats: formats, RunID: "t"}); err != nil {
		t.Fatalf("spark run: %v", err)
	}
	var fileSum kalla.Summary
	readJSON(t, filepath.Join(out, "summary.json"), &fileSum)
	compareOutputs(t, db, duckOut, duckSum, out, &fileSum, formats)
}
