package exceptions_test

import (
	"context"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/kalla-recon/kalla/internal/exceptions"
	"github.com/kalla-recon/kalla/internal/exceptions/exctest"
	"github.com/kalla-recon/kalla/internal/kalla"
	"github.com/kalla-recon/kalla/internal/store"
	"github.com/kalla-recon/kalla/internal/testenv"
)

// backends gives each test a fresh metadata store of each kind.
var backends = []struct {
	name   string
	newURL func(t *testing.T) string
}{
	{"sqlite", func(t *testing.T) string { return "sqlite://" + filepath.Join(t.TempDir(), "kalla.db") }},
	{"postgres", func(t *testing.T) string { return testenv.Postgres(t) }},
}

// env is a store with one completed run whose exceptions were recorded by
// the runner's hook.
type env struct {
	url   string
	st    *store.Store
	svc   *exceptions.Service
	runID string
	items map[string]*kalla.ExceptionItem // by key (a pair by its left key)
}

func setup(t *testing.T, url string) *env {
	t.Helper()
	ctx := context.Background()
	st, err := store.Open(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	svc, err := exceptions.New(st, exceptions.Config{ApprovalAmount: "1000"})
	if err != nil {
		t.Fatal(err)
	}
	runID := exctest.CompletedRun(t, st, svc)
	e := &env{url: url, st: st, svc: svc, runID: runID, items: map[string]*kalla.ExceptionItem{}}
	page, err := svc.List(ctx, exceptions.Filter{RunID: runID}, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	for _, it := range page.Items {
		e.items[it.Key] = it
	}
	return e
}

func wantCode(t *testing.T, err error, code string) {
	t.Helper()
	if err == nil {
		t.Fatalf("no error, want %s", code)
	}
	if got := kalla.ErrorCode(err); got != code {
		t.Fatalf("error %q has code %s, want %s", err, got, code)
	}
}

func act(t *testing.T, e *env, ctx context.Context, req exceptions.ActionRequest) *exceptions.ActionResult {
	t.Helper()
	res, err := e.svc.Act(ctx, req)
	if err != nil {
		t.Fatalf("%s %v: %v", req.Action, req.Items, err)
	}
	return res
}

func as(name string, role kalla.Role) context.Context {
	return kalla.WithPrincipal(context.Background(), kalla.Principal{Name: name, Role: role})
}

// TestRecordedItems checks the items a run leaves: every unmatched record
// and every suggested pair, with key, amount, currency, date and reason
// from the run's output files.
func TestRecordedItems(t *testing.T) {
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			e := setup(t, b.newURL(t))
			var keys []string
			for k := range e.items {
				keys = append(keys, k)
			}
			if len(e.items) != 10 {
				t.Fatalf("%d items (%v), want 10: I5 I7 I8 I9 left, P5 P8a P8b P9 right, I3 I4 suggested", len(e.items), keys)
			}
			i9 := e.items["I9"]
			if i9.Side != "left" || i9.Kind != kalla.ExcKindUnmatched || i9.Amount != "2000.00" || i9.Currency != "USD" ||
				i9.Date != "2026-11-09" || i9.AgeFrom != "2026-11-09" || i9.Status != kalla.ExcOpen || i9.Version != 1 || i9.Reason == "" {
				t.Errorf("I9: %+v", i9)
			}
			p5 := e.items["P5"]
			if p5.Side != "right" || p5.Amount != "91.00" || !strings.Contains(p5.Reason, "I5") || p5.Closest != "I5" {
				t.Errorf("P5: %+v", p5)
			}
			i3 := e.items["I3"]
			if i3.Kind != kalla.ExcKindSuggested || i3.Side != "pair" || i3.RightKey != "P3" || i3.Rule != "tol10" || i3.Score == nil || *i3.Score != 0.85 {
				t.Errorf("I3 pair: %+v", i3)
			}
			// Recording again adds nothing.
			run, _ := e.st.GetRun(context.Background(), e.runID)
			n, err := e.svc.RecordRun(context.Background(), run, run.OutDir)
			if err != nil || n != 0 {
				t.Errorf("recording again added %d (%v)", n, err)
			}
			// Filters.
			for _, c := range []struct {
				f    exceptions.Filter
				want int64
			}{
				{exceptions.Filter{RunID: e.runID, Side: "left"}, 4},
				{exceptions.Filter{Kind: kalla.ExcKindSuggested, Rule: "tol10"}, 2},
				{exceptions.Filter{MinAmount: ptr(1000.0)}, 3},
				{exceptions.Filter{Reason: "MIN_SCORE"}, 2},
				// The rules' matched file has no dates: a pair ages
				// from the run's day, a record from its own date.
				{exceptions.Filter{Age: "0-3"}, 2},
				{exceptions.Filter{Age: "10+"}, 8},
			} {
				page, err := e.svc.List(context.Background(), c.f, 0, 0)
				if err != nil {
					t.Fatal(err)
				}
				if page.Total != c.want {
					t.Errorf("filter %+v: %d items, want %d", c.f, page.Total, c.want)
				}
			}
		})
	}
}

func ptr[T any](v T) *T { return &v }

func itoa(i int64) string { return strconv.FormatInt(i, 10) }

// TestConcurrentActions races several people accepting the same pair: one
// wins, every other gets ECONFLICT, and the audit chain holds.
func TestConcurrentActions(t *testing.T) {
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			e := setup(t, b.newURL(t))
			id := e.items["I3"].ID
			const n = 8
			var wg sync.WaitGroup
			errs := make([]error, n)
			start := make(chan struct{})
			for i := range n {
				wg.Add(1)
				go func() {
					defer wg.Done()
					<-start
					_, errs[i] = e.svc.Act(as("p"+string(rune('a'+i)), kalla.RolePreparer),
						exceptions.ActionRequest{Action: exceptions.ActAccept, Items: []int64{id}})
				}()
			}
			close(start)
			wg.Wait()
			won := 0
			for _, err := range errs {
				switch {
				case err == nil:
					won++
				case kalla.ErrorCode(err) != kalla.ECONFLICT:
					t.Errorf("loser got %v, want conflict", err)
				}
			}
			if won != 1 {
				t.Fatalf("%d actions won, want exactly 1", won)
			}
			it, _ := e.st.GetException(context.Background(), id)
			if it.Status != kalla.ExcAccepted || it.Version != 2 {
				t.Errorf("after the race: %+v", it)
			}
			// A stale version is refused.
			_, err := e.svc.Act(as("pa", kalla.RolePreparer), exceptions.ActionRequest{Action: exceptions.ActComment, Note: "x",
				Items: []int64{id}, Versions: map[string]int64{itoa(id): 1}})
			wantCode(t, err, kalla.ECONFLICT)
			v, err := e.svc.Verify(context.Background())
			if err != nil || !v.OK || v.Entries != 1 {
				t.Errorf("verify: %+v %v", v, err)
			}
		})
	}
}
