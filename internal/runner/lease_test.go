package runner

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/kalla-recon/kalla/internal/connector"
	"github.com/kalla-recon/kalla/internal/kalla"
	"github.com/kalla-recon/kalla/internal/store"
)

// blockingOpener opens no source: it holds the run until its context ends,
// so a test decides when the run stops.
type blockingOpener struct{ opened chan string }

func (o blockingOpener) Open(ctx context.Context, spec kalla.SourceSpec, _ string) (connector.Source, error) {
	select {
	case o.opened <- spec.Alias:
	default:
	}
	<-ctx.Done()
	return nil, context.Cause(ctx)
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t *testing.T, within time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("gave up waiting for %s after %s", what, within)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func leaseStore(t *testing.T, path string, opts ...store.Option) *store.Store {
	t.Helper()
	s, err := store.Open(context.Background(), path, opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// TestLeaseHeartbeatAndTakeover: while a run executes, its heartbeat keeps
// its lease alive through many lease lengths, so a reaper leaves it alone;
// once another process takes the run over (its lease expired there), the
// executing pool gives it up and writes nothing more to it.
func TestLeaseHeartbeatAndTakeover(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	db := filepath.Join(dir, "kalla.db")
	st := leaseStore(t, db)
	// Long enough that a renewal (given a third of it) fits on a loaded
	// 2-core machine under -race; 300 ms did not.
	const ttl = 2 * time.Second
	p := New(st, blockingOpener{opened: make(chan string, 1)}, Config{
		Workers: 1, DataDir: dir, PollInterval: 10 * time.Millisecond, LeaseTTL: ttl, Owner: "worker-1",
		// This pool's own reaper must not be what settles the run.
		ReapInterval: time.Hour,
	})
	if err := st.CreateRun(ctx, &kalla.RunRecord{ID: "r1", RecipeID: "x"}); err != nil {
		t.Fatal(err)
	}
	p.Start()
	defer func() {
		// Cancels a run still held, so a failed test ends.
		sctx, cancel := context.WithTimeout(ctx, 10*time.Millisecond)
		defer cancel()
		p.Shutdown(sctx)
	}()
	waitFor(t, 10*time.Second, "the pool to claim the run", func() bool { return p.Running() == 1 })

	// The heartbeat moves the expiry forward several times. (No reaper on
	// the real clock runs meanwhile: on a loaded machine a heartbeat may
	// legitimately be late by more than a lease, which is what leases are
	// for; the reaper's side is checked below with pinned clocks.)
	var seen []time.Time
	waitFor(t, 20*ttl, "four lease renewals", func() bool {
		r, err := st.GetRun(ctx, "r1")
		if err != nil {
			t.Fatal(err)
		}
		if r.Status != kalla.RunRunning {
			t.Fatalf("run left running: %+v", r)
		}
		if r.Owner != "worker-1" {
			t.Fatalf("run owner %q, want worker-1", r.Owner)
		}
		if n := len(seen); r.LeaseExpires != nil && (n == 0 || r.LeaseExpires.After(seen[n-1])) {
			seen = append(seen, *r.LeaseExpires)
		}
		return len(seen) >= 4
	})
	// A reaper whose clock stands just before the renewed expiry leaves
	// the run alone.
	last := seen[len(seen)-1]
	before := leaseStore(t, db, store.WithClock(func() time.Time { return last.Add(-time.Millisecond) }))
	if ended, requeued, err := before.ExpireLeases(ctx, 1, "reaped"); err != nil || len(ended)+len(requeued) != 0 {
		t.Fatalf("ExpireLeases before the lease ends = %q, %q, %v", ended, requeued, err)
	}

	// Another process, whose clock says the lease expired, takes it over.
	later := leaseStore(t, db, store.WithClock(func() time.Time { return time.Now().Add(time.Hour) }))
	ended, _, err := later.ExpireLeases(ctx, 1, "taken over")
	if err != nil || len(ended) != 1 {
		t.Fatalf("takeover: %q, %v", ended, err)
	}
	taken, err := st.GetRun(ctx, "r1")
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, 20*ttl, "the pool to give the run up", func() bool { return p.Running() == 0 })
	after, err := st.GetRun(ctx, "r1")
	if err != nil {
		t.Fatal(err)
	}
	if after.Status != kalla.RunFailed || after.Error != "taken over" || !after.FinishedAt.Equal(*taken.FinishedAt) {
		t.Fatalf("run after the old owner gave it up: %s %q (finished %v, was %v)", after.Status, after.Error, after.FinishedAt, taken.FinishedAt)
	}
}

// TestRetryInterrupted: a run whose owner died (its lease expired, nobody
// renews it) is queued again once with RetryInterrupted, executed by the
// live pool, and never claimed a third time.
func TestRetryInterrupted(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	st := leaseStore(t, filepath.Join(dir, "kalla.db"))
	if err := st.CreateRun(ctx, &kalla.RunRecord{ID: "r1", RecipeID: "x"}); err != nil {
		t.Fatal(err)
	}
	// A process claims it and dies: no heartbeat.
	if _, err := st.ClaimRun(ctx, "dead-process", time.Second); err != nil {
		t.Fatal(err)
	}
	p := New(st, noOpener{}, Config{
		Workers: 1, DataDir: dir, PollInterval: 10 * time.Millisecond, LeaseTTL: time.Second,
		ReapInterval: 20 * time.Millisecond, RetryInterrupted: true, Owner: "live-process",
	})
	p.Start()
	defer p.Shutdown(ctx)
	var r *kalla.RunRecord
	waitFor(t, 30*time.Second, "the run to be retried and finish", func() bool {
		var err error
		if r, err = st.GetRun(ctx, "r1"); err != nil {
			t.Fatal(err)
		}
		return r.Status.Done()
	})
	// noOpener fails every source: the second attempt ran here and failed
	// on its own merits, not as interrupted.
	if r.Status != kalla.RunFailed || r.Attempts != 2 || r.Owner != "live-process" || r.Error == InterruptedReason {
		t.Fatalf("retried run: %s %q, %d claims, owner %q", r.Status, r.Error, r.Attempts, r.Owner)
	}
}
