package server_test

import (
	"bytes"
	"encoding/json"
	"io"
	"mime/multipart"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kalla-recon/kalla/internal/kalla"
	"github.com/kalla-recon/kalla/internal/server"
)

// send sends a request with the given body, content type and headers (and
// the server's token, if it has one) and returns the status and the body.
// host, when not empty, replaces the Host header.
func (s *testServer) send(method, path, host, contentType string, body []byte, hdr map[string]string) (int, []byte) {
	s.t.Helper()
	req, err := http.NewRequest(method, s.url+path, bytes.NewReader(body))
	if err != nil {
		s.t.Fatal(err)
	}
	if host != "" {
		req.Host = host
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	if s.token != "" {
		req.Header.Set("Authorization", "Bearer "+s.token)
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := s.client.Do(req)
	if err != nil {
		s.t.Fatalf("%s %s: %v", method, path, err)
	}
	b, err := readAll(resp)
	if err != nil {
		s.t.Fatalf("%s %s: read: %v", method, path, err)
	}
	return resp.StatusCode, b
}

// wantForbidden checks a 403 answer in Kalla's error format whose message
// contains each of parts.
func wantForbidden(t *testing.T, what string, st int, b []byte, parts ...string) {
	t.Helper()
	var e apiError
	if err := json.Unmarshal(b, &e); err != nil || st != 403 || e.Error.Code != kalla.EFORBIDDEN {
		t.Errorf("%s: got %d %s, want 403 forbidden", what, st, b)
		return
	}
	for _, p := range parts {
		if !strings.Contains(e.Error.Message, p) {
			t.Errorf("%s: message %q lacks %q", what, e.Error.Message, p)
		}
	}
}

// stateChange is a request that changes the server's state when admitted.
type stateChange struct {
	method, path, contentType string
	body                      []byte
	ok                        int // the status when admitted
}

func stateChanges(t *testing.T) []stateChange {
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	fw, _ := mw.CreateFormFile("file", "left.csv")
	io.WriteString(fw, uploadLeft)
	mw.Close()
	const js = "application/json"
	return []stateChange{
		{"POST", "/api/sources", js, []byte(mustJSON(map[string]string{"alias": "invoices", "uri": small.Invoices})), 200},
		{"POST", "/api/recipes", js, []byte(mustJSON(smallRecipe())), 201},
		{"POST", "/api/runs", js, []byte(mustJSON(map[string]any{"recipe_id": smallRecipe().RecipeID})), 202},
		{"POST", "/api/uploads", mw.FormDataContentType(), buf.Bytes(), 201},
	}
}

// count returns how many sources, recipes or runs the server has.
func (s *testServer) count(kind string) int {
	s.t.Helper()
	var out map[string]json.RawMessage
	s.call("GET", "/api/"+kind, nil, 200, &out)
	var list []json.RawMessage
	if err := json.Unmarshal(out[kind], &list); err != nil {
		s.t.Fatalf("GET /api/%s: %v", kind, err)
	}
	return len(list)
}

// TestCrossOriginRefused sends the state-changing requests a page on
// another site could make a visitor's browser send, with the headers
// browsers add, and checks that each is refused and nothing changed;
// then the same requests as a program sends them (no Origin) and as
// Kalla's own UI sends them (same origin) succeed. A token does not
// lift the refusal: a browser does not send one, but a page could.
func TestCrossOriginRefused(t *testing.T) {
	for _, mode := range []string{"loopback", "token"} {
		t.Run(mode, func(t *testing.T) {
			s := startServer(t, func(c *server.Config) {
				if mode == "token" {
					c.APIToken = "a-long-random-token-for-tests"
				}
			})
			foreign := []map[string]string{
				{"Origin": "http://evil.example"}, // a browser without Sec-Fetch-Site
				{"Origin": "http://evil.example", "Sec-Fetch-Site": "cross-site"},
				{"Origin": "http://127.0.0.1:1", "Sec-Fetch-Site": "same-site"}, // another port of this machine
				{"Origin": "null"}, // a sandboxed frame or a file:// page
				{"Sec-Fetch-Site": "cross-site"},
			}
			changes := stateChanges(t)
			for _, c := range changes {
				for _, h := range foreign {
					st, b := s.send(c.method, c.path, "", c.contentType, c.body, h)
					wantForbidden(t, c.method+" "+c.path+" with "+mustJSON(h), st, b, "cross-origin request refused", "another site")
				}
			}
			// Every other state-changing route, the UI's included, is
			// refused the same way before it looks at the request.
			for _, r := range [][2]string{
				{"PUT", "/api/recipes/x"}, {"DELETE", "/api/recipes/x"}, {"DELETE", "/api/sources/x"},
				{"POST", "/api/sources/x/load-scoped"}, {"POST", "/api/recipes/validate"}, {"POST", "/api/recipes/preview"},
				{"POST", "/api/runs/x/cancel"}, {"POST", "/ui/suggest"}, {"POST", "/login"}, {"POST", "/logout"},
			} {
				st, b := s.send(r[0], r[1], "", "application/x-www-form-urlencoded", []byte("token=x"), foreign[1])
				wantForbidden(t, r[0]+" "+r[1], st, b, "cross-origin request refused")
			}
			for _, kind := range []string{"sources", "recipes", "runs"} {
				if n := s.count(kind); n != 0 {
					t.Errorf("%d %s after refused requests", n, kind)
				}
			}
			if ents, err := os.ReadDir(filepath.Join(s.dataDir, "uploads")); err != nil || len(ents) != 0 {
				t.Errorf("uploads after refused requests: %v %v", ents, err)
			}

			// The same requests from a program, then from Kalla's own page.
			own := map[string]string{"Origin": s.url, "Sec-Fetch-Site": "same-origin"}
			for _, h := range []map[string]string{nil, own} {
				for _, c := range changes {
					if st, b := s.send(c.method, c.path, "", c.contentType, c.body, h); st != c.ok {
						t.Errorf("%s %s with %v: %d %s, want %d", c.method, c.path, h, st, b, c.ok)
					}
				}
				s.call("DELETE", "/api/recipes/"+smallRecipe().RecipeID, nil, 204, nil)
			}
			// Reads stay open to the UI's own page, and a foreign page's
			// delete leaves the source in place.
			if st, b := s.send("GET", "/api/sources", "", "", nil, own); st != 200 {
				t.Errorf("same-origin GET: %d %s", st, b)
			}
			st, b := s.send("DELETE", "/api/sources/invoices", "", "", nil, foreign[1])
			wantForbidden(t, "cross-site delete", st, b)
			s.call("GET", "/api/sources/invoices", nil, 200, nil)
		})
	}
}

// TestHostChecked sends requests under other names than the server's, as
// a browser does after a page pointed its own name at the server (DNS
// rebinding): every route but the probes refuses them, GET included,
// since the page would read the answers.
func TestHostChecked(t *testing.T) {
	s := startServer(t, func(c *server.Config) {
		c.AllowedHosts = []string{"kalla.example.com", "proxy.test:1234"}
	})
	u, _ := url.Parse(s.url)
	port := u.Port()
	for _, host := range []string{"rebind.test:" + port, "localhost.evil.test:" + port, "localhost:1", "evil.test", "proxy.test:" + port, "127.0.0.2:" + port} {
		for _, p := range []string{"/api/sources", "/", "/sources", "/metrics", "/api/openapi.json"} {
			st, b := s.send("GET", p, host, "", nil, nil)
			wantForbidden(t, "GET "+p+" as "+host, st, b, "does not answer to the name", host, "--allowed-host", server.EnvAllowedHosts)
		}
		st, b := s.send("POST", "/api/sources", host, "application/json",
			[]byte(mustJSON(map[string]string{"alias": "invoices", "uri": small.Invoices})), map[string]string{"Origin": "http://" + host, "Sec-Fetch-Site": "same-origin"})
		wantForbidden(t, "POST as "+host, st, b, "does not answer")
		for _, p := range []string{"/healthz", "/readyz"} {
			if st, b := s.send("GET", p, host, "", nil, nil); st != 200 {
				t.Errorf("probe %s as %s: %d %s", p, host, st, b)
			}
		}
	}
	if n := s.count("sources"); n != 0 {
		t.Errorf("%d sources after refused requests", n)
	}
	long := strings.Repeat("a", 5000) + ".test"
	st, b := s.send("GET", "/api/sources", long, "", nil, nil)
	wantForbidden(t, "long host", st, b)
	if len(b) > 1000 {
		t.Errorf("the refusal quotes the whole host: %d bytes", len(b))
	}
	for _, host := range []string{"127.0.0.1:" + port, "localhost:" + port, "LocalHost.:" + port, "[::1]:" + port,
		"kalla.example.com", "kalla.example.com:443", "KALLA.example.com.:" + port, "proxy.test:1234"} {
		if st, b := s.send("GET", "/api/sources", host, "", nil, nil); st != 200 {
			t.Errorf("GET as %s: %d %s", host, st, b)
		}
		if st, _ := s.send("GET", "/", host, "", nil, nil); st != 200 {
			t.Errorf("UI as %s: %d", host, st)
		}
	}
}

// TestHostCheckedAllInterfaces checks a server listening on every
// interface (which needs a token): it answers to any IP literal on its
// port, to localhost, and to its allowed names, and to nothing else.
func TestHostCheckedAllInterfaces(t *testing.T) {
	s := startServer(t, func(c *server.Config) {
		c.Addr = "0.0.0.0:0"
		c.APIToken = "a-long-random-token-for-tests"
		c.AllowedHosts = []string{"kalla.example.com"}
	})
	s.url = strings.Replace(s.url, "0.0.0.0", "127.0.0.1", 1)
	u, _ := url.Parse(s.url)
	port := u.Port()
	for _, host := range []string{"192.0.2.7:" + port, "[2001:db8::1]:" + port, "localhost:" + port, "kalla.example.com:8443"} {
		if st, b := s.send("GET", "/api/sources", host, "", nil, nil); st != 200 {
			t.Errorf("GET as %s: %d %s", host, st, b)
		}
	}
	for _, host := range []string{"rebind.test:" + port, "192.0.2.7:1", "kalla.example.org:" + port} {
		st, b := s.send("GET", "/api/sources", host, "", nil, nil)
		wantForbidden(t, "GET as "+host, st, b, "does not answer")
	}
}

// TestAllowedHostFlag starts `kalla serve` with --allowed-host given twice,
// once as a comma list, and checks each name is answered and others are
// not. (KALLA_ALLOWED_HOSTS is read by Config.FromEnv: TestConfigFromEnv.)
func TestAllowedHostFlag(t *testing.T) {
	p := startProcess(t, t.TempDir(), "--allowed-host", "kalla.example.com, proxy.test:8443", "--allowed-host", "third.test")
	s := &testServer{t: t, url: p.url, client: defaultClient()}
	for _, host := range []string{"kalla.example.com", "proxy.test:8443", "third.test:1"} {
		if st, b := s.send("GET", "/api/sources", host, "", nil, nil); st != 200 {
			t.Errorf("GET as %s: %d %s", host, st, b)
		}
	}
	for _, host := range []string{"proxy.test", "rebind.test"} {
		st, b := s.send("GET", "/api/sources", host, "", nil, nil)
		wantForbidden(t, "GET as "+host, st, b, "does not answer")
	}
}
