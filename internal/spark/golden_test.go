package spark_test

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	_ "github.com/duckdb/duckdb-go/v2" // reads both engines' Parquet outputs back

	"github.com/kalla-recon/kalla/internal/cli"
	"github.com/kalla-recon/kalla/internal/kalla"
	"github.com/kalla-recon/kalla/internal/spark"
	"github.com/kalla-recon/kalla/internal/testenv"
)

// remote is the Spark Connect endpoint of the test cluster; a missing
// cluster skips, or fails under KALLA_TEST_REQUIRE_SERVICES.
func remote(t *testing.T) string {
	t.Helper()
	r := os.Getenv("KALLA_TEST_SPARK_REMOTE")
	if r == "" {
		if testenv.Required() {
			t.Fatalf("KALLA_TEST_SPARK_REMOTE not set and services are required: run `bash scripts/services.sh start` and eval its env")
		}
		t.Skip("KALLA_TEST_SPARK_REMOTE not set")
	}
	return r
}

func newEngine(t *testing.T) *spark.Engine {
	t.Helper()
	opts := spark.Options{Remote: remote(t)}
	if os.Getenv("KALLA_TEST_SPARK_DEBUG") != "" {
		opts.Logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	e, err := spark.New(opts)
	if err != nil {
		t.Fatal(err)
	}
	return e
}

const scenarios = "../engine/testdata/scenarios"

// loadRecipe reads a scenario's recipe with its file URIs made absolute.
func loadRecipe(t *testing.T, dir string) *kalla.Recipe {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(dir, "recipe.json"))
	if err != nil {
		t.Fatal(err)
	}
	rec, err := kalla.ParseRecipe(data)
	if err != nil {
		t.Fatal(err)
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []*kalla.SourceSpec{&rec.Sources.Left, &rec.Sources.Right} {
		if !strings.Contains(s.URI, "://") && !filepath.IsAbs(s.URI) {
			s.URI = filepath.Join(abs, s.URI)
		}
	}
	return rec
}

// TestGoldenBothEngines runs every match-SQL golden scenario on DuckDB
// (through `kalla run`, as a user does) and on Spark, and compares the
// outputs read back row by row, with their column names and types, and the
// summaries' counts and warnings.
func TestGoldenBothEngines(t *testing.T) {
	e := newEngine(t)
	ents, err := os.ReadDir(scenarios)
	if err != nil {
		t.Fatal(err)
	}
	db, err := sql.Open("duckdb", "")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	ran := 0
	t.Cleanup(func() {
		if ran < 20 {
			t.Errorf("only %d match-SQL scenarios ran", ran)
		}
	})
	for _, ent := range ents {
		dir := filepath.Join(scenarios, ent.Name())
		rec := loadRecipe(t, dir)
		if len(rec.Rules) > 0 {
			continue
		}
		t.Run(ent.Name(), func(t *testing.T) {
			// Spark runs each in a session of its own; tiny jobs wait on
			// scheduling more than on the cluster's two cores.
			t.Parallel()
			compareEngines(t, e, db, filepath.Join(dir, "recipe.json"), rec)
		})
		ran++
	}
}

func readJSON(t *testing.T, path string, v any) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatal(err)
	}
}

func compareSummaries(t *testing.T, want, got *kalla.Summary) {
	t.Helper()
	w := []int64{want.LeftCount, want.RightCount, want.MatchedCount, want.MatchedLeftRecords, want.MatchedRightRecords, want.UnmatchedLeftCount, want.UnmatchedRightCount}
	g := []int64{got.LeftCount, got.RightCount, got.MatchedCount, got.MatchedLeftRecords, got.MatchedRightRecords, got.UnmatchedLeftCount, got.UnmatchedRightCount}
	if !slices.Equal(w, g) {
		t.Errorf("summary counts (left, right, matched, matched left, matched right, unmatched left, unmatched right): duckdb %v, spark %v", w, g)
	}
	ws := func(s *kalla.Summary) []string {
		var out []string
		for _, x := range s.Warnings {
			out = append(out, fmt.Sprintf("%s/%s/%d", x.Code, x.Side, x.Count))
		}
		slices.Sort(out)
		return out
	}
	if !slices.Equal(ws(want), ws(got)) {
		t.Errorf("warnings: duckdb %v, spark %v", ws(want), ws(got))
	}
	// Money totals: the same figures, digits included, on both engines.
	wa, _ := json.Marshal(want.Amounts)
	ga, _ := json.Marshal(got.Amounts)
	if string(wa) != string(ga) {
		t.Errorf("amounts: duckdb %s, spark %s", wa, ga)
	}
	cols := func(s kalla.SummarySource) []string {
		var out []string
		for _, c := range s.Columns {
			out = append(out, c.Name+" "+c.DataType)
		}
		return out
	}
	for _, p := range [][2]kalla.SummarySource{{want.Sources.Left, got.Sources.Left}, {want.Sources.Right, got.Sources.Right}} {
		if !slices.Equal(cols(p[0]), cols(p[1])) {
			t.Errorf("source columns: duckdb %v, spark %v", cols(p[0]), cols(p[1]))
		}
	}
}

// readParquet returns the column names with their types, and the rows as
// text, of a Parquet file or glob.
func readParquet(t *testing.T, db *sql.DB, path string) ([]string, [][]string) {
	t.Helper()
	q := "SELECT * FROM read_parquet('" + strings.ReplaceAll(path, "'", "''") + "')"
	rows, err := db.QueryContext(context.Background(), "DESCRIBE "+q)
	if err != nil {
		t.Fatalf("describe %s: %v", path, err)
	}
	var cols, colNames []string
	for rows.Next() {
		var name, typ string
		var a, b, c, d sql.NullString
		if err := rows.Scan(&name, &typ, &a, &b, &c, &d); err != nil {
			t.Fatal(err)
		}
		cols = append(cols, name+" "+typ)
		colNames = append(colNames, name)
	}
	rows.Close()
	sel := make([]string, len(cols))
	for i, name := range colNames {
		sel[i] = "CAST(\"" + strings.ReplaceAll(name, "\"", "\"\"") + "\" AS VARCHAR)"
	}
	if len(sel) == 0 {
		return cols, nil
	}
	rows, err = db.QueryContext(context.Background(), "SELECT "+strings.Join(sel, ", ")+" FROM ("+q+")")
	if err != nil {
		t.Fatalf("read %s: %v", path, err)
	}
	defer rows.Close()
	return cols, textRows(t, rows, len(cols))
}

// textRows reads every row as text, NULL spelt NULL and values quoted, so
// two engines' outputs compare as plain strings.
func textRows(t *testing.T, rows *sql.Rows, n int) [][]string {
	t.Helper()
	var out [][]string
	for rows.Next() {
		vals := make([]sql.NullString, n)
		ptrs := make([]any, n)
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		if err := rows.Scan(ptrs...); err != nil {
			t.Fatal(err)
		}
		row := make([]string, n)
		for i, v := range vals {
			row[i] = "NULL"
			if v.Valid {
				row[i] = "'" + v.String + "'"
			}
		}
		out = append(out, row)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// checkDigests verifies every output listed in the summary: it exists with
// the listed size and SHA-256, and the folders hold nothing unlisted.
func checkDigests(t *testing.T, dir string, sum *kalla.Summary) {
	t.Helper()
	listed := map[string]bool{}
	for _, o := range sum.Outputs {
		listed[o.Name] = true
		b, err := os.ReadFile(filepath.Join(dir, o.Name))
		if err != nil {
			t.Errorf("output %s: %v", o.Name, err)
			continue
		}
		if int64(len(b)) != o.Bytes || sha(b) != o.SHA256 {
			t.Errorf("output %s: size or sha256 differ from the summary", o.Name)
		}
	}
	err := filepath.Walk(dir, func(p string, info os.FileInfo, err error) error {
		if err != nil || info.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		if rel != "summary.json" && !listed[rel] {
			t.Errorf("file %s is not listed in the summary", rel)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

var precision = regexp.MustCompile(`DECIMAL\([0-9]+,`)

// decimalScale blanks the precision of DECIMAL types, keeping the scale.
func decimalScale(cols []string) []string {
	out := make([]string, len(cols))
	for i, c := range cols {
		out[i] = precision.ReplaceAllString(c, "DECIMAL(*,")
	}
	return out
}

// compareEngines runs the recipe file on DuckDB (through `kalla run`) and
// rec (the same recipe, URIs absolute) on Spark, and compares summaries and
// outputs.
func compareEngines(t *testing.T, e *spark.Engine, db *sql.DB, recipePath string, rec *kalla.Recipe) {
	t.Helper()
	duckOut := t.TempDir()
	var stdout, stderr bytes.Buffer
	if code := cli.Main(t.Context(), []string{"run", "--recipe", recipePath, "--out", duckOut, "--format", "parquet", "--json"},
		strings.NewReader(""), &stdout, &stderr); code != 0 {
		t.Fatalf("duckdb run: exit %d: %s", code, stderr.String())
	}
	sparkOut := t.TempDir()
	sum, err := e.Execute(t.Context(), spark.Job{Recipe: rec, OutDir: sparkOut, RunID: "t"})
	if err != nil {
		t.Fatalf("spark run: %v", err)
	}
	var duckSum kalla.Summary
	readJSON(t, filepath.Join(duckOut, "summary.json"), &duckSum)
	var fileSum kalla.Summary
	readJSON(t, filepath.Join(sparkOut, "summary.json"), &fileSum)
	// A rules run writes its tables under a scratch folder of the output
	// location; it must be gone once the run has ended.
	if ents, err := os.ReadDir(sparkOut); err == nil {
		for _, ent := range ents {
			if strings.HasPrefix(ent.Name(), ".kalla-scratch") {
				t.Errorf("the run left its scratch folder %s", ent.Name())
			}
		}
	}
	compareSummaries(t, &duckSum, sum)
	compareSummaries(t, &duckSum, &fileSum)
	tables := []string{"matched", "unmatched_left", "unmatched_right"}
	if len(rec.Rules) > 0 {
		// Per-rule counts, reasons counted by kind, unmatched samples
		// with their reasons, break counts and samples.
		dj, _ := json.MarshalIndent(duckSum.Rules, "", " ")
		sj, _ := json.MarshalIndent(fileSum.Rules, "", " ")
		if duckSum.Rules == nil || string(dj) != string(sj) {
			t.Errorf("rules report:\nduckdb %s\nspark  %s", dj, sj)
		}
		tables = append(tables, "breaks")
	}
	for _, table := range tables {
		dc, dr := readParquet(t, db, filepath.Join(duckOut, table+".parquet"))
		sc, sr := readParquet(t, db, filepath.Join(sparkOut, table+".parquet", "*.parquet"))
		if !slices.Equal(dc, sc) && len(dr) == 0 && len(sr) == 0 && slices.Equal(names(dc), names(sc)) {
			// An empty output from a header-only side: DuckDB types its
			// all-NULL columns as it likes (INTEGER).
			t.Logf("%s: empty on both engines, column types differ:\nduckdb %v\nspark  %v", table, dc, sc)
		} else if table == "matched" && !slices.Equal(dc, sc) && slices.Equal(decimalScale(dc), decimalScale(sc)) {
			// Aggregates over DECIMAL in the match SQL's own
			// columns: sum(DECIMAL(18,2)) is DECIMAL(38,2) on
			// DuckDB, DECIMAL(28,2) on Spark; same scale, same
			// values (compared below).
			t.Logf("%s: decimal precision differs:\nduckdb %v\nspark  %v", table, dc, sc)
		} else if !slices.Equal(dc, sc) {
			t.Errorf("%s: columns differ:\nduckdb %v\nspark  %v", table, dc, sc)
		}
		if !slices.EqualFunc(dr, sr, slices.Equal) {
			t.Errorf("%s: rows differ:\nduckdb %v\nspark  %v", table, dr, sr)
		}
	}
	checkDigests(t, sparkOut, sum)
}

// names strips the types from "name TYPE" entries (the type is the last
// word; names may hold spaces).
func names(cols []string) []string {
	out := make([]string, len(cols))
	for i, c := range cols {
		out[i] = c[:strings.LastIndex(c, " ")]
	}
	return out
}
