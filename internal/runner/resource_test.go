package runner_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kalla-recon/kalla/internal/engine"
	"github.com/kalla-recon/kalla/internal/gen"
	"github.com/kalla-recon/kalla/internal/kalla"
	"github.com/kalla-recon/kalla/internal/runner"
	"github.com/kalla-recon/kalla/internal/sources"
	"github.com/kalla-recon/kalla/internal/store"
)

// TestResourceFailureRecorded: a run that runs out of memory fails with the
// error code resource_exhausted recorded beside its message (which names
// --memory-limit), not "invalid", and its spill folder is gone.
func TestResourceFailureRecorded(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	files, _, err := gen.Write(dir, gen.Standard(300_000))
	if err != nil {
		t.Fatal(err)
	}
	rec := *gen.Recipe(files)
	// An ungrouped list() of about 150 MB is one aggregate state, which
	// DuckDB cannot spill: past a 100MB limit the match fails.
	rec.MatchSQL = `SELECT l.invoice_id, r.payment_id FROM left_src l JOIN right_src r ON r.reference_number = l.invoice_id
JOIN (SELECT list(repeat(customer, 50)) AS xs FROM left_src) x ON len(x.xs) > 0`
	st, err := store.Open(ctx, filepath.Join(dir, "kalla.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	mgr := sources.New(sources.Config{})
	defer mgr.Close()
	pool := runner.New(st, mgr, runner.Config{
		Workers: 1, DataDir: dir, PollInterval: 50 * time.Millisecond,
		Engine: engine.Options{MemoryLimit: "100MB", TempDir: t.TempDir()},
	})
	pool.Start()
	defer pool.Shutdown(ctx)
	run := &kalla.RunRecord{ID: "oom-1", RecipeID: rec.RecipeID, Recipe: rec, Status: kalla.RunQueued, OutDir: runner.OutDir(dir, "oom-1"), CreatedAt: time.Now().UTC()}
	if err := st.CreateRun(ctx, run); err != nil {
		t.Fatal(err)
	}
	pool.Wake()
	got := waitDone(t, st, run.ID, 2*time.Minute)
	if got.Status != kalla.RunFailed || got.ErrorCode != kalla.ERESOURCE {
		t.Fatalf("run %s, code %q: %s", got.Status, got.ErrorCode, got.Error)
	}
	if !strings.Contains(got.Error, "out of memory in stage match") || !strings.Contains(got.Error, "--memory-limit") {
		t.Errorf("reason does not say what to change: %s", got.Error)
	}
	if kalla.HTTPStatus(got.ErrorCode) != 503 {
		t.Errorf("resource_exhausted maps to %d", kalla.HTTPStatus(got.ErrorCode))
	}
	// The pool spills to the data folder's tmp/, whatever Engine says.
	spills, _ := filepath.Glob(filepath.Join(dir, "tmp", engine.SpillPrefix+"*"))
	if _, err := os.Stat(filepath.Join(dir, "tmp")); err != nil || len(spills) > 0 {
		t.Errorf("spill folder left behind: %v (tmp/: %v)", spills, err)
	}
}
