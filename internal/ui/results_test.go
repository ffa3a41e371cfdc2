package ui_test

import (
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"

	"github.com/kalla-recon/kalla/internal/kalla"
)

// resultsRecipe is a small invoices/payments reconciliation by structured
// rules, worked out by hand: INV-1 is paid exactly by PAY-1, INV-2 within
// 1 % by PAY-2 (199.00 for 200.00: a break on amount), INV-3 (no amount)
// is unpaid and PAY-9 references nothing.
func resultsRecipe(t *testing.T, dir string) *kalla.Recipe {
	t.Helper()
	write := func(name, body string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	inv := write("invoices.csv", "invoice_id,customer,amount,issued_on\nINV-1,Wayne Enterprises,1234567.50,2024-01-10\nINV-2,Acme,200.00,2024-01-11\nINV-3,Stark Industries,,2024-01-12\n")
	pay := write("payments.csv", "payment_id,reference,payer,amount\nPAY-1,INV-1,Wayne Ent.,1234567.50\nPAY-2,INV-2,Acme,199.00\nPAY-9,INV-99,Nobody,5.00\n")
	return &kalla.Recipe{
		RecipeID: "hand-made",
		Sources: kalla.Sources{
			Left:  kalla.SourceSpec{Alias: "invoices", URI: inv, PrimaryKey: []string{"invoice_id"}},
			Right: kalla.SourceSpec{Alias: "payments", URI: pay, PrimaryKey: []string{"payment_id"}},
		},
		Rules: []kalla.Rule{{Name: "by_reference", Pattern: "1:1", Conditions: []kalla.Condition{
			{Op: "eq", Left: "invoice_id", Right: "reference"},
			{Op: "tolerance", Left: "amount", Right: "amount", Pct: "0.01"},
		}}},
	}
}

// TestResultsPage reads a completed run's results on its page, at 1280
// and 390 px: each matched pair as its left and right records side by
// side, with the compared field that differs highlighted; Kalla's row
// numbers not shown and its rule and score labelled as such; amounts with
// digit grouping and every decimal; an empty field blank; "No rows" for
// an empty search; columns sorted by a click (and by the keyboard); the
// breaks as a table; the evidence checksums of summary.json; and each
// table downloadable as CSV and XLSX.
func TestResultsPage(t *testing.T) {
	chromium(t)
	dir := t.TempDir()
	rec := resultsRecipe(t, dir)
	s := startServer(t, nil, dir)
	apiCall(t, s.url, "", "POST", "/api/recipes", rec, nil)
	run := queueRun(t, s, map[string]string{"recipe_id": rec.RecipeID})
	waitRun(t, s, run, 60*time.Second, func(st kalla.RunStatus, _ float64) bool { return st.Done() })
	var sum kalla.Summary
	apiCall(t, s.url, "", "GET", "/api/runs/"+run+"/files/summary.json", nil, &sum)
	if sum.MatchedCount != 2 || sum.UnmatchedLeftCount != 1 || sum.UnmatchedRightCount != 1 {
		t.Fatalf("the hand-made run: %d matched, %d/%d unmatched", sum.MatchedCount, sum.UnmatchedLeftCount, sum.UnmatchedRightCount)
	}
	b := newTab(t, s.url, chromedp.Flag("lang", "en-US"))
	for _, width := range []int64{1280, 390} {
		b.do("set the window width", emulate(width))
		b.open("/runs/" + run)
		b.waitText("#page-info", "Pairs 1–2 of 2", 30*time.Second)
		head := b.text("#table thead")
		for _, want := range []string{"Left · invoices", "Right · payments", "invoice_id", "payment_id", "amount", "Rule", "Score"} {
			if !strings.Contains(head, want) {
				t.Errorf("matched pairs header %q lacks %q", head, want)
			}
		}
		for _, internal := range []string{"_left_", "_right_", "_rule", "_score", "left_amount"} {
			if strings.Contains(head, internal) {
				t.Errorf("matched pairs header %q shows Kalla's column %s as data", head, internal)
			}
		}
		// INV-1 and PAY-1 side by side, the amount grouped and exact;
		// INV-2's amount differs from PAY-2's, on both sides.
		row1 := b.text("#table tbody tr:nth-child(1)")
		for _, want := range []string{"INV-1", "PAY-1", "1,234,567.50", "by_reference"} {
			if !strings.Contains(row1, want) {
				t.Errorf("first pair %q lacks %q", row1, want)
			}
		}
		b.waitText("#table tbody tr:nth-child(2) td.differs", "200.00", 5*time.Second)
		b.waitText("#table tbody tr:nth-child(2) td.differs", "199.00", 5*time.Second)
		if n := b.count("#table td.differs"); n != 2 {
			t.Errorf("%d cells marked as differing, want the 2 amounts of INV-2/PAY-2", n)
		}

		// Sorting by the right amount: a click, then Enter on the header.
		b.click(`#table th.group-right button.sort[data-col="right.amount"]`)
		b.waitText("#table tbody tr:nth-child(1)", "PAY-2", 10*time.Second)
		b.eval("the sorted column says so", `document.querySelector('#table th.group-right button.sort[data-col="right.amount"]').parentElement.getAttribute("aria-sort") === "ascending"`)
		b.do("sort descending with the keyboard", chromedp.Focus(chromedp.CSS(`#table button.sort[data-col="right.amount"]`)), chromedp.KeyEvent(kb.Enter))
		b.waitText("#table tbody tr:nth-child(1)", "PAY-1", 10*time.Second)
		b.eval("the sorted column says so", `document.querySelector('#table button.sort[data-col="right.amount"]').parentElement.getAttribute("aria-sort") === "descending"`)

		// Searching: one pair, then none ("No pairs", never "Rows 0–0").
		b.typeInto("#search", "INV-2")
		b.do("search", chromedp.KeyEvent(kb.Enter))
		b.waitText("#page-info", "Pairs 1–1 of 1 containing", 10*time.Second)
		b.typeInto("#search", "no such text")
		b.do("search", chromedp.KeyEvent(kb.Enter))
		b.waitText("#page-info", "No pairs contain", 10*time.Second)
		if strings.Contains(b.text("main"), "0–0") {
			t.Errorf("an empty search says 0–0")
		}
		b.typeInto("#search", "")
		b.do("search", chromedp.KeyEvent(kb.Enter))

		// Unmatched left: INV-3 with no amount shows a blank, not NULL.
		b.click("#tab-unmatched_left")
		b.waitText("#page-info", "Rows 1–1 of 1", 10*time.Second)
		b.waitText("#table tbody", "Stark Industries", 5*time.Second)
		if n := b.count("#table td.blank"); n < 1 {
			t.Errorf("INV-3's missing amount is not a blank cell")
		}
		if strings.Contains(b.text("#table"), "NULL") {
			t.Errorf("the unmatched table says NULL: %s", b.text("#table"))
		}
		// Kalla's own columns are labelled, never shown by their names.
		b.waitText("#table thead", "Closest candidate", 5*time.Second)
		if head := b.text("#table thead"); strings.Contains(head, "_closest") || strings.Contains(head, "_reason") {
			t.Errorf("the unmatched header shows Kalla's columns by name: %q", head)
		}

		// The breaks: a table of the compared fields that differ.
		b.click("#tab-breaks")
		b.waitText("#table tbody", "199.00", 10*time.Second)
		b.waitText("#table thead", "Left field", 5*time.Second)
		if head := b.text("#table thead"); strings.Contains(head, "left_column") || strings.Contains(head, "right_value") {
			t.Errorf("the breaks header shows the file's column names: %q", head)
		}

		// The amount totals, grouped like every other amount: INV-1 and
		// INV-2 matched (1,234,567.50 + 200.00), PAY-1 and PAY-2 (… + 199.00).
		b.waitText("#amounts", "1,234,767.50", 5*time.Second)
		b.waitText("#amounts", "1,234,766.50", 5*time.Second)

		// Evidence checksums and downloads.
		sums := b.text("#checksums")
		for _, o := range sum.Outputs {
			if !strings.Contains(sums, o.SHA256) {
				t.Errorf("the checksum of %s (%s) is not on the run page", o.Name, o.SHA256)
			}
		}
		for _, f := range []string{"matched.csv", "matched.xlsx", "unmatched_left.xlsx", "breaks.csv"} {
			href := b.read(`#downloads a[download="`+f+`"]`, `e.getAttribute("href")`, "the download link of "+f)
			resp, err := http.Get(s.url + href)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 200 || len(body) == 0 {
				t.Errorf("%s: %d %s", f, resp.StatusCode, body)
			}
			// An XLSX file is a zip archive (a spreadsheet, not CSV text
			// under another name).
			if strings.HasSuffix(f, ".xlsx") && !strings.HasPrefix(string(body), "PK\x03\x04") {
				t.Errorf("%s is not a spreadsheet: it starts %q", f, body[:min(len(body), 16)])
			}
			if strings.HasSuffix(f, ".csv") && f == "matched.csv" && !strings.Contains(string(body), "1234567.50") {
				t.Errorf("matched.csv lacks INV-1's amount as written: %s", body)
			}
		}
		// The recipe as run, in words rather than JSON.
		b.click(".recipe-snapshot summary")
		rules := b.waitText(".rules-text", "left invoice_id equals right reference", 5*time.Second)
		if !strings.Contains(rules, "left amount equals right amount within 1% of left") || strings.ContainsAny(rules, "{}\"") {
			t.Errorf("the rules as run: %q", rules)
		}
		if wide := b.scrollWidth(); wide > width {
			t.Errorf("the run page is %d px wide in a %d px window", wide, width)
		}
	}
}
