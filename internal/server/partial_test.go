package server_test

import (
	"context"
	"io"
	"mime/multipart"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/kalla-recon/kalla/internal/kalla"
	"github.com/kalla-recon/kalla/internal/runner"
	"github.com/kalla-recon/kalla/internal/store"
)

// partialUploads lists the .partial files under dataDir/uploads.
func partialUploads(t *testing.T, dataDir string) []string {
	t.Helper()
	found, err := filepath.Glob(filepath.Join(dataDir, "uploads", "*", ".*.partial"))
	if err != nil {
		t.Fatal(err)
	}
	return found
}

// TestKillDuringUpload SIGKILLs `kalla serve` while an upload streams in,
// which leaves uploads/<id>/.<name>.partial; the restarted server removes
// it, and a partial file is refused as a source wherever one can be named:
// registration, a scoped load, a run's recipe, and a run stored by some
// other path, which fails when it opens the file.
func TestKillDuringUpload(t *testing.T) {
	dataDir := t.TempDir()
	p := startProcess(t, dataDir)

	// An upload whose body stops half way: the server has written the
	// first rows to the partial file and waits for the rest.
	pr, pw := io.Pipe()
	mw := multipart.NewWriter(pw)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "POST", p.url+"/api/uploads", pr)
	req.Header.Set("Content-Type", mw.FormDataContentType())
	go func() {
		fw, _ := mw.CreateFormFile("file", "ledger.csv")
		io.WriteString(fw, "id,amount\n"+strings.Repeat("1,10.00\n", 10000))
		<-ctx.Done()
		pw.CloseWithError(ctx.Err())
	}()
	go func() {
		if resp, err := http.DefaultClient.Do(req); err == nil {
			resp.Body.Close()
		}
	}()
	deadline := time.Now().Add(30 * time.Second)
	for len(partialUploads(t, dataDir)) == 0 {
		if time.Now().After(deadline) {
			t.Fatalf("no partial upload appeared:\n%s", p.log())
		}
		time.Sleep(10 * time.Millisecond)
	}
	if err := p.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	<-p.exited
	left := partialUploads(t, dataDir)
	if len(left) != 1 {
		t.Fatalf("after SIGKILL: partial uploads %v", left)
	}

	// Two upload folders without a file: one a live process has just made
	// (its file comes next) and must keep, one left long ago.
	fresh := filepath.Join(dataDir, "uploads", "fresh")
	stale := filepath.Join(dataDir, "uploads", "stale")
	for _, d := range []string{fresh, stale} {
		if err := os.MkdirAll(d, 0o750); err != nil {
			t.Fatal(err)
		}
	}
	old := time.Now().Add(-2 * time.Minute)
	if err := os.Chtimes(stale, old, old); err != nil {
		t.Fatal(err)
	}

	p = startProcess(t, dataDir)
	if _, err := os.Stat(fresh); err != nil {
		t.Errorf("the restart removed an empty upload folder made just before it (a live upload's): %v", err)
	}
	if _, err := os.Stat(stale); !os.IsNotExist(err) {
		t.Errorf("the restart left an empty upload folder two minutes old: %v", err)
	}
	if got := partialUploads(t, dataDir); len(got) != 0 {
		t.Fatalf("partial uploads remain after restart: %v", got)
	}
	if _, err := os.Stat(filepath.Dir(left[0])); !os.IsNotExist(err) {
		t.Errorf("the emptied upload folder remains: %v", err)
	}
	if !strings.Contains(p.log(), "removed partial uploads") {
		t.Errorf("the restart did not say it removed a partial upload:\n%s", p.log())
	}

	// A partial file the server did not clean (another writer's, or one
	// made after start) is refused everywhere.
	s := &testServer{t: t, url: p.url, dataDir: dataDir, client: defaultClient()}
	partial := kalla.PartialPath(filepath.Join(dataDir, "uploads", "x", "ledger.csv"))
	os.MkdirAll(filepath.Dir(partial), 0o750)
	writeFile(t, filepath.Dir(partial), filepath.Base(partial), "id,amount\n1,10.00\n")
	const why = "still writing"
	s.wantError("POST", "/api/sources", map[string]any{"alias": "half", "uri": partial, "source_type": "csv"}, 400, kalla.EINVALID, why)
	s.wantError("POST", "/api/sources/adhoc/load-scoped", map[string]any{"csv_uri": partial}, 400, kalla.EINVALID, why)
	rec := smallRecipe()
	rec.Sources.Left.URI = partial
	s.wantError("POST", "/api/runs", map[string]any{"recipe": rec}, 400, kalla.EINVALID, why)

	// A run stored without the API's checks fails when it opens the file.
	p.cmd.Process.Signal(syscall.SIGTERM)
	<-p.exited
	st, err := store.Open(context.Background(), filepath.Join(dataDir, "kalla.db"))
	if err != nil {
		t.Fatal(err)
	}
	id := "partial-run"
	if err := st.CreateRun(context.Background(), &kalla.RunRecord{ID: id, RecipeID: rec.RecipeID, Recipe: *rec, Status: kalla.RunQueued,
		OutDir: runner.OutDir(dataDir, id), CreatedAt: time.Now().UTC()}); err != nil {
		t.Fatal(err)
	}
	st.Close()
	p = startProcess(t, dataDir)
	s.url = p.url
	r := s.waitRun(id, 30*time.Second, "failure", func(r run) bool { return r.Status.Done() })
	if r.Status != kalla.RunFailed || !strings.Contains(r.Error, why) || !strings.Contains(r.Error, "left source "+rec.Sources.Left.Alias) {
		t.Fatalf("run over a partial file: %s %q", r.Status, r.Error)
	}
}
