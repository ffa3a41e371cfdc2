package learn_test

import (
	"context"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/kalla-recon/kalla/internal/exceptions"
	"github.com/kalla-recon/kalla/internal/exceptions/exctest"
	"github.com/kalla-recon/kalla/internal/kalla"
	"github.com/kalla-recon/kalla/internal/learn"
	"github.com/kalla-recon/kalla/internal/recon"
	"github.com/kalla-recon/kalla/internal/runner"
	"github.com/kalla-recon/kalla/internal/store"
	"github.com/kalla-recon/kalla/internal/testenv"
)

var backends = []struct {
	name   string
	newURL func(t *testing.T) string
}{
	{"sqlite", func(t *testing.T) string { return "sqlite://" + filepath.Join(t.TempDir(), "kalla.db") }},
	{"postgres", func(t *testing.T) string { return testenv.Postgres(t) }},
}

// TestLearnFromManualMatches matches three pairs by hand on a run whose
// recipe misses payments quoting the invoice number without "INV-" (and a
// fee under 1 %), learns a rule from them and checks it and what it would
// match against the answer worked out by hand in exctest.InvoicesCSV; then
// accepts it and finds the recipe's new version and the audit entry.
func TestLearnFromManualMatches(t *testing.T) {
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			ctx := context.Background()
			st, err := store.Open(ctx, b.newURL(t))
			if err != nil {
				t.Fatal(err)
			}
			defer st.Close()
			svc, err := exceptions.New(st, exceptions.Config{ApprovalAmount: "1000000"})
			if err != nil {
				t.Fatal(err)
			}
			dir := t.TempDir()
			rec := exctest.LearnRecipe(dir)
			if err := st.CreateRecipe(ctx, &kalla.StoredRecipe{ID: rec.RecipeID, Name: "learn", Recipe: rec}); err != nil {
				t.Fatal(err)
			}
			runID := exctest.RunRecipe(t, st, svc, dir, "run-learn-1", rec, exctest.LearnFiles)
			l := learn.New(st, recon.New(recon.Options{}), func(id string) string { return runner.OutDir(dir, id) })

			_, err = l.Propose(ctx, "", runID)
			if kalla.ErrorCode(err) != kalla.EINVALID || !strings.Contains(err.Error(), "nobody has matched records by hand") {
				t.Fatalf("without manual matches: %v", err)
			}
			items := map[string]int64{}
			page, err := svc.List(ctx, exceptions.Filter{RunID: runID}, 0, 0)
			if err != nil {
				t.Fatal(err)
			}
			for _, it := range page.Items {
				items[it.Key] = it.ID
			}
			// One odd match (same amount, nothing else in common): no rule,
			// and the answer says why.
			odd := exceptions.ActionRequest{Action: exceptions.ActMatch, Items: []int64{items["INV-1007"], items["P9"]}, Actor: "ann"}
			if _, err := svc.Act(ctx, odd); err != nil {
				t.Fatal(err)
			}
			_, err = l.Propose(ctx, "", runID)
			if kalla.ErrorCode(err) != kalla.EINVALID || !strings.Contains(err.Error(), "no rule could be learned from the 1 manual matches") || !strings.Contains(err.Error(), "nothing to join the sides on") {
				t.Fatalf("from one odd match: %v", err)
			}
			odd.Action, odd.Items = exceptions.ActUnmatch, odd.Items[:1]
			if _, err := svc.Act(ctx, odd); err != nil {
				t.Fatal(err)
			}
			for _, pair := range [][2]string{{"INV-1002", "P2"}, {"INV-1003", "P3"}, {"INV-1004", "P4"}} {
				req := exceptions.ActionRequest{Action: exceptions.ActMatch, Items: []int64{items[pair[0]], items[pair[1]]}, Actor: "ann"}
				if pair[0] == "INV-1004" {
					req.Code = "bank fee"
				}
				if _, err := svc.Act(ctx, req); err != nil {
					t.Fatalf("match %v: %v", pair, err)
				}
			}
			p, err := l.Propose(ctx, "", runID)
			if err != nil {
				t.Fatal(err)
			}
			t.Logf("diff:\n%s\nnotes: %s", strings.Join(p.Diff, "\n"), strings.Join(p.Notes, "\n"))
			if len(p.Examples) != 3 || p.RecipeID != "learn-test" || p.RunID != runID {
				t.Fatalf("proposal: %+v", p)
			}
			// The link: invoice_id against reference with INV- stripped,
			// the amount within 1 % somewhere in the new rules.
			var link, within1 bool
			for _, r := range p.NewRules {
				for _, c := range r.Conditions {
					if c.Op == kalla.CondEq && c.Left == "invoice_id" && c.Right == "reference" && (c.StripLeft != "" || slices.Contains(c.Normalize, kalla.NormAlnum)) {
						link = true
					}
					if c.Op == kalla.CondTolerance && c.Left == "amount" && c.Pct == "0.01" {
						within1 = true
					}
				}
			}
			if !link || !within1 {
				t.Fatalf("new rules lack the stripped link or the 1 %% tolerance: %+v", p.NewRules)
			}
			if len(p.After.Rules) != len(rec.Rules)+len(p.NewRules) || p.After.Rules[0].Name != "exact" {
				t.Fatalf("after: %+v", p.After.Rules)
			}
			im := p.Impact
			var got []string
			for _, pp := range im.Pairs {
				got = append(got, pp.Left+"~"+pp.Right+":"+pp.Effect)
			}
			slices.Sort(got)
			want := []string{"INV-1002~P2:confirms", "INV-1003~P3:confirms", "INV-1004~P4:confirms", "INV-1005~P5:match", "INV-1006~P6:match"}
			if im.WouldMatch != 2 || im.Confirms != 3 || im.Conflicts != 0 || im.BreaksExisting || !slices.Equal(got, want) {
				t.Fatalf("impact: %+v\npairs %v, want %v", im, got, want)
			}
			if im.OpenLeft != 4 || im.OpenRight != 4 || im.RuleMatches != 1 {
				t.Fatalf("open %d/%d, rule matches %d; want 4/4 (INV-1005..1008, P5 P6 P8 P9) and 1", im.OpenLeft, im.OpenRight, im.RuleMatches)
			}

			// A person resolves INV-1006 meanwhile: the proposal changes,
			// and names the conflict.
			if _, err := svc.Act(ctx, exceptions.ActionRequest{Action: exceptions.ActResolve, Items: []int64{items["INV-1006"]}, Code: "duplicate", Actor: "bob"}); err != nil {
				t.Fatal(err)
			}
			if _, err := l.Accept(ctx, "learn-test", runID, p.ID, kalla.Principal{Name: "carol", Role: kalla.RoleAdmin}, ""); kalla.ErrorCode(err) != kalla.ECONFLICT {
				t.Fatalf("accept a stale proposal: %v", err)
			}
			p2, err := l.Propose(ctx, "learn-test", "")
			if err != nil {
				t.Fatal(err)
			}
			if p2.Impact.WouldMatch != 1 || p2.Impact.Conflicts != 1 || !p2.Impact.BreaksExisting {
				t.Fatalf("after resolving INV-1006: %+v", p2.Impact)
			}
			for _, pp := range p2.Impact.Pairs {
				if pp.Left == "INV-1006" && (pp.Effect != "conflict" || !strings.Contains(pp.Note, `resolved as "duplicate"`)) {
					t.Fatalf("INV-1006: %+v", pp)
				}
			}
			acc, err := l.Accept(ctx, "learn-test", runID, p2.ID, kalla.Principal{Name: "carol", Role: kalla.RoleAdmin}, "")
			if err != nil {
				t.Fatal(err)
			}
			stored, err := st.GetRecipe(ctx, "learn-test")
			if err != nil {
				t.Fatal(err)
			}
			if len(stored.Recipe.Rules) != len(p2.After.Rules) || stored.Recipe.Sources.Left.URI != rec.Sources.Left.URI {
				t.Fatalf("stored recipe: %+v", stored.Recipe)
			}
			if acc.Audit.Action != learn.ActLearn || acc.Audit.RunID != runID || acc.Audit.Actor != "carol" || !strings.Contains(acc.Audit.After, "learned_") {
				t.Fatalf("audit entry: %+v", acc.Audit)
			}
			v, err := svc.Verify(ctx)
			if err != nil || !v.OK {
				t.Fatalf("verify: %+v %v", v, err)
			}
			// Accepting again: the recipe is no longer the base.
			if _, err := l.Accept(ctx, "learn-test", runID, p2.ID, kalla.Principal{Name: "carol", Role: kalla.RoleAdmin}, ""); err == nil {
				t.Fatal("accepted twice")
			}
		})
	}
}
