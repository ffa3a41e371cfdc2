package server_test

import (
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/kalla-recon/kalla/internal/kalla"
	"github.com/kalla-recon/kalla/internal/server"
	"github.com/kalla-recon/kalla/internal/testenv"
)

// preview is the answer of POST /api/recipes/preview.
type preview struct {
	Limit               int         `json:"limit"`
	Left                previewSide `json:"left"`
	Right               previewSide `json:"right"`
	MatchedCount        int64       `json:"matched_count"`
	MatchedLeftRecords  int64       `json:"matched_left_records"`
	UnmatchedLeftCount  int64       `json:"unmatched_left_count"`
	UnmatchedRightCount int64       `json:"unmatched_right_count"`
	Matched             struct {
		Columns   []kalla.Column `json:"columns"`
		Rows      [][]*string    `json:"rows"`
		TotalRows int64          `json:"total_rows"`
	} `json:"matched"`
	UnmatchedLeft struct {
		Rows      [][]*string `json:"rows"`
		TotalRows int64       `json:"total_rows"`
	} `json:"unmatched_left"`
}

// previewSide is one side of a recipe preview.
type previewSide struct {
	Staged     int64  `json:"staged"`
	Total      int64  `json:"total"`
	TotalKind  string `json:"total_kind"`
	TotalExact bool   `json:"total_exact"`
}

// TestPreviewRecipe runs recipes on samples through POST
// /api/recipes/preview: the first limit rows of each side under the
// filters, matched for real, nothing recorded; a database side stops
// reading once its sample is full.
func TestPreviewRecipe(t *testing.T) {
	s := startServer(t, nil)
	rec := smallRecipe()
	var p preview
	s.call("POST", "/api/recipes/preview", map[string]any{"recipe": rec, "limit": 100}, 200, &p)
	if p.Limit != 100 || p.Left.Staged != 100 || p.Right.Staged != 100 || p.Left.Total != int64(smallTruth.Invoices) || p.Right.Total != int64(smallTruth.Payments) ||
		p.Left.TotalKind != "exact" || !p.Left.TotalExact || p.Right.TotalKind != "exact" {
		t.Fatalf("sample sizes: %+v", p)
	}
	if p.MatchedCount == 0 || p.MatchedLeftRecords+p.UnmatchedLeftCount != 100 || p.Matched.TotalRows != p.MatchedCount ||
		int64(len(p.Matched.Rows)) != min(p.MatchedCount, 100) || p.UnmatchedLeft.TotalRows != p.UnmatchedLeftCount {
		t.Fatalf("counts: %+v", p)
	}
	if p.Matched.Columns[0].Name != "invoice_id" {
		t.Errorf("matched columns: %v", p.Matched.Columns)
	}
	// The sample is the first rows, in file order.
	for _, row := range p.UnmatchedLeft.Rows {
		if *row[0] > "INV-00000100" {
			t.Errorf("unmatched %s is not among the first 100 invoices", *row[0])
		}
	}

	// Filters scope the sample, as for a run.
	s.call("POST", "/api/recipes/preview", map[string]any{"recipe": rec, "limit": 1000, "filters": map[string]any{
		"left": []map[string]any{{"column": "amount", "op": "gte", "value": 10000}},
	}}, 200, &p)
	wantBig := countCSV(t, small.Invoices, func(r map[string]string) bool { return atof(t, r["amount"]) >= 10000 })
	if p.Left.Total != wantBig || p.Left.Staged != min(wantBig, 1000) || p.Right.Staged != 1000 {
		t.Errorf("filtered sample: %+v (want %d left)", p, wantBig)
	}
	if n := s.runCount(); n != 0 {
		t.Errorf("a preview recorded %d runs", n)
	}

	bad := *rec
	bad.MatchSQL = "SELECT * FROM left_src l JOIN right_src r ON l.nope = r.reference_number"
	s.wantError("POST", "/api/recipes/preview", map[string]any{"recipe": bad}, 400, kalla.EINVALID, "nope")
	s.wantError("POST", "/api/recipes/preview", map[string]any{"recipe": rec, "limit": 5000}, 400, kalla.EINVALID, "between 1 and 1000")
	s.wantError("POST", "/api/recipes/preview", map[string]any{"limit": 5}, 400, kalla.EINVALID, "recipe is required")
	s.wantError("POST", "/api/recipes/preview", map[string]any{"recipe": rec, "filters": map[string]any{
		"right": []map[string]any{{"column": "no_such", "op": "eq", "value": 1}}}}, 400, kalla.EINVALID, "no_such")

	// A Postgres side: 100 of 20,000 rows staged; the total is counted
	// no further than a source preview's cap (1,000) unless asked.
	pg := testenv.Postgres(t)
	pgExec(t, pg, `CREATE TABLE ledger (entry_id bigint, ref text, booked numeric(12,2))`,
		`INSERT INTO ledger SELECT i, 'INV-' || lpad(i::text, 8, '0'), i FROM generate_series(1, 20000) i`)
	dbRec := *rec
	dbRec.MatchSQL = "SELECT * FROM left_src l JOIN right_src r ON l.ref = r.reference_number"
	dbRec.Sources.Left = kalla.SourceSpec{Alias: "ledger", URI: withTable(pg, "ledger"), PrimaryKey: []string{"entry_id"}}
	s.call("POST", "/api/recipes/preview", map[string]any{"recipe": dbRec, "limit": 100}, 200, &p)
	if p.Left.Staged != 100 || p.Left.Total != 1001 || p.Left.TotalKind != "at_least" || p.Left.TotalExact || p.MatchedCount == 0 {
		t.Errorf("postgres sample: %+v; want a total of at least 1,001", p)
	}
	s.call("POST", "/api/recipes/preview", map[string]any{"recipe": dbRec, "limit": 100, "exact_total": true}, 200, &p)
	if p.Left.Staged != 100 || p.Left.Total != 20000 || p.Left.TotalKind != "exact" || !p.Left.TotalExact {
		t.Errorf("postgres sample, exact total: %+v; want 20,000", p)
	}
	// Few matches: the sample holds them all, and its size is the exact total.
	s.call("POST", "/api/recipes/preview", map[string]any{"recipe": dbRec, "limit": 100, "filters": map[string]any{
		"left": []map[string]any{{"column": "entry_id", "op": "lte", "value": 42}},
	}}, 200, &p)
	if p.Left.Staged != 42 || p.Left.Total != 42 || p.Left.TotalKind != "exact" {
		t.Errorf("postgres sample of 42 rows: %+v", p)
	}
}

// runCount counts the server's runs.
func (s *testServer) runCount() int {
	s.t.Helper()
	var out struct {
		Runs []run `json:"runs"`
	}
	s.call("GET", "/api/runs?limit=500", nil, 200, &out)
	return len(out.Runs)
}

// TestResultsSearch narrows a results page to rows containing a text.
func TestResultsSearch(t *testing.T) {
	s := startServer(t, nil)
	id := s.startRun(map[string]any{"recipe": smallRecipe()})
	s.waitRun(id, 60*time.Second, "completion", func(r run) bool { return r.Status.Done() })
	var page struct {
		Rows      [][]*string `json:"rows"`
		TotalRows int64       `json:"total_rows"`
		Query     string      `json:"q"`
	}
	s.call("GET", "/api/runs/"+id+"/results/unmatched_left?limit=1", nil, 200, &page)
	orphan := *page.Rows[0][0]
	s.call("GET", "/api/runs/"+id+"/results/unmatched_left?q="+url.QueryEscape(strings.ToLower(orphan)), nil, 200, &page)
	if page.TotalRows != 1 || len(page.Rows) != 1 || *page.Rows[0][0] != orphan || page.Query != strings.ToLower(orphan) {
		t.Fatalf("search for %s: %+v", orphan, page)
	}
	// Payments by Acme that reference no invoice are all unmatched.
	wantAcme := countCSV(t, small.Payments, func(r map[string]string) bool {
		return r["payer"] == "Acme GmbH" && strings.HasPrefix(r["reference_number"], "REF-")
	})
	s.call("GET", "/api/runs/"+id+"/results/unmatched_right?limit=1000&q=ACME", nil, 200, &page)
	if page.TotalRows != wantAcme || int64(len(page.Rows)) != wantAcme {
		t.Errorf("unmatched payments with Acme: %d (%d rows), want %d", page.TotalRows, len(page.Rows), wantAcme)
	}
	for _, q := range []string{"%", "_", "'", `\`, "INV%1"} { // no wildcards, no SQL
		s.call("GET", "/api/runs/"+id+"/results/unmatched_left?q="+url.QueryEscape(q), nil, 200, &page)
		if page.TotalRows != 0 {
			t.Errorf("q=%q matched %d rows", q, page.TotalRows)
		}
	}
	s.wantError("GET", "/api/runs/"+id+"/results/matched?q="+strings.Repeat("x", 201), nil, 400, kalla.EINVALID, "longer than")
}

// TestMaskedURIsRestored: a client that was only ever shown a source's
// URI masked can send it back and have it stand for the real one, in a
// stored recipe, a validation, an inline run and a preview; the masked
// URI of the recipe being replaced keeps its password on PUT; a masked URI
// pointing anywhere else is not given the password.
func TestMaskedURIsRestored(t *testing.T) {
	s := startServer(t, nil)
	pg := testenv.Postgres(t)
	pgExec(t, pg, `CREATE TABLE ledger (entry_id bigint, ref text, booked numeric(12,2))`,
		`INSERT INTO ledger SELECT i, 'INV-' || lpad(i::text, 8, '0'), i FROM generate_series(1, 50) i`)
	realURI := withTable(pg, "ledger")
	masked := kalla.Redact(realURI)
	if masked == realURI {
		t.Fatalf("the test database URI %s has no password", masked)
	}
	var src struct {
		URI string `json:"uri"`
	}
	s.call("POST", "/api/sources", map[string]string{"alias": "ledger", "uri": realURI}, 200, &src)
	if src.URI != masked {
		t.Fatalf("registered URI shown as %q, want %q", src.URI, masked)
	}
	rec := smallRecipe()
	rec.RecipeID = "ledger-check"
	rec.MatchSQL = "SELECT * FROM left_src l JOIN right_src r ON l.ref = r.invoice_id"
	rec.Sources.Left, rec.Sources.Right = kalla.SourceSpec{Alias: "ledger", URI: masked, PrimaryKey: []string{"entry_id"}}, rec.Sources.Left

	var chk struct {
		OK       bool     `json:"ok"`
		Problems []string `json:"problems"`
	}
	s.call("POST", "/api/recipes/validate", rec, 200, &chk)
	if !chk.OK {
		t.Fatalf("validate with the masked URI: %v", chk.Problems)
	}
	var p preview
	s.call("POST", "/api/recipes/preview", map[string]any{"recipe": rec}, 200, &p)
	if p.MatchedCount != 50 {
		t.Errorf("preview with the masked URI matched %d, want 50", p.MatchedCount)
	}
	inline := s.startRun(map[string]any{"recipe": rec})
	if r := s.waitRun(inline, 60*time.Second, "completion", func(r run) bool { return r.Status.Done() }); r.Status != kalla.RunCompleted || *r.MatchedCount != 50 {
		t.Fatalf("inline run with the masked URI: %s %q", r.Status, r.Error)
	}

	// Stored, then replaced by its masked self after the source is gone:
	// the recipe's own password is kept.
	s.call("POST", "/api/recipes", rec, 201, nil)
	s.call("DELETE", "/api/sources/ledger", nil, 204, nil)
	renamed := *rec
	renamed.Name = "renamed"
	s.call("PUT", "/api/recipes/ledger-check", renamed, 200, nil)
	id := s.startRun(map[string]string{"recipe_id": "ledger-check"})
	if r := s.waitRun(id, 60*time.Second, "completion", func(r run) bool { return r.Status.Done() }); r.Status != kalla.RunCompleted {
		t.Fatalf("run of the recipe saved back masked: %s %q", r.Status, r.Error)
	}

	// A masked URI that names another table is not the registered source:
	// it keeps its mask, and the server is refused it.
	s.call("POST", "/api/sources", map[string]string{"alias": "ledger", "uri": realURI}, 200, nil)
	other := *rec
	other.RecipeID = "other-table"
	other.Sources.Left.URI = kalla.Redact(withTable(pg, "pg_class"))
	s.call("POST", "/api/recipes/validate", other, 200, &chk)
	if chk.OK || !strings.Contains(strings.Join(chk.Problems, " "), "password") {
		t.Errorf("validate of a masked URI no source has: ok=%v %v", chk.OK, chk.Problems)
	}
}

// TestWebUIMounted: the server answers the web UI at "/" and keeps the
// API's own answers for /api/ and the probes; with a token the pages ask
// to sign in, and a session cookie admits the browser to the API.
func TestWebUIMounted(t *testing.T) {
	s := startServer(t, nil)
	resp, err := s.client.Get(s.url + "/")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := readAll(resp)
	if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") || !strings.Contains(string(body), "Dashboard") {
		t.Fatalf("GET /: %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	s.wantError("GET", "/api/nope", nil, 404, kalla.ENOTFOUND, "no such API route")
	s.call("GET", "/healthz", nil, 200, nil)

	const token = "a-long-random-token-for-tests"
	locked := startServer(t, func(c *server.Config) { c.APIToken = token })
	noRedirect := &http.Client{Timeout: 10 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err = noRedirect.Get(locked.url + "/runs")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 303 || resp.Header.Get("Location") != "/login?next=%2Fruns" {
		t.Fatalf("GET /runs without a session: %d %s", resp.StatusCode, resp.Header.Get("Location"))
	}
	resp, err = noRedirect.PostForm(locked.url+"/login", url.Values{"token": {token}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	var session *http.Cookie
	for _, c := range resp.Cookies() {
		if c.Name == "kalla_session" {
			session = c
		}
	}
	if session == nil {
		t.Fatalf("sign in: %d, no session cookie", resp.StatusCode)
	}
	apiWith := func(method, path string, header bool) int {
		req, _ := http.NewRequest(method, locked.url+path, strings.NewReader(`{"alias":"x","uri":"/nonexistent.csv"}`))
		req.AddCookie(session)
		if header {
			req.Header.Set("X-Kalla-UI", "1")
		}
		resp, err := noRedirect.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp.StatusCode
	}
	for _, c := range []struct {
		method, path string
		header       bool
		want         int
	}{
		{"GET", "/api/sources", false, 200},
		{"POST", "/api/sources", false, 401}, // what another site's form could send
		{"POST", "/api/sources", true, 400},  // admitted; the file is outside the roots
	} {
		if got := apiWith(c.method, c.path, c.header); got != c.want {
			t.Errorf("%s %s with the session cookie (UI header %v): %d, want %d", c.method, c.path, c.header, got, c.want)
		}
	}
}
