package suggest

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/kalla-recon/kalla/internal/engine"
	"github.com/kalla-recon/kalla/internal/file"
	"github.com/kalla-recon/kalla/internal/kalla"
)

const scenarios = "../engine/testdata/scenarios"

// suggestFor runs Suggest on a golden scenario's inputs.
func suggestFor(t *testing.T, scenario string, opt Options) *Result {
	t.Helper()
	ctx := t.Context()
	eng, err := engine.Open(ctx, engine.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { eng.Close() })
	var srcs [2]*file.Source
	for i, name := range []string{"left.csv", "right.csv"} {
		src, err := file.Open(ctx, filepath.Join(scenarios, scenario, name), file.Options{Type: kalla.SourceCSV})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { src.Close() })
		srcs[i] = src
	}
	opt.Left = kalla.SourceSpec{Alias: "invoices", URI: filepath.Join(scenarios, scenario, "left.csv")}
	opt.Right = kalla.SourceSpec{Alias: "payments", URI: filepath.Join(scenarios, scenario, "right.csv")}
	res, err := FromSources(ctx, eng, srcs[0], srcs[1], opt)
	if err != nil {
		t.Fatal(err)
	}
	return res
}

func ruleNames(r *kalla.Recipe) []string {
	var out []string
	for _, x := range r.Rules {
		out = append(out, x.Name+"/"+x.RulePattern())
	}
	return out
}

func condition(r kalla.Rule, op string) *kalla.Condition {
	for i := range r.Conditions {
		if r.Conditions[i].Op == op {
			return &r.Conditions[i]
		}
	}
	return nil
}

func hasNote(res *Result, sub string) bool {
	return slices.ContainsFunc(res.Notes, func(n string) bool { return strings.Contains(n, sub) })
}

// TestSuggestSplitPayments learns a 1:N rule, the suffix to strip, the sum
// tolerance and the date window from six example pairs, and the recipe
// then matches what the golden scenario says a correct recipe matches on
// the records the examples cover.
func TestSuggestSplitPayments(t *testing.T) {
	res := suggestFor(t, "rules_split_payments", Options{Pairs: [][2]string{
		{"INV-1", "P01"}, {"INV-1", "P04"}, {"INV-2", "P02"}, {"INV-2", "P05"}, {"INV-2", "P07"}, {"INV-5", "P13"}}})
	rec := res.Recipe
	if got := ruleNames(rec); !slices.Equal(got, []string{"exact/1:1", "split/1:N"}) {
		t.Fatalf("rules %v, want exact 1:1 then split 1:N", got)
	}
	link := rec.Rules[1].Conditions[0]
	if link.Op != kalla.CondEq || link.Left != "invoice_id" || link.Right != "reference" || link.StripRight != "-PART[0-9]+$" {
		t.Errorf("link %+v, want invoice_id = reference without -PART[0-9]+$", link)
	}
	if c := condition(rec.Rules[1], kalla.CondTolerance); c == nil || c.Abs != "0" {
		t.Errorf("split tolerance %+v: the examples' sums are exact", c)
	}
	if c := condition(rec.Rules[1], kalla.CondDateWithin); c == nil || *c.Days != 15 || c.Direction != "after" {
		t.Errorf("split dates %+v: examples are paid 1 to 15 days after", c)
	}
	if rec.Sources.Left.PrimaryKey[0] != "invoice_id" || rec.Sources.Right.PrimaryKey[0] != "payment_id" {
		t.Errorf("keys %v %v", rec.Sources.Left.PrimaryKey, rec.Sources.Right.PrimaryKey)
	}
	for _, r := range rec.Rules {
		if len(r.Evidence) < 2 {
			t.Errorf("rule %s has no evidence", r.Name)
		}
	}
	if !hasNote(res, "pattern 1:N") {
		t.Errorf("notes lack the pattern: %v", res.Notes)
	}
	// Exact sums and a 15-day window: INV-1, INV-2 (split) and INV-5, INV-7
	// (exact) match; INV-3 (a part 20 days late) and INV-6 (499 of 500) do
	// not, as the examples never showed such drift.
	if !hasNote(res, "tried on the data: 7 pairs; 4 of 7") {
		t.Errorf("trial: %v", res.Notes)
	}
}

// TestSuggestWithoutPairs finds the link by shared values (with the part
// suffix) and the split from references repeated on the right.
func TestSuggestWithoutPairs(t *testing.T) {
	res := suggestFor(t, "rules_split_payments", Options{})
	rec := res.Recipe
	if got := ruleNames(rec); !slices.Equal(got, []string{"exact/1:1", "split/1:N"}) {
		t.Fatalf("rules %v", got)
	}
	if c := condition(rec.Rules[1], kalla.CondTolerance); c == nil || c.Pct != "0.02" {
		t.Errorf("without examples the tolerance is a stated default of 2 %%: %+v", c)
	}
	if !hasNote(res, "tried on the data: 14 pairs; 6 of 7") {
		t.Errorf("trial: %v", res.Notes)
	}
	if !hasNote(res, "rule tolerance was left out") {
		t.Errorf("a 1:1 tolerance rule matching nothing should be left out: %v", res.Notes)
	}
}

// TestSuggestBatch learns an N:1 rule from three example batches.
func TestSuggestBatch(t *testing.T) {
	data, err := os.ReadFile(filepath.Join(scenarios, "rules_batch_payments", "left.csv"))
	if err != nil {
		t.Fatal(err)
	}
	var pairs [][2]string
	for _, line := range strings.Split(string(data), "\n")[1:] {
		f := strings.Split(line, ",")
		if len(f) > 2 && (f[2] == "B001" || f[2] == "B002" || f[2] == "B022") {
			pairs = append(pairs, [2]string{f[0], "PAY-" + f[2]})
		}
	}
	res := suggestFor(t, "rules_batch_payments", Options{RightKey: "payment_id", Pairs: pairs})
	rec := res.Recipe
	if got := ruleNames(rec); !slices.Equal(got, []string{"batch/N:1"}) {
		t.Fatalf("rules %v, want batch N:1 (the 1:1 rules match nothing here)", got)
	}
	// B022 is paid 0.5 % over: the tolerance is learned from it.
	if c := condition(rec.Rules[0], kalla.CondTolerance); c == nil || c.Pct != "0.005" {
		t.Errorf("tolerance %+v, want 0.5 %%", c)
	}
	// The golden answer: 831 pairs, 27 batches.
	if !hasNote(res, "tried on the data: 831 pairs; 831 of 922") {
		t.Errorf("trial: %v", res.Notes)
	}
}

// TestSuggestTolerance learns a 1:1 tolerance from examples that drift.
func TestSuggestTolerance(t *testing.T) {
	res := suggestFor(t, "rules_tolerance", Options{Pairs: [][2]string{{"INV-01", "PAY-01"}, {"INV-03", "PAY-03"}, {"INV-05", "PAY-05"}}})
	rec := res.Recipe
	if got := ruleNames(rec); !slices.Equal(got, []string{"exact/1:1", "tolerance/1:1"}) {
		t.Fatalf("rules %v", got)
	}
	if c := condition(rec.Rules[1], kalla.CondTolerance); c == nil || c.Pct != "0.02" {
		t.Errorf("tolerance %+v, want 2 %% (the examples drift by exactly 2 %%)", c)
	}
	b, _ := json.Marshal(rec)
	if _, err := kalla.ParseRecipe(b); err != nil {
		t.Errorf("the suggested recipe does not parse: %v", err)
	}
}

func TestHelpers(t *testing.T) {
	if got := shapeRegexp("BATCH-", ""); got != "^BATCH-" {
		t.Errorf("prefix: %q", got)
	}
	if got := shapeRegexp("", "-PART#"); got != "-PART[0-9]+$" {
		t.Errorf("suffix: %q", got)
	}
	if got := shapeRegexp("", ".#"); got != `\.[0-9]+$` {
		t.Errorf("suffix with a dot: %q", got)
	}
	for share, want := range map[float64]string{0: "0.001", 0.005: "0.005", 0.0051: "0.01", 0.02: "0.02", 0.03: "0.05", 0.6: "0.9"} {
		if got := niceUp(share); got != want {
			t.Errorf("niceUp(%v) = %s, want %s", share, got, want)
		}
	}
	for d, want := range map[float64]int{0: 0, 0.5: 1, 4: 5, 15: 15, 16: 30, 400: 400} {
		if got := niceDays(d); got != want {
			t.Errorf("niceDays(%v) = %d, want %d", d, got, want)
		}
	}
	if nameSimilarity("amount", "Amount") != 1 || nameSimilarity("paid_amount", "amount") < 0.9 || nameSimilarity("customer", "payer") < 0.7 || nameSimilarity("customer", "amount") != 0 {
		t.Error("nameSimilarity")
	}
}
