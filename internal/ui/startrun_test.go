package ui_test

import (
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"
)

// TestStartRunWaitsForScript pins the cause of a flake of the tests that
// start a run from the runs page (TestProofFlow, TestReconcileInBrowser,
// failing under load to reach the run page): the page's form has no
// action of its own, and its script (a module, run after the page is
// parsed) is what turns "Start run" into POST /api/runs. A click that
// lands between the two, which a loaded machine makes likely, submitted
// the form natively: a GET of /runs?recipe_id=..., the runs page again,
// and no run. With the script held back (its URL blocked), the button
// must be disabled and a click must change nothing; once the script runs
// it enables the button and marks the form ready (data-ready), which is
// the state the tests wait for before they click.
func TestStartRunWaitsForScript(t *testing.T) {
	chromium(t)
	dir := t.TempDir()
	rec := resultsRecipe(t, dir)
	s := startServer(t, nil, dir)
	apiCall(t, s.url, "", "POST", "/api/recipes", rec, nil)
	b := newTab(t, s.url)
	if _, err := chromedp.Call(b.ctx, network.Enable, network.EnableParams{}); err != nil {
		t.Fatal(err)
	}
	if _, err := chromedp.Call(b.ctx, network.SetBlockedURLs, network.SetBlockedURLsParams{URLPatterns: []*network.BlockPattern{{URLPattern: s.url + "/static/runs.js?*", Block: true}}}); err != nil {
		t.Fatal(err)
	}
	b.open("/runs")
	b.waitText("#start-form", "Start run", 10*time.Second)
	b.eval("the button waits for the script", `document.querySelector("#start-form button[type=submit]").disabled && !document.getElementById("start-form").dataset.ready`)
	b.eval("press Start run before the script", `(() => { document.querySelector("#start-form button[type=submit]").click(); return true; })()`)
	b.waitText("h1", "Runs", 10*time.Second)
	if loc := b.location(); loc != s.url+"/runs" {
		t.Errorf("a click before the script ran left the page for %s", loc)
	}
	var runs map[string]any
	apiCall(t, s.url, "", "GET", "/api/runs", nil, &runs)
	if list, _ := runs["runs"].([]any); len(list) != 0 {
		t.Errorf("a click before the script ran started %d runs", len(list))
	}

	// With the script: ready, enabled, and the click starts the run.
	if _, err := chromedp.Call(b.ctx, network.SetBlockedURLs, network.SetBlockedURLsParams{}); err != nil {
		t.Fatal(err)
	}
	b.open("/runs")
	b.click("#start-form[data-ready] button[type=submit]")
	b.waitText("h1", "Run ", 20*time.Second)
	if loc := b.location(); !strings.HasPrefix(loc, s.url+"/runs/") {
		t.Errorf("Start run led to %s", loc)
	}
}
