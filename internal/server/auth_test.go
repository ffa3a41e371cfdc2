package server_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"regexp"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kalla-recon/kalla/internal/auth"
	"github.com/kalla-recon/kalla/internal/kalla"
	"github.com/kalla-recon/kalla/internal/server"
	"github.com/kalla-recon/kalla/internal/store"
	"github.com/kalla-recon/kalla/internal/testenv/testserver"
)

// routeRoles is the role each API route needs, written out here apart from
// the route table so that a route given the wrong role fails the test.
var routeRoles = map[string]kalla.Role{
	"GET /api/openapi.json":                 kalla.RoleViewer,
	"GET /api/sources":                      kalla.RoleViewer,
	"POST /api/sources":                     kalla.RoleAdmin,
	"GET /api/sources/{alias}":              kalla.RoleViewer,
	"DELETE /api/sources/{alias}":           kalla.RoleAdmin,
	"GET /api/sources/{alias}/preview":      kalla.RoleViewer,
	"POST /api/sources/{alias}/load-scoped": kalla.RoleViewer,
	"GET /api/recipes":                      kalla.RoleViewer,
	"POST /api/recipes":                     kalla.RoleAdmin,
	"POST /api/recipes/validate":            kalla.RoleAdmin,
	"POST /api/recipes/preview":             kalla.RoleAdmin,
	"POST /api/recipes/suggest":             kalla.RoleAdmin,
	"GET /api/recipes/{id}":                 kalla.RoleViewer,
	"PUT /api/recipes/{id}":                 kalla.RoleAdmin,
	"DELETE /api/recipes/{id}":              kalla.RoleAdmin,
	"GET /api/runs":                         kalla.RoleViewer,
	"POST /api/runs":                        kalla.RolePreparer,
	"GET /api/runs/{id}":                    kalla.RoleViewer,
	"POST /api/runs/{id}/cancel":            kalla.RolePreparer,
	"GET /api/runs/{id}/events":             kalla.RoleViewer,
	"GET /api/runs/{id}/results/{table}":    kalla.RoleViewer,
	"GET /api/runs/{id}/files/{name}":       kalla.RoleViewer,
	"GET /api/runs/{id}/export/{file}":      kalla.RoleViewer,
	"POST /api/uploads":                     kalla.RoleAdmin,
	"GET /api/tokens":                       kalla.RoleAdmin,
	"POST /api/tokens":                      kalla.RoleAdmin,
	"DELETE /api/tokens/{name}":             kalla.RoleAdmin,
	"GET /api/exceptions":                   kalla.RoleViewer,
	"GET /api/exceptions/{id}":              kalla.RoleViewer,
	"POST /api/exceptions/actions":          kalla.RolePreparer,
	"POST /api/exceptions/import":           kalla.RolePreparer,
	"GET /api/audit/verify":                 kalla.RoleViewer,
	"GET /api/runs/{id}/exceptions/summary": kalla.RoleViewer,
	"GET /api/runs/{id}/exceptions.csv":     kalla.RoleViewer,
	"GET /api/runs/{id}/exceptions.xlsx":    kalla.RoleViewer,
	"GET /api/runs/{id}/evidence.zip":       kalla.RoleViewer,
	"POST /api/recipes/{id}/learn":          kalla.RolePreparer,
	"POST /api/recipes/{id}/learn/accept":   kalla.RoleAdmin,
}

var allRoles = []kalla.Role{kalla.RoleViewer, kalla.RolePreparer, kalla.RoleApprover, kalla.RoleAdmin}

// logBuffer collects a server's log lines (and passes them to the test's
// output), so a test can look for what must never be logged.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
	out io.Writer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.buf.Write(p)
	return l.out.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

// as returns the server seen by a client holding token.
func (s *testServer) as(token string) *testServer {
	c := *s
	c.token = token
	return &c
}

// newToken is the answer to POST /api/tokens.
type newToken struct {
	kalla.APIToken
	Token string `json:"token"`
}

// TestRoleMatrix drives every API route over HTTP with a token of each
// role, on both stores: a route answers 403 forbidden (naming the role
// needed) to exactly the roles below the one it needs, and never 401 or
// 403 to the others. It also checks how the first token closes an open
// server, revocation, who is recorded as the creator, and that no token
// nor its hash shows in any answer or log line.
func TestRoleMatrix(t *testing.T) {
	forEachStore(t, func(t *testing.T, databaseURL string) {
		logs := &logBuffer{out: t.Output()}
		s := startServer(t, func(c *server.Config) {
			c.DatabaseURL = databaseURL
			c.Logger = slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
		})
		var answers bytes.Buffer
		record := func(b []byte) []byte { answers.Write(b); return b }

		// A loopback server without tokens is open, as it always was;
		// its first token comes from the open API and closes it.
		s.call("GET", "/api/sources", nil, 200, nil)
		var root newToken
		// (The answers that create tokens carry them, once; every
		// other answer is recorded.)
		s.call("POST", "/api/tokens", map[string]string{"name": "root", "role": "admin"}, 201, &root)
		if !strings.HasPrefix(root.Token, auth.TokenPrefix) || len(root.Token) != len(auth.TokenPrefix)+43 || root.CreatedBy != "api" {
			t.Fatalf("first token: %+v", root)
		}
		s.wantError("GET", "/api/sources", nil, 401, kalla.EUNAUTHORIZED, "missing or wrong API token")
		s.as("kalla_not-a-token").wantError("GET", "/api/sources", nil, 401, kalla.EUNAUTHORIZED)
		admin := s.as(root.Token)

		tokens := map[kalla.Role]string{}
		for _, r := range allRoles {
			var nt newToken
			admin.call("POST", "/api/tokens", map[string]string{"name": "user-" + string(r), "role": string(r)}, 201, &nt)
			if nt.Role != r || nt.CreatedBy != "root" {
				t.Fatalf("token for %s: %+v (want created by root, the caller)", r, nt)
			}
			tokens[r] = nt.Token
		}
		admin.wantError("POST", "/api/tokens", map[string]string{"name": "user-viewer", "role": "viewer"}, 409, kalla.ECONFLICT, "already has a token")
		admin.wantError("POST", "/api/tokens", map[string]string{"name": "admin", "role": "viewer"}, 400, kalla.EINVALID, "KALLA_API_TOKEN")
		admin.wantError("POST", "/api/tokens", map[string]string{"name": "eve", "role": "owner"}, 400, kalla.EINVALID, "viewer, preparer, approver or admin")

		// Every documented route is in the expected table, and no more.
		var doc struct {
			Paths map[string]map[string]json.RawMessage `json:"paths"`
		}
		if err := json.Unmarshal(s.as(tokens[kalla.RoleViewer]).call("GET", "/api/openapi.json", nil, 200, nil), &doc); err != nil {
			t.Fatal(err)
		}
		var documented []string
		for p, item := range doc.Paths {
			for m := range item {
				if m != "parameters" && strings.HasPrefix(p, "/api/") {
					documented = append(documented, strings.ToUpper(m)+" "+p)
				}
			}
		}
		sort.Strings(documented)
		if len(documented) != len(routeRoles) {
			t.Errorf("openapi.json documents %d API routes, the test expects %d: %q", len(documented), len(routeRoles), documented)
		}
		param := regexp.MustCompile(`\{[a-z]+\}`)
		values := map[string]string{"{alias}": "nope", "{id}": "nope", "{table}": "matched", "{name}": "nope", "{file}": "matched.csv"}
		for _, route := range documented {
			need, ok := routeRoles[route]
			if !ok {
				t.Errorf("%s: no expected role", route)
				continue
			}
			method, path, _ := strings.Cut(route, " ")
			path = param.ReplaceAllStringFunc(path, func(p string) string { return values[p] })
			var body any
			if method == "POST" || method == "PUT" {
				body = "{}"
			}
			for _, r := range allRoles {
				st, b := s.as(tokens[r]).do(method, path, body)
				record(b)
				if r.Allows(need) {
					if st == 401 || st == 403 {
						t.Errorf("%s as %s: %d %s; the route needs only %s", route, r, st, b, need)
					}
					continue
				}
				var e apiError
				json.Unmarshal(b, &e)
				if st != 403 || e.Error.Code != kalla.EFORBIDDEN || !strings.Contains(e.Error.Message, "user-"+string(r)+" ("+string(r)+")") ||
					!strings.Contains(e.Error.Message, "needs the "+string(need)+" role") {
					t.Errorf("%s as %s: %d %s; want 403 forbidden naming the %s role", route, r, st, b, need)
				}
			}
		}

		// An inline recipe names its own sources: an admin's.
		inline := map[string]any{"recipe": map[string]any{"recipe_id": "x"}}
		s.as(tokens[kalla.RoleApprover]).wantError("POST", "/api/runs", inline, 403, kalla.EFORBIDDEN, "run an inline recipe", "needs the admin role")
		if st, b := s.as(tokens[kalla.RoleAdmin]).do("POST", "/api/runs", inline); st != 400 {
			t.Errorf("inline recipe as admin: %d %s, want 400 (the recipe is incomplete)", st, b)
		}

		// The list shows records, never a token or a hash.
		var list struct{ Tokens []kalla.APIToken }
		record(admin.call("GET", "/api/tokens", nil, 200, &list))
		if len(list.Tokens) != 5 {
			t.Errorf("GET /api/tokens: %d tokens, want 5", len(list.Tokens))
		}
		for _, tk := range list.Tokens {
			if tk.Name == "root" && tk.LastUsed == nil {
				t.Errorf("root's token shows no use")
			}
		}

		// A revoked token is refused, saying so.
		var rev kalla.APIToken
		record(admin.call("DELETE", "/api/tokens/user-approver", nil, 200, &rev))
		if rev.RevokedAt == nil {
			t.Fatalf("revoked: %+v", rev)
		}
		s.as(tokens[kalla.RoleApprover]).wantError("GET", "/api/runs", nil, 401, kalla.EUNAUTHORIZED, "user-approver", "was revoked")
		admin.wantError("DELETE", "/api/tokens/user-approver", nil, 404, kalla.ENOTFOUND)

		// Revoking every token does not open the server again.
		for _, n := range []string{"user-viewer", "user-preparer", "user-admin", "root"} {
			admin.call("DELETE", "/api/tokens/"+n, nil, 200, nil)
		}
		s.wantError("GET", "/api/sources", nil, 401, kalla.EUNAUTHORIZED)
		// A fresh process on the same store asks for a token too.
		s.Close()
		cfg := testserver.Config(t, slog.LevelInfo, fixtureDir(t))
		cfg.DatabaseURL, cfg.DataDir = databaseURL, s.dataDir
		s2 := &testServer{Main: testserver.Start(t, cfg), t: t, client: defaultClient()}
		s2.url = s2.URL()
		s2.wantError("GET", "/api/sources", nil, 401, kalla.EUNAUTHORIZED)

		all := answers.String() + logs.String()
		for r, tok := range tokens {
			if strings.Contains(all, tok) || strings.Contains(all, auth.Hash(tok)) {
				t.Errorf("the %s token or its hash shows in an answer or a log line", r)
			}
		}
		if strings.Contains(all, root.Token) || strings.Contains(all, auth.Hash(root.Token)) {
			t.Errorf("the first token or its hash shows in a log line or a later answer")
		}
		if !strings.Contains(logs.String(), "token created") {
			t.Errorf("the log does not say tokens were created: the check above looked at nothing")
		}
	})
}

// TestBootstrapToken: KALLA_API_TOKEN acts as the principal "admin", may
// make named tokens, and a named token's holder then works beside it.
func TestBootstrapToken(t *testing.T) {
	const boot = "bootstrap-token-for-the-test-0c4e"
	s := startServer(t, func(c *server.Config) { c.APIToken = boot })
	var nt newToken
	s.call("POST", "/api/tokens", map[string]string{"name": "carol", "role": "preparer"}, 201, &nt)
	if nt.CreatedBy != kalla.BootstrapName {
		t.Errorf("created by %q, want %q", nt.CreatedBy, kalla.BootstrapName)
	}
	carol := s.as(nt.Token)
	carol.call("GET", "/api/runs", nil, 200, nil)
	carol.wantError("POST", "/api/sources", map[string]string{"alias": "x", "uri": "x.csv"}, 403, kalla.EFORBIDDEN, "carol (preparer)", "needs the admin role")
	s.as("").wantError("GET", "/api/runs", nil, 401, kalla.EUNAUTHORIZED)

	// /mcp refuses whom the API refuses (a named token's MCP session:
	// package mcp's TestRoles).
	for _, c := range []struct {
		token string
		want  int
	}{{"", 401}, {"wrong", 401}, {"kalla_" + strings.Repeat("A", 43), 401}} {
		req, _ := http.NewRequest("POST", s.url+"/mcp", strings.NewReader(`{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"x","version":"1"}}}`))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Accept", "application/json, text/event-stream")
		if c.token != "" {
			req.Header.Set("Authorization", "Bearer "+c.token)
		}
		resp, err := defaultClient().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != c.want {
			t.Errorf("/mcp with token %q: %d, want %d", c.token, resp.StatusCode, c.want)
		}
	}
}

// TestListenBeyondLoopbackNeedsAToken: a server on every interface starts
// only when there is a token to ask for: KALLA_API_TOKEN (TestLimits) or a
// named token in its store; and it asks for one on every request.
func TestListenBeyondLoopbackNeedsAToken(t *testing.T) {
	dir := t.TempDir()
	m := server.NewMain(server.Config{Addr: "0.0.0.0:0", DataDir: dir})
	if err := m.Run(context.Background()); err == nil || !strings.Contains(err.Error(), "kalla token create") {
		m.Close()
		t.Fatalf("no token at all: %v", err)
	}
	m.Close()
	st, err := store.Open(context.Background(), dir+"/kalla.db")
	if err != nil {
		t.Fatal(err)
	}
	tok, hash, err := auth.NewToken()
	if err != nil {
		t.Fatal(err)
	}
	if err := st.CreateToken(context.Background(), &kalla.APIToken{Name: "ops", Role: kalla.RoleViewer}, hash); err != nil {
		t.Fatal(err)
	}
	st.Close()
	cfg := testserver.Config(t, slog.LevelInfo)
	cfg.Addr, cfg.DataDir = "0.0.0.0:0", dir
	m = testserver.Start(t, cfg)
	port := m.URL()[strings.LastIndex(m.URL(), ":"):]
	s := &testServer{Main: m, t: t, url: "http://127.0.0.1" + port, client: &http.Client{Timeout: 30 * time.Second}}
	s.wantError("GET", "/api/sources", nil, 401, kalla.EUNAUTHORIZED)
	s.as(tok).call("GET", "/api/sources", nil, 200, nil)
}
