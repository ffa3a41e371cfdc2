package runner_test

import (
	"context"
	"database/sql/driver"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/kalla-recon/kalla/internal/connector"
	"github.com/kalla-recon/kalla/internal/kalla"
	"github.com/kalla-recon/kalla/internal/recon"
	"github.com/kalla-recon/kalla/internal/runner"
	"github.com/kalla-recon/kalla/internal/sources"
	"github.com/kalla-recon/kalla/internal/store"
	"github.com/kalla-recon/kalla/internal/testenv"
)

// firstRowOpener opens sources through the real connector layer and calls
// onFirstRow when the first row of a staged source reaches the engine: the
// moment a test can freeze the server mid-stream.
type firstRowOpener struct {
	*sources.Manager
	onFirstRow func()
}

func (o firstRowOpener) Open(ctx context.Context, spec kalla.SourceSpec, base string) (connector.Source, error) {
	src, err := o.Manager.Open(ctx, spec, base)
	if err != nil {
		return nil, err
	}
	return &hookSource{Source: src, first: o.onFirstRow}, nil
}

type hookSource struct {
	connector.Source
	first func()
}

func (s *hookSource) Stage(ctx context.Context, f []kalla.Filter, sink connector.Sink) (int64, error) {
	return s.Source.Stage(ctx, f, &hookSink{Sink: sink, first: s.first})
}

type hookSink struct {
	connector.Sink
	first func()
}

func (s *hookSink) Append(ctx context.Context, cols []kalla.Column, fill func(w connector.RowWriter) error) (int64, error) {
	return s.Sink.Append(ctx, cols, func(w connector.RowWriter) error {
		return fill(&hookWriter{RowWriter: w, first: s.first})
	})
}

type hookWriter struct {
	connector.RowWriter
	first func()
	once  sync.Once
}

func (w *hookWriter) WriteRow(values ...driver.Value) error {
	w.once.Do(w.first)
	return w.RowWriter.WriteRow(values...)
}

// TestFrozenPostgresFailsRun stops (SIGSTOP) the Postgres backend that
// streams a run's left source after its first row: the run fails within
// the source idle timeout, far before the statement timeout, with a
// reason naming the source. With a long idle timeout, the run's maximum
// duration ends it instead.
func TestFrozenPostgresFailsRun(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Fatal("freezing a Postgres backend takes signalling the server's processes: run the tests as root")
	}
	t.Run("idle timeout", func(t *testing.T) {
		frozenRun(t, 2*time.Second, 0, "left source ledger", "sent nothing for 2s")
	})
	t.Run("maximum duration", func(t *testing.T) {
		frozenRun(t, time.Hour, 3*time.Second, "maximum duration of 3s")
	})
}

// frozenRun runs a recipe whose left source's backend is frozen after its
// first row, with the given idle timeout and maximum run duration, and
// checks that the run fails with a reason holding want, soon after the
// smaller of the two.
func frozenRun(t *testing.T, idle, maxDuration time.Duration, want ...string) {
	ctx := context.Background()
	pgURL := testenv.Postgres(t)
	admin, err := pgx.Connect(ctx, pgURL)
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close(ctx)
	// Several megabytes: far more than the socket buffers hold, so the
	// stream starves once the backend stops.
	if _, err := admin.Exec(ctx, `CREATE TABLE ledger AS SELECT g AS id, 'note ' || g AS note FROM generate_series(1, 300000) g`); err != nil {
		t.Fatal(err)
	}
	app := fmt.Sprintf("kalla_stall_%d", time.Now().UnixNano())
	dir := t.TempDir()
	csv := filepath.Join(dir, "bank.csv")
	if err := os.WriteFile(csv, []byte("ref\n1\n2\n"), 0o644); err != nil {
		t.Fatal(err)
	}

	var mu sync.Mutex
	var frozenAt time.Time
	var frozen int32
	freeze := func() {
		mu.Lock()
		defer mu.Unlock()
		var pid int32
		err := admin.QueryRow(ctx, `SELECT pid FROM pg_stat_activity WHERE application_name = $1 AND state = 'active'`, app).Scan(&pid)
		if err != nil {
			t.Errorf("find the staging backend: %v", err)
			return
		}
		if err := syscall.Kill(int(pid), syscall.SIGSTOP); err != nil {
			t.Errorf("SIGSTOP backend %d: %v", pid, err)
			return
		}
		frozen, frozenAt = pid, time.Now()
		t.Cleanup(func() { syscall.Kill(int(pid), syscall.SIGCONT) })
	}

	st, err := store.Open(ctx, filepath.Join(dir, "kalla.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	mgr := sources.New(sources.Config{IdleTimeout: idle})
	defer mgr.Close()
	pool := runner.New(st, firstRowOpener{Manager: mgr, onFirstRow: freeze}, runner.Config{
		Workers: 1, DataDir: dir, PollInterval: 50 * time.Millisecond, MaxRunDuration: maxDuration,
		Engine: recon.DuckDBOptions{Threads: 2, SourceIdleTimeout: idle},
	})
	pool.Start()
	defer pool.Shutdown(ctx)

	u := pgURL + "?table=ledger&application_name=" + app
	if strings.Contains(pgURL, "?") {
		u = pgURL + "&table=ledger&application_name=" + app
	}
	rec := kalla.Recipe{RecipeID: "stall", MatchSQL: "SELECT l.id, r.ref FROM left_src l JOIN right_src r ON l.id = r.ref",
		Sources: kalla.Sources{
			Left:  kalla.SourceSpec{Alias: "ledger", URI: u, PrimaryKey: []string{"id"}},
			Right: kalla.SourceSpec{Alias: "bank", URI: csv, PrimaryKey: []string{"ref"}},
		}}
	run := &kalla.RunRecord{ID: "stall-1", RecipeID: "stall", Recipe: rec, Status: kalla.RunQueued, OutDir: runner.OutDir(dir, "stall-1"), CreatedAt: time.Now().UTC()}
	if err := st.CreateRun(ctx, run); err != nil {
		t.Fatal(err)
	}
	pool.Wake()

	got := waitDone(t, st, run.ID, time.Minute)
	mu.Lock()
	defer mu.Unlock()
	if frozen == 0 {
		t.Fatalf("the backend was never frozen; run %s %q", got.Status, got.Error)
	}
	took := time.Since(frozenAt)
	syscall.Kill(int(frozen), syscall.SIGCONT) // the cleanup sends it again, harmlessly
	t.Logf("run failed %s after backend %d froze: %s", took.Round(time.Millisecond), frozen, got.Error)
	if got.Status != kalla.RunFailed {
		t.Fatalf("frozen source: run %s %q", got.Status, got.Error)
	}
	for _, w := range want {
		if !strings.Contains(got.Error, w) {
			t.Errorf("frozen source: reason %q lacks %q", got.Error, w)
		}
	}
	// A stalled source or a run past its maximum duration is not the
	// recipe's fault: the run records "unavailable", never "invalid".
	if got.ErrorCode != kalla.EUNAVAILABLE {
		t.Errorf("frozen source: error code %q, want %q", got.ErrorCode, kalla.EUNAVAILABLE)
	}
	// A bound, not a speed measure: the limit plus room for a loaded
	// machine, against a statement timeout of minutes.
	limit := idle
	if maxDuration > 0 {
		limit = min(idle, maxDuration)
	}
	if took > limit+20*time.Second {
		t.Errorf("the run ended %s after the freeze, with a limit of %s", took, limit)
	}
}

// waitDone polls the store until the run has finished.
func waitDone(t *testing.T, st *store.Store, id string, timeout time.Duration) *kalla.RunRecord {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		r, err := st.GetRun(context.Background(), id)
		if err != nil {
			t.Fatal(err)
		}
		if r.Status.Done() {
			return r
		}
		if time.Now().After(deadline) {
			t.Fatalf("run %s not finished after %s: %s %s", id, timeout, r.Status, r.Stage)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
