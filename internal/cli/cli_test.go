package cli_test

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kalla-recon/kalla/internal/cli"
	"github.com/kalla-recon/kalla/internal/gen"
)

func runKalla(t testing.TB, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errb bytes.Buffer
	code = cli.Main(context.Background(), args, strings.NewReader(""), &out, &errb)
	return code, out.String(), errb.String()
}

// TestDemoAgreesWithGroundTruth runs the README's first command and checks
// its counts against what the generator decided while writing the data.
func TestDemoAgreesWithGroundTruth(t *testing.T) {
	dir := t.TempDir()
	code, out, errs := runKalla(t, "demo", "--dir", dir, "--invoices", "500", "--json")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errs)
	}
	var sum map[string]any
	if err := json.Unmarshal([]byte(out), &sum); err != nil {
		t.Fatalf("summary is not JSON: %v\n%s", err, out)
	}
	spec := gen.Standard(500)
	spec.Seed = 7
	_, truth, err := gen.Write(t.TempDir(), spec)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]int{
		"left_count":            truth.Invoices,
		"right_count":           truth.Payments,
		"matched_count":         truth.MatchedPairs(),
		"matched_left_records":  truth.MatchedInvoices(),
		"matched_right_records": truth.MatchedPairs(),
		"unmatched_left_count":  truth.OrphanInvoices,
		"unmatched_right_count": truth.StrayPayments,
	}
	for k, v := range want {
		if got := int(sum[k].(float64)); got != v {
			t.Errorf("%s = %d, want %d", k, got, v)
		}
	}
	for _, f := range []string{"matched.parquet", "unmatched_left.parquet", "unmatched_right.parquet", "summary.json"} {
		if _, err := os.Stat(filepath.Join(dir, "results", f)); err != nil {
			t.Errorf("missing output: %v", err)
		}
	}
	// Human output names the counts and where the files are.
	code, out, _ = runKalla(t, "demo", "--dir", t.TempDir())
	if code != 0 || !strings.Contains(out, "matched pairs") || !strings.Contains(out, "unmatched_left.parquet") {
		t.Errorf("demo output (exit %d):\n%s", code, out)
	}
}

func TestExitCodes(t *testing.T) {
	dir := t.TempDir()
	if code, _, _ := runKalla(t, "demo", "--dir", dir); code != 0 {
		t.Fatalf("demo failed")
	}
	recipe := filepath.Join(dir, "recipe.json")
	cases := []struct {
		name string
		args []string
		code int
		msg  string
	}{
		{"no args", []string{"run"}, 2, "--recipe is required"},
		{"unknown flag", []string{"run", "--nope"}, 2, "unknown flag"},
		{"unknown command", []string{"frobnicate"}, 2, "unknown command"},
		{"missing recipe file", []string{"run", "--recipe", filepath.Join(dir, "none.json"), "--out", dir}, 2, "does not exist"},
		{"bad format", []string{"run", "--recipe", recipe, "--out", t.TempDir(), "--format", "xlsx"}, 2, `unknown format "xlsx"`},
		{"csv format", []string{"run", "--recipe", recipe, "--out", t.TempDir(), "--format", "parquet,csv"}, 0, ""},
		{"check ok", []string{"recipe", "check", recipe}, 0, ""},
		{"preview bad where", []string{"sources", "preview", filepath.Join(dir, "invoices.csv"), "--where", `{"column":"amount","op":"between","value":5}`}, 2, "exactly two values"},
		{"preview unknown column", []string{"sources", "preview", filepath.Join(dir, "invoices.csv"), "--where", `{"column":"amt","op":"eq","value":5}`}, 1, `no column "amt"`},
		{"version", []string{"version"}, 0, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			code, _, errs := runKalla(t, c.args...)
			if code != c.code {
				t.Errorf("exit %d, want %d; stderr: %s", code, c.code, errs)
			}
			if c.msg != "" && !strings.Contains(errs, c.msg) {
				t.Errorf("stderr %q lacks %q", errs, c.msg)
			}
		})
	}
	// A recipe asking for Spark runs there unless --engine says otherwise;
	// without an endpoint that is a usage error naming the recipe's field.
	t.Setenv("KALLA_SPARK_REMOTE", "")
	onSpark := filepath.Join(dir, "spark.json")
	rb, _ := os.ReadFile(recipe)
	os.WriteFile(onSpark, bytes.Replace(rb, []byte("{"), []byte(`{"engine": "spark", `), 1), 0o644)
	if code, _, errs := runKalla(t, "run", "--recipe", onSpark, "--out", t.TempDir()); code != 2 || !strings.Contains(errs, `the recipe's "engine": spark (override with --engine) needs --spark-remote`) {
		t.Errorf("run of a spark recipe without an endpoint: exit %d, stderr %q", code, errs)
	}
	if code, _, errs := runKalla(t, "recipe", "check", onSpark); code != 2 || !strings.Contains(errs, "needs --spark-remote") {
		t.Errorf("check of a spark recipe without an endpoint: exit %d, stderr %q", code, errs)
	}
	if code, _, errs := runKalla(t, "run", "--recipe", onSpark, "--engine", "duckdb", "--out", t.TempDir()); code != 0 {
		t.Errorf("run of a spark recipe with --engine duckdb: exit %d, stderr %q", code, errs)
	}

	// An invalid recipe: the check lists problems and exits 2.
	bad := filepath.Join(dir, "bad.json")
	b, _ := os.ReadFile(recipe)
	os.WriteFile(bad, bytes.Replace(b, []byte(`"invoice_id"`), []byte(`"inv_id"`), 1), 0o644)
	code, out, _ := runKalla(t, "recipe", "check", bad)
	if code != 2 || !strings.Contains(out, `no column "inv_id"`) {
		t.Errorf("check of bad recipe: exit %d\n%s", code, out)
	}
}

func TestPreviewJSON(t *testing.T) {
	dir := t.TempDir()
	if code, _, _ := runKalla(t, "demo", "--dir", dir); code != 0 {
		t.Fatal("demo failed")
	}
	code, out, errs := runKalla(t, "sources", "preview", filepath.Join(dir, "invoices.csv"), "--json", "--limit", "3",
		"--where", `[{"column":"amount","op":"gte","value":1000},{"column":"currency","op":"in","value":["EUR"]}]`)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errs)
	}
	var p struct {
		Columns []struct {
			Name     string `json:"name"`
			DataType string `json:"data_type"`
			Nullable bool   `json:"nullable"`
		} `json:"columns"`
		Rows        [][]*string `json:"rows"`
		TotalRows   int         `json:"total_rows"`
		PreviewRows int         `json:"preview_rows"`
	}
	if err := json.Unmarshal([]byte(out), &p); err != nil {
		t.Fatal(err)
	}
	if len(p.Columns) != 5 || p.Columns[2].Name != "amount" || p.Columns[2].DataType != "DECIMAL(18,2)" {
		t.Errorf("columns = %+v", p.Columns)
	}
	if p.PreviewRows != 3 || len(p.Rows) != 3 || p.TotalRows <= 3 {
		t.Errorf("preview_rows %d, rows %d, total %d", p.PreviewRows, len(p.Rows), p.TotalRows)
	}
	// The true total: count the file's rows with amount >= 1000 independently.
	b, _ := os.ReadFile(filepath.Join(dir, "invoices.csv"))
	want := 0
	for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n")[1:] {
		f := strings.Split(line, ",")
		amount := f[len(f)-3]
		whole := strings.Split(amount, ".")[0]
		if len(whole) > 4 || (len(whole) == 4 && whole >= "1000") {
			want++
		}
	}
	if p.TotalRows != want {
		t.Errorf("total_rows %d, want %d", p.TotalRows, want)
	}
}
