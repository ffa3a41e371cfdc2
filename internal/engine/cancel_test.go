package engine

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/kalla-recon/kalla/internal/kalla"
)

// TestCancelAtEveryStage cancels a run as each stage begins, for a match
// SQL recipe and a rules recipe: the run returns the context's error, never
// a recipe error (the CLI would exit 2, "fix your recipe", for a Ctrl-C),
// and leaves no summary. A statement cut short fails with DuckDB's
// "Interrupted", and the step that ran it must not take that for the
// recipe's fault.
func TestCancelAtEveryStage(t *testing.T) {
	f := newSandboxFixture(t)
	recipes := map[string]*kalla.Recipe{"sql": f.recipe("SELECT l.id, r.id AS pid FROM left_src l JOIN right_src r ON l.id = r.ref")}
	rules := f.recipe("")
	rules.Rules = []kalla.Rule{{Name: "by ref", Conditions: []kalla.Condition{{Op: "eq", Left: "id", Right: "ref"}, {Op: "tolerance", Left: "amount", Right: "amount", Abs: "1"}}}}
	recipes["rules"] = rules
	for name, rec := range recipes {
		// The stages this recipe reaches, from an uncancelled run.
		var stages []string
		l, r := f.sources(t)
		if _, err := f.open(t, Options{Threads: 1}).Execute(t.Context(), Run{Recipe: rec, Left: l, Right: r, OutDir: t.TempDir(), Progress: func(ev Event) {
			if !ev.Done && ev.Rows == 0 {
				stages = append(stages, ev.Stage)
			}
		}}); err != nil {
			t.Fatalf("%s: uncancelled run: %v", name, err)
		}
		if len(stages) < 3 {
			t.Fatalf("%s: only stages %v", name, stages)
		}
		for _, stage := range stages {
			t.Run(name+"/"+stage, func(t *testing.T) {
				l, r := f.sources(t)
				out := t.TempDir()
				ctx, cancel := context.WithCancel(t.Context())
				defer cancel()
				_, err := f.open(t, Options{Threads: 1}).Execute(ctx, Run{Recipe: rec, Left: l, Right: r, OutDir: out, Progress: func(ev Event) {
					if ev.Stage == stage && !ev.Done {
						cancel()
					}
				}})
				if !errors.Is(err, context.Canceled) || errors.Is(err, ErrRecipe) {
					t.Fatalf("cancelled at %s: %v (recipe error: %v)", stage, err, errors.Is(err, ErrRecipe))
				}
				if _, err := os.Stat(filepath.Join(out, SummaryFile)); !os.IsNotExist(err) {
					t.Errorf("a cancelled run left a summary: %v", err)
				}
			})
		}
	}
}
