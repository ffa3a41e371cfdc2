package exceptions_test

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kalla-recon/kalla/internal/exceptions"
	"github.com/kalla-recon/kalla/internal/kalla"
	"github.com/kalla-recon/kalla/internal/runner"
	"github.com/kalla-recon/kalla/internal/sources"
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

const leftCSV = `invoice_id,amount,currency,invoice_date
I1,100.00,EUR,2026-11-01
I3,100.00,EUR,2026-11-03
I4,100.00,EUR,2026-11-04
I5,100.00,EUR,2026-11-05
I7,1500.00,EUR,2026-10-07
I8,50.00,EUR,2026-11-08
I9,2000.00,USD,2026-11-09
`

const rightCSV = `payment_id,reference,amount,currency,paid_date
P1,I1,100.00,EUR,2026-11-02
P3,I3,97.00,EUR,2026-11-04
P4,I4,92.00,EUR,2026-11-05
P5,I5,91.00,EUR,2026-11-06
P8a,X1,30.00,EUR,2026-11-09
P8b,X2,20.00,EUR,2026-11-09
P9,Y9,1999.00,USD,2026-11-10
`

// recipe has a strict rule (amounts within 0.01, the recipe's tolerance
// for manual matches) and a loose one whose pairs below 0.9 are suggested.
func recipe(dir string) kalla.Recipe {
	abs, pct := "0.01", "0.10"
	minScore, auto := 0.6, 0.9
	return kalla.Recipe{RecipeID: "exc-test", Sources: kalla.Sources{
		Left:  kalla.SourceSpec{Alias: "invoices", URI: filepath.Join(dir, "left.csv"), PrimaryKey: []string{"invoice_id"}},
		Right: kalla.SourceSpec{Alias: "payments", URI: filepath.Join(dir, "right.csv"), PrimaryKey: []string{"payment_id"}},
	}, Rules: []kalla.Rule{
		{Name: "exact", Conditions: []kalla.Condition{{Op: "eq", Left: "invoice_id", Right: "reference"},
			{Op: "tolerance", Left: "amount", Right: "amount", Abs: jsonNumber(abs)}}},
		{Name: "tol10", MinScore: &minScore, AutoConfirm: &auto, Conditions: []kalla.Condition{{Op: "eq", Left: "invoice_id", Right: "reference"},
			{Op: "tolerance", Left: "amount", Right: "amount", Pct: jsonNumber(pct)}}},
	}}
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
	dir := t.TempDir()
	for name, body := range map[string]string{"left.csv": leftCSV, "right.csv": rightCSV} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	st, err := store.Open(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	svc, err := exceptions.New(st, exceptions.Config{ApprovalAmount: "1000"})
	if err != nil {
		t.Fatal(err)
	}
	mgr := sources.New(sources.Config{})
	t.Cleanup(func() { mgr.Close() })
	pool := runner.New(st, mgr, runner.Config{Workers: 1, DataDir: dir, PollInterval: 50 * time.Millisecond,
		OnCompleted: func(ctx context.Context, rec *kalla.RunRecord, outDir string) error {
			_, err := svc.RecordRun(ctx, rec, outDir)
			return err
		}})
	run := &kalla.RunRecord{ID: "run-exc-1", RecipeID: "exc-test", Recipe: recipe(dir), OutDir: runner.OutDir(dir, "run-exc-1")}
	if err := st.CreateRun(ctx, run); err != nil {
		t.Fatal(err)
	}
	ch, stop := pool.Subscribe(run.ID)
	defer stop()
	pool.Start()
	t.Cleanup(func() { pool.Shutdown(context.Background()) })
	deadline := time.After(2 * time.Minute)
	for {
		got, err := st.GetRun(ctx, run.ID)
		if err != nil {
			t.Fatal(err)
		}
		if got.Status.Done() {
			if got.Status != kalla.RunCompleted {
				t.Fatalf("run %s: %s", got.Status, got.Error)
			}
			break
		}
		select {
		case <-ch:
		case <-time.After(time.Second):
		case <-deadline:
			t.Fatal("run did not finish")
		}
	}
	// The hook runs before subscribers hear of the completion; wait for
	// that signal (the store says completed a moment before).
	e := &env{url: url, st: st, svc: svc, runID: run.ID, items: map[string]*kalla.ExceptionItem{}}
	for range 200 {
		page, err := svc.List(ctx, exceptions.Filter{RunID: run.ID}, 0, 0)
		if err != nil {
			t.Fatal(err)
		}
		if page.Total > 0 {
			for _, it := range page.Items {
				e.items[it.Key] = it
			}
			return e
		}
		select {
		case <-ch:
		case <-time.After(50 * time.Millisecond):
		}
	}
	t.Fatal("no exceptions recorded for the completed run")
	return nil
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

func jsonNumber(s string) json.Number { return json.Number(s) }

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
