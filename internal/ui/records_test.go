package ui_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"

	"github.com/kalla-recon/kalla/internal/kalla"
)

// TestPairsAsRecords runs the original seed files (15 invoices, 15
// payments) by invoice reference within 1 % and reads the matched pairs on
// the run page at 1280 and 390 px, as issue 14 asks: searching "Wayne" (a
// customer name, which only the invoices' whole records carry) finds
// Wayne Enterprises' three paid invoices, each shown as its two whole
// records side by side (the invoice's customer and due date, the payment's
// payer and date), and INV-1004, paid 310.00 for 310.25, has its two
// amounts highlighted as differing.
func TestPairsAsRecords(t *testing.T) {
	chromium(t)
	dir := t.TempDir()
	// The server reads files under its roots only: the seed files are
	// copied into one.
	for _, f := range []string{"invoices.csv", "payments.csv"} {
		data, err := os.ReadFile(filepath.Join("..", "suggest", "testdata", "seed", f))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, f), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	seed := dir
	rec := &kalla.Recipe{
		RecipeID: "seed-by-reference",
		Sources: kalla.Sources{
			Left:  kalla.SourceSpec{Alias: "invoices", URI: filepath.Join(seed, "invoices.csv"), PrimaryKey: []string{"invoice_id"}},
			Right: kalla.SourceSpec{Alias: "payments", URI: filepath.Join(seed, "payments.csv"), PrimaryKey: []string{"payment_id"}},
		},
		Rules: []kalla.Rule{{Name: "by_reference", Pattern: "1:1", Conditions: []kalla.Condition{
			{Op: "eq", Left: "invoice_id", Right: "reference_number"},
			{Op: "tolerance", Left: "amount", Right: "paid_amount", Pct: "0.01"},
		}}},
	}
	s := startServer(t, nil, dir)
	apiCall(t, s.url, "", "POST", "/api/recipes", rec, nil)
	run := queueRun(t, s, map[string]string{"recipe_id": rec.RecipeID})
	waitRun(t, s, run, 60*time.Second, func(st kalla.RunStatus, _ float64) bool { return st.Done() })
	b := newTab(t, s.url, chromedp.Flag("lang", "en-US"))
	for _, width := range []int64{1280, 390} {
		b.do("set the window width", emulate(width))
		b.open("/runs/" + run)
		b.waitText("#page-info", "Pairs 1–", 30*time.Second)
		if b.count("#records-note") != 0 {
			t.Errorf("a server run's pairs carry the note for runs without records: %s", b.text("#records-note"))
		}
		b.typeInto("#search", "Wayne")
		b.do("search", chromedp.KeyEvent(kb.Enter))
		b.waitText("#page-info", "Pairs 1–3 of 3 containing", 10*time.Second)
		head := b.text("#table thead")
		for _, want := range []string{"Left · invoices", "Right · payments", "customer_name", "due_date", "payer_id", "payment_date", "paid_amount"} {
			if !strings.Contains(head, want) {
				t.Errorf("the pairs' header %q lacks %q", head, want)
			}
		}
		rows := b.text("#table tbody")
		for _, want := range []string{"INV-1001", "PAY-501", "INV-1004", "PAY-504", "INV-1009", "PAY-509", "Wayne Enterprises", "2024-02-04", "2024-01-26"} {
			if !strings.Contains(rows, want) {
				t.Errorf("the pairs found by Wayne %q lack %q", rows, want)
			}
		}
		b.waitText("#table tbody tr:nth-child(2) td.group-left.differs", "310.25", 5*time.Second)
		b.waitText("#table tbody tr:nth-child(2) td.group-right.differs", "310.00", 5*time.Second)
		if n := b.count("#table td.differs"); n != 2 {
			t.Errorf("%d cells marked as differing, want INV-1004's and PAY-504's amounts", n)
		}
		if wide := b.scrollWidth(); wide > width {
			t.Errorf("the run page is %d px wide in a %d px window", wide, width)
		}
	}
}
