package spark_test

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kalla-recon/kalla/internal/cli"
	"github.com/kalla-recon/kalla/internal/kalla"
	"github.com/kalla-recon/kalla/internal/spark"
)

// TestCLIEngineSpark runs `kalla run --engine spark` and `kalla recipe
// check --engine spark` as a user types them.
func TestCLIEngineSpark(t *testing.T) {
	rem := remote(t)
	recipe := filepath.Join(scenarios, "exact_1to1", "recipe.json")
	out := t.TempDir()
	var stdout, stderr bytes.Buffer
	code := cli.Main(t.Context(), []string{"run", "--recipe", recipe, "--out", out, "--engine", "spark", "--spark-remote", rem, "--json"},
		strings.NewReader(""), &stdout, &stderr)
	if code != 0 {
		t.Fatalf("kalla run --engine spark: exit %d: %s", code, stderr.String())
	}
	var sum kalla.Summary
	readJSON(t, filepath.Join(out, "summary.json"), &sum)
	if sum.Status != "completed" || !strings.HasPrefix(sum.EngineVersion, "spark") || sum.Sources.Left.URI != "left.csv" {
		t.Errorf("summary: status %q, engine %q, left uri %q", sum.Status, sum.EngineVersion, sum.Sources.Left.URI)
	}
	stdout.Reset()
	stderr.Reset()
	code = cli.Main(t.Context(), []string{"recipe", "check", recipe, "--engine", "spark", "--spark-remote", rem},
		strings.NewReader(""), &stdout, &stderr)
	if code != 0 || !strings.Contains(stdout.String(), "ready to run") {
		t.Errorf("kalla recipe check --engine spark: exit %d: %s%s", code, stdout.String(), stderr.String())
	}
	// A DuckDB-only function is reported by the check with Spark's reason.
	dir := t.TempDir()
	for _, f := range []string{"left.csv", "right.csv"} {
		b, err := os.ReadFile(filepath.Join(scenarios, "exact_1to1", f))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, f), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	bad := `{"recipe_id": "duck-only", "match_sql": "SELECT l.invoice_id, r.payment_id FROM left_src l JOIN right_src r ON jaro_winkler_similarity(l.invoice_id, r.reference) > 0.9",
  "sources": {"left": {"alias": "invoices", "uri": "left.csv", "primary_key": ["invoice_id"]},
              "right": {"alias": "payments", "uri": "right.csv", "primary_key": ["payment_id"]}}}`
	if err := os.WriteFile(filepath.Join(dir, "recipe.json"), []byte(bad), 0o644); err != nil {
		t.Fatal(err)
	}
	stdout.Reset()
	stderr.Reset()
	code = cli.Main(t.Context(), []string{"recipe", "check", filepath.Join(dir, "recipe.json"), "--engine", "spark", "--spark-remote", rem},
		strings.NewReader(""), &stdout, &stderr)
	if code != 2 || !strings.Contains(stdout.String(), "jaro_winkler_similarity") {
		t.Errorf("check of a DuckDB-only function: exit %d: %s%s", code, stdout.String(), stderr.String())
	}
	// A decimal comma would leave the column text on Spark and make it a
	// number on DuckDB: the run is refused, naming the setting.
	comma := `{"recipe_id": "comma", "match_sql": "SELECT l.invoice_id, r.payment_id FROM left_src l JOIN right_src r ON r.reference = l.invoice_id",
  "sources": {"left": {"alias": "invoices", "uri": "left.csv", "primary_key": ["invoice_id"], "csv": {"delimiter": ";", "decimal_separator": ","}},
              "right": {"alias": "payments", "uri": "right.csv", "primary_key": ["payment_id"]}}}`
	if err := os.WriteFile(filepath.Join(dir, "recipe.json"), []byte(comma), 0o644); err != nil {
		t.Fatal(err)
	}
	stdout.Reset()
	stderr.Reset()
	code = cli.Main(t.Context(), []string{"run", "--recipe", filepath.Join(dir, "recipe.json"), "--out", t.TempDir(), "--engine", "spark", "--spark-remote", rem},
		strings.NewReader(""), &stdout, &stderr)
	if code != 2 || !strings.Contains(stderr.String(), `decimal_separator "," is not supported on Spark`) {
		t.Errorf("decimal comma on Spark: exit %d: %s%s", code, stdout.String(), stderr.String())
	}
	stdout.Reset()
	stderr.Reset()
	code = cli.Main(t.Context(), []string{"recipe", "check", filepath.Join(dir, "recipe.json"), "--engine", "spark", "--spark-remote", rem},
		strings.NewReader(""), &stdout, &stderr)
	if code != 2 || !strings.Contains(stdout.String(), `decimal_separator "," is not supported on Spark`) {
		t.Errorf("check of a decimal comma on Spark: exit %d: %s%s", code, stdout.String(), stderr.String())
	}
	// --engine spark without an endpoint is a usage error.
	t.Setenv("KALLA_SPARK_REMOTE", "")
	stderr.Reset()
	if code := cli.Main(t.Context(), []string{"run", "--recipe", recipe, "--out", t.TempDir(), "--engine", "spark"},
		strings.NewReader(""), &stdout, &stderr); code == 0 || !strings.Contains(stderr.String(), "--spark-remote") {
		t.Errorf("no endpoint: exit %d: %s", code, stderr.String())
	}
}

// TestCancelLeavesNoSummary cancels a run once it reaches the match stage:
// the run returns the context's error, writes no summary and no output.
func TestCancelLeavesNoSummary(t *testing.T) {
	e := newEngine(t)
	rec := loadRecipe(t, filepath.Join(scenarios, "exact_1to1"))
	out := t.TempDir()
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	_, err := e.Execute(ctx, spark.Job{Recipe: rec, OutDir: out, Progress: func(ev kalla.Event) {
		if ev.Stage == kalla.StageMatch && !ev.Done {
			cancel()
		}
	}})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled run: %v", err)
	}
	ents, err := os.ReadDir(out)
	if err != nil {
		t.Fatal(err)
	}
	for _, ent := range ents {
		t.Errorf("a cancelled run left %s", ent.Name())
	}
}
