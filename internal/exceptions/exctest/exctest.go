// Package exctest runs a small rules recipe to completion through the real
// runner, so tests of the exception queue (its package, the API, the CLI)
// start from items a run really recorded.
package exctest

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/kalla-recon/kalla/internal/exceptions"
	"github.com/kalla-recon/kalla/internal/kalla"
	"github.com/kalla-recon/kalla/internal/runner"
	"github.com/kalla-recon/kalla/internal/sources"
	"github.com/kalla-recon/kalla/internal/store"
)

// LeftCSV and RightCSV are the sides: I1 matches P1 exactly (rule exact);
// I3-P3 and I4-P4 are suggested (rule tol10); I5, I7, I8, I9 and P5, P8a,
// P8b, P9 stay unmatched.
const LeftCSV = `invoice_id,amount,currency,invoice_date
I1,100.00,EUR,2026-11-01
I3,100.00,EUR,2026-11-03
I4,100.00,EUR,2026-11-04
I5,100.00,EUR,2026-11-05
I7,1500.00,EUR,2026-10-07
I8,50.00,EUR,2026-11-08
I9,2000.00,USD,2026-11-09
`

// RightCSV is the right side.
const RightCSV = `payment_id,reference,amount,currency,paid_date
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
// Recipe is the test recipe over the files in dir.
func Recipe(dir string) kalla.Recipe {
	abs, pct := "0.01", "0.10"
	minScore, auto := 0.6, 0.9
	return kalla.Recipe{RecipeID: "exc-test", Sources: kalla.Sources{
		Left:  kalla.SourceSpec{Alias: "invoices", URI: filepath.Join(dir, "left.csv"), PrimaryKey: []string{"invoice_id"}},
		Right: kalla.SourceSpec{Alias: "payments", URI: filepath.Join(dir, "right.csv"), PrimaryKey: []string{"payment_id"}},
	}, Rules: []kalla.Rule{
		{Name: "exact", Conditions: []kalla.Condition{{Op: "eq", Left: "invoice_id", Right: "reference"},
			{Op: "tolerance", Left: "amount", Right: "amount", Abs: json.Number(abs)}}},
		{Name: "tol10", MinScore: &minScore, AutoConfirm: &auto, Conditions: []kalla.Condition{{Op: "eq", Left: "invoice_id", Right: "reference"},
			{Op: "tolerance", Left: "amount", Right: "amount", Pct: json.Number(pct)}}},
	}}
}

// CompletedRun writes the sides to a temporary folder, runs the recipe
// through a real runner pool on st whose completion hook records the
// exceptions with svc, and returns the run's ID once they are recorded.
func CompletedRun(t *testing.T, st *store.Store, svc *exceptions.Service) string {
	t.Helper()
	dir := t.TempDir()
	return RunRecipe(t, st, svc, dir, "run-exc-1", Recipe(dir), map[string]string{"left.csv": LeftCSV, "right.csv": RightCSV})
}

// RunOf writes files to a temporary folder, runs the recipe made for it
// through a real runner pool on st whose completion hook records the
// exceptions with svc, and returns the run's ID (id) once they are
// recorded.
func RunOf(t *testing.T, st *store.Store, svc *exceptions.Service, id string, files map[string]string, recipe func(dir string) kalla.Recipe) string {
	t.Helper()
	dir := t.TempDir()
	return RunRecipe(t, st, svc, dir, id, recipe(dir), files)
}

// RunRecipe writes files into dir, runs rec as run runID through a real
// runner pool on st (its data folder is dir, so the outputs are under
// runner.OutDir(dir, runID)) whose completion hook records the exceptions
// with svc, and returns the run's ID once they are recorded.
func RunRecipe(t *testing.T, st *store.Store, svc *exceptions.Service, dir, runID string, rec kalla.Recipe, files map[string]string) string {
	t.Helper()
	ctx := context.Background()
	for name, body := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	mgr := sources.New(sources.Config{})
	t.Cleanup(func() { mgr.Close() })
	pool := runner.New(st, mgr, runner.Config{Workers: 1, DataDir: dir, PollInterval: 50 * time.Millisecond,
		OnCompleted: exceptions.Recorder(svc)})
	run := &kalla.RunRecord{ID: runID, RecipeID: rec.RecipeID, Recipe: rec, OutDir: runner.OutDir(dir, runID)}
	if err := st.CreateRun(ctx, run); err != nil {
		t.Fatal(err)
	}
	ch, stop := pool.Subscribe(run.ID)
	defer stop()
	pool.Start()
	defer pool.Shutdown(context.Background())
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
	// The hook records the items before subscribers hear of the
	// completion; the store says completed a moment earlier.
	for range 400 {
		page, err := svc.List(ctx, exceptions.Filter{RunID: run.ID}, 1, 0)
		if err != nil {
			t.Fatal(err)
		}
		if page.Total > 0 {
			return run.ID
		}
		select {
		case <-ch:
		case <-time.After(50 * time.Millisecond):
		}
	}
	t.Fatal("no exceptions recorded for the completed run")
	return ""
}
