package cli_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestRecipeSuggest runs `kalla recipe suggest` the way a user does and
// runs the recipe it prints, unchanged, with `kalla run`.
func TestRecipeSuggest(t *testing.T) {
	dir := filepath.Join("..", "engine", "testdata", "scenarios", "rules_split_payments")
	tmp := t.TempDir()
	pairs := filepath.Join(tmp, "pairs.csv")
	if err := os.WriteFile(pairs, []byte("left_key,right_key\nINV-1,P01\nINV-1,P04\nINV-2,P02\nINV-2,P05\nINV-2,P07\nINV-5,P13\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	code, out, errs := runKalla(t, "recipe", "suggest", "--left", filepath.Join(dir, "left.csv"), "--right", filepath.Join(dir, "right.csv"), "--pairs", pairs)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errs)
	}
	if !strings.Contains(errs, "# left key: invoice_id") || !strings.Contains(errs, "pattern 1:N") {
		t.Errorf("findings on stderr:\n%s", errs)
	}
	recipe := filepath.Join(tmp, "recipe.json")
	if err := os.WriteFile(recipe, []byte(out), 0o644); err != nil {
		t.Fatal(err)
	}
	code, out, errs = runKalla(t, "run", "--recipe", recipe, "--out", filepath.Join(tmp, "out"), "--json")
	if code != 0 {
		t.Fatalf("the suggested recipe does not run: exit %d: %s", code, errs)
	}
	var sum struct {
		Matched int `json:"matched_count"`
	}
	if err := json.Unmarshal([]byte(out), &sum); err != nil || sum.Matched != 7 {
		t.Errorf("suggested recipe matched %d pairs (err %v), want 7", sum.Matched, err)
	}

	for _, c := range []struct {
		args []string
		msg  string
	}{
		{[]string{"recipe", "suggest", "--left", "x.csv"}, "--left and --right are required"},
		{[]string{"recipe", "suggest", "--left", filepath.Join(dir, "left.csv"), "--right", filepath.Join(dir, "right.csv"), "--pairs", filepath.Join(tmp, "nope.csv")}, "does not exist"},
		{[]string{"recipe", "suggest", "--left", filepath.Join(dir, "left.csv"), "--right", filepath.Join(dir, "right.csv"), "--left-key", "nope"}, `has no column "nope"`},
	} {
		if code, _, errs := runKalla(t, c.args...); code != 2 || !strings.Contains(errs, c.msg) {
			t.Errorf("%v: exit %d: %s", c.args, code, errs)
		}
	}
}

// TestRecipeSuggestSeed: on the seed files without example pairs, `kalla
// recipe suggest` links invoice_id ~ reference_number (the payments refer
// to the invoices' key), not customer_id ~ payer_id (a customer pays many
// invoices), and calls the customer and the currency categories.
func TestRecipeSuggestSeed(t *testing.T) {
	dir := filepath.Join("..", "suggest", "testdata", "seed")
	code, out, errs := runKalla(t, "recipe", "suggest", "--left", filepath.Join(dir, "invoices.csv"), "--right", filepath.Join(dir, "payments.csv"))
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errs)
	}
	var rec struct {
		Rules []struct {
			Name       string `json:"name"`
			Conditions []struct {
				Op, Left, Right string
			} `json:"conditions"`
		} `json:"rules"`
	}
	if err := json.Unmarshal([]byte(out), &rec); err != nil || len(rec.Rules) == 0 {
		t.Fatalf("recipe %s: %v", out, err)
	}
	for _, r := range rec.Rules {
		if c := r.Conditions[0]; c.Left != "invoice_id" || c.Right != "reference_number" {
			t.Errorf("rule %s links %s ~ %s, want invoice_id ~ reference_number", r.Name, c.Left, c.Right)
		}
	}
	if !strings.Contains(errs, "the key of invoices: a reference to its records") {
		t.Errorf("stderr should say reference_number refers to the invoices' key:\n%s", errs)
	}
	if !strings.Contains(errs, "# pairing customer_id ~ payer_id (text): ") || !strings.Contains(errs, "a category, never a link on its own") {
		t.Errorf("stderr should call customer_id ~ payer_id a category:\n%s", errs)
	}
}
