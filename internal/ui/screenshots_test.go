package ui_test

import (
	"net/url"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/kalla-recon/kalla/internal/gen"
	"github.com/kalla-recon/kalla/internal/kalla"
	"github.com/kalla-recon/kalla/internal/server"
)

// slowMatchSQL pairs every invoice with every payment through a predicate
// DuckDB cannot turn into a hash or range join, so over a large data set
// the match runs until it is cancelled.
const slowMatchSQL = `SELECT l.invoice_id, r.payment_id FROM left_src l JOIN right_src r
  ON hash(l.invoice_id || r.payment_id) % 1000000007 = 7`

// queueRun starts a run through the API and returns its id.
func queueRun(t *testing.T, s *testServer, body any) string {
	t.Helper()
	var out struct {
		RunID string `json:"run_id"`
	}
	if st := apiCall(t, s.url, s.token, "POST", "/api/runs", body, &out); st != 202 {
		t.Fatalf("POST /api/runs: status %d", st)
	}
	return out.RunID
}

// waitRun polls the API until the run's status satisfies done.
func waitRun(t *testing.T, s *testServer, id string, timeout time.Duration, done func(kalla.RunStatus, float64) bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		var r struct {
			Status   kalla.RunStatus `json:"status"`
			Progress float64         `json:"progress"`
			Stage    string          `json:"stage"`
			Error    string          `json:"error"`
		}
		apiCall(t, s.url, s.token, "GET", "/api/runs/"+id, nil, &r)
		if done(r.Status, r.Progress) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("run %s: still %s (stage %s, %.2f, %q) after %s", id, r.Status, r.Stage, r.Progress, r.Error, timeout)
		}
		time.Sleep(25 * time.Millisecond)
	}
}

// TestScreenshots visits every page of the UI in realistic states, checks
// that none throws a script error, and saves one full-page PNG per page
// into $KALLA_SCREENSHOT_DIR (`make screenshots` sets it to ./screenshots),
// or into a temporary folder, so the pages can be looked at.
func TestScreenshots(t *testing.T) {
	chromium(t)
	dir := os.Getenv(envScreenshots)
	if dir == "" {
		dir = t.TempDir()
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	small := newDataset(t, 2000)
	large := newDataset(t, 200_000)
	s := startServer(t, nil, small.dir, large.dir)
	shot := func(b *tab, name string) {
		t.Helper()
		if err := b.saveScreenshot(filepath.Join(dir, name+".png")); err != nil {
			t.Errorf("screenshot %s: %v", name, err)
		}
	}

	// State: three sources (one whose file has gone), two recipes, a
	// completed run, a failed run and a running one.
	for alias, uri := range map[string]string{"invoices": small.files.Invoices, "payments": small.files.Payments} {
		apiCall(t, s.url, "", "POST", "/api/sources", map[string]string{"alias": alias, "uri": uri}, nil)
	}
	rec := gen.Recipe(small.files)
	rec.RecipeID = "invoice-payment-match"
	apiCall(t, s.url, "", "POST", "/api/recipes", rec, nil)
	done := queueRun(t, s, map[string]string{"recipe_id": rec.RecipeID})
	waitRun(t, s, done, 60*time.Second, func(st kalla.RunStatus, _ float64) bool { return st.Done() })

	broken := gen.Recipe(small.files)
	broken.RecipeID = "statement-vs-payments"
	broken.Sources.Left = kalla.SourceSpec{Alias: "statement", Type: "csv", URI: filepath.Join(small.dir, "statement.csv"), PrimaryKey: []string{"id"}}
	broken.MatchSQL = "SELECT * FROM left_src l JOIN right_src r ON l.amount = r.paid_amount"
	statement := filepath.Join(small.dir, "statement.csv")
	if err := os.WriteFile(statement, []byte("id,amount\n1,10.00\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	apiCall(t, s.url, "", "POST", "/api/sources", map[string]string{"alias": "statement", "uri": statement}, nil)
	apiCall(t, s.url, "", "POST", "/api/recipes", broken, nil)
	if err := os.Remove(statement); err != nil {
		t.Fatal(err)
	}
	failed := queueRun(t, s, map[string]string{"recipe_id": broken.RecipeID})
	waitRun(t, s, failed, 60*time.Second, func(st kalla.RunStatus, _ float64) bool { return st.Done() })

	slow := gen.Recipe(large.files)
	slow.RecipeID, slow.MatchSQL = "large-slow-match", slowMatchSQL
	running := queueRun(t, s, map[string]any{"recipe": slow})
	waitRun(t, s, running, 60*time.Second, func(st kalla.RunStatus, p float64) bool { return st == kalla.RunRunning && p >= 0.70 })
	t.Cleanup(func() { apiCall(t, s.url, "", "POST", "/api/runs/"+running+"/cancel", nil, nil) })

	b := newTab(t, s.url)
	b.open("/")
	b.waitText("table.grid", "invoice-payment-match", 10*time.Second)
	shot(b, "01-dashboard")

	b.open("/sources")
	b.waitText(`[data-health="invoices"]`, "rows", 20*time.Second)
	b.waitText(`[data-health="statement"]`, "failing", 20*time.Second)
	shot(b, "02-sources")

	b.open("/sources/payments")
	b.waitText("#summary", "rows in the source", 20*time.Second)
	b.addChip("payer", "eq", "Acme GmbH")
	b.waitText("#total", "match the filter", 20*time.Second)
	b.addChip("paid_amount", "gte", "10000")
	b.waitText("#total", "match all 2 filters", 20*time.Second)
	b.open("/sources/payments?f=" + url.QueryEscape(`[{"column":"payer","op":"eq","array":false,"values":[{"text":"Acme GmbH","number":false}]},{"column":"paid_on","op":"gt","array":false,"values":[{"text":"last week","number":false}]}]`))
	b.waitText(".chip-error", "", 20*time.Second)
	shot(b, "03-source-preview")

	b.open("/recipes")
	b.waitText("table.grid", "statement-vs-payments", 5*time.Second)
	shot(b, "04-recipes")

	b.open("/recipes/" + rec.RecipeID)
	b.waitText("#pairs", "reference_number", 20*time.Second)
	b.click("#preview-match")
	b.waitText("#preview-result", "Preview on samples", 60*time.Second)
	shot(b, "05-recipe-builder")

	b.open("/runs")
	b.waitText("table.grid", "running", 5*time.Second)
	shot(b, "06-runs")

	b.open("/runs/" + done)
	b.waitText("#page-info", "Pairs 1–50", 20*time.Second)
	b.click("#tab-unmatched_left")
	b.waitText("#page-info", "Rows 1–50", 20*time.Second)
	shot(b, "07-run-completed")

	b.open("/runs/" + failed)
	b.waitText("#failure", "", 5*time.Second)
	shot(b, "08-run-failed")

	b.open("/runs/" + running)
	b.waitText("#p-stage", "Matching", 20*time.Second)
	shot(b, "09-run-running")

	b.open("/exceptions?run_id=" + done)
	b.waitText("#queue-status", "Items 1–", 20*time.Second)
	shot(b, "11-exceptions")

	b.open(firstException(t, s, done))
	b.waitText("#reason", "", 20*time.Second)
	shot(b, "12-exception")

	locked := startServer(t, func(c *server.Config) { c.APIToken = "screenshot-token-0123456789" })
	lb := newTab(t, locked.url)
	lb.open("/")
	lb.waitText("h1", "Sign in", 5*time.Second)
	shot(lb, "10-sign-in")
	t.Logf("screenshots in %s", dir)
}
