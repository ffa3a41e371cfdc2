package server_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kalla-recon/kalla/internal/gen"
	"github.com/kalla-recon/kalla/internal/kalla"
	"github.com/kalla-recon/kalla/internal/objstore"
	"github.com/kalla-recon/kalla/internal/recon"
	"github.com/kalla-recon/kalla/internal/runner"
	"github.com/kalla-recon/kalla/internal/server"
	"github.com/kalla-recon/kalla/internal/store"
	"github.com/kalla-recon/kalla/internal/testenv"
)

// cancelWithin is how soon a cancelled run must have stopped.
const cancelWithin = 5 * time.Second

// TestCancelRun cancels a run in the middle of a long DuckDB match over
// the large data set, and a run still queued behind it: the pool is
// bounded to one run at a time, so the second waits.
func TestCancelRun(t *testing.T) {
	s := startServer(t, func(c *server.Config) { c.MaxConcurrentRuns = 1 })
	slow := s.startRun(map[string]any{"recipe": slowRecipe("slow")})
	s.waitRun(slow, 60*time.Second, "the match stage", func(r run) bool { return r.Stage == recon.StageMatch })
	queued := s.startRun(map[string]any{"recipe": gen.Recipe(small)})
	time.Sleep(500 * time.Millisecond) // longer than the poll interval: the one worker is busy
	if r := s.getRun(queued); r.Status != kalla.RunQueued {
		t.Fatalf("second run is %s while the only worker is busy", r.Status)
	}
	var r run
	s.call("POST", "/api/runs/"+queued+"/cancel", nil, 202, &r)
	if r.Status != kalla.RunCancelled {
		t.Fatalf("queued run after cancel: %s", r.Status)
	}

	t0 := time.Now()
	s.call("POST", "/api/runs/"+slow+"/cancel", nil, 202, &r)
	if r.Status != kalla.RunRunning && r.Status != kalla.RunCancelled {
		t.Fatalf("running run after cancel: %s", r.Status)
	}
	r = s.waitRun(slow, cancelWithin, "cancelled", func(r run) bool { return r.Status.Done() })
	took := time.Since(t0)
	t.Logf("run cancelled %s after the request, in stage %s", took.Round(time.Millisecond), r.Stage)
	if r.Status != kalla.RunCancelled || r.Error != runner.ErrCancelled.Error() {
		t.Fatalf("cancelled run: %s %q", r.Status, r.Error)
	}
	if _, err := os.Stat(runner.OutDir(s.dataDir, slow)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("outputs of the cancelled run remain: %v", err)
	}
	s.wantError("GET", "/api/runs/"+slow+"/files/summary.json", nil, 409, kalla.ECONFLICT)
	// The worker is free again.
	id := s.startRun(map[string]any{"recipe": gen.Recipe(small)})
	s.waitRun(id, 30*time.Second, "completion", func(r run) bool { return r.Status == kalla.RunCompleted })

	// A cancel made through another process reaches the worker only
	// through the store's cancel_requested flag, which it polls.
	slow = s.startRun(map[string]any{"recipe": slowRecipe("slow")})
	s.waitRun(slow, 60*time.Second, "the match stage", func(r run) bool { return r.Stage == recon.StageMatch })
	t0 = time.Now()
	if st, err := s.Store.RequestCancel(context.Background(), slow); err != nil || st != kalla.RunRunning {
		t.Fatalf("RequestCancel in the store: %s %v", st, err)
	}
	r = s.waitRun(slow, runner.DefaultCancelCheckInterval+cancelWithin, "cancelled", func(r run) bool { return r.Status.Done() })
	t.Logf("run cancelled through the store %s after the request", time.Since(t0).Round(time.Millisecond))
	if r.Status != kalla.RunCancelled {
		t.Fatalf("run cancelled through the store: %s %q", r.Status, r.Error)
	}
}

// TestReadiness checks that /readyz follows the metadata store while
// /healthz only says the process serves.
func TestReadiness(t *testing.T) {
	s := startServer(t, nil)
	s.call("GET", "/readyz", nil, 200, nil)
	s.Store.Close()
	s.wantError("GET", "/readyz", nil, 503, kalla.EUNAVAILABLE, "metadata store")
	s.call("GET", "/healthz", nil, 200, nil)
}

// callbackRecorder is a receiver of run callbacks that refuses the first
// failComplete completion posts.
type callbackRecorder struct {
	mu           sync.Mutex
	calls        map[string][][]byte
	failComplete int
}

func (c *callbackRecorder) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	b, _ := io.ReadAll(r.Body)
	c.mu.Lock()
	defer c.mu.Unlock()
	kind := filepath.Base(r.URL.Path)
	c.calls[kind] = append(c.calls[kind], b)
	if kind == "complete" && len(c.calls[kind]) <= c.failComplete {
		w.WriteHeader(http.StatusServiceUnavailable)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (c *callbackRecorder) get(kind string) [][]byte {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([][]byte(nil), c.calls[kind]...)
}

// TestCallbacks checks the progress, complete and error posts to a run's
// callback_url, and that a refused completion is retried.
func TestCallbacks(t *testing.T) {
	rcv := &callbackRecorder{calls: map[string][][]byte{}, failComplete: 2}
	hook := httptest.NewServer(rcv)
	defer hook.Close()
	hookURL, _ := url.Parse(hook.URL)
	s := startServer(t, func(c *server.Config) { c.CallbackHosts = []string{hookURL.Host} })
	// A host that is not allowed is refused before anything is queued.
	s.wantError("POST", "/api/runs", map[string]any{"recipe": gen.Recipe(small), "callback_url": "http://169.254.169.254/latest"}, 400, kalla.EINVALID, "not allowed")

	id := s.startRun(map[string]any{"recipe": gen.Recipe(small), "callback_url": hook.URL + "/hooks/run?token=abc"})
	s.waitRun(id, 30*time.Second, "completion", func(r run) bool { return r.Status == kalla.RunCompleted })
	deadline := time.Now().Add(15 * time.Second)
	for len(rcv.get("complete")) < 3 && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	completes := rcv.get("complete")
	if len(completes) != 3 {
		t.Fatalf("complete posted %d times, want 3 (two refused, then accepted)", len(completes))
	}
	var c runner.CompleteCallback
	if err := json.Unmarshal(completes[2], &c); err != nil {
		t.Fatal(err)
	}
	if c.RunID != id || c.MatchedCount != int64(smallTruth.MatchedPairs()) || c.UnmatchedLeftCount != int64(smallTruth.OrphanInvoices) ||
		c.OutputPaths.Matched != "/api/runs/"+id+"/files/matched.parquet" {
		t.Errorf("complete callback: %+v", c)
	}
	progress := rcv.get("progress")
	if len(progress) == 0 {
		t.Errorf("no progress callback")
	}
	for _, b := range progress {
		var p runner.ProgressCallback
		if err := json.Unmarshal(b, &p); err != nil || p.RunID != id || p.Progress < 0 || p.Progress > 1 {
			t.Errorf("progress callback %s", b)
		}
	}

	rec := gen.Recipe(small)
	rec.RecipeID = "broken"
	rec.Sources.Right.URI = filepath.Join(filepath.Dir(small.Payments), "gone.csv")
	id = s.startRun(map[string]any{"recipe": rec, "callback_url": hook.URL + "/hooks/broken"})
	failed := s.waitRun(id, 30*time.Second, "failure", func(r run) bool { return r.Status == kalla.RunFailed })
	if failed.ErrorCode != kalla.ENOTFOUND {
		t.Errorf("a run whose file is gone records error code %q, want %q", failed.ErrorCode, kalla.ENOTFOUND)
	}
	deadline = time.Now().Add(10 * time.Second)
	for len(rcv.get("error")) == 0 && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	errs := rcv.get("error")
	var e runner.ErrorCallback
	if len(errs) != 1 || json.Unmarshal(errs[0], &e) != nil || e.RunID != id || e.Status != "failed" || e.Code != kalla.ENOTFOUND || !strings.Contains(e.Error, "gone.csv") {
		t.Fatalf("error callbacks: %q", errs)
	}
}

// TestShutdown checks SIGTERM's behaviour in process: Close stops taking
// requests, lets a running run finish within the timeout, and cancels one
// that does not, recording it as interrupted.
func TestShutdown(t *testing.T) {
	t.Run("drains", func(t *testing.T) {
		s := startServer(t, func(c *server.Config) { c.ShutdownTimeout = time.Minute })
		id := s.startRun(map[string]any{"recipe": gen.Recipe(large)})
		r := s.waitRun(id, 30*time.Second, "running", func(r run) bool { return r.Status != kalla.RunQueued })
		if r.Status != kalla.RunRunning {
			t.Fatalf("run finished before the shutdown began: %s", r.Status)
		}
		t0 := time.Now()
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
		t.Logf("shutdown waited %s for the running run", time.Since(t0).Round(time.Millisecond))
		got := readRunFromStore(t, s.dataDir, id)
		if got.Status != kalla.RunCompleted || got.Summary.MatchedCount != int64(largeTruth.MatchedPairs()) {
			t.Fatalf("run after a graceful shutdown: %s %q", got.Status, got.Error)
		}
	})
	t.Run("cancels after timeout", func(t *testing.T) {
		s := startServer(t, func(c *server.Config) { c.ShutdownTimeout = time.Second })
		id := s.startRun(map[string]any{"recipe": slowRecipe("slow")})
		s.waitRun(id, 60*time.Second, "the match stage", func(r run) bool { return r.Stage == recon.StageMatch })
		t0 := time.Now()
		closed := make(chan error, 1)
		go func() { closed <- s.Close() }()
		// Close waits a second for the run before cancelling it: the
		// listener must be refused while it waits, so it is polled until
		// refused, and it is a failure if Close returns first.
		var closeErr error
	refused:
		for {
			select {
			case closeErr = <-closed:
				t.Errorf("server still accepted requests all the while it was shutting down")
				break refused
			default:
			}
			resp, err := http.Get(s.url + "/healthz")
			if err != nil {
				closeErr = <-closed
				break
			}
			resp.Body.Close()
			time.Sleep(10 * time.Millisecond)
		}
		if closeErr != nil {
			t.Fatal(closeErr)
		}
		took := time.Since(t0)
		if took > time.Second+cancelWithin {
			t.Errorf("shutdown took %s", took)
		}
		r := readRunFromStore(t, s.dataDir, id)
		if r.Status != kalla.RunFailed || r.Error != runner.ErrShutdown.Error() {
			t.Fatalf("run cut by shutdown: %s %q", r.Status, r.Error)
		}
		t.Logf("shutdown with a running run took %s", took.Round(time.Millisecond))
	})
}

// readRunFromStore opens the SQLite store of a stopped server.
func readRunFromStore(t *testing.T, dataDir, id string) *kalla.RunRecord {
	t.Helper()
	st, err := store.Open(context.Background(), filepath.Join(dataDir, "kalla.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	r, err := st.GetRun(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// upload posts content as the multipart field "file".
func (s *testServer) upload(name, content string) (int, []byte) {
	s.t.Helper()
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	mw.WriteField("note", "ignored")
	fw, _ := mw.CreateFormFile("file", name)
	io.WriteString(fw, content)
	mw.Close()
	req, _ := http.NewRequest("POST", s.url+"/api/uploads", &buf)
	req.Header.Set("Content-Type", mw.FormDataContentType())
	resp, err := s.client.Do(req)
	if err != nil {
		s.t.Fatal(err)
	}
	b, _ := readAll(resp)
	return resp.StatusCode, b
}

type uploaded struct {
	UploadID string         `json:"upload_id"`
	URI      string         `json:"uri"`
	Columns  []kalla.Column `json:"columns"`
	RowCount int64          `json:"row_count"`
}

const (
	uploadLeft  = "id,amount,note\n1,10.00,first\n2,20.00,\n3,30.50,third\n"
	uploadRight = "ref,paid\n1,10.00\n3,30.50\n9,99.00\n"
)

// TestUploads uploads CSVs to the local data folder, loads one through
// csv_uri, and reconciles the two by an inline recipe whose results show
// NULL as JSON null.
func TestUploads(t *testing.T) {
	s := startServer(t, func(c *server.Config) { c.MaxUploadBytes = 64 << 10 })
	var left, right uploaded
	st, b := s.upload("my left.csv", uploadLeft)
	if st != 201 || json.Unmarshal(b, &left) != nil {
		t.Fatalf("upload: %d %s", st, b)
	}
	if left.RowCount != 3 || len(left.Columns) != 3 || !strings.HasPrefix(left.URI, filepath.Join(s.dataDir, "uploads", left.UploadID)) ||
		filepath.Base(left.URI) != "my_left.csv" {
		t.Fatalf("upload: %+v", left)
	}
	st, b = s.upload("right.csv", uploadRight)
	if st != 201 || json.Unmarshal(b, &right) != nil {
		t.Fatalf("upload: %d %s", st, b)
	}
	var p scoped
	s.call("POST", "/api/sources/adhoc/load-scoped", map[string]any{
		"csv_uri":    left.URI,
		"conditions": []map[string]any{{"column": "amount", "op": "gt", "value": 15}},
	}, 200, &p)
	if p.TotalRows != 2 || p.Alias != "adhoc" || p.Rows[0][2] != nil {
		t.Fatalf("csv_uri load: %+v", p)
	}

	rec := &kalla.Recipe{
		RecipeID: "uploads", MatchSQL: "SELECT l.id, r.ref FROM left_src l JOIN right_src r ON l.id = r.ref AND l.amount = r.paid",
		Sources: kalla.Sources{
			Left:  kalla.SourceSpec{Alias: "l", URI: left.URI, PrimaryKey: []string{"id"}},
			Right: kalla.SourceSpec{Alias: "r", URI: right.URI, PrimaryKey: []string{"ref"}},
		},
	}
	id := s.startRun(map[string]any{"recipe": rec})
	r := s.waitRun(id, 30*time.Second, "completion", func(r run) bool { return r.Status.Done() })
	if r.Status != kalla.RunCompleted || *r.MatchedCount != 2 || *r.UnmatchedLeftCount != 1 || *r.UnmatchedRightCount != 1 {
		t.Fatalf("run over uploads: %+v", r)
	}
	_, raw := s.do("GET", "/api/runs/"+id+"/results/unmatched_left", nil)
	if !bytes.Contains(raw, []byte(`"rows":[["2","20.00",null]]`)) {
		t.Errorf("unmatched_left page: %s", raw)
	}

	s.wantError("POST", "/api/uploads", map[string]string{}, 400, kalla.EINVALID, "multipart")
	if st, b := s.upload("notes.docx", "x"); st != 400 || !strings.Contains(string(b), ".csv") {
		t.Errorf("docx upload: %d %s", st, b)
	}
	// A refused upload is named by its upload id, never by where the
	// server keeps it.
	abs, _ := filepath.Abs(s.dataDir)
	for name, content := range map[string]string{"bad.csv": "a,b\n1,2,3,4\n\"open", "bad.parquet": "not parquet at all"} {
		st, b := s.upload(name, content)
		if st != 400 || !strings.Contains(string(b), "upload ") || strings.Contains(string(b), s.dataDir) || strings.Contains(string(b), abs) {
			t.Errorf("malformed upload %s: %d %s", name, st, b)
		}
	}
	if st, b := s.upload("big.csv", "a\n"+strings.Repeat("1\n", 40<<10)); st != 413 {
		t.Errorf("oversized upload: %d %s", st, b)
	}
	// Refused uploads leave nothing behind.
	entries, _ := os.ReadDir(filepath.Join(s.dataDir, "uploads"))
	if len(entries) != 2 {
		t.Errorf("upload folder holds %d entries, want the 2 good uploads", len(entries))
	}
}

// TestUploadsS3 keeps uploads in an S3 bucket: the upload lands there, and
// csv_uri admits only that bucket and prefix.
func TestUploadsS3(t *testing.T) {
	env := testenv.S3(t)
	s := startServer(t, func(c *server.Config) {
		c.UploadBucket, c.UploadPrefix = env.Bucket, "uploads/"
		c.Sources.Remote.S3 = objstore.S3Config{Endpoint: env.Endpoint, Region: env.Region, AccessKey: env.AccessKey, SecretKey: env.SecretKey, PathStyle: true}
	})
	var up uploaded
	st, b := s.upload("left.csv", uploadLeft)
	if st != 201 || json.Unmarshal(b, &up) != nil {
		t.Fatalf("upload: %d %s", st, b)
	}
	key := "uploads/" + up.UploadID + "/left.csv"
	if up.URI != env.URI(key) || up.RowCount != 3 {
		t.Fatalf("upload: %+v", up)
	}
	if got := env.Get(t, key); string(got) != uploadLeft {
		t.Fatalf("object holds %q", got)
	}
	var p scoped
	s.call("POST", "/api/sources/adhoc/load-scoped", map[string]any{"csv_uri": up.URI}, 200, &p)
	if p.TotalRows != 3 {
		t.Fatalf("csv_uri from S3: %+v", p)
	}
	// Refused uploads leave no object behind: both are refused after
	// they were stored, when they are read.
	for name, content := range map[string]string{"bad.parquet": "not parquet at all", "bad.csv": "a,b\n1,2,3,4\n\"open"} {
		if st, b := s.upload(name, content); st != 400 {
			t.Errorf("malformed upload %s: %d %s", name, st, b)
		}
	}
	if keys := env.Keys(t); !slices.Equal(keys, []string{key}) {
		t.Errorf("bucket holds %q after refused uploads, want only %q", keys, key)
	}
	env.Put(t, "elsewhere/x.csv", []byte(uploadLeft))
	s.wantError("POST", "/api/sources/adhoc/load-scoped", map[string]any{"csv_uri": env.URI("elsewhere/x.csv")}, 400, kalla.EINVALID, "upload storage")
	s.wantError("POST", "/api/sources/adhoc/load-scoped", map[string]any{"csv_uri": "s3://other-bucket/uploads/x.csv"}, 400, kalla.EINVALID, "upload storage")
	s.wantError("POST", "/api/sources/adhoc/load-scoped", map[string]any{"csv_uri": climbOut(up.URI)}, 400, kalla.EINVALID, "upload storage")
}

// climbOut makes a csv_uri that climbs out of the upload prefix.
func climbOut(uri string) string {
	return strings.Replace(uri, "/uploads/", "/uploads/../elsewhere/", 1)
}

// TestMemoryBudget runs two reconciliations at once under a small memory
// budget shared by two runs and two preview slots: each engine's DuckDB
// gets a quarter of it (128 MiB, the least planMemory allows). Each run of
// 600,000 invoices and their payments stages more than that, so it must
// spill to its folder instead of growing: both complete with the
// generator's answers, each logs what DuckDB holds in its spill folder
// (duckdb_temporary_files(), more than zero bytes), the two overlapped in
// time, and /metrics shows the budget and the share.
func TestMemoryBudget(t *testing.T) {
	dir := t.TempDir()
	files, truth, err := gen.Write(dir, gen.Standard(600_000))
	if err != nil {
		t.Fatal(err)
	}
	var logs testenv.LogBuffer
	s := startServer(t, func(c *server.Config) {
		c.Logger = slog.New(slog.NewJSONHandler(&logs, &slog.HandlerOptions{Level: slog.LevelInfo}))
		c.Engine.MemoryLimit = ""
		c.MemoryBudget = "512MiB"
		c.MaxConcurrentRuns = 2
		c.EngineSlots = 2
		c.FileRoots = append(c.FileRoots, dir)
	})
	rec := gen.Recipe(files)
	ids := []string{s.startRun(map[string]any{"recipe": rec}), s.startRun(map[string]any{"recipe": rec})}
	var spans [2]struct {
		Start  time.Time `json:"started_at"`
		Finish time.Time `json:"finished_at"`
	}
	for i, id := range ids {
		r := s.waitRun(id, 5*time.Minute, "done", func(r run) bool { return r.Status.Done() })
		if r.Status != kalla.RunCompleted {
			t.Fatalf("run %s ended %s: %s", id, r.Status, r.Error)
		}
		for name, got := range map[string]struct {
			got  *int64
			want int
		}{
			"matched":         {r.MatchedCount, truth.MatchedPairs()},
			"unmatched left":  {r.UnmatchedLeftCount, truth.OrphanInvoices},
			"unmatched right": {r.UnmatchedRightCount, truth.StrayPayments},
		} {
			if got.got == nil || *got.got != int64(got.want) {
				t.Errorf("run %s: %s = %v, want %d", id, name, got.got, got.want)
			}
		}
		s.call("GET", "/api/runs/"+id, nil, 200, &spans[i])
	}
	if !spans[0].Start.Before(spans[1].Finish) || !spans[1].Start.Before(spans[0].Finish) {
		t.Errorf("the runs did not overlap: %+v", spans)
	}
	spilled := map[string]int64{}
	for _, line := range strings.Split(logs.String(), "\n") {
		var l struct {
			Msg   string `json:"msg"`
			RunID string `json:"run_id"`
			Bytes int64  `json:"spilled_bytes"`
			Limit string `json:"memory_limit"`
		}
		if json.Unmarshal([]byte(line), &l) == nil && l.Msg == "run spilled to disk beyond its memory limit" {
			spilled[l.RunID] = l.Bytes
			if l.Limit == "" || strings.Contains(l.Limit, "default") {
				t.Errorf("run %s: the spill log names the limit %q, not the engine's share of the budget", l.RunID, l.Limit)
			}
		}
	}
	for _, id := range ids {
		if spilled[id] <= 0 {
			t.Errorf("run %s: no spill logged (%v): it did not go beyond its 128 MiB", id, spilled)
		}
	}
	t.Logf("spilled bytes per run: %v", spilled)
	_, m := s.do("GET", "/metrics", nil)
	for _, line := range []string{"kalla_memory_budget_bytes 5.36870912e+08", "kalla_engine_memory_limit_bytes 1.34217728e+08", "kalla_engines_max 4"} {
		if !strings.Contains(string(m), line) {
			t.Errorf("metrics lack %q", line)
		}
	}
}
