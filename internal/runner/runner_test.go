package runner

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/kalla-recon/kalla/internal/connector"
	"github.com/kalla-recon/kalla/internal/kalla"
)

// emptyStore has no queued runs.
type emptyStore struct {
	mu     sync.Mutex
	claims int
}

func (s *emptyStore) ClaimRun(context.Context, string, time.Duration) (*kalla.RunRecord, error) {
	s.mu.Lock()
	s.claims++
	s.mu.Unlock()
	return nil, kalla.Errorf(kalla.ENOTFOUND, "no queued run")
}
func (s *emptyStore) GetRun(ctx context.Context, id string) (*kalla.RunRecord, error) {
	return nil, kalla.Errorf(kalla.ENOTFOUND, "no run")
}
func (s *emptyStore) RenewLease(context.Context, string, kalla.Lease, time.Duration) error {
	return nil
}
func (s *emptyStore) ExpireLeases(context.Context, int, string) ([]string, []string, error) {
	return nil, nil, nil
}
func (s *emptyStore) UpdateRunProgress(context.Context, string, kalla.Lease, string, float64, int64, int64) error {
	return nil
}
func (s *emptyStore) FinishRunCode(context.Context, string, kalla.Lease, kalla.RunStatus, *kalla.Summary, string, string) error {
	return nil
}

type noOpener struct{}

func (noOpener) Open(context.Context, kalla.SourceSpec, string) (connector.Source, error) {
	return nil, errors.New("unused")
}

// TestPoolWakeAndShutdown checks that Wake makes an idle worker claim at
// once (long before its poll), and that Shutdown is idempotent and safe to
// call concurrently, before or after Start.
func TestPoolWakeAndShutdown(t *testing.T) {
	st := &emptyStore{}
	p := New(st, noOpener{}, Config{Workers: 2, PollInterval: time.Hour, DataDir: t.TempDir()})
	if err := p.Shutdown(context.Background()); err != nil { // before Start: nothing to wait for
		t.Fatal(err)
	}
	p = New(st, noOpener{}, Config{Workers: 2, PollInterval: time.Hour, DataDir: t.TempDir()})
	p.Start()
	p.Start()
	deadline := time.Now().Add(2 * time.Second)
	for {
		st.mu.Lock()
		n := st.claims
		st.mu.Unlock()
		if n == 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("workers made %d claims at start, want 2", n)
		}
		time.Sleep(time.Millisecond)
	}
	for i := 0; i < 10; i++ {
		p.Wake() // never blocks
	}
	deadline = time.Now().Add(2 * time.Second)
	for {
		st.mu.Lock()
		n := st.claims
		st.mu.Unlock()
		if n >= 3 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("Wake did not make a worker claim")
		}
		time.Sleep(time.Millisecond)
	}
	if p.Cancel("nope") {
		t.Errorf("Cancel of a run not executing here returned true")
	}
	var wg sync.WaitGroup
	for i := 0; i < 3; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := p.Shutdown(context.Background()); err != nil {
				t.Errorf("Shutdown: %v", err)
			}
		}()
	}
	wg.Wait()
	if p.Running() != 0 {
		t.Errorf("runs left after shutdown")
	}
}

func TestHub(t *testing.T) {
	h := newHub()
	ch, stop := h.subscribe("a")
	h.notify("a")
	h.notify("a") // coalesced, never blocks
	h.notify("b")
	select {
	case <-ch:
	default:
		t.Fatal("no signal")
	}
	select {
	case <-ch:
		t.Fatal("signals were not coalesced")
	default:
	}
	stop()
	stop()
	h.notify("a")
	if len(h.subs) != 0 {
		t.Errorf("subscription left: %v", h.subs)
	}
}

func TestValidCallbackURL(t *testing.T) {
	for _, c := range []struct {
		url string
		ok  bool
	}{
		{"https://example.com/hook", true},
		{"http://127.0.0.1:9000/x?token=1", true},
		{"ftp://example.com/x", false},
		{"file:///etc/passwd", false},
		{"/relative", false},
		{"http://", false},
	} {
		if err := ValidCallbackURL(c.url); (err == nil) != c.ok {
			t.Errorf("%s: %v", c.url, err)
		}
	}
}
