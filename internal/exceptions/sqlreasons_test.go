package exceptions_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kalla-recon/kalla/internal/cli"
	"github.com/kalla-recon/kalla/internal/exceptions"
	"github.com/kalla-recon/kalla/internal/exceptions/exctest"
	"github.com/kalla-recon/kalla/internal/kalla"
	"github.com/kalla-recon/kalla/internal/store"
	"github.com/kalla-recon/kalla/internal/testenv"
)

// seedDir is the original seed data: 15 invoices, 15 payments.
const seedDir = "../engine/testdata/scenarios/rules_seed_three_pass"

// seedSQL is the README's SQL recipe: same reference, amounts within 0.02.
const seedSQL = `SELECT l.invoice_id, r.payment_id, l.amount, r.paid_amount FROM left_src l JOIN right_src r ON l.invoice_id = r.reference_number AND tolerance_match(l.amount, r.paid_amount, 0.02)`

// runSeed runs a SQL recipe over the seed data with `kalla run` (extra
// flags choose the engine) and makes the run's exception items.
func runSeed(t *testing.T, matchSQL string, extra ...string) map[string]*kalla.ExceptionItem {
	t.Helper()
	var files [2]string
	for i, f := range []string{"left.csv", "right.csv"} {
		b, err := os.ReadFile(filepath.Join(seedDir, f))
		if err != nil {
			t.Fatal(err)
		}
		files[i] = string(b)
	}
	return runSQL(t, files, [2]string{"invoice_id", "payment_id"}, matchSQL, extra...)
}

// runSQL runs a SQL recipe over two CSV texts keyed by keys with `kalla
// run` and makes the run's exception items, by key.
func runSQL(t *testing.T, files, keys [2]string, matchSQL string, extra ...string) map[string]*kalla.ExceptionItem {
	t.Helper()
	dir := t.TempDir()
	for i, f := range []string{"left.csv", "right.csv"} {
		if err := os.WriteFile(filepath.Join(dir, f), []byte(files[i]), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	recipe := kalla.Recipe{RecipeID: "seed-sql", MatchSQL: matchSQL, Sources: kalla.Sources{
		Left:  kalla.SourceSpec{Alias: "invoices", URI: filepath.Join(dir, "left.csv"), PrimaryKey: []string{keys[0]}},
		Right: kalla.SourceSpec{Alias: "payments", URI: filepath.Join(dir, "right.csv"), PrimaryKey: []string{keys[1]}}}}
	data, err := json.Marshal(recipe)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "recipe.json"), data, 0o644); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "out")
	var stdout, stderr bytes.Buffer
	args := append([]string{"run", "--recipe", filepath.Join(dir, "recipe.json"), "--out", out, "--json"}, extra...)
	if code := cli.Main(t.Context(), args, strings.NewReader(""), &stdout, &stderr); code != 0 {
		t.Fatalf("kalla %s: exit %d: %s", strings.Join(args, " "), code, stderr.String())
	}
	var sum kalla.Summary
	b, err := os.ReadFile(filepath.Join(out, "summary.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &sum); err != nil {
		t.Fatal(err)
	}
	items, err := exceptions.Items(t.Context(), &kalla.RunRecord{ID: "seed", RecipeID: "seed-sql", Recipe: recipe, Summary: &sum}, out)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]*kalla.ExceptionItem{}
	for _, it := range items {
		got[it.Key] = it
	}
	return got
}

// checkSeedReasons checks the reasons and closest candidates of the seed
// run under seedSQL, worked out by hand. Matched (same reference, amounts
// within 0.02): INV-1001/PAY-501, 1002/502, 1003/503, 1005/505, 1008/508,
// 1009/509. Open: INV-1004 (310.25; PAY-504 has its reference and pays
// 310.00: 310.25 - 310.00 = 0.25 > 0.02), INV-1006 (15000.00; PAY-506 and
// PAY-507 pay 7500.00 each: 7500.00 apart), INV-1010 (1875.00 vs PAY-510's
// 1850.00: 25.00), INV-1007 (no payment carries INV-1007, none pays 75.00),
// INV-1011 (no reference; PAY-514 pays 432.10 without one), INV-1012
// (PAY-515 pays 560.00 with reference DEP-2024-02), and PAY-511 (no
// reference, 250.00: no invoice of that amount), PAY-512 (REF-UNKNOWN).
func checkSeedReasons(t *testing.T, got map[string]*kalla.ExceptionItem) {
	t.Helper()
	if len(got) != 18 {
		t.Errorf("%d open items, want 9 invoices and 9 payments", len(got))
	}
	want := []struct{ key, reason, closest string }{
		{"INV-1004", "payments PAY-504 shares invoice_id = reference_number 'INV-1004' but amount 310.25 vs paid_amount 310.00 differ by 0.25 > 0.02", "PAY-504"},
		{"INV-1006", "payments PAY-506, PAY-507 share invoice_id = reference_number 'INV-1006' but amount 15000.00 vs paid_amount 7500.00 differ by 7500.00 > 0.02", "PAY-506, PAY-507"},
		{"INV-1010", "payments PAY-510 shares invoice_id = reference_number 'INV-1010' but amount 1875.00 vs paid_amount 1850.00 differ by 25.00 > 0.02", "PAY-510"},
		{"INV-1007", "no candidate shares a key: no payments record shares invoice_id = reference_number 'INV-1007'", ""},
		{"INV-1011", "no candidate shares a key: no payments record shares invoice_id = reference_number 'INV-1011' | closest by amount: payments PAY-514 has the same paid_amount 432.10 but reference_number is empty", "PAY-514"},
		{"INV-1012", "no candidate shares a key: no payments record shares invoice_id = reference_number 'INV-1012' | closest by amount: payments PAY-515 has the same paid_amount 560.00 but invoice_id 'INV-1012' vs reference_number 'DEP-2024-02' differ", "PAY-515"},
		{"PAY-504", "invoices INV-1004 shares invoice_id = reference_number 'INV-1004' but amount 310.25 vs paid_amount 310.00 differ by 0.25 > 0.02", "INV-1004"},
		{"PAY-511", "reference_number is empty", ""},
		{"PAY-512", "no candidate shares a key: no invoices record shares invoice_id = reference_number 'REF-UNKNOWN'", ""},
		{"PAY-514", "reference_number is empty | closest by amount: invoices INV-1011 has the same amount 432.10 but reference_number is empty", "INV-1011"},
	}
	for _, w := range want {
		it := got[w.key]
		if it == nil {
			t.Errorf("%s: no item", w.key)
			continue
		}
		if it.Reason != w.reason || it.Closest != w.closest {
			t.Errorf("%s:\n reason  %q\n want    %q\n closest %q, want %q", w.key, it.Reason, w.reason, it.Closest, w.closest)
		}
	}
}

// TestSQLReasonsSeedDuckDB: a SQL recipe's open items on the seed data
// say why they did not match and name their closest candidates, on a
// DuckDB run.
func TestSQLReasonsSeedDuckDB(t *testing.T) {
	checkSeedReasons(t, runSeed(t, seedSQL))
}

// TestSQLReasonsSeedSpark: the same on a Spark run (its outputs are folders
// of part files; the reasons are the same, word for word).
func TestSQLReasonsSeedSpark(t *testing.T) {
	rem := testenv.SparkRemote(t)
	checkSeedReasons(t, runSeed(t, seedSQL, "--engine", "spark", "--spark-remote", rem))
}

// TestSQLReasonsCannotTell: where Kalla cannot read the keys the SQL
// compares, or cannot see the matched records' keys, the reason says so
// and names no candidate; it never says "no candidate shares a key".
func TestSQLReasonsCannotTell(t *testing.T) {
	// An OR between the two keys: no equality Kalla can search by.
	got := runSeed(t, `SELECT l.invoice_id, r.payment_id FROM left_src l JOIN right_src r
		ON (l.invoice_id = r.reference_number OR l.customer_id = r.payer_id) AND tolerance_match(l.amount, r.paid_amount, 0.02)`)
	// Matched as well by customer: INV-1011/PAY-514 (C-05, 432.10) and
	// INV-1012/PAY-515 (C-06, 560.00); 7 invoices and 7 payments open.
	if len(got) != 14 {
		t.Errorf("%d open items, want 14", len(got))
	}
	want := "Kalla cannot tell: it reads no equality between a column of invoices and one of payments in the match SQL to find candidates by" +
		" (conditions it cannot read: ((l.invoice_id = r.reference_number) OR (l.customer_id = r.payer_id)))"
	if it := got["INV-1007"]; it == nil || it.Reason != want || it.Closest != "" {
		t.Errorf("INV-1007: %+v\nwant reason %q", it, want)
	}
	for k, it := range got {
		if strings.Contains(it.Reason, "no candidate shares a key") {
			t.Errorf("%s: %q", k, it.Reason)
		}
	}

	// A key that is no primary key: the matched records' values of it
	// are not in the outputs. I1/P1 match (customer A, 10.00); I2
	// (customer B) and P2 (customer C) have no open counterpart, and
	// Kalla cannot see the matched ones' customers.
	got = runSQL(t, [2]string{"id,cust,amt\nI1,A,10.00\nI2,B,20.00\n", "pid,cust,amt\nP1,A,10.00\nP2,C,5.00\n"}, [2]string{"id", "pid"},
		`SELECT l.id, r.pid FROM left_src l JOIN right_src r ON l.cust = r.cust AND tolerance_match(l.amt, r.amt, 0)`)
	for key, want := range map[string]string{
		"I2": "no unmatched payments record shares cust = cust 'B'; Kalla cannot tell for the 1 matched payments records: the run's outputs do not carry their cust",
		"P2": "no unmatched invoices record shares cust = cust 'C'; Kalla cannot tell for the 1 matched invoices records: the run's outputs do not carry their cust",
	} {
		if it := got[key]; it == nil || it.Reason != want || it.Closest != "" {
			t.Errorf("%s: %+v\nwant reason %q", key, it, want)
		}
	}
}

// TestSQLReasonsMatchedRecords: a run that kept its matched records whole
// (`kalla run --records`, as every run from the server does) lets the
// reasons look up any compared value among the matched records, not only
// keys: I1/P1 match (customer A, 10.00); I3 (customer A, 30.00) shares
// its customer with P1, matched to I1; I2 (customer B) and P2 (customer C)
// share theirs with no record at all, matched or not, which Kalla can
// now say of every record.
func TestSQLReasonsMatchedRecords(t *testing.T) {
	files := [2]string{"id,cust,amt\nI1,A,10.00\nI2,B,20.00\nI3,A,30.00\n", "pid,cust,amt\nP1,A,10.00\nP2,C,5.00\n"}
	matchSQL := `SELECT l.id, r.pid FROM left_src l JOIN right_src r ON l.cust = r.cust AND tolerance_match(l.amt, r.amt, 0)`
	for _, extra := range [][]string{{"--records"}, {"--records", "--format", "csv"}} {
		t.Run(strings.Join(extra, " "), func(t *testing.T) {
			got := runSQL(t, files, [2]string{"id", "pid"}, matchSQL, extra...)
			for key, want := range map[string][2]string{
				"I2": {"no candidate shares a key: no payments record shares cust = cust 'B'", ""},
				"I3": {"payments P1 shares cust = cust 'A' but was matched to invoices I1 by the match SQL", "P1"},
				"P2": {"no candidate shares a key: no invoices record shares cust = cust 'C'", ""},
			} {
				if it := got[key]; it == nil || it.Reason != want[0] || it.Closest != want[1] {
					t.Errorf("%s: %+v\nwant reason %q, closest %q", key, it, want[0], want[1])
				}
			}
		})
	}
}

// TestSQLReasonsManyCandidates: seven payments as close name the first
// five by key and count the others.
func TestSQLReasonsManyCandidates(t *testing.T) {
	right := "pid,ref,amt\n"
	for i := 1; i <= 7; i++ {
		right += fmt.Sprintf("P%d,R,50.00\n", i)
	}
	got := runSQL(t, [2]string{"id,ref,amt\nI1,R,100.00\n", right}, [2]string{"id", "pid"},
		`SELECT l.id, r.pid FROM left_src l JOIN right_src r ON l.ref = r.ref AND tolerance_match(l.amt, r.amt, 0.01)`)
	want := "payments P1, P2, P3, P4, P5 (and 2 more as close) share ref = ref 'R' but amt 100.00 vs amt 50.00 differ by 50.00 > 0.01"
	if it := got["I1"]; it == nil || it.Reason != want || it.Closest != "P1, P2, P3, P4, P5" {
		t.Errorf("I1: %+v\nwant reason %q", it, want)
	}
}

// TestSQLReasonsStored: a SQL recipe's run recorded by the runner's hook
// keeps its reasons and candidates in the store (both kinds), and the
// export carries them with the amounts.
func TestSQLReasonsStored(t *testing.T) {
	files := map[string]string{}
	for _, f := range []string{"left.csv", "right.csv"} {
		b, err := os.ReadFile(filepath.Join(seedDir, f))
		if err != nil {
			t.Fatal(err)
		}
		files[f] = string(b)
	}
	recipe := func(dir string) kalla.Recipe {
		return kalla.Recipe{RecipeID: "seed-sql", MatchSQL: seedSQL, Sources: kalla.Sources{
			Left:  kalla.SourceSpec{Alias: "invoices", URI: filepath.Join(dir, "left.csv"), PrimaryKey: []string{"invoice_id"}},
			Right: kalla.SourceSpec{Alias: "payments", URI: filepath.Join(dir, "right.csv"), PrimaryKey: []string{"payment_id"}}}}
	}
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			st, err := store.Open(t.Context(), b.newURL(t))
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { st.Close() })
			svc, err := exceptions.New(st, exceptions.Config{})
			if err != nil {
				t.Fatal(err)
			}
			runID := exctest.RunOf(t, st, svc, "run-sql-1", files, recipe)
			page, err := svc.List(t.Context(), exceptions.Filter{RunID: runID, Reason: "PAY-504"}, 0, 0)
			if err != nil {
				t.Fatal(err)
			}
			// INV-1004's item: its candidate PAY-504; PAY-504's names it.
			if page.Total != 1 || page.Items[0].Key != "INV-1004" || page.Items[0].Closest != "PAY-504" || page.Items[0].Amount != "310.25" {
				t.Fatalf("items naming PAY-504: %+v", page.Items)
			}
			var buf bytes.Buffer
			if err := svc.Export(t.Context(), exceptions.Filter{RunID: runID, Side: "left"}, "csv", &buf); err != nil {
				t.Fatal(err)
			}
			// The open invoices' totals by hand: EUR INV-1007 75.00 +
			// 1011 432.10 + 1013 3125.75 + 1015 7020.00; GBP 1010 1875.00
			// + 1014 88.80; USD 1004 310.25 + 1006 15000.00 + 1012 560.00.
			for _, want := range []string{
				`INV-1004,,310.25,,,USD,2024-01-05,,payments PAY-504 shares invoice_id = reference_number 'INV-1004' but amount 310.25 vs paid_amount 310.00 differ by 0.25 > 0.02,PAY-504,open`,
				",,,total,left,4 items,,10652.85,,,EUR,", ",,,total,left,2 items,,1963.80,,,GBP,", ",,,total,left,3 items,,15870.25,,,USD,",
			} {
				if !strings.Contains(buf.String(), want) {
					t.Errorf("export lacks %q:\n%s", want, buf.String())
				}
			}
		})
	}
}
