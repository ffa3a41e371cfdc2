package server_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kalla-recon/kalla/internal/gen"
	"github.com/kalla-recon/kalla/internal/kalla"
	"github.com/kalla-recon/kalla/internal/server"
	"github.com/kalla-recon/kalla/internal/testenv"
	"github.com/kalla-recon/kalla/internal/testenv/testserver"
)

// testServer is a real server on 127.0.0.1:0 with a temporary data folder,
// driven over HTTP.
type testServer struct {
	*server.Main
	t       *testing.T
	url     string
	token   string
	dataDir string
	client  *http.Client
}

// startServer starts a server whose file roots include the shared fixtures.
// edit may change the configuration first. The server is closed when the
// test ends.
func startServer(t *testing.T, edit func(*server.Config)) *testServer {
	t.Helper()
	cfg := testserver.Config(t, slog.LevelInfo, fixtureDir(t))
	if edit != nil {
		edit(&cfg)
	}
	m := testserver.Start(t, cfg)
	return &testServer{Main: m, t: t, url: m.URL(), token: cfg.APIToken, dataDir: cfg.DataDir, client: &http.Client{Timeout: 60 * time.Second}}
}

// forEachStore runs f as a subtest against a SQLite and a Postgres
// metadata store.
func forEachStore(t *testing.T, f func(t *testing.T, databaseURL string)) {
	t.Run("sqlite", func(t *testing.T) { f(t, "") })
	t.Run("postgres", func(t *testing.T) { f(t, testenv.Postgres(t)) })
}

// do sends a request with a JSON body (or raw bytes) and returns the
// status and body.
func (s *testServer) do(method, path string, body any) (int, []byte) {
	s.t.Helper()
	resp, err := s.client.Do(s.request(method, path, body))
	if err != nil {
		s.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		s.t.Fatalf("%s %s: read body: %v", method, path, err)
	}
	return resp.StatusCode, b
}

// request builds an API request with the token and a JSON body (or raw
// bytes), for tests that read more of the answer than do returns.
func (s *testServer) request(method, path string, body any) *http.Request {
	s.t.Helper()
	var r io.Reader
	switch b := body.(type) {
	case nil:
	case []byte:
		r = bytes.NewReader(b)
	case string:
		r = strings.NewReader(b)
	default:
		j, err := json.Marshal(b)
		if err != nil {
			s.t.Fatalf("encode body: %v", err)
		}
		r = bytes.NewReader(j)
	}
	req, err := http.NewRequest(method, s.url+path, r)
	if err != nil {
		s.t.Fatalf("request: %v", err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if s.token != "" {
		req.Header.Set("Authorization", "Bearer "+s.token)
	}
	return req
}

// call sends a request, checks the status and decodes the answer into out
// (when not nil).
func (s *testServer) call(method, path string, body any, want int, out any) []byte {
	s.t.Helper()
	st, b := s.do(method, path, body)
	if st != want {
		s.t.Fatalf("%s %s: status %d, want %d; body: %s", method, path, st, want, b)
	}
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			s.t.Fatalf("%s %s: decode %s: %v", method, path, b, err)
		}
	}
	return b
}

// apiError is the error body every API error has.
type apiError struct {
	Error struct {
		Code    string `json:"code"`
		Message string `json:"message"`
	} `json:"error"`
}

// wantError checks an error answer: status, code, and a message containing
// each of parts.
func (s *testServer) wantError(method, path string, body any, status int, code string, parts ...string) string {
	s.t.Helper()
	st, b := s.do(method, path, body)
	var e apiError
	if err := json.Unmarshal(b, &e); err != nil {
		s.t.Fatalf("%s %s: status %d, body is not a JSON error: %s", method, path, st, b)
	}
	if st != status || e.Error.Code != code {
		s.t.Fatalf("%s %s: got %d %q (%s), want %d %q", method, path, st, e.Error.Code, e.Error.Message, status, code)
	}
	for _, p := range parts {
		if !strings.Contains(e.Error.Message, p) {
			s.t.Errorf("%s %s: message %q lacks %q", method, path, e.Error.Message, p)
		}
	}
	return e.Error.Message
}

// run is the part of GET /api/runs/{id} the tests read.
type run struct {
	ID                  string          `json:"run_id"`
	Status              kalla.RunStatus `json:"status"`
	Stage               string          `json:"stage"`
	Progress            float64         `json:"progress"`
	LeftRowsStaged      int64           `json:"left_rows_staged"`
	RightRowsStaged     int64           `json:"right_rows_staged"`
	Error               string          `json:"error"`
	ErrorCode           string          `json:"error_code"`
	LeftCount           *int64          `json:"left_count"`
	RightCount          *int64          `json:"right_count"`
	MatchedCount        *int64          `json:"matched_count"`
	UnmatchedLeftCount  *int64          `json:"unmatched_left_count"`
	UnmatchedRightCount *int64          `json:"unmatched_right_count"`
	Files               []struct {
		Name   string `json:"name"`
		Rows   *int64 `json:"rows"`
		SHA256 string `json:"sha256"`
		URL    string `json:"url"`
	} `json:"files"`
	Recipe kalla.Recipe `json:"recipe"`
}

func (s *testServer) getRun(id string) run {
	s.t.Helper()
	var r run
	s.call("GET", "/api/runs/"+id, nil, 200, &r)
	return r
}

// startRun queues a run and returns its id.
func (s *testServer) startRun(body any) string {
	s.t.Helper()
	var out struct {
		RunID  string `json:"run_id"`
		Status string `json:"status"`
	}
	s.call("POST", "/api/runs", body, 202, &out)
	if out.RunID == "" || out.Status != "queued" {
		s.t.Fatalf("POST /api/runs: got %+v", out)
	}
	return out.RunID
}

// waitRun polls until cond holds for the run or the timeout passes.
func (s *testServer) waitRun(id string, timeout time.Duration, what string, cond func(run) bool) run {
	s.t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		r := s.getRun(id)
		if cond(r) {
			return r
		}
		if time.Now().After(deadline) {
			s.t.Fatalf("run %s: %s not reached in %s; last: status %s stage %s progress %.2f error %q", id, what, timeout, r.Status, r.Stage, r.Progress, r.Error)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// sseEvent is one Server-Sent Event.
type sseEvent struct {
	Event string
	Data  string
}

// follow reads /api/runs/{id}/events until the stream ends.
func (s *testServer) follow(id string, timeout time.Duration) []sseEvent {
	s.t.Helper()
	evs, err := followEvents(s.url, s.token, id, timeout)
	if err != nil {
		s.t.Fatal(err)
	}
	return evs
}

// followEvents reads the event stream of run id from the server at base
// until it ends; it reports errors instead of failing, so that it can run
// beside the test's goroutine.
func followEvents(base, token, id string, timeout time.Duration) ([]sseEvent, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", base+"/api/runs/"+id+"/events", nil)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, fmt.Errorf("events: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/event-stream") {
		b, _ := io.ReadAll(resp.Body)
		return nil, fmt.Errorf("events: status %d type %q: %s", resp.StatusCode, resp.Header.Get("Content-Type"), b)
	}
	var evs []sseEvent
	var cur sseEvent
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 16<<20)
	for sc.Scan() {
		line := sc.Text()
		switch {
		case line == "":
			if cur.Event != "" || cur.Data != "" {
				evs = append(evs, cur)
			}
			cur = sseEvent{}
		case strings.HasPrefix(line, "event: "):
			cur.Event = strings.TrimPrefix(line, "event: ")
		case strings.HasPrefix(line, "data: "):
			cur.Data += strings.TrimPrefix(line, "data: ")
		}
	}
	if err := sc.Err(); err != nil {
		return evs, fmt.Errorf("events of run %s: %w (after %d events)", id, err, len(evs))
	}
	return evs, nil
}

// Shared fixtures, generated once per test binary.
var (
	fixtureOnce sync.Once
	fixtureRoot string
	fixtureErr  error
	small       gen.Files
	smallTruth  gen.Truth
	large       gen.Files
	largeTruth  gen.Truth
)

// smallInvoices and largeInvoices size the generated data sets: small for
// runs whose answers are checked, large for runs that must last long
// enough to be cancelled or killed.
const (
	smallInvoices = 2000
	largeInvoices = 200_000
)

func fixtureDir(t *testing.T) string {
	t.Helper()
	fixtureOnce.Do(func() {
		fixtureRoot, fixtureErr = os.MkdirTemp("", "kalla-server-test-")
		if fixtureErr != nil {
			return
		}
		for _, x := range []struct {
			dir   string
			n     int
			files *gen.Files
			truth *gen.Truth
		}{{"small", smallInvoices, &small, &smallTruth}, {"large", largeInvoices, &large, &largeTruth}} {
			d := filepath.Join(fixtureRoot, x.dir)
			if fixtureErr = os.MkdirAll(d, 0o755); fixtureErr != nil {
				return
			}
			if *x.files, *x.truth, fixtureErr = gen.Write(d, gen.Standard(x.n)); fixtureErr != nil {
				return
			}
		}
	})
	if fixtureErr != nil {
		t.Fatalf("fixtures: %v", fixtureErr)
	}
	return fixtureRoot
}

func TestMain(m *testing.M) {
	code := m.Run()
	if fixtureRoot != "" {
		os.RemoveAll(fixtureRoot)
	}
	if kallaBin != "" {
		os.RemoveAll(filepath.Dir(kallaBin))
	}
	os.Exit(code)
}

// writeFile writes content to dir/name and returns the path.
func writeFile(t *testing.T, dir, name, content string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// slowMatchSQL pairs every invoice with every payment through a predicate
// DuckDB cannot turn into a hash or range join, so over the large data set
// the match runs for many minutes unless cancelled.
const slowMatchSQL = `SELECT l.invoice_id, r.payment_id FROM left_src l JOIN right_src r
  ON hash(l.invoice_id || r.payment_id) % 1000000007 = 7`

// slowRecipe is the invoice/payment recipe over the large data set with
// the slow match.
func slowRecipe(id string) *kalla.Recipe {
	r := gen.Recipe(large)
	r.RecipeID, r.MatchSQL = id, slowMatchSQL
	return r
}

func mustJSON(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		panic(fmt.Sprint(err))
	}
	return string(b)
}

// readAll reads and closes a response body.
func readAll(resp *http.Response) ([]byte, error) {
	defer resp.Body.Close()
	return io.ReadAll(resp.Body)
}

// smallRecipe is the generator's recipe over the small data set.
func smallRecipe() *kalla.Recipe { return gen.Recipe(small) }

func defaultClient() *http.Client { return &http.Client{Timeout: 60 * time.Second} }
