package spark_test

import (
	"bytes"
	"database/sql"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/kalla-recon/kalla/internal/cli"
	"github.com/kalla-recon/kalla/internal/kalla"
	"github.com/kalla-recon/kalla/internal/spark"
)

// TestRecordsBothEngines asks both engines for the matched records
// (`kalla run --records`, spark.Job.Records) in Parquet and CSV and requires identical matched_left and
// matched_right files (columns with their types, rows as text, CSV as
// written), each listed in the summary with the side's matched records as
// its rows, and every file Spark wrote checksummed. Two scenarios, match
// SQL with quotes, commas, unicode and NULLs, and a rules recipe (whose
// match table the rules write): a Spark run writes ten or more folders
// and reads them back, minutes on the shared cluster.
func TestRecordsBothEngines(t *testing.T) {
	e := newEngine(t)
	db, err := sql.Open("duckdb", "")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	formats := []string{kalla.FormatParquet, kalla.FormatCSV}
	for _, name := range []string{"unicode_quoted", "rules_exact_1to1"} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			dir := filepath.Join(scenarios, name)
			duckOut := t.TempDir()
			var stdout, stderr bytes.Buffer
			if code := cli.Main(t.Context(), []string{"run", "--recipe", filepath.Join(dir, "recipe.json"), "--out", duckOut, "--format", "parquet,csv", "--records", "--json"},
				strings.NewReader(""), &stdout, &stderr); code != 0 {
				t.Fatalf("duckdb run: exit %d: %s", code, stderr.String())
			}
			var duckSum kalla.Summary
			readJSON(t, filepath.Join(duckOut, "summary.json"), &duckSum)
			out := t.TempDir()
			sum, err := e.Execute(t.Context(), spark.Job{Recipe: loadRecipe(t, dir), OutDir: out, Formats: formats, RunID: "t", Records: true})
			if err != nil {
				t.Fatalf("spark run: %v", err)
			}
			compareSummaries(t, &duckSum, sum)
			want := map[string]int64{kalla.TableMatchedLeft: sum.MatchedLeftRecords, kalla.TableMatchedRight: sum.MatchedRightRecords}
			rows := map[string]int64{}
			for _, o := range sum.Outputs {
				rows[o.Table+"."+o.Format] += o.Rows
			}
			for table, n := range want {
				for _, f := range formats {
					if rows[table+"."+f] != n {
						t.Errorf("summary lists %d rows in %s.%s, want %d", rows[table+"."+f], table, f, n)
					}
				}
				dc, dr := readParquet(t, db, filepath.Join(duckOut, table+".parquet"))
				sc, sr := readParquet(t, db, filepath.Join(out, table+".parquet", "*.parquet"))
				if !slices.Equal(dc, sc) {
					t.Errorf("%s.parquet: columns differ:\nduckdb %v\nspark  %v", table, dc, sc)
				}
				if int64(len(dr)) != n || !slices.EqualFunc(dr, sr, slices.Equal) {
					t.Errorf("%s.parquet: rows differ (want %d):\nduckdb %v\nspark  %v", table, n, dr, sr)
				}
				dc, dr = readCSV(t, db, filepath.Join(duckOut, table+".csv"))
				sc, sr = readCSV(t, db, filepath.Join(out, table+".csv", "*.csv"))
				if !slices.Equal(dc, sc) || !slices.EqualFunc(dr, sr, slices.Equal) {
					t.Errorf("%s.csv differs:\nduckdb %v %v\nspark  %v %v", table, dc, dr, sc, sr)
				}
			}
			checkDigests(t, out, sum)
		})
	}
}
