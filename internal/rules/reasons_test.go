package rules

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
)

// TestReasonsSkipBroadKeys (amounts here are DECIMAL(38,10), and differences
// keep that scale) checks that a rule whose key would compare too
// many pairs is not searched, and that the reason says so instead of
// claiming there is no counterpart.
func TestReasonsSkipBroadKeys(t *testing.T) {
	defer func(l int64) { nearLimit = l }(nearLimit)
	left := "id,cust,amount\nA1,K,10.00\nA2,K,20.00\n"
	right := "id,cust,amount\nB1,K,30.00\nB2,K,40.00\n"
	rules := `[{"name": "loose", "conditions": [{"op": "eq", "left": "cust", "right": "cust"}, {"op": "tolerance", "left": "amount", "right": "amount", "abs": 1}]}]`
	for _, c := range []struct {
		limit int64
		want  []string
	}{
		{100, []string{"0 | cust matches B1 but amount differs by 20.0000000000 > 1 | B1", "1 | cust matches B1 but amount differs by 10.0000000000 > 1 | B1"}},
		{3, []string{"0 | no candidate found; rule loose has too many candidates per record to search for the closest | ", "1 | no candidate found; rule loose has too many candidates per record to search for the closest | "}},
	} {
		nearLimit = c.limit
		d := newTestDB(t, left, right, []string{"id"}, []string{"id"}, 0)
		if err := d.compile(rules).Execute(t.Context(), SQLDB{d.conn}); err != nil {
			t.Fatal(err)
		}
		got := d.query("SELECT rid, reason, closest FROM " + ReasonLeft + " ORDER BY rid")
		if !slices.Equal(got, c.want) {
			t.Errorf("limit %d:\n  got  %q\n  want %q", c.limit, got, c.want)
		}
	}
}

// TestReasonsSearchOpenRecords checks the shortcut of onlyOpenShare: when
// the left key is unique and every rule compares it with the right
// reference, the open invoices' search reads only the open payments, and
// every reason and closest candidate is what the search of all payments
// gives (the same plan with the key not known to be unique). Payments
// repeat references, pay other invoices' amounts and go unmatched in every
// way, so the reasons cover no candidate, failed conditions and taken
// candidates. A rule that does not compare the key (by amount alone) must
// turn the shortcut off: its match can take a payment that shares an open
// invoice's key.
func TestReasonsSearchOpenRecords(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 18))
	var left, right strings.Builder
	left.WriteString("id,amount\n")
	right.WriteString("id,ref,amount\n")
	const n = 400
	for i := range n {
		fmt.Fprintf(&left, "I%03d,%d.%02d\n", i, 10+rng.IntN(90), rng.IntN(100))
	}
	for j := range 2 * n {
		ref := fmt.Sprintf("I%03d", rng.IntN(n+40)) // some invoices that do not exist
		if rng.IntN(10) == 0 {
			ref = ""
		}
		fmt.Fprintf(&right, "P%04d,%s,%d.%02d\n", j, ref, 10+rng.IntN(90), rng.IntN(100))
	}
	keyed := `[
	 {"name": "exact", "conditions": [{"op": "eq", "left": "id", "right": "ref"}, {"op": "eq", "left": "amount", "right": "amount"}]},
	 {"name": "near", "conditions": [{"op": "eq", "left": "id", "right": "ref"}, {"op": "tolerance", "left": "amount", "right": "amount", "pct": 0.05}]},
	 {"name": "split", "pattern": "1:N", "conditions": [{"op": "eq", "left": "id", "right": "ref"}, {"op": "tolerance", "left": "amount", "right": "amount", "pct": 0.02}]}]`
	byAmount := `[
	 {"name": "exact", "conditions": [{"op": "eq", "left": "id", "right": "ref"}, {"op": "eq", "left": "amount", "right": "amount"}]},
	 {"name": "amount", "conditions": [{"op": "eq", "left": "amount", "right": "amount"}]}]`
	reasons := func(rules string, unique bool) (got []string, open bool) {
		d := newTestDB(t, left.String(), right.String(), []string{"id"}, []string{"id"}, 2)
		d.left.UniqueKey = unique
		rec := &recordingDB{conn: d.conn}
		if err := d.compile(rules).Execute(t.Context(), rec); err != nil {
			t.Fatal(err)
		}
		for _, q := range rec.stmt {
			open = open || strings.Contains(q, "FROM __kalla_ul l JOIN __kalla_ur r ON")
		}
		for _, tb := range []string{ReasonLeft, ReasonRight} {
			got = append(got, d.query("SELECT rid, reason, closest, kind FROM "+tb+" ORDER BY rid")...)
		}
		return got, open
	}
	short, open := reasons(keyed, true)
	full, fullOpen := reasons(keyed, false)
	if !open || fullOpen {
		t.Fatalf("open invoices searched open payments only: %v with a unique key (want true), %v without (want false)", open, fullOpen)
	}
	if !slices.Equal(short, full) {
		t.Errorf("reasons differ from the search of all payments:\n  got  %q\n  want %q", short, full)
	}
	kinds := map[string]int{}
	for _, r := range short {
		kinds[r[strings.LastIndex(r, " | ")+3:]]++
	}
	for _, k := range []string{KindNoCandidate, KindFailed, KindTaken} {
		if kinds[k] == 0 {
			t.Errorf("no reason of kind %s among %d (%v): the data does not test the shortcut", k, len(short), kinds)
		}
	}
	short, open = reasons(byAmount, true)
	full, _ = reasons(byAmount, false)
	if open {
		t.Error("a rule matching by amount alone kept the search on open payments only")
	}
	if !slices.Equal(short, full) {
		t.Errorf("with a rule by amount, reasons differ from the search of all payments:\n  got  %q\n  want %q", short, full)
	}
}
