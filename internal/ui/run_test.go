package ui

import (
	"encoding/json"
	"testing"

	"github.com/kalla-recon/kalla/internal/kalla"
)

// TestDescribeCondition: the run page says each kind of rule condition in
// words.
func TestDescribeCondition(t *testing.T) {
	days := 5
	th := 0.9
	for _, c := range []struct {
		cond string
		want string
	}{
		{`{"op": "eq", "left": "invoice_id", "right": "reference", "strip_right": "-PART[0-9]+$"}`, "left invoice_id equals right reference (right without -PART[0-9]+$)"},
		{`{"op": "tolerance", "left": "amount", "right": "paid", "pct": 0.02}`, "left amount equals right paid within 2% of left"},
		{`{"op": "tolerance", "left": "amount", "right": "paid", "abs": 0.01, "pct": 0.02, "pct_of": "larger"}`, "left amount equals right paid within ±0.01 or 2% of the larger"},
		{`{"op": "eq", "left": "d", "right": "e", "truncate": "month", "normalize": ["trim", "casefold"]}`, "left d equals right e (same month) (ignoring trim, casefold)"},
		{`{"op": "contains", "left": "ref", "right": "memo"}`, "right memo contains left ref"},
		{`{"op": "gte", "left": "a", "right": "b"}`, "left a is at least right b"},
	} {
		var cond kalla.Condition
		if err := json.Unmarshal([]byte(c.cond), &cond); err != nil {
			t.Fatal(err)
		}
		if got := describeCondition(cond); got != c.want {
			t.Errorf("%s: %q, want %q", c.cond, got, c.want)
		}
	}
	if got := describeCondition(kalla.Condition{Op: "date_within", Left: "issued", Right: "paid", Days: &days, Direction: "after"}); got != "right paid falls 0 to 5 days after left issued" {
		t.Errorf("date_within: %q", got)
	}
	if got := describeCondition(kalla.Condition{Op: "fuzzy", Left: "name", Right: "payer", Threshold: &th}); got != "left name is similar to right payer (similarity at least 0.9)" {
		t.Errorf("fuzzy: %q", got)
	}
}

// TestTolerance: the tolerance a manual match is held to is shown as the
// recipe wrote it, not padded with zeros.
func TestTolerance(t *testing.T) {
	for abs, want := range map[string]string{"0.01": "0.01", "5": "5", "0.125": "0.125", "": "0"} {
		rec := &kalla.RunRecord{Recipe: kalla.Recipe{Rules: []kalla.Rule{{Conditions: []kalla.Condition{{Op: kalla.CondTolerance, Left: "a", Right: "a", Abs: json.Number(abs)}}}}}}
		if got := tolerance(rec); got != want {
			t.Errorf("tolerance %q shown as %q, want %q", abs, got, want)
		}
	}
}
