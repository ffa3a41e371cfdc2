package suggest

import (
	"encoding/json"
	"fmt"
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

// seedFor runs Suggest on the seed files (15 invoices, 15 payments; a
// customer pays several invoices, one invoice is paid in two parts).
func seedFor(t *testing.T, opt Options) *Result {
	t.Helper()
	ctx := t.Context()
	eng, err := engine.Open(ctx, engine.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { eng.Close() })
	var srcs [2]*file.Source
	names := []string{"invoices.csv", "payments.csv"}
	for i, name := range names {
		src, err := file.Open(ctx, filepath.Join("testdata", "seed", name), file.Options{Type: kalla.SourceCSV})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { src.Close() })
		srcs[i] = src
	}
	opt.Left = kalla.SourceSpec{Alias: "invoices", URI: filepath.Join("testdata", "seed", names[0])}
	opt.Right = kalla.SourceSpec{Alias: "payments", URI: filepath.Join("testdata", "seed", names[1])}
	res, err := FromSources(ctx, eng, srcs[0], srcs[1], opt)
	if err != nil {
		t.Fatal(err)
	}
	return res
}

// TestSuggestSeedLinksOnTheKey: without example pairs the payments'
// reference_number, whose values are the invoices' key, is the link; the
// customer (5 values in 15 rows) and the currency (3) are categories and
// never a link on their own.
func TestSuggestSeedLinksOnTheKey(t *testing.T) {
	res := seedFor(t, Options{})
	rec := res.Recipe
	if len(rec.Rules) == 0 {
		t.Fatal("no rules")
	}
	for _, rule := range rec.Rules {
		link := rule.Conditions[0]
		if link.Op != kalla.CondEq || link.Left != "invoice_id" || link.Right != "reference_number" {
			t.Errorf("rule %s links %s ~ %s, want invoice_id ~ reference_number", rule.Name, link.Left, link.Right)
		}
		for _, c := range rule.Conditions {
			if c.Left == "customer_id" || c.Left == "currency" {
				t.Errorf("rule %s compares the category %s: %+v", rule.Name, c.Left, c)
			}
		}
	}
	var sawKey, sawCat bool
	for _, p := range res.Pairings {
		switch {
		case p.Left == "invoice_id" && p.Right == "reference_number":
			sawKey = p.Key && p.Used && !p.Category
		case p.Left == "currency" && p.Right == "currency", p.Left == "customer_id" && p.Right == "payer_id":
			if !p.Category || p.Used || !strings.Contains(p.Evidence, "a category, never a link on its own") {
				t.Errorf("pairing %s ~ %s should be a category, unused: %+v", p.Left, p.Right, p)
			}
			sawCat = true
		}
	}
	if !sawKey || !sawCat {
		t.Errorf("pairings: %+v", res.Pairings)
	}
	// The description, saved with the recipe, says so too.
	for _, want := range []string{"currency ~ currency (a category, never a link on its own)", "customer_id ~ payer_id (a category, never a link on its own)"} {
		if !strings.Contains(rec.Description, want) {
			t.Errorf("description %q lacks %q", rec.Description, want)
		}
	}
	// The seed holds one invoice paid in two parts: a split, 1:N.
	if got := ruleNames(rec); !slices.Contains(got, "split/1:N") {
		t.Errorf("rules %v, want a split 1:N rule", got)
	}
}

// TestSuggestSuspectLink: when the only link pairs records many to many
// (each customer has two invoices and two payments) while each side's key
// is unique, the suggestion says the link is suspect.
func TestSuggestSuspectLink(t *testing.T) {
	dir := t.TempDir()
	var inv, pay strings.Builder
	inv.WriteString("invoice_id,customer_id,amount\n")
	pay.WriteString("payment_id,payer_id,paid_amount\n")
	for i := range 10 {
		fmt.Fprintf(&inv, "INV-%02d,C-%02d,%d.00\n", i, i/2, 100+i)
		fmt.Fprintf(&pay, "PAY-%02d,C-%02d,%d.00\n", i, i/2, 100+i)
	}
	for name, body := range map[string]string{"invoices.csv": inv.String(), "payments.csv": pay.String()} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	ctx := t.Context()
	eng, err := engine.Open(ctx, engine.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { eng.Close() })
	var srcs [2]*file.Source
	for i, name := range []string{"invoices.csv", "payments.csv"} {
		src, err := file.Open(ctx, filepath.Join(dir, name), file.Options{Type: kalla.SourceCSV})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { src.Close() })
		srcs[i] = src
	}
	res, err := FromSources(ctx, eng, srcs[0], srcs[1], Options{
		Left:  kalla.SourceSpec{Alias: "invoices", URI: filepath.Join(dir, "invoices.csv")},
		Right: kalla.SourceSpec{Alias: "payments", URI: filepath.Join(dir, "payments.csv")}})
	if err != nil {
		t.Fatal(err)
	}
	if !hasNote(res, "link customer_id ~ payer_id is suspect: it pairs one record with many on both sides") {
		t.Errorf("notes should call the N:M link suspect: %v", res.Notes)
	}
}
