package ui_test

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/kalla-recon/kalla/internal/gen"
	"github.com/kalla-recon/kalla/internal/kalla"
	"github.com/kalla-recon/kalla/internal/server"
)

// TestRunProgressAndCancel follows a long run live on its page (the
// stage, the rows staged per side and the percent arrive over the event
// stream, without reloading), cancels it with the page's button, and sees
// the runs list update a run's status in place.
func TestRunProgressAndCancel(t *testing.T) {
	chromium(t)
	large := newDataset(t, 200_000)
	s := startServer(t, nil, large.dir)
	slow := gen.Recipe(large.files)
	slow.RecipeID, slow.MatchSQL = "slow", slowMatchSQL
	apiCall(t, s.url, "", "POST", "/api/recipes", slow, nil)
	b := newTab(t, s.url)

	b.open("/runs#start")
	b.click("#start-form[data-ready] button[type=submit]")
	b.waitText("#p-status", "", 10*time.Second)
	b.eval("mark the page", `(() => { window.__kallaMark = 1; return true; })()`)
	b.waitText("#p-left", fmtInt(int64(large.truth.Invoices)), 60*time.Second)
	b.waitText("#p-right", fmtInt(int64(large.truth.Payments)), 60*time.Second)
	b.waitText("#p-stage", "Matching", 60*time.Second)
	b.waitText("#p-pct", "70%", 10*time.Second)
	b.eval("the page was not reloaded", `window.__kallaMark === 1`)
	runID := strings.TrimPrefix(b.location(), s.url+"/runs/")

	b.acceptDialogs()
	b.click("#cancel")
	b.waitText("main h2", "Cancelled", 30*time.Second)
	var r struct {
		Status kalla.RunStatus `json:"status"`
	}
	apiCall(t, s.url, "", "GET", "/api/runs/"+runID, nil, &r)
	if r.Status != kalla.RunCancelled {
		t.Errorf("run %s is %s after cancel", runID, r.Status)
	}

	// The runs list refreshes a running run's row in place.
	other := queueRun(t, s, map[string]string{"recipe_id": "slow"})
	waitRun(t, s, other, 60*time.Second, func(st kalla.RunStatus, _ float64) bool { return st == kalla.RunRunning })
	b.open("/runs?recipe=slow")
	b.waitText(`tr[data-run="`+other+`"]`, "running", 10*time.Second)
	apiCall(t, s.url, "", "POST", "/api/runs/"+other+"/cancel", nil, nil)
	b.waitText(`tr[data-run="`+other+`"]`, "cancelled", 30*time.Second)
	b.waitText(`tr[data-run="`+runID+`"]`, "cancelled", 5*time.Second)
}

// TestSignInWithToken: a server with an API token shows its pages only
// after signing in with the token; the browser then uses the API with its
// session cookie (the sources page tests connections through it), and the
// token appears in no page. Signing out ends it.
func TestSignInWithToken(t *testing.T) {
	chromium(t)
	const token = "ui-test-token-5f0c1e9a7b3d"
	data := newDataset(t, 200)
	s := startServer(t, func(c *server.Config) { c.APIToken = token }, data.dir)
	apiCall(t, s.url, token, "POST", "/api/sources", map[string]string{"alias": "payments", "uri": data.files.Payments}, nil)
	b := newTab(t, s.url)

	b.open("/sources")
	b.waitText("h1", "Sign in", 10*time.Second)
	b.typeInto("#token", "not-the-token")
	b.click("form button[type=submit]")
	b.waitText(".alert", "not this server's API token", 10*time.Second)
	b.typeInto("#token", token)
	b.click("form button[type=submit]")
	b.waitText("h1", "Sources", 10*time.Second)
	b.waitText(`[data-health="payments"]`, fmtInt(int64(data.truth.Payments))+" rows", 20*time.Second)
	if strings.Contains(b.html(), token) {
		t.Errorf("the sources page holds the token")
	}
	b.open("/sources/payments")
	b.waitText("#summary", "rows in the source", 20*time.Second)
	b.addChip("payer", "eq", "Acme GmbH")
	b.waitText("#total", "match the filter", 20*time.Second)

	// A client without the session still needs the token. (A post that
	// carries the cookie but not the UI's header is refused too: see
	// TestSession.)
	resp, err := http.PostForm(s.url+"/api/sources", url.Values{"alias": {"x"}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 401 {
		t.Errorf("API without token or session: %d", resp.StatusCode)
	}

	b.click(".signout button")
	b.waitText("h1", "Sign in", 10*time.Second)
	b.open("/runs")
	b.waitText("h1", "Sign in", 10*time.Second)
	if loc := b.location(); !strings.HasSuffix(loc, "/login?next=%2Fruns") {
		t.Errorf("after signing out /runs went to %s", loc)
	}
}
