package spark_test

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/kalla-recon/kalla/internal/cli"
	"github.com/kalla-recon/kalla/internal/kalla"
	"github.com/kalla-recon/kalla/internal/objstore"
	"github.com/kalla-recon/kalla/internal/spark"
	"github.com/kalla-recon/kalla/internal/testenv"
)

// duckRun runs the recipe file on DuckDB through `kalla run` with the given
// formats and returns its output folder and summary.
func duckRun(t *testing.T, recipePath string, formats string) (string, *kalla.Summary) {
	t.Helper()
	out := t.TempDir()
	var stdout, stderr bytes.Buffer
	if code := cli.Main(t.Context(), []string{"run", "--recipe", recipePath, "--out", out, "--format", formats, "--json"},
		strings.NewReader(""), &stdout, &stderr); code != 0 {
		t.Fatalf("duckdb run: exit %d: %s", code, stderr.String())
	}
	var sum kalla.Summary
	readJSON(t, filepath.Join(out, "summary.json"), &sum)
	return out, &sum
}

// readCSV returns the header and the rows (as text, exactly as written) of
// a CSV file or glob, read back by DuckDB with every column as text.
func readCSV(t *testing.T, db *sql.DB, path string) ([]string, [][]string) {
	t.Helper()
	q := "SELECT * FROM read_csv('" + strings.ReplaceAll(path, "'", "''") + "', header = true, all_varchar = true, quote = '\"', escape = '\"')"
	rows, err := db.QueryContext(context.Background(), q)
	if err != nil {
		t.Fatalf("read %s: %v", path, err)
	}
	defer rows.Close()
	cols, err := rows.Columns()
	if err != nil {
		t.Fatal(err)
	}
	return cols, textRows(t, rows, len(cols))
}

// compareOutputs compares Spark's outputs in sparkOut (a local folder, or
// an S3 prefix downloaded into one) with DuckDB's in duckOut, table by
// table and format by format, and checks every file Spark wrote against
// the summary's sizes and SHA-256.
func compareOutputs(t *testing.T, db *sql.DB, duckOut string, duckSum *kalla.Summary, sparkOut string, sum *kalla.Summary, formats []string) {
	t.Helper()
	compareSummaries(t, duckSum, sum)
	for _, table := range []string{"matched", "unmatched_left", "unmatched_right"} {
		for _, f := range formats {
			if f == kalla.FormatParquet {
				dc, dr := readParquet(t, db, filepath.Join(duckOut, table+".parquet"))
				sc, sr := readParquet(t, db, filepath.Join(sparkOut, table+".parquet", "*.parquet"))
				if !slices.Equal(dc, sc) {
					t.Errorf("%s.parquet: columns differ:\nduckdb %v\nspark  %v", table, dc, sc)
				}
				if !slices.EqualFunc(dr, sr, slices.Equal) {
					t.Errorf("%s.parquet: rows differ:\nduckdb %v\nspark  %v", table, dr, sr)
				}
				continue
			}
			dc, dr := readCSV(t, db, filepath.Join(duckOut, table+".csv"))
			sc, sr := readCSV(t, db, filepath.Join(sparkOut, table+".csv", "*.csv"))
			if !slices.Equal(dc, sc) {
				t.Errorf("%s.csv: header differs:\nduckdb %v\nspark  %v", table, dc, sc)
			}
			if !slices.EqualFunc(dr, sr, slices.Equal) {
				t.Errorf("%s.csv: rows differ:\nduckdb %v\nspark  %v", table, dr, sr)
			}
		}
	}
	var rows = map[string]int64{}
	for _, o := range sum.Outputs {
		rows[o.Table+"."+o.Format] += o.Rows
	}
	want := map[string]int64{"matched": sum.MatchedCount, "unmatched_left": sum.UnmatchedLeftCount, "unmatched_right": sum.UnmatchedRightCount}
	for table, n := range want {
		for _, f := range formats {
			if rows[table+"."+f] != n {
				t.Errorf("summary lists %d rows in %s.%s, want %d", rows[table+"."+f], table, f, n)
			}
		}
	}
	checkDigests(t, sparkOut, sum)
}

// TestCSVOutputBothEngines asks both engines for Parquet and CSV (as
// `kalla run --format parquet,csv` does) on scenarios with quotes,
// commas, unicode, blanks around values, NULLs, empty strings, decimals,
// dates and timestamps, and compares every output as written.
func TestCSVOutputBothEngines(t *testing.T) {
	e := newEngine(t)
	db, err := sql.Open("duckdb", "")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	formats := []string{kalla.FormatParquet, kalla.FormatCSV}
	// empty_one_side: a header-only side's columns have no value to type
	// them by; both engines show them as untyped NULLs, which a matched
	// pair's columns are written as (INTEGER), and list them as text.
	for _, name := range []string{"exact_1to1", "unicode_quoted", "blank_padded", "timestamps", "number_forms", "text_forms", "null_keys", "parquet_left", "empty_one_side"} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			dir := filepath.Join(scenarios, name)
			duckOut, duckSum := duckRun(t, filepath.Join(dir, "recipe.json"), "parquet,csv")
			out := t.TempDir()
			sum, err := e.Execute(t.Context(), spark.Job{Recipe: loadRecipe(t, dir), OutDir: out, Formats: formats, RunID: "t"})
			if err != nil {
				t.Fatalf("spark run: %v", err)
			}
			var fileSum kalla.Summary
			readJSON(t, filepath.Join(out, "summary.json"), &fileSum)
			if len(fileSum.Outputs) != len(sum.Outputs) {
				t.Errorf("summary.json lists %d outputs, the run returned %d", len(fileSum.Outputs), len(sum.Outputs))
			}
			compareOutputs(t, db, duckOut, duckSum, out, &fileSum, formats)
		})
	}
}

// s3Store reaches the test bucket as Kalla does.
func s3Store(t *testing.T, s3 testenv.S3Env) (objstore.S3Config, *objstore.Store) {
	t.Helper()
	cfg := objstore.S3Config{Endpoint: s3.Endpoint, Region: s3.Region, AccessKey: s3.AccessKey, SecretKey: s3.SecretKey, PathStyle: true}
	st, err := objstore.NewStore(cfg, s3.Bucket, "")
	if err != nil {
		t.Fatal(err)
	}
	return cfg, st
}

// download copies every object under prefix into a new local folder.
func download(t *testing.T, s3 testenv.S3Env, st *objstore.Store, prefix string) string {
	t.Helper()
	objs, err := st.List(t.Context(), prefix)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	for _, o := range objs {
		if strings.HasSuffix(o.URI, "/") {
			continue // an s3a directory marker
		}
		key := strings.TrimPrefix(o.URI, "s3://"+s3.Bucket+"/")
		p := filepath.Join(dir, strings.TrimPrefix(key, prefix))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, s3.Get(t, key), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// TestS3OutputOnSpark writes a run's outputs to an s3:// prefix of the
// local S3 server (Spark's executors write them as s3a://; Kalla writes
// only summary.json), downloads what is there and compares it with
// DuckDB's outputs: same rows in Parquet and CSV, every object listed in
// the summary with its SHA-256, nothing else under the prefix. A second
// run cancelled while writing removes the first run's summary, so the
// prefix no longer passes for a result; an output location in a bucket
// that does not exist fails before Spark does any work.
func TestS3OutputOnSpark(t *testing.T) {
	rem := remote(t)
	s3 := testenv.S3(t)
	cfg, st := s3Store(t, s3)
	e, err := spark.New(spark.Options{Remote: rem, S3: &cfg})
	if err != nil {
		t.Fatal(err)
	}
	db, err := sql.Open("duckdb", "")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	dir := filepath.Join(scenarios, "unicode_quoted")
	formats := []string{kalla.FormatParquet, kalla.FormatCSV}
	duckOut, duckSum := duckRun(t, filepath.Join(dir, "recipe.json"), "parquet,csv")
	sum, err := e.Execute(t.Context(), spark.Job{Recipe: loadRecipe(t, dir), OutDir: s3.URI("runs/r1"), Formats: formats, RunID: "r1"})
	if err != nil {
		t.Fatalf("spark run to s3: %v", err)
	}
	local := download(t, s3, st, "runs/r1/")
	var fileSum kalla.Summary
	readJSON(t, filepath.Join(local, "summary.json"), &fileSum)
	if fileSum.RunID != "r1" || len(fileSum.Outputs) != len(sum.Outputs) {
		t.Errorf("summary.json on S3: run %q, %d outputs; returned %d", fileSum.RunID, len(fileSum.Outputs), len(sum.Outputs))
	}
	compareOutputs(t, db, duckOut, duckSum, local, &fileSum, formats)

	// A rules run writes its working tables under the prefix too
	// (.kalla-scratch-<session>/, as s3a://) and removes them at its end.
	rdir := filepath.Join(scenarios, "rules_multipass")
	rDuckOut, rDuckSum := duckRun(t, filepath.Join(rdir, "recipe.json"), "parquet")
	if _, err := e.Execute(t.Context(), spark.Job{Recipe: loadRecipe(t, rdir), OutDir: s3.URI("runs/rules"), RunID: "rules"}); err != nil {
		t.Fatalf("spark rules run to s3: %v", err)
	}
	objs, err := st.List(t.Context(), "runs/rules/")
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range objs {
		if strings.Contains(o.URI, ".kalla-scratch") {
			t.Errorf("the rules run left %s", o.URI)
		}
	}
	rLocal := download(t, s3, st, "runs/rules/")
	var rSum kalla.Summary
	readJSON(t, filepath.Join(rLocal, "summary.json"), &rSum)
	compareOutputs(t, db, rDuckOut, rDuckSum, rLocal, &rSum, []string{kalla.FormatParquet})

	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	_, err = e.Execute(ctx, spark.Job{Recipe: loadRecipe(t, dir), OutDir: s3.URI("runs/r1"), Formats: formats, RunID: "r2",
		Progress: func(ev kalla.Event) {
			if ev.Stage == kalla.StageWrite && !ev.Done {
				cancel()
			}
		}})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled run: %v", err)
	}
	if _, err := st.Stat(t.Context(), "runs/r1/summary.json"); kalla.ErrorCode(err) != kalla.ENOTFOUND {
		t.Errorf("a cancelled run left a summary.json (stat: %v)", err)
	}

	_, err = e.Execute(t.Context(), spark.Job{Recipe: loadRecipe(t, dir), OutDir: "s3://" + s3.Bucket + "-missing/out", RunID: "r3"})
	if kalla.ErrorCode(err) != kalla.ENOTFOUND || !strings.Contains(err.Error(), "does not exist") {
		t.Errorf("missing bucket: %v (code %s)", err, kalla.ErrorCode(err))
	}
}
