package ui

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/kalla-recon/kalla/internal/kalla"
	"github.com/kalla-recon/kalla/internal/store"
)

// fakeStore is a metadata store in memory.
type fakeStore struct {
	sources []*kalla.RegisteredSource
	recipes []*kalla.StoredRecipe
	runs    []*kalla.RunRecord
	err     error // returned by every method when set
}

func (f *fakeStore) ListSources(ctx context.Context) ([]*kalla.RegisteredSource, error) {
	return f.sources, f.err
}

func (f *fakeStore) GetSource(ctx context.Context, alias string) (*kalla.RegisteredSource, error) {
	if f.err != nil {
		return nil, f.err
	}
	for _, s := range f.sources {
		if s.Alias == alias {
			return s, nil
		}
	}
	return nil, kalla.Errorf(kalla.ENOTFOUND, "no source %q", alias)
}

func (f *fakeStore) ListRecipes(ctx context.Context) ([]*kalla.StoredRecipe, error) {
	return f.recipes, f.err
}

func (f *fakeStore) GetRecipe(ctx context.Context, id string) (*kalla.StoredRecipe, error) {
	if f.err != nil {
		return nil, f.err
	}
	for _, r := range f.recipes {
		if r.ID == id {
			return r, nil
		}
	}
	return nil, kalla.Errorf(kalla.ENOTFOUND, "no recipe %q", id)
}

func (f *fakeStore) ListRuns(ctx context.Context, q store.RunQuery) ([]*kalla.RunRecord, error) {
	var out []*kalla.RunRecord
	for _, r := range f.runs {
		if (q.Status == "" || r.Status == q.Status) && (q.RecipeID == "" || r.RecipeID == q.RecipeID) {
			out = append(out, r)
		}
	}
	return out, f.err
}

func (f *fakeStore) GetRun(ctx context.Context, id string) (*kalla.RunRecord, error) {
	if f.err != nil {
		return nil, f.err
	}
	for _, r := range f.runs {
		if r.ID == id {
			return r, nil
		}
	}
	return nil, kalla.Errorf(kalla.ENOTFOUND, "no run %q", id)
}

const secret = "s3cr3t-Pa55"

// sampleStore holds a source, a recipe and runs whose URIs carry a
// password, so pages can be checked for it.
func sampleStore() *fakeStore {
	pgURI := "postgres://analyst:" + secret + "@db.example:5432/books?table=ledger"
	now := time.Date(2026, 11, 2, 9, 30, 0, 0, time.UTC)
	eur := "EUR"
	rec := kalla.Recipe{
		RecipeID: "ledger-vs-bank", Name: "Ledger against bank", MatchSQL: "SELECT * FROM left_src l JOIN right_src r ON l.ref = r.ref",
		Sources: kalla.Sources{
			Left:  kalla.SourceSpec{Alias: "ledger", Type: "postgres", URI: pgURI, PrimaryKey: []string{"entry_id"}},
			Right: kalla.SourceSpec{Alias: "bank", Type: "csv", URI: "/data/bank.csv", PrimaryKey: []string{"line"}},
		},
	}
	started, finished := now.Add(time.Second), now.Add(3*time.Second)
	return &fakeStore{
		sources: []*kalla.RegisteredSource{
			{Alias: "ledger", URI: pgURI, SourceType: "postgres", Status: "ok", CreatedAt: now, UpdatedAt: now},
			{Alias: "bank", URI: "/data/bank.csv", SourceType: "csv", Status: "ok", CreatedAt: now, UpdatedAt: now},
		},
		recipes: []*kalla.StoredRecipe{{ID: rec.RecipeID, Name: rec.Name, Recipe: rec, CreatedAt: now, UpdatedAt: now}},
		runs: []*kalla.RunRecord{
			{ID: "01a2140e-aaaa-7000-8000-000000000001", RecipeID: rec.RecipeID, Recipe: rec, Status: kalla.RunCompleted, Progress: 1,
				CallbackURL: "https://hooks.example/k?token=" + secret, CreatedAt: now, StartedAt: &started, FinishedAt: &finished,
				Summary: &kalla.Summary{LeftCount: 10, RightCount: 8, MatchedCount: 7, MatchedLeftRecords: 7, MatchedRightRecords: 7,
					UnmatchedLeftCount: 3, UnmatchedRightCount: 1, MatchRateLeft: 0.7, MatchRateRight: 0.875,
					Sources: kalla.SummarySources{Left: kalla.SummarySource{Alias: "ledger"}, Right: kalla.SummarySource{Alias: "bank"}},
					Amounts: &kalla.Amounts{LeftColumn: "amount", RightColumn: "paid", From: kalla.AmountFromMatchSQL, Totals: []kalla.AmountTotal{
						{Currency: &eur, LeftMatched: "700.25", LeftOpen: "31.50", RightMatched: "700.00", RightOpen: "9.99", MatchedDifference: "0.25"}}},
					Outputs: []kalla.OutputFile{{Name: "matched.parquet", Table: "matched", Format: "parquet", Rows: 7, Bytes: 1200}}}},
			{ID: "01a2140e-aaaa-7000-8000-000000000002", RecipeID: rec.RecipeID, Recipe: rec, Status: kalla.RunFailed,
				Error: "source ledger: the server rejected the user name or password", CreatedAt: now, StartedAt: &started, FinishedAt: &finished},
			{ID: "01a2140e-aaaa-7000-8000-000000000003", RecipeID: rec.RecipeID, Recipe: rec, Status: kalla.RunRunning, Stage: "match",
				Progress: 0.72, LeftRows: 1000, RightRows: 900, CreatedAt: now, StartedAt: &started},
			{ID: "01a2140e-aaaa-7000-8000-000000000004", RecipeID: rec.RecipeID, Recipe: rec, Status: kalla.RunFailed, ErrorCode: kalla.ERESOURCE,
				Error: "out of memory in stage match: DuckDB needed more than --memory-limit 4GB", CreatedAt: now, StartedAt: &started, FinishedAt: &finished},
		},
	}
}

func newHandler(t *testing.T, st Store, token string) *Handler {
	t.Helper()
	h, err := New(Config{Store: st, Token: token, Version: "test"})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return h
}

// TestPages renders every page from a store whose URIs hold a password:
// each answers its status, and none shows the password.
func TestPages(t *testing.T) {
	h := newHandler(t, sampleStore(), "")
	for _, c := range []struct {
		path   string
		status int
		want   []string
	}{
		{"/", 200, []string{"Dashboard", "ledger-vs-bank", "70.0%", "run queued or running", "data-active"}},
		{"/?fragment=runs", 200, []string{"data-refresh", "ledger-vs-bank"}},
		{"/sources", 200, []string{"ledger", "postgres://analyst:xxxxx@db.example:5432/books?table=ledger", `type="password"`}},
		{"/sources/ledger", 200, []string{"ledger", "xxxxx", "Add a filter"}},
		{"/sources/nope", 404, []string{"no source is registered as &#34;nope&#34;"}},
		{"/recipes", 200, []string{"ledger-vs-bank", "Ledger against bank", "analyst:xxxxx@"}},
		{"/recipes/new", 200, []string{"New recipe", "left_src"}},
		{"/recipes/ledger-vs-bank", 200, []string{"Recipe ledger-vs-bank", `analyst:xxxxx@db.example`}},
		{"/recipes/missing", 404, []string{"no recipe has id"}},
		{"/runs", 200, []string{"Start a reconciliation", "ledger-vs-bank", "badge-completed", "badge-failed", "badge-running"}},
		{"/runs?status=failed", 200, []string{"01a2140e…0002"}},
		{"/runs?status=bogus", 400, []string{"is not a run status"}},
		{"/runs?fragment=1", 200, []string{"data-refresh"}},
		{"/runs/01a2140e-aaaa-7000-8000-000000000001", 200, []string{"Matched pairs", "matched.parquet", "/api/runs/01a2140e-aaaa-7000-8000-000000000001/files/summary.json", "70.0%", "87.5%", `role="tablist"`,
			"Amounts", "left amount and right paid", `<th scope="row">EUR</th><td class="num">700.25</td><td class="num">31.50</td><td class="num">700.00</td><td class="num">9.99</td><td class="num">0.25</td>`}},
		{"/runs/01a2140e-aaaa-7000-8000-000000000002", 200, []string{"Why the run failed", "rejected the user name or password"}},
		{"/runs/01a2140e-aaaa-7000-8000-000000000004", 200, []string{"Why the run failed", "ran out of memory or disk space", "not at fault", "--memory-limit 4GB"}},
		{"/runs/01a2140e-aaaa-7000-8000-000000000003", 200, []string{"Matching", `value="72"`, "1,000", "Cancel run"}},
		{"/runs/nope", 404, []string{"no run has id"}},
		{"/no/such/page", 404, []string{"there is no page at /no/such/page"}},
		{"/login", 303, nil},
	} {
		t.Run(c.path, func(t *testing.T) {
			w := httptest.NewRecorder()
			h.ServeHTTP(w, httptest.NewRequest("GET", c.path, nil))
			body := w.Body.String()
			if w.Code != c.status {
				t.Fatalf("status %d, want %d: %.400s", w.Code, c.status, body)
			}
			for _, s := range c.want {
				if !strings.Contains(body, s) {
					t.Errorf("page lacks %q", s)
				}
			}
			if strings.Contains(body, secret) {
				t.Errorf("page shows the password")
			}
			if csp := w.Header().Get("Content-Security-Policy"); !strings.Contains(csp, "script-src 'self'") {
				t.Errorf("content security policy %q", csp)
			}
		})
	}
}

// TestPageErrors: a store failure is logged and shown as "internal
// error", never with its details.
func TestPageErrors(t *testing.T) {
	h := newHandler(t, &fakeStore{err: errors.New("database is locked: /var/lib/kalla/kalla.db password=" + secret)}, "")
	w := httptest.NewRecorder()
	h.ServeHTTP(w, httptest.NewRequest("GET", "/sources", nil))
	if w.Code != 500 || !strings.Contains(w.Body.String(), "internal error") || strings.Contains(w.Body.String(), "locked") {
		t.Errorf("status %d: %.300s", w.Code, w.Body)
	}
}

// signIn posts the token to /login and returns the session cookie.
func signIn(t *testing.T, h *Handler, token string) (*http.Cookie, *httptest.ResponseRecorder) {
	t.Helper()
	form := url.Values{"token": {token}, "next": {"/runs?status=failed"}}
	r := httptest.NewRequest("POST", "/login", strings.NewReader(form.Encode()))
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	for _, c := range w.Result().Cookies() {
		if c.Name == sessionCookie {
			return c, w
		}
	}
	return nil, w
}

// TestSession checks signing in with the token, the session cookie's
// shape, what the API admits on it, expiry, and signing out.
func TestSession(t *testing.T) {
	const token = "the-api-token-0123456789"
	h := newHandler(t, sampleStore(), token)

	// Without a session every page sends the visitor to sign in.
	w := httptest.NewRecorder()
	h.ServeHTTP(w, httptest.NewRequest("GET", "/runs?status=failed", nil))
	if w.Code != 303 || w.Header().Get("Location") != "/login?next=%2Fruns%3Fstatus%3Dfailed" {
		t.Fatalf("no session: %d %q", w.Code, w.Header().Get("Location"))
	}
	w = httptest.NewRecorder()
	h.ServeHTTP(w, httptest.NewRequest("GET", "/login?next=/sources", nil))
	if w.Code != 200 || !strings.Contains(w.Body.String(), `name="token"`) || strings.Contains(w.Body.String(), `aria-label="Main"`) {
		t.Fatalf("sign-in page: %d %.300s", w.Code, w.Body)
	}

	if c, w := signIn(t, h, "wrong"); c != nil || w.Code != 401 || !strings.Contains(w.Body.String(), "not this server") {
		t.Fatalf("wrong token: cookie %v, %d", c, w.Code)
	}
	c, w := signIn(t, h, token)
	if c == nil || w.Code != 303 || w.Header().Get("Location") != "/runs?status=failed" {
		t.Fatalf("sign in: cookie %v, %d %q", c, w.Code, w.Header().Get("Location"))
	}
	if !c.HttpOnly || c.SameSite != http.SameSiteStrictMode || strings.Contains(c.Value, token) {
		t.Errorf("cookie %+v", c)
	}

	page := httptest.NewRequest("GET", "/", nil)
	page.AddCookie(c)
	w = httptest.NewRecorder()
	h.ServeHTTP(w, page)
	if w.Code != 200 || !strings.Contains(w.Body.String(), "Sign out") || !strings.Contains(w.Body.String(), "Signed in as <strong>admin</strong> (admin)") || strings.Contains(w.Body.String(), token) {
		t.Fatalf("dashboard with a session: %d", w.Code)
	}

	for _, x := range []struct {
		method string
		header bool
		cookie *http.Cookie
		want   bool
	}{
		{"GET", false, c, true},
		{"POST", true, c, true},
		{"POST", false, c, false}, // a form another site posts
		{"DELETE", false, c, false},
		{"GET", true, nil, false},
		{"GET", true, &http.Cookie{Name: sessionCookie, Value: "9999999999.00ff"}, false},
		{"GET", true, &http.Cookie{Name: sessionCookie, Value: c.Value + "0"}, false},
	} {
		r := httptest.NewRequest(x.method, "/api/sources", nil)
		if x.cookie != nil {
			r.AddCookie(x.cookie)
		}
		if x.header {
			r.Header.Set(uiHeader, "1")
		}
		p, got := h.Session(r)
		if got != x.want || got && p != (kalla.Principal{Name: kalla.BootstrapName, Role: kalla.RoleAdmin}) {
			t.Errorf("%s header=%v cookie=%v: Session %v %v, want %v", x.method, x.header, x.cookie != nil, p, got, x.want)
		}
	}

	// Sessions expire.
	h.now = func() time.Time { return time.Now().Add(DefaultSessionTTL + time.Minute) }
	if h.signedIn(page) {
		t.Errorf("session still valid after its time")
	}
	h.now = time.Now

	// Another site's form cannot sign in or out.
	form := url.Values{"token": {token}}
	r := httptest.NewRequest("POST", "/login", strings.NewReader(form.Encode()))
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	r.Header.Set("Origin", "https://evil.example")
	w = httptest.NewRecorder()
	h.ServeHTTP(w, r)
	if w.Code != 403 {
		t.Errorf("cross-site sign-in: %d", w.Code)
	}

	r = httptest.NewRequest("POST", "/logout", nil)
	r.AddCookie(c)
	w = httptest.NewRecorder()
	h.ServeHTTP(w, r)
	if w.Code != 303 || len(w.Result().Cookies()) != 1 || w.Result().Cookies()[0].MaxAge >= 0 {
		t.Errorf("sign out: %d %v", w.Code, w.Result().Cookies())
	}
}

func TestSafeNext(t *testing.T) {
	for in, want := range map[string]string{
		"":                      "/",
		"/runs?status=failed":   "/runs?status=failed",
		"//evil.example/x":      "/",
		"https://evil.example/": "/",
		`/\evil.example`:        "/",
		"/login?next=/x":        "/",
		"runs":                  "/",
	} {
		if got := safeNext(in); got != want {
			t.Errorf("safeNext(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestStatic serves embedded files with their hash as ETag, long-lived
// when the URL names the hash.
func TestStatic(t *testing.T) {
	h := newHandler(t, sampleStore(), "")
	u := h.assetURL("app.js")
	if !strings.Contains(u, "?v=") {
		t.Fatalf("asset URL %q has no version", u)
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, httptest.NewRequest("GET", u, nil))
	if w.Code != 200 || !strings.Contains(w.Header().Get("Content-Type"), "javascript") || !strings.Contains(w.Header().Get("Cache-Control"), "immutable") {
		t.Fatalf("%s: %d %v", u, w.Code, w.Header())
	}
	r := httptest.NewRequest("GET", "/static/app.js", nil)
	r.Header.Set("If-None-Match", w.Header().Get("ETag"))
	w = httptest.NewRecorder()
	h.ServeHTTP(w, r)
	if w.Code != 304 {
		t.Errorf("conditional GET: %d", w.Code)
	}
	w = httptest.NewRecorder()
	h.ServeHTTP(w, httptest.NewRequest("GET", "/static/nope.js", nil))
	if w.Code != 404 {
		t.Errorf("missing asset: %d", w.Code)
	}
}

func TestFormat(t *testing.T) {
	for _, c := range []struct{ got, want string }{
		{fmtInt(0), "0"}, {fmtInt(999), "999"}, {fmtInt(1000), "1,000"}, {fmtInt(-1234567), "-1,234,567"},
		{fmtAmount("27386.14"), "27,386.14"}, {fmtAmount("-1234567.50"), "-1,234,567.50"}, {fmtAmount("999"), "999"},
		{fmtAmount("0.25"), "0.25"}, {fmtAmount("12e3"), "12e3"}, {fmtAmount(""), ""},
		{fmtPct(0.8), "80.0%"}, {fmtPct(0.8755), "87.5%"},
		{fmtDuration(850), "850 ms"}, {fmtDuration(12_340), "12.3 s"}, {fmtDuration(245_000), "4 min 05 s"},
		{shortID("01a2140e-aaaa-7000-8000-000000000001"), "01a2140e…0001"}, {shortID("run-1"), "run-1"},
	} {
		if c.got != c.want {
			t.Errorf("got %q, want %q", c.got, c.want)
		}
	}
}
