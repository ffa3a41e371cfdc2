package ui_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/kalla-recon/kalla/internal/gen"
	"github.com/kalla-recon/kalla/internal/server"
	"github.com/kalla-recon/kalla/internal/store"
	"github.com/kalla-recon/kalla/internal/testenv"
)

// attackerPage is a page on another site that tries to drive Kalla at
// kallaURL through its visitor's browser: attack() sends the requests a
// page may send without asking (no CORS preflight: text/plain and
// multipart bodies) and one that needs a preflight; submitForm() posts a
// file upload as a plain HTML form, which navigates the tab to Kalla's
// answer.
func attackerPage(kallaURL string, source any, recipe any, csv string) string {
	j := func(v any) string { b, _ := json.Marshal(v); return string(b) }
	return fmt.Sprintf(`<!doctype html>
<title>A page on another site</title>
<form id="f" method="post" action=%[1]s enctype="multipart/form-data"><input type="file" name="file" id="file"></form>
<script>
const KALLA = %[2]s;
async function send(path, init) {
  try {
    const r = await fetch(KALLA + path, Object.assign({method: "POST", mode: "no-cors"}, init));
    return r.type;
  } catch (e) { return "failed: " + e.message; }
}
async function attack() {
  const text = {"Content-Type": "text/plain"};
  const fd = new FormData();
  fd.append("file", new File([%[5]s], "left.csv", {type: "text/csv"}));
  const out = {
    sources: await send("/api/sources", {headers: text, body: JSON.stringify(%[3]s)}),
    recipes: await send("/api/recipes", {headers: text, body: JSON.stringify(%[4]s)}),
    runs: await send("/api/runs", {headers: text, body: JSON.stringify({recipe: %[4]s})}),
    uploads: await send("/api/uploads", {body: fd}),
  };
  try {
    await fetch(KALLA + "/api/sources", {method: "POST", headers: {"Content-Type": "application/json"}, body: JSON.stringify(%[3]s)});
    out.cors = "answered";
  } catch (e) { out.cors = "blocked"; }
  return JSON.stringify(out);
}
function submitForm() {
  const dt = new DataTransfer();
  dt.items.add(new File([%[5]s], "left.csv", {type: "text/csv"}));
  document.getElementById("file").files = dt.files;
  document.getElementById("f").submit();
  return true;
}
</script>`, j(kallaURL+"/api/uploads"), j(kallaURL), j(source), j(recipe), j(csv))
}

// await evaluates an expression whose value is a promise of a string.
func (b *tab) await(what, expr string) string {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 60*time.Second)
	defer cancel()
	s, err := chromedp.Run(ctx, chromedp.Evaluate[string](expr, chromedp.EvalAwaitPromise))
	if err != nil {
		b.fail(what, err)
	}
	return s
}

// counts returns how many sources, recipes and runs the server's store
// holds and how many uploads its data folder has.
func counts(t *testing.T, s *testServer) [4]int {
	t.Helper()
	ctx := context.Background()
	src, err1 := s.Store.ListSources(ctx)
	rec, err2 := s.Store.ListRecipes(ctx)
	runs, err3 := s.Store.ListRuns(ctx, store.RunQuery{})
	ups, err4 := os.ReadDir(filepath.Join(s.dataDir, "uploads"))
	for _, err := range []error{err1, err2, err3, err4} {
		if err != nil {
			t.Fatal(err)
		}
	}
	return [4]int{len(src), len(rec), len(runs), len(ups)}
}

// TestCrossOriginInBrowser attacks a server without a token (the loopback
// default) from a real Chromium as a web page would: a page served from
// another port of the same machine sends fetches and a form post to the
// API, and a page whose own name resolves to the server (DNS rebinding,
// played by --host-resolver-rules) reads and writes it as if same-origin.
// Every attempt is refused and the store is unchanged, while Kalla's own
// pages in the same browser register sources as before.
func TestCrossOriginInBrowser(t *testing.T) {
	chromium(t)
	data := newDataset(t, 50)
	var logs testenv.LogBuffer
	s := startServer(t, func(c *server.Config) {
		c.Logger = slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelWarn}))
	}, data.dir)
	port := func() string { u, _ := url.Parse(s.url); return u.Port() }()
	csv, err := os.ReadFile(data.files.Invoices)
	if err != nil {
		t.Fatal(err)
	}
	page := attackerPage(s.url, map[string]string{"alias": "evil", "uri": data.files.Invoices}, gen.Recipe(data.files), string(csv))
	attacker := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		io.WriteString(w, page)
	}))
	t.Cleanup(attacker.Close)
	b := newTab(t, s.url, chromedp.Flag("host-resolver-rules", "MAP rebind.test 127.0.0.1"))

	// Another origin's fetches: the browser sends them (their answers are
	// opaque to the page) and the server refuses each.
	b.do("open the attacker's page", chromedp.Navigate(attacker.URL), chromedp.WaitReady(chromedp.CSS("#f")))
	var out map[string]string
	if err := json.Unmarshal([]byte(b.await("attack", "attack()")), &out); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"sources", "recipes", "runs", "uploads"} {
		if out[k] != "opaque" {
			t.Errorf("the browser did not send the %s request: %q", k, out[k])
		}
	}
	if out["cors"] != "blocked" {
		t.Errorf("a JSON request from another origin was answered: %q", out["cors"])
	}
	// A plain form post: the tab lands on Kalla's refusal.
	b.eval("submit the form", "submitForm()")
	b.waitText("body", "cross-origin request refused", 30*time.Second)
	if got := b.text("body"); !strings.Contains(got, `"code":"forbidden"`) {
		t.Errorf("form post answered %q", got)
	}
	if c := counts(t, s); c != [4]int{} {
		t.Errorf("sources, recipes, runs, uploads after the attack: %v, want none", c)
	}
	for _, p := range []string{"/api/sources", "/api/recipes", "/api/runs", "/api/uploads"} {
		if !strings.Contains(logs.String(), "check=cross-origin method=POST path="+p+" ") {
			t.Errorf("no cross-origin refusal of %s logged:\n%s", p, logs.String())
		}
	}

	// Kalla's own pages, in the same browser, work as before.
	b.open("/sources")
	b.submitURI("payments", data.files.Payments)
	b.waitText(".flash", "Registered source “payments”", 30*time.Second)
	b.submitUpload("invoices", data.files.Invoices)
	b.waitText(".flash", "Registered source “invoices”", 30*time.Second)
	if c := counts(t, s); c[0] != 2 || c[3] != 1 {
		t.Fatalf("sources, recipes, runs, uploads after using the UI: %v, want 2 sources and 1 upload", c)
	}

	// DNS rebinding: a page at http://rebind.test:PORT reaches the server
	// and counts as its own origin, so the browser would let it read
	// answers. The server does not answer to that name.
	b.do("open the rebound name", chromedp.Navigate("http://rebind.test:"+port+"/sources"))
	b.waitText("body", "does not answer to the name", 30*time.Second)
	got := b.await("use the API from the rebound page", fmt.Sprintf(`(async () => {
		const get = await fetch("/api/sources");
		const post = await fetch("/api/sources", {method: "POST", headers: {"Content-Type": "application/json"}, body: JSON.stringify({alias: "rebound", uri: %s})});
		return JSON.stringify({origin: location.origin, get: get.status, post: post.status, body: await get.text()});
	})()`, js(data.files.Payments)))
	var rb struct {
		Origin    string
		Get, Post int
		Body      string
	}
	if err := json.Unmarshal([]byte(got), &rb); err != nil {
		t.Fatal(err)
	}
	if rb.Origin != "http://rebind.test:"+port || rb.Get != 403 || rb.Post != 403 || !strings.Contains(rb.Body, `"forbidden"`) || strings.Contains(rb.Body, "payments") {
		t.Errorf("rebound page: %+v", rb)
	}
	if c := counts(t, s); c[0] != 2 {
		t.Errorf("sources after the rebound page: %d, want 2", c[0])
	}
}
