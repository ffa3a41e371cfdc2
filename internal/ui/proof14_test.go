package ui_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// proofInvoices and proofPayments are a small pair made for the proof
// flow. The payments are written as a European export: ";"-separated,
// decimal commas, a thousands point, day-first dates.
const proofInvoices = `invoice_id,customer,amount,invoice_date
INV-01,Acme,100.00,2024-01-02
INV-02,Acme,250.50,2024-01-03
INV-03,Globex,1000.00,2024-01-04
INV-04,Globex,500.00,2024-01-05
INV-05,Initech,1200.00,2024-01-06
INV-06,Initech,300.00,2024-01-07
INV-07,Hooli,800.00,2024-01-08
INV-08,Hooli,50.00,2024-01-09
`

const proofPayments = `payment_id;reference;paid_amount;paid_on
PAY-01;INV-01;100,00;10.01.2024
PAY-02;INV-02;250,50;11.01.2024
PAY-03;INV-03;985,00;12.01.2024
PAY-04;INV-04;509,00;13.01.2024
PAY-05;INV-05;700,00;14.01.2024
PAY-06;INV-05;500,00;20.01.2024
PAY-07;INV-07;776,00;15.01.2024
PAY-08;;42,00;16.01.2024
PAY-09;INV-99;1.234,56;17.01.2024
`

// The answer, worked out by hand from the two files:
//   - exact (reference = invoice, amounts equal): INV-01/PAY-01, INV-02/PAY-02;
//   - within 2 % (of the invoice): INV-03/PAY-03 (15.00 of 1000.00, 1.5 %),
//     INV-04/PAY-04 (9.00 of 500.00, 1.8 %);
//   - split (one invoice, payments summing to it): INV-05 with PAY-05
//     700.00 + PAY-06 500.00 = 1200.00, two pairs;
//   - unmatched invoices: INV-06 and INV-08 (no payment refers to them),
//     INV-07 (PAY-07 pays 776.00 of 800.00: 3 %, beyond 2 %);
//   - unmatched payments: PAY-07 (3 % short of INV-07), PAY-08 (refers to
//     nothing), PAY-09 (refers to INV-99, which does not exist).
var (
	proofPairs = map[string]string{ // payment → invoice, by the pass that paired them
		"PAY-01": "INV-01 exact", "PAY-02": "INV-02 exact", "PAY-03": "INV-03 within 2 %", "PAY-04": "INV-04 within 2 %",
		"PAY-05": "INV-05 split", "PAY-06": "INV-05 split",
	}
	proofUnmatchedInvoices = []string{"INV-06", "INV-07", "INV-08"}
	proofUnmatchedPayments = []string{"PAY-07", "PAY-08", "PAY-09"}
	// The reasons, by the facts they must state: nothing refers to
	// INV-06 and INV-08; INV-07 and PAY-07 differ by 24.00 (800.00 less
	// 776.00, more than 2 % of 800.00 = 16.00) and name each other;
	// PAY-08's reference is empty; INV-99, PAY-09's, is no invoice.
	proofInvoiceReasons = map[string][]string{
		"INV-06": {"no payments record matches"},
		"INV-07": {"PAY-07", "24.00"},
		"INV-08": {"no payments record matches"},
	}
	proofPaymentReasons = map[string][]string{
		"PAY-07": {"INV-07", "24.00"},
		"PAY-08": {"reference is empty"},
		"PAY-09": {"no invoices record matches"},
	}
)

// rows reads the results table's body as the page shows it: each row's
// cells, as text.
func (b *tab) rows() [][]string {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 30*time.Second)
	defer cancel()
	got, err := chromedp.Run(ctx, chromedp.Evaluate[[][]string](`[...document.querySelectorAll("#table tbody tr")].map((tr) => [...tr.cells].map((td) => td.textContent.trim()))`))
	if err != nil {
		b.fail("read the results table", err)
	}
	return got
}

// cond is one condition as the proof flow sets it with the rule form.
type cond struct {
	left, op, right string
	unit, tol       string // tolerance: "pct" or "abs", and the amount typed
}

// buildPass adds a pass with the rule form's controls only: its name, its
// pattern, and its conditions.
func (b *tab) buildPass(i int, name, pattern string, conds []cond) {
	b.t.Helper()
	p := fmt.Sprintf("#rule-%d", i)
	b.click("#add-pass")
	b.typeInto(p+"-name", name)
	b.choose(p+"-pattern", pattern)
	for b.count(fmt.Sprintf(`fieldset[data-rule="%d"] li.cond`, i)) > 0 {
		b.click(p + "-c-0-remove")
	}
	for j, c := range conds {
		q := fmt.Sprintf("%s-c-%d", p, j)
		b.click(p + "-add")
		b.choose(q+"-op", c.op)
		b.choose(q+"-left", c.left)
		b.choose(q+"-right", c.right)
		if c.op == "tolerance" {
			b.choose(q+"-unit", c.unit)
			b.typeInto(q+"-tol", c.tol)
		}
	}
}

// TestProofFlow is the whole of issue 14's first half, with form controls
// only: upload an invoices file and a ";"-separated payments file with
// decimal commas (the settings detected and shown, the file previewed),
// build exact / within 2 % / split-payment rules without typing SQL or
// JSON, preview, save, run, and read every pair and every unmatched
// record with its reason on the run page, against the answer worked out
// by hand.
func TestProofFlow(t *testing.T) {
	chromium(t)
	dir := t.TempDir()
	files := map[string]string{"invoices.csv": proofInvoices, "payments.csv": proofPayments}
	for name, body := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for _, w := range widths {
		t.Run(fmt.Sprint(w), func(t *testing.T) {
			s := startServer(t, nil)
			b := tabAt(t, s.url, w)

			// Upload both files: the settings are detected and shown, the
			// rows previewed as they will be read, before anything is kept.
			b.open("/sources")
			b.typeInto("#up-alias", "invoices")
			b.chooseUpload(filepath.Join(dir, "invoices.csv"))
			b.waitText("#up-detected", "columns separated by comma", 30*time.Second)
			b.click("#upload-form button[type=submit]")
			b.waitText(".flash", "Registered source “invoices”", 30*time.Second)

			b.typeInto("#up-alias", "payments")
			b.chooseUpload(filepath.Join(dir, "payments.csv"))
			det := b.waitText("#up-detected", "semicolon", 30*time.Second)
			for _, want := range []string{"decimal comma", "dates written %d.%m.%Y", "Decimal commas read in paid_amount", "Dates read in paid_on"} {
				if !strings.Contains(det, want) {
					t.Errorf("detected %q lacks %q", det, want)
				}
			}
			if v := b.value("#up-delimiter"); v != ";" {
				t.Errorf("delimiter field shows %q", v)
			}
			b.waitText("#up-preview", "1234.56", 5*time.Second)
			b.waitText("#up-preview", "2024-01-17", 5*time.Second)
			entries, _ := os.ReadDir(filepath.Join(s.dataDir, "uploads"))
			if len(entries) != 1 {
				t.Errorf("%d uploads kept after a check, want 1 (the invoices)", len(entries))
			}
			b.fits(w)
			b.click("#upload-form button[type=submit]")
			b.waitText(".flash", "Registered source “payments”", 30*time.Second)
			b.waitText(`[data-health="payments"]`, "9 rows", 30*time.Second)

			// A file its settings cannot read: refused with the line, column
			// and value, focus on the setting at fault, nothing kept.
			bad := filepath.Join(dir, "bad.csv")
			if err := os.WriteFile(bad, []byte("id;amount\nA;1,50\nB;12.5\n"), 0o644); err != nil {
				t.Fatal(err)
			}
			kept, _ := os.ReadDir(filepath.Join(s.dataDir, "uploads"))
			b.typeInto("#up-alias", "bad")
			b.chooseUpload(bad)
			b.waitText("#up-detected", "semicolon", 30*time.Second)
			b.choose("#up-decimal", ",")
			b.waitText("#upload-form .alert", `line 3, column amount: "12.5" is not a number written with a decimal comma`, 30*time.Second)
			if id := b.focused(); id != "up-decimal" {
				t.Errorf("focus on %q after the refusal, want the decimal separator", id)
			}
			b.click("#upload-form button[type=submit]")
			b.waitText("#upload-form .alert", `"12.5" is not a number written with a decimal comma`, 30*time.Second)
			b.waitFor("focus on the decimal separator", `document.activeElement && document.activeElement.id === "up-decimal"`, 5*time.Second)
			if now, _ := os.ReadDir(filepath.Join(s.dataDir, "uploads")); len(now) != len(kept) {
				t.Errorf("%d uploads kept after a refusal, want %d", len(now), len(kept))
			}
			b.fits(w)

			// The rules, with form controls only.
			b.open("/recipes/new")
			b.typeInto("#r-id", "proof")
			b.choose("#left-source", "src:invoices")
			b.choose("#right-source", "src:payments")
			b.waitText("#pairs", "reference", 30*time.Second)
			b.click("#mode-rules")
			link := cond{left: "invoice_id", op: "eq", right: "reference"}
			b.buildPass(0, "exact", "1:1", []cond{link, {left: "amount", op: "tolerance", right: "paid_amount", unit: "abs", tol: "0"}})
			b.buildPass(1, "within 2 %", "1:1", []cond{link, {left: "amount", op: "tolerance", right: "paid_amount", unit: "pct", tol: "2"}})
			b.buildPass(2, "split", "1:N", []cond{link, {left: "amount", op: "tolerance", right: "paid_amount", unit: "abs", tol: "0"}})
			b.fits(w)
			rules := b.value("#r-rules")
			for _, want := range []string{`"pct": 0.02`, `"abs": 0`, `"pattern": "1:N"`, `"name": "within 2 %"`} {
				if !strings.Contains(rules, want) {
					t.Errorf("rules written %s lack %s", rules, want)
				}
			}

			b.click("#preview-match")
			b.waitText("#pv-matched", "6", 60*time.Second)
			// PAY-08's empty reference is a blank cell, not the word NULL.
			b.click("#pv-tab-unmatched_right")
			b.waitText("#pv-panel tbody", "PAY-08", 5*time.Second)
			if got := b.text("#pv-panel"); strings.Contains(got, "NULL") {
				t.Errorf("the preview says NULL: %q", got)
			}
			if b.count("#pv-panel td.blank") == 0 {
				t.Errorf("PAY-08's empty reference is not a blank cell")
			}
			if head := b.waitText("#pv-panel thead", "Closest candidate", 5*time.Second); strings.Contains(head, "_reason") || strings.Contains(head, "_closest") {
				t.Errorf("the preview's unmatched header shows Kalla's columns by name: %q", head)
			}
			b.click("#save")
			b.waitText("#saved", "Saved recipe “proof”", 30*time.Second)

			// Run it, from the builder's link.
			b.click("#saved a")
			b.waitText("#start-form", "Start run", 20*time.Second)
			// The script that starts a run marks the form ready: a press
			// before it would submit the form natively and start nothing.
			b.click("#start-form[data-ready] button[type=submit]")
			b.waitText("h1", "Run ", 20*time.Second)
			runID := strings.TrimPrefix(b.location(), s.url+"/runs/")
			var status string
			deadline := time.Now().Add(90 * time.Second)
			for {
				var got map[string]any
				apiCall(t, s.url, "", "GET", "/api/runs/"+runID, nil, &got)
				if st, _ := got["status"].(string); st != "queued" && st != "running" {
					status = st
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("run %s still %v", runID, got["status"])
				}
				time.Sleep(200 * time.Millisecond)
			}
			if status != "completed" {
				t.Fatalf("run %s: %s", runID, status)
			}

			// Every pair and every unmatched record, read on the run page
			// as the user reads them: each pair's invoice, payment and the
			// pass that paired them; each unmatched record with its reason.
			// The tab is on the run's page, which reloads itself once the
			// run ends (a navigation now could be cut off by that reload):
			// the pairs appear on the completed page only.
			b.waitText("#page-info", "Pairs 1–6 of 6", 30*time.Second)
			shown := map[string]string{}
			for _, row := range b.rows() {
				inv, pay, rule := "", "", ""
				for _, c := range row {
					switch {
					case strings.HasPrefix(c, "INV-"):
						inv = c
					case strings.HasPrefix(c, "PAY-"):
						pay = c
					case c == "exact" || c == "within 2 %" || c == "split":
						rule = c
					}
				}
				shown[pay] = inv + " " + rule
			}
			if fmt.Sprint(shown) != fmt.Sprint(proofPairs) {
				t.Errorf("the run page shows pairs %v, want %v", shown, proofPairs)
			}
			for tab, want := range map[string]map[string][]string{"unmatched_left": proofInvoiceReasons, "unmatched_right": proofPaymentReasons} {
				b.click("#tab-" + tab)
				b.waitText("#page-info", fmt.Sprintf("Rows 1–%d of %d", len(want), len(want)), 10*time.Second)
				b.waitText("#table thead", "Reason", 5*time.Second)
				got := map[string]string{}
				for _, row := range b.rows() {
					got[row[0]] = strings.Join(row, " | ")
				}
				if len(got) != len(want) {
					t.Errorf("%s shows %v, want the records %v", tab, got, want)
				}
				for id, words := range want {
					for _, w := range words {
						if !strings.Contains(got[id], w) {
							t.Errorf("%s: %s shown as %q, its reason should say %q", tab, id, got[id], w)
						}
					}
				}
			}
			b.fits(w)

			// The same through the API, by column name.
			pairs := map[string]string{}
			for _, row := range results(t, s.url, runID, "matched") {
				pairs[col(row, "payment_id")] = col(row, "invoice_id") + " " + col(row, "_rule")
			}
			if fmt.Sprint(pairs) != fmt.Sprint(proofPairs) {
				t.Errorf("pairs %v, want %v", pairs, proofPairs)
			}
			var ul, ur []string
			for _, row := range results(t, s.url, runID, "unmatched_left") {
				ul = append(ul, col(row, "invoice_id"))
			}
			for _, row := range results(t, s.url, runID, "unmatched_right") {
				ur = append(ur, col(row, "payment_id"))
			}
			slices.Sort(ul)
			slices.Sort(ur)
			if !slices.Equal(ul, proofUnmatchedInvoices) || !slices.Equal(ur, proofUnmatchedPayments) {
				t.Errorf("unmatched invoices %v, payments %v; want %v and %v", ul, ur, proofUnmatchedInvoices, proofUnmatchedPayments)
			}
		})
	}
}

// col is a row's value of the column named name, or ending in _name
// (matched pairs name the keys _left_invoice_id, _right_payment_id).
func col(row map[string]string, name string) string {
	if v, ok := row[name]; ok {
		return v
	}
	for k, v := range row {
		if strings.HasSuffix(k, "_"+name) {
			return v
		}
	}
	return ""
}

// results reads all rows of a run's result table by column name.
func results(t *testing.T, base, runID, table string) []map[string]string {
	t.Helper()
	var page struct {
		Columns []struct {
			Name string `json:"name"`
		} `json:"columns"`
		Rows [][]*string `json:"rows"`
	}
	apiCall(t, base, "", "GET", "/api/runs/"+runID+"/results/"+table+"?limit=1000", nil, &page)
	var out []map[string]string
	for _, r := range page.Rows {
		m := map[string]string{}
		for i, c := range page.Columns {
			if i < len(r) && r[i] != nil {
				m[c.Name] = *r[i]
			}
		}
		out = append(out, m)
	}
	return out
}
