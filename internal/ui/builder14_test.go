package ui_test

import (
	"fmt"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// seedDir holds the seed files: 15 invoices and 15 payments, customers
// who pay several invoices, three currencies.
func seedDir(t *testing.T) string {
	t.Helper()
	d, err := filepath.Abs(filepath.Join("..", "suggest", "testdata", "seed"))
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// widths are the screens the builder's tests run at: a desktop and a
// phone (390 CSS px).
var widths = []int{1280, 390}

// tabAt opens a tab whose viewport is width CSS px wide.
func tabAt(t *testing.T, base string, width int) *tab {
	t.Helper()
	b := newTab(t, base)
	// Headless Chromium keeps windows at least 500 px wide: the viewport
	// is emulated, as a phone's would be.
	b.do(fmt.Sprintf("emulate a %d px screen", width), chromedp.EmulateViewport(int64(width), 900))
	return b
}

// fits checks that nothing in the page's main part reaches past the tab's
// width (wide tables scroll inside their own box). The header and the
// footer, shared by every page, are checked by the narrow-screen tests of
// the layout.
func (b *tab) fits(width int) {
	b.t.Helper()
	got, _ := b.poll(fmt.Sprintf(`(() => {
		const clipped = (e) => {
			for (let a = e.parentElement; a && a !== document.body; a = a.parentElement) {
				if (["auto", "scroll", "hidden"].includes(getComputedStyle(a).overflowX)) return true;
			}
			return false;
		};
		const wide = [...document.querySelectorAll("main *")].filter((e) => e.getBoundingClientRect().right > %d + 1 && !clipped(e))
			.slice(-5).map((e) => e.tagName + (e.id ? "#" + e.id : "") + "." + e.className + " " + Math.round(e.getBoundingClientRect().right));
		return wide.length ? "too wide: " + wide.join(", ") : "";
	})()`, width), 10*time.Second)
	if got == nil || *got != "" {
		b.fail(fmt.Sprintf("the page fits %d px", width), fmt.Errorf("%v", func() string {
			if got == nil {
				return "no answer"
			}
			return *got
		}()))
	}
}

// waitFor waits until cond, a JavaScript expression, is true.
func (b *tab) waitFor(what, cond string, timeout time.Duration) {
	b.t.Helper()
	if got, err := b.poll(fmt.Sprintf(`(%s) ? "yes" : null`, cond), timeout); got == nil {
		b.fail("wait until "+what, fmt.Errorf("not within %s (last error: %v)", timeout, err))
	}
}

// focused returns the id of the element that has the focus.
func (b *tab) focused() string {
	b.t.Helper()
	return b.read("body", "document.activeElement ? document.activeElement.id : ''", "the focused element")
}

// TestBuilderSuggestsTheKeyLink: on the seed files the builder ticks
// invoice_id ↔ reference_number (the payments refer to the invoices' key)
// and leaves currency ↔ currency and customer_id ↔ payer_id unticked,
// marked as categories; the suggested rules come into the rule form with
// a tolerance learnt from the data, editable with form controls; a
// preview is marked stale as soon as a rule changes; and known pairs
// (picked from the samples) teach a split payment.
func TestBuilderSuggestsTheKeyLink(t *testing.T) {
	chromium(t)
	dir := seedDir(t)
	for _, w := range widths {
		t.Run(fmt.Sprint(w), func(t *testing.T) {
			s := startServer(t, nil, dir)
			for alias, name := range map[string]string{"invoices": "invoices.csv", "payments": "payments.csv"} {
				apiCall(t, s.url, "", "POST", "/api/sources", map[string]string{"alias": alias, "uri": filepath.Join(dir, name)}, nil)
			}
			b := tabAt(t, s.url, w)
			b.open("/recipes/new")
			b.typeInto("#r-id", "seed")
			b.choose("#left-source", "src:invoices")
			b.choose("#right-source", "src:payments")
			b.waitText("#pairs", "reference_number", 30*time.Second)
			b.eval("invoice_id ↔ reference_number is ticked", `document.querySelector('tr[data-pair="invoice_id~reference_number"] input').checked`)
			b.waitText(`tr[data-pair="invoice_id~reference_number"]`, "the key of invoices", 5*time.Second)
			for _, p := range []string{"currency~currency", "customer_id~payer_id"} {
				b.eval(p+" is not ticked", fmt.Sprintf(`!document.querySelector('tr[data-pair=%q] input').checked`, p))
				b.waitText(fmt.Sprintf(`tr[data-pair=%q]`, p), "never a link on its own", 5*time.Second)
			}
			b.fits(w)

			// The suggested rules, into the form: no JSON typed.
			b.click("#use-suggested")
			b.eval("rules mode", `document.getElementById("mode-rules").checked && !document.getElementById("rules-panel").hidden`)
			if v := b.value("#rule-0-c-0-left"); v != "invoice_id" {
				t.Errorf("first condition's left column %q", v)
			}
			if v := b.value("#rule-0-c-0-right"); v != "reference_number" {
				t.Errorf("first condition's right column %q", v)
			}
			// The loose pass compares amounts within 2 % (the stated
			// default without known pairs), in a percentage field.
			b.eval("pass 2 is a tolerance in %", `document.getElementById("rule-1-c-1-op").value === "tolerance" && document.getElementById("rule-1-c-1-unit").value === "pct"`)
			if v := b.value("#rule-1-c-1-tol"); v != "2" {
				t.Errorf("tolerance shown %q, want 2 (%%)", v)
			}
			b.fits(w)

			b.click("#preview-match")
			b.waitText("#preview-result", "Preview on samples", 60*time.Second)
			b.eval("the preview is current", `document.getElementById("preview-stale").hidden`)
			// The previewed pairs read as the run page's do: no row numbers
			// or key copies, the rule in words, amounts grouped (INV-1006,
			// 15,000.00, paid in two parts by the split pass).
			head := b.waitText("#pv-panel thead", "Rule", 5*time.Second)
			for _, internal := range []string{"_left_row", "_right_row", "_left_invoice_id", "_rule", "_score", "_status"} {
				if strings.Contains(head, internal) {
					t.Errorf("the previewed pairs' header %q shows Kalla's column %s", head, internal)
				}
			}
			b.waitText("#pv-panel tbody", "15,000.00", 5*time.Second)
			// Within 1 % instead: typed, with real key events.
			b.typeInto("#rule-1-c-1-tol", "1")
			b.waitText("#preview-stale", "out of date", 5*time.Second)
			b.eval("the stale preview is marked", `document.getElementById("preview-result").classList.contains("stale")`)
			rules := b.value("#r-rules")
			if !strings.Contains(rules, `"pct": 0.01`) {
				t.Errorf("the form wrote %s, want pct 0.01", rules)
			}
			// Or within 0.50, either sufficing; the percentage typed again
			// keeps it.
			b.typeInto("#rule-1-c-1-abs", "0.50")
			b.typeInto("#rule-1-c-1-tol", "1.5")
			rules = b.value("#r-rules")
			if !strings.Contains(rules, `"pct": 0.015`) || !strings.Contains(rules, `"abs": 0.5`) {
				t.Errorf("the form wrote %s, want pct 0.015 and abs 0.5", rules)
			}
			b.typeInto("#rule-1-c-1-abs", "")
			if rules = b.value("#r-rules"); strings.Contains(rules, `"abs"`) {
				t.Errorf("an emptied absolute allowance is still written: %s", rules)
			}
			// A date window, in days.
			b.click("#rule-1-add")
			b.choose("#rule-1-c-2-left", "invoice_date")
			b.choose("#rule-1-c-2-op", "date_within")
			b.choose("#rule-1-c-2-right", "payment_date")
			b.typeInto("#rule-1-c-2-days", "30")
			b.choose("#rule-1-c-2-dir", "after")
			rules = b.value("#r-rules")
			if !strings.Contains(rules, `"op": "date_within"`) || !strings.Contains(rules, `"days": 30`) || !strings.Contains(rules, `"direction": "after"`) {
				t.Errorf("date window written as %s", rules)
			}
			b.click("#preview-match")
			b.waitFor("a new preview, current", `document.getElementById("preview-stale").hidden && !document.getElementById("preview-result").classList.contains("stale") && document.getElementById("pv-matched")`, 60*time.Second)

			// Known pairs: the split of INV-1006 in two payments.
			b.click("#examples summary")
			for _, p := range [][2]string{{"INV-1001", "PAY-501"}, {"INV-1006", "PAY-506"}, {"INV-1006", "PAY-507"}} {
				b.choose("#ex-left", p[0])
				b.choose("#ex-right", p[1])
				b.click("#ex-add")
			}
			if n := b.count("#ex-list li"); n != 3 {
				t.Fatalf("%d known pairs listed, want 3", n)
			}
			b.click("#ex-suggest")
			b.waitText("#suggest-notes", "pattern 1:N", 30*time.Second)
			b.acceptDialogs()
			b.click("#use-suggested")
			b.eval("a split pass", `[...document.querySelectorAll('select[id$="-pattern"]')].some((s) => s.value === "1:N")`)
			b.fits(w)
			b.click("#save")
			b.waitText("#saved", "Saved recipe “seed”", 30*time.Second)
		})
	}
}

// TestBuilderRefusesWhatCannotRun: saving a match SQL that names a column
// that does not exist is refused with the real message and focus goes to
// the SQL; a cross join is warned about before it is saved.
func TestBuilderRefusesWhatCannotRun(t *testing.T) {
	chromium(t)
	dir := seedDir(t)
	for _, w := range widths {
		t.Run(fmt.Sprint(w), func(t *testing.T) {
			s := startServer(t, nil, dir)
			for alias, name := range map[string]string{"invoices": "invoices.csv", "payments": "payments.csv"} {
				apiCall(t, s.url, "", "POST", "/api/sources", map[string]string{"alias": alias, "uri": filepath.Join(dir, name)}, nil)
			}
			b := tabAt(t, s.url, w)
			b.open("/recipes/new")
			b.typeInto("#r-id", "bad")
			b.choose("#left-source", "src:invoices")
			b.choose("#right-source", "src:payments")
			b.waitText("#pairs", "reference_number", 30*time.Second)
			b.typeInto("#r-sql", "SELECT l.invoice_id, r.payment_id FROM left_src l JOIN right_src r ON l.invoice_no = r.reference_number")
			b.click("#save")
			b.waitText("#check-result", "unknown column `l.invoice_no`; did you mean `invoice_id`?", 30*time.Second)
			b.waitText("#check-result", "was not saved", 5*time.Second)
			if id := b.focused(); id != "r-sql" {
				t.Errorf("focus on %q, want the SQL", id)
			}
			if got := b.text("#saved"); got != "" {
				t.Errorf("saved: %q", got)
			}
			if st := apiCall(t, s.url, "", "GET", "/api/recipes/bad", nil, nil); st != 404 {
				t.Errorf("the recipe was stored: GET answered %d", st)
			}
			b.typeInto("#r-sql", "SELECT l.invoice_id, r.payment_id FROM left_src l, right_src r")
			b.click("#validate")
			b.waitText("#check-result", "compares every left record with every right record", 30*time.Second)
			// A join on a category runs, and its preview says what it did.
			b.typeInto("#r-sql", "SELECT l.invoice_id, r.payment_id FROM left_src l JOIN right_src r ON l.currency = r.currency")
			b.click("#preview-match")
			b.waitText("#preview-result .warnings", "as a join on a category", 60*time.Second)
			b.eval("the preview is current", `document.getElementById("preview-stale").hidden`)
			// Changing the SQL marks that preview out of date at once.
			b.do("edit the SQL", chromedp.Focus(chromedp.CSS("#r-sql")), chromedp.SendKeys(chromedp.CSS("#r-sql"), " AND l.amount = r.paid_amount"))
			b.waitText("#preview-stale", "out of date", 5*time.Second)
			b.eval("the stale preview is marked", `document.getElementById("preview-result").classList.contains("stale")`)
			b.fits(w)

			// An ID that is taken: said in the user's words, focus on the ID.
			good := "SELECT l.invoice_id, r.payment_id FROM left_src l JOIN right_src r ON l.invoice_id = r.reference_number"
			apiCall(t, s.url, "", "POST", "/api/recipes", map[string]any{"recipe_id": "taken", "match_sql": good, "sources": map[string]any{
				"left":  map[string]any{"alias": "invoices", "uri": filepath.Join(dir, "invoices.csv"), "primary_key": []string{"invoice_id"}},
				"right": map[string]any{"alias": "payments", "uri": filepath.Join(dir, "payments.csv"), "primary_key": []string{"payment_id"}}}}, nil)
			b.typeInto("#r-id", "taken")
			b.typeInto("#r-sql", good)
			b.click("#save")
			msg := b.waitText("#builder-error", "A recipe named “taken” exists already", 30*time.Second)
			if strings.Contains(msg, "PUT") || strings.Contains(msg, "/api/") {
				t.Errorf("the message speaks HTTP: %q", msg)
			}
			if id := b.focused(); id != "r-id" {
				t.Errorf("focus on %q, want the recipe ID", id)
			}
			// A reserved ID: said without the API's routes, focus on the ID.
			b.typeInto("#r-id", "suggest")
			b.click("#r-sql")
			b.click("#save")
			msg = b.waitText("#builder-error", `The recipe ID "suggest" is reserved`, 30*time.Second)
			if strings.Contains(msg, "/api/") || !strings.Contains(msg, "choose another recipe ID") {
				t.Errorf("the reserved ID is refused as %q", msg)
			}
			if id := b.focused(); id != "r-id" {
				t.Errorf("focus on %q, want the recipe ID", id)
			}
		})
	}
}

// TestChipsSpeakTheUsersLanguage: a range with an empty end is refused as
// a chip, with focus on the empty field; a date column gets a date field;
// every chip the server refuses is marked, in the chip's own words (no
// filter JSON), with focus on the first.
func TestChipsSpeakTheUsersLanguage(t *testing.T) {
	chromium(t)
	dir := seedDir(t)
	for _, w := range widths {
		t.Run(fmt.Sprint(w), func(t *testing.T) {
			s := startServer(t, nil, dir)
			apiCall(t, s.url, "", "POST", "/api/sources", map[string]string{"alias": "invoices", "uri": filepath.Join(dir, "invoices.csv")}, nil)
			b := tabAt(t, s.url, w)
			b.open("/sources/invoices")
			b.waitText("#summary", "15 rows", 30*time.Second)
			b.choose("#f-column", "invoice_date")
			b.choose("#f-op", "between")
			b.eval("a date field for a date column", `document.getElementById("f-value").type === "date" && document.getElementById("f-value2").type === "date"`)
			b.do("type a date", chromedp.Focus(chromedp.CSS("#f-value")), chromedp.SendKeys(chromedp.CSS("#f-value"), "01152024"))
			if v := b.value("#f-value"); v != "2024-01-15" {
				t.Fatalf("date field holds %q", v)
			}
			b.click(".chip-editor button[type=submit]")
			b.waitText(".chip-editor-error", "Give both ends of the range", 5*time.Second)
			if id := b.focused(); id != "f-value2" {
				t.Errorf("focus on %q, want the empty upper value", id)
			}
			if n := b.count(".chips li.chip"); n != 0 {
				t.Errorf("%d chips added, want none", n)
			}
			b.choose("#f-column", "amount")
			b.choose("#f-op", "gte")
			b.typeInto("#f-value", "lots")
			b.click(".chip-editor button[type=submit]")
			b.waitText(".chip-editor-error", "“lots” is not a number", 5*time.Second)
			b.fits(w)

			// Three chips the source refuses (columns it does not have, a
			// range with an empty end, as a link may carry them) and one it
			// takes: every bad one is marked.
			chips := `[{"column":"nope_one","op":"eq","array":false,"values":[{"text":"x","number":false}]},` +
				`{"column":"amount","op":"gte","array":false,"values":[{"text":"100","number":true}]},` +
				`{"column":"nope_two","op":"eq","array":false,"values":[{"text":"y","number":false}]},` +
				`{"column":"invoice_date","op":"between","array":true,"values":[{"text":"2024-01-15","number":false},{"text":"","number":false}]}]`
			b.open("/sources/invoices?f=" + url.QueryEscape(chips))
			b.waitText(".chips li.chip-bad", "nope_one", 30*time.Second)
			if n := b.count(".chips li.chip-bad"); n != 3 {
				t.Errorf("%d chips marked, want the 2 unknown columns and the range with an empty end", n)
			}
			b.waitText(".chips li.chip-bad:nth-child(4)", "empty", 5*time.Second)
			page := b.text(".chips")
			if strings.Contains(page, `{"column"`) || strings.Contains(page, "PUT /api") {
				t.Errorf("chip messages show internals: %q", page)
			}
			b.eval("focus on the first bad chip", `document.activeElement && document.activeElement.classList.contains("chip-label") && document.activeElement.textContent.includes("nope_one")`)
			b.fits(w)
		})
	}
}
