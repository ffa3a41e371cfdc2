package server_test

import (
	"context"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/kalla-recon/kalla/internal/gen"
	"github.com/kalla-recon/kalla/internal/kalla"
	"github.com/kalla-recon/kalla/internal/server"
	"github.com/kalla-recon/kalla/internal/testenv"
)

// pgExec runs statements on the Postgres database at uri.
func pgExec(t *testing.T, uri string, stmts ...string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	conn, err := pgx.Connect(ctx, uri)
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	defer conn.Close(context.Background())
	for _, s := range stmts {
		if _, err := conn.Exec(ctx, s); err != nil {
			t.Fatalf("%s: %v", s, err)
		}
	}
}

// withTable returns uri with ?table=name.
func withTable(uri, name string) string {
	u, _ := url.Parse(uri)
	q := u.Query()
	q.Set("table", name)
	u.RawQuery = q.Encode()
	return u.String()
}

// TestErrorAnswers checks that every kind of failure is answered with the
// status its code stands for and a JSON body that names the problem and
// never carries a credential.
func TestErrorAnswers(t *testing.T) {
	s := startServer(t, nil)
	pg := testenv.Postgres(t)
	pgExec(t, pg, `CREATE TABLE orders (id bigint PRIMARY KEY, customer text, amount numeric(12,2))`,
		`INSERT INTO orders SELECT i, 'c' || (i % 7), i * 1.25 FROM generate_series(1, 500) i`)
	s.call("POST", "/api/sources", map[string]string{"alias": "orders", "uri": withTable(pg, "orders")}, 200, nil)
	s.call("POST", "/api/sources", map[string]string{"alias": "invoices", "uri": small.Invoices}, 200, nil)

	// A registered Postgres source is shown without its password.
	_, b := s.do("GET", "/api/sources/orders", nil)
	pw, _ := mustParse(t, pg).User.Password()
	if strings.Contains(string(b), pw) || !strings.Contains(string(b), "xxxxx") {
		t.Errorf("source shown with its password: %s", b)
	}
	var p scoped
	s.call("POST", "/api/sources/orders/load-scoped", map[string]any{
		"conditions": []map[string]any{{"column": "amount", "op": "between", "value": []any{100, 200}}},
		"limit":      10,
	}, 200, &p)
	if p.TotalRows != 81 || p.PreviewRows != 10 || p.TotalKind != "exact" || !p.TotalExact { // amounts 100.00 .. 200.00 are i = 80 .. 160
		t.Fatalf("postgres load-scoped: total %d (%s) preview %d", p.TotalRows, p.TotalKind, p.PreviewRows)
	}
	// A large count is a labelled lower bound unless the exact one is asked for.
	pgExec(t, pg, `CREATE TABLE many AS SELECT i AS id, i % 3 = 0 AS third FROM generate_series(1, 6000) i`)
	s.call("POST", "/api/sources", map[string]string{"alias": "many", "uri": withTable(pg, "many")}, 200, nil)
	third := []map[string]any{{"column": "third", "op": "eq", "value": "true"}}
	s.call("POST", "/api/sources/many/load-scoped", map[string]any{"conditions": third, "limit": 5}, 200, &p)
	if p.TotalRows != 1001 || p.TotalKind != "at_least" || p.TotalExact || p.PreviewRows != 5 {
		t.Errorf("bounded load-scoped: total %d (%s, exact %v) preview %d, want at least 1001", p.TotalRows, p.TotalKind, p.TotalExact, p.PreviewRows)
	}
	s.call("POST", "/api/sources/many/load-scoped", map[string]any{"conditions": third, "limit": 5, "exact_total": true}, 200, &p)
	if p.TotalRows != 2000 || p.TotalKind != "exact" || !p.TotalExact {
		t.Errorf("exact_total load-scoped: total %d (%s), want exactly 2000", p.TotalRows, p.TotalKind)
	}
	s.call("GET", "/api/sources/many/preview?limit=3&exact_total=true", nil, 200, &p)
	if p.TotalRows != 6000 || p.TotalKind != "exact" {
		t.Errorf("exact_total preview: total %d (%s), want exactly 6000", p.TotalRows, p.TotalKind)
	}

	secret := "Sup3r-S3cret-Pw-77"
	wrong := mustParse(t, pg)
	wrong.User = url.UserPassword(wrong.User.Username(), secret)
	unreachable := "postgres://kalla:" + secret + "@127.0.0.1:1/db?table=t"
	missing := filepath.Join(fixtureDir(t), "small", "missing.csv")

	reserved := gen.Recipe(small)
	reserved.RecipeID = "preview"

	// A recipe whose side reaches the Kalla host's files through a driver
	// parameter is refused when it is saved, naming the parameter.
	sneaky := gen.Recipe(small)
	sneaky.Sources.Left = kalla.SourceSpec{Alias: "orders", Type: kalla.SourcePostgres, URI: withTable(pg, "orders") + "&sslkey=/etc/ssl/private/server.key&sslcert=/etc/ssl/certs/server.pem", PrimaryKey: []string{"id"}}

	cases := []struct {
		name         string
		method, path string
		body         any
		status       int
		code         string
		parts        []string
	}{
		{"unknown alias", "POST", "/api/sources/nope/load-scoped", map[string]any{}, 404, kalla.ENOTFOUND, []string{"nope"}},
		{"unknown alias preview", "GET", "/api/sources/nope/preview", nil, 404, kalla.ENOTFOUND, nil},
		{"unknown column", "POST", "/api/sources/invoices/load-scoped", map[string]any{"conditions": []map[string]any{{"column": "colour", "op": "eq", "value": "red"}}}, 400, kalla.EINVALID, []string{"colour", "invoice_id"}},
		{"unknown column postgres", "POST", "/api/sources/orders/load-scoped", map[string]any{"conditions": []map[string]any{{"column": "colour", "op": "eq", "value": "red"}}}, 400, kalla.EINVALID, []string{"colour"}},
		{"bad op", "POST", "/api/sources/invoices/load-scoped", map[string]any{"conditions": []map[string]any{{"column": "amount", "op": "approx", "value": 1}}}, 400, kalla.EINVALID, []string{"approx"}},
		{"between needs two", "POST", "/api/sources/invoices/load-scoped", map[string]any{"conditions": []map[string]any{{"column": "amount", "op": "between", "value": 1}}}, 400, kalla.EINVALID, []string{"between"}},
		{"misspelt field", "POST", "/api/sources/invoices/load-scoped", map[string]any{"conditons": []any{}}, 400, kalla.EINVALID, []string{"conditons"}},
		{"bad exact_total", "GET", "/api/sources/orders/preview?exact_total=yes", nil, 400, kalla.EINVALID, []string{"exact_total"}},
		{"bad limit", "POST", "/api/sources/invoices/load-scoped", map[string]any{"limit": -1}, 400, kalla.EINVALID, []string{"limit"}},
		{"not json", "POST", "/api/sources/invoices/load-scoped", "{conditions", 400, kalla.EINVALID, nil},
		{"empty body", "POST", "/api/sources", "", 400, kalla.EINVALID, []string{"empty"}},
		{"csv_uri elsewhere", "POST", "/api/sources/x/load-scoped", map[string]any{"csv_uri": small.Invoices}, 400, kalla.EINVALID, []string{"upload"}},
		{"csv_uri url", "POST", "/api/sources/x/load-scoped", map[string]any{"csv_uri": "https://example.com/a.csv"}, 400, kalla.EINVALID, []string{"upload"}},
		{"missing table param", "POST", "/api/sources", map[string]string{"alias": "x", "uri": pg}, 400, kalla.EINVALID, []string{"table"}},
		{"missing table", "POST", "/api/sources", map[string]string{"alias": "x", "uri": withTable(pg, "no_such_table")}, 404, kalla.ENOTFOUND, []string{"no_such_table"}},
		{"wrong password", "POST", "/api/sources", map[string]string{"alias": "x", "uri": withTable(wrong.String(), "orders")}, 502, kalla.EUNAVAILABLE, []string{"password"}},
		{"unreachable", "POST", "/api/sources", map[string]string{"alias": "x", "uri": unreachable}, 502, kalla.EUNAVAILABLE, nil},
		{"passfile parameter", "POST", "/api/sources", map[string]string{"alias": "x", "uri": withTable(pg, "orders") + "&passfile=/etc/passwd"}, 400, kalla.EINVALID, []string{`parameter "passfile" is not allowed`}},
		{"mysql SET parameter", "POST", "/api/sources", map[string]string{"alias": "x", "uri": "mysql://u:" + secret + "@127.0.0.1:1/db?table=t&sql_mode=x"}, 400, kalla.EINVALID, []string{`parameter "sql_mode" is not allowed`}},
		{"mysql local files", "POST", "/api/sources", map[string]string{"alias": "x", "uri": "mysql://u:" + secret + "@127.0.0.1:1/db?table=t&allowAllFiles=true"}, 400, kalla.EINVALID, []string{`parameter "allowAllFiles" is not allowed`}},
		{"file URI parameter", "POST", "/api/sources", map[string]string{"alias": "x", "uri": "file://" + small.Invoices + "?x=1"}, 400, kalla.EINVALID, []string{"no parameters"}},
		{"recipe with client key", "POST", "/api/recipes", sneaky, 400, kalla.EINVALID, []string{`parameter "sslcert" is not allowed`}},
		{"missing file", "POST", "/api/sources", map[string]string{"alias": "x", "uri": missing}, 404, kalla.ENOTFOUND, []string{"does not exist"}},
		{"bad alias", "POST", "/api/sources", map[string]string{"alias": "1x", "uri": small.Invoices}, 400, kalla.EINVALID, []string{"alias"}},
		{"unknown type", "POST", "/api/sources", map[string]string{"alias": "x", "uri": small.Invoices, "source_type": "excel"}, 400, kalla.EINVALID, []string{"excel"}},
		{"unknown recipe", "POST", "/api/runs", map[string]string{"recipe_id": "nope"}, 404, kalla.ENOTFOUND, nil},
		{"no recipe", "POST", "/api/runs", map[string]string{}, 400, kalla.EINVALID, []string{"recipe_id"}},
		{"both recipes", "POST", "/api/runs", map[string]any{"recipe_id": "a", "recipe": gen.Recipe(small)}, 400, kalla.EINVALID, []string{"not both"}},
		{"invalid inline recipe", "POST", "/api/runs", map[string]any{"recipe": map[string]any{"recipe_id": "x"}}, 400, kalla.EINVALID, []string{"match_sql"}},
		{"callback scheme", "POST", "/api/runs", map[string]any{"recipe": gen.Recipe(small), "callback_url": "file:///etc/passwd"}, 400, kalla.EINVALID, []string{"http"}},
		{"bad run filter", "POST", "/api/runs", map[string]any{"recipe": gen.Recipe(small), "filters": map[string]any{"left": []map[string]any{{"column": "amount", "op": "in", "value": 3}}}}, 400, kalla.EINVALID, []string{"in"}},
		{"unknown run", "GET", "/api/runs/0000-nope", nil, 404, kalla.ENOTFOUND, nil},
		{"unknown run events", "GET", "/api/runs/0000-nope/events", nil, 404, kalla.ENOTFOUND, nil},
		{"bad run status", "GET", "/api/runs?status=done", nil, 400, kalla.EINVALID, []string{"done"}},
		{"bad paging", "GET", "/api/runs?limit=-1", nil, 400, kalla.EINVALID, nil},
		{"invalid recipe", "POST", "/api/recipes", `{"recipe_id":"x","primary_keys":["a"]}`, 400, kalla.EINVALID, []string{"primary_keys"}},
		{"recipe id mismatch", "PUT", "/api/recipes/other", gen.Recipe(small), 400, kalla.EINVALID, []string{"differs"}},
		{"unknown route", "GET", "/api/nothing", nil, 404, kalla.ENOTFOUND, nil},
		{"wrong method", "PATCH", "/api/sources", nil, 405, kalla.EINVALID, []string{"GET, POST"}},
		// Out of the documented range is refused, never capped.
		{"runs limit over the maximum", "GET", "/api/runs?limit=501", nil, 400, kalla.EINVALID, []string{"from 1 to 500"}},
		{"runs limit zero", "GET", "/api/runs?limit=0", nil, 400, kalla.EINVALID, []string{"limit"}},
		{"empty limit", "GET", "/api/runs?limit=", nil, 400, kalla.EINVALID, []string{"limit"}},
		// Present but empty is not "absent" (schemathesis sent ?status=).
		{"empty status", "GET", "/api/runs?status=", nil, 400, kalla.EINVALID, []string{"not a run status"}},
		{"empty exact_total", "GET", "/api/sources/orders/preview?exact_total=", nil, 400, kalla.EINVALID, []string{"exact_total"}},
		{"empty results order", "GET", "/api/runs/0000-nope/results/matched?order=", nil, 400, kalla.EINVALID, []string{"order is empty"}},
		{"empty results sort", "GET", "/api/runs/0000-nope/results/matched?sort=", nil, 400, kalla.EINVALID, []string{"sort is empty"}},
		{"results limit over the maximum", "GET", "/api/runs/0000-nope/results/matched?limit=1001", nil, 400, kalla.EINVALID, []string{"from 1 to 1000"}},
		{"offset beyond int64", "GET", "/api/runs?offset=9223372036854775808", nil, 400, kalla.EINVALID, []string{"offset"}},
		{"source preview limit zero", "GET", "/api/sources/invoices/preview?limit=0", nil, 400, kalla.EINVALID, []string{"from 1 to 1000"}},
		// A null is not the zero value.
		{"null limit", "POST", "/api/sources/invoices/load-scoped", `{"limit": null}`, 400, kalla.EINVALID, []string{"limit is null"}},
		{"null recipe field", "POST", "/api/recipes", `{"recipe_id": "x", "name": null}`, 400, kalla.EINVALID, []string{"name is null"}},
		{"null nested", "POST", "/api/runs", `{"recipe": {"recipe_id": "x", "sources": {"left": {"csv": null}}}}`, 400, kalla.EINVALID, []string{"recipe.sources.left.csv is null"}},
		{"null body", "POST", "/api/runs", `null`, 400, kalla.EINVALID, []string{"null"}},
		// A literal path's methods are its own, not /api/recipes/{id}'s.
		{"get on recipes/preview", "GET", "/api/recipes/preview", nil, 405, kalla.EINVALID, []string{"(use POST)"}},
		{"options on recipes/validate", "OPTIONS", "/api/recipes/validate", nil, 405, kalla.EINVALID, []string{"(use POST)"}},
		{"reserved recipe id", "POST", "/api/recipes", reserved, 400, kalla.EINVALID, []string{"reserved"}},
		{"body too large", "POST", "/api/recipes", `{"recipe_id":"` + strings.Repeat("x", 2<<20) + `"}`, 413, kalla.EINVALID, []string{"larger"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			msg := s.wantError(c.method, c.path, c.body, c.status, c.code, c.parts...)
			t.Logf("%d %s: %s", c.status, c.code, msg)
			if strings.Contains(msg, secret) || strings.Contains(msg, pw) {
				t.Errorf("message carries a credential: %s", msg)
			}
		})
	}

	// The raw body of the wrong-password answer, not just its message,
	// holds no trace of the password.
	st, raw := s.do("POST", "/api/sources", map[string]string{"alias": "x", "uri": withTable(wrong.String(), "orders")})
	if st != 502 || strings.Contains(string(raw), secret) || strings.Contains(string(raw), url.QueryEscape(secret)) {
		t.Errorf("wrong password answer: %d %s", st, raw)
	}
	// Nothing failed registration was stored.
	s.wantError("GET", "/api/sources/x", nil, 404, kalla.ENOTFOUND)

	// A run that fails records why, redacted, and the server keeps
	// serving; its files are never served.
	rec := gen.Recipe(small)
	rec.RecipeID = "fails"
	rec.Sources.Right.URI = withTable(wrong.String(), "orders")
	rec.Sources.Right.Type = ""
	id := s.startRun(map[string]any{"recipe": rec})
	r := s.waitRun(id, 30*time.Second, "failure", func(r run) bool { return r.Status.Done() })
	if r.Status != kalla.RunFailed || !strings.Contains(r.Error, "password") || strings.Contains(r.Error, secret) {
		t.Fatalf("failed run: %s %q", r.Status, r.Error)
	}
	_, raw = s.do("GET", "/api/runs/"+id, nil)
	if strings.Contains(string(raw), secret) {
		t.Errorf("run shows the password: %s", raw)
	}
	// Stored recipes are shown without the password too.
	s.call("POST", "/api/recipes", rec, 201, nil)
	for _, p := range []string{"/api/recipes/fails", "/api/recipes", "/api/runs"} {
		if _, raw := s.do("GET", p, nil); strings.Contains(string(raw), secret) || !strings.Contains(string(raw), "xxxxx") {
			t.Errorf("%s shows the password: %s", p, raw)
		}
	}
	s.wantError("GET", "/api/runs/"+id+"/files/summary.json", nil, 409, kalla.ECONFLICT, "failed")
	s.wantError("GET", "/api/runs/"+id+"/results/matched", nil, 409, kalla.ECONFLICT)
	s.call("GET", "/healthz", nil, 200, nil)
}

func mustParse(t *testing.T, raw string) *url.URL {
	t.Helper()
	u, err := url.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	return u
}

// TestToken checks the bearer token on /api/ routes, and that a server
// refuses to listen beyond loopback without one.
func TestToken(t *testing.T) {
	const token = "a-long-random-token-for-tests"
	s := startServer(t, func(c *server.Config) { c.APIToken = token })
	for _, auth := range []string{"", "Bearer wrong", "Basic " + token, "Bearer " + token + "x", token} {
		req, _ := http.NewRequest("GET", s.url+"/api/sources", nil)
		if auth != "" {
			req.Header.Set("Authorization", auth)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := readAll(resp)
		if resp.StatusCode != 401 || !strings.Contains(string(b), `"unauthorized"`) || resp.Header.Get("WWW-Authenticate") == "" {
			t.Errorf("Authorization %q: %d %s", auth, resp.StatusCode, b)
		}
	}
	// Every /api/ route, even unknown ones, needs the token.
	for _, p := range []string{"/api/openapi.json", "/api/runs/x/events", "/api/nothing"} {
		resp, err := http.Get(s.url + p)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 401 {
			t.Errorf("%s without token: %d", p, resp.StatusCode)
		}
	}
	s.call("GET", "/api/sources", nil, 200, nil) // with the token
	for _, p := range []string{"/healthz", "/readyz", "/metrics"} {
		resp, err := http.Get(s.url + p)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Errorf("%s: %d", p, resp.StatusCode)
		}
	}

	m := server.NewMain(server.Config{Addr: "0.0.0.0:0", DataDir: t.TempDir()})
	err := m.Run(context.Background())
	if err == nil || kalla.ErrorCode(err) != kalla.EINVALID || !strings.Contains(err.Error(), "KALLA_API_TOKEN") {
		m.Close()
		t.Fatalf("non-loopback without token: %v", err)
	}
}

// TestPathConfinement checks that file sources named through the API must
// lie under the data folder or a configured file root.
func TestPathConfinement(t *testing.T) {
	s := startServer(t, nil)
	outside := t.TempDir()
	secretFile := writeFile(t, outside, "secret.csv", "a,b\n1,2\n")
	root := fixtureDir(t)
	link := filepath.Join(root, "small", "link-"+filepath.Base(outside)+".csv")
	if err := os.Symlink(secretFile, link); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.Remove(link) })
	for _, c := range []struct{ name, uri, part string }{
		{"outside", secretFile, "outside"},
		{"file uri outside", "file://" + secretFile, "outside"},
		{"dot dot", filepath.Join(root, "small") + "/../../" + strings.TrimPrefix(secretFile, "/"), ".."},
		{"relative", "small/invoices.csv", "absolute"},
		{"symlink out", link, "outside"},
		{"etc", "/etc/passwd", "outside"},
	} {
		t.Run(c.name, func(t *testing.T) {
			s.wantError("POST", "/api/sources", map[string]string{"alias": "x", "uri": c.uri, "source_type": "csv"}, 400, kalla.EINVALID, c.part)
			rec := gen.Recipe(small)
			rec.RecipeID = "escape"
			rec.Sources.Left.URI = c.uri
			s.wantError("POST", "/api/recipes", rec, 400, kalla.EINVALID, c.part)
			s.wantError("POST", "/api/runs", map[string]any{"recipe": rec}, 400, kalla.EINVALID, c.part)
			var chk struct {
				OK       bool     `json:"ok"`
				Problems []string `json:"problems"`
			}
			s.call("POST", "/api/recipes/validate", rec, 200, &chk)
			if chk.OK || !strings.Contains(strings.Join(chk.Problems, " "), c.part) {
				t.Errorf("validate: %+v", chk)
			}
		})
	}
	// Inside the roots is fine, by path or file:// URI.
	s.call("POST", "/api/sources", map[string]string{"alias": "ok1", "uri": small.Invoices}, 200, nil)
	s.call("POST", "/api/sources", map[string]string{"alias": "ok2", "uri": "file://" + small.Payments}, 200, nil)
}
