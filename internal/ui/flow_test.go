package ui_test

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kalla-recon/kalla/internal/gen"
	"github.com/kalla-recon/kalla/internal/kalla"
)

// TestReconcileInBrowser is a finance analyst's whole first reconciliation,
// done in a real browser against a real server with generated data whose
// answer is known: register two CSV sources (one uploaded, one by path),
// preview the payments with two filter chips and check the count, build a
// recipe with the suggested pairs and the match SQL, validate it, preview
// the match on samples, save it, start a run, watch it complete, find a
// known unmatched invoice in the unmatched tab, and download a file.
func TestReconcileInBrowser(t *testing.T) {
	chromium(t)
	data := newDataset(t, 2000)
	s := startServer(t, nil, data.dir)
	b := newTab(t, s.url)
	payments := readCSV(t, data.files.Payments)

	// Sources: the invoices uploaded, the payments registered by path.
	b.open("/sources")
	b.submitUpload("invoices", data.files.Invoices)
	b.waitText(".flash", "Registered source “invoices”", 30*time.Second)
	b.submitURI("payments", data.files.Payments)
	b.waitText(".flash", "Registered source “payments”", 30*time.Second)
	b.waitText(`[data-health="invoices"]`, "reachable", 20*time.Second)
	b.waitText(`[data-health="invoices"]`, fmtInt(int64(data.truth.Invoices))+" rows", 5*time.Second)
	b.waitText(`[data-health="payments"]`, fmtInt(int64(data.truth.Payments))+" rows", 20*time.Second)
	if got := b.text(`tr[data-alias="invoices"] td:nth-child(2)`); got != "csv" {
		t.Errorf("invoices type shown %q, want csv", got)
	}
	// An alias in use: the first press says what it would replace and
	// registers nothing; the second replaces it. (On a third alias: the
	// recipe below names the payments file by its path.)
	b.submitURI("spare", data.files.Payments)
	b.waitText(".flash", "Registered source “spare”", 30*time.Second)
	b.submitUpload("spare", data.files.Invoices)
	b.waitText("#upload-form .alert", "A source named “spare” is already registered ("+data.files.Payments+"). Registering replaces it", 10*time.Second)
	b.eval("focus on the alias", `document.activeElement === document.getElementById("up-alias")`)
	if got := b.text(`tr[data-alias="spare"] td.mono`); got != data.files.Payments {
		t.Errorf("spare reads %q after the questioned upload, want %q", got, data.files.Payments)
	}
	b.click("#upload-form button[type=submit]")
	// The page was already /sources?registered=spare: the sign of the
	// replacement is the row reading the uploaded copy.
	b.waitText(`tr[data-alias="spare"] td.mono`, "/uploads/", 30*time.Second)

	// Preview: two chips, the true count of rows under both.
	b.open("/sources/payments")
	b.waitText("#summary", fmtInt(int64(data.truth.Payments))+" rows in the source", 20*time.Second)
	if cols := b.text("#columns tbody"); !strings.Contains(cols, "paid_amount") || !strings.Contains(cols, "DECIMAL") {
		t.Errorf("columns panel: %q", cols)
	}
	wantAcme := countWhere(payments, func(r map[string]string) bool { return r["payer"] == "Acme GmbH" })
	wantBoth := countWhere(payments, func(r map[string]string) bool {
		return r["payer"] == "Acme GmbH" && atof(t, r["paid_amount"]) >= 10000
	})
	wantBig := countWhere(payments, func(r map[string]string) bool { return atof(t, r["paid_amount"]) >= 10000 })
	b.addChip("payer", "eq", "Acme GmbH")
	b.waitText("#total", fmtInt(wantAcme)+" rows match the filter", 20*time.Second)
	b.addChip("paid_amount", "gte", "10000")
	b.waitText("#total", fmtInt(wantBoth)+" rows match all 2 filters", 20*time.Second)
	if n := b.count(".chips li.chip"); n != 2 {
		t.Fatalf("%d chips shown, want 2", n)
	}
	// The filters live in the page's address: a reload keeps them.
	b.open(strings.TrimPrefix(b.location(), s.url))
	b.waitText("#total", fmtInt(wantBoth)+" rows match all 2 filters", 20*time.Second)
	b.waitText(".chips", "paid_amount ≥ 10000", 5*time.Second)
	rows := b.text("#rows tbody")
	if !strings.Contains(rows, "Acme GmbH") || strings.Contains(rows, "Globex") {
		t.Errorf("sample rows do not follow the filters: %.300s", rows)
	}
	b.click(`.chips button[aria-label^="Remove filter payer"]`)
	b.waitText("#total", fmtInt(wantBig)+" rows match the filter", 20*time.Second)
	// Missing values: a chip with no value field.
	wantNoRef := countWhere(payments, func(r map[string]string) bool { return r["reference_number"] == "" })
	b.addChip("reference_number", "is_null", "")
	b.waitText(".chips", "reference_number is missing", 5*time.Second)
	b.click(`.chips button[aria-label^="Remove filter paid_amount"]`)
	b.waitText("#total", fmtInt(wantNoRef)+" rows match the filter", 20*time.Second)

	// Recipe builder: sources side by side, suggestions with evidence,
	// match SQL, validate, preview on samples, save.
	b.open("/recipes/new")
	b.typeInto("#r-id", "invoices-vs-payments")
	b.typeInto("#r-name", "Invoices against payments")
	b.choose("#left-source", "src:invoices")
	b.choose("#right-source", "src:payments")
	b.waitText("#pairs", "reference_number", 20*time.Second)
	first := b.text("#pairs tbody tr:first-child")
	if !strings.Contains(first, "invoice_id") || !strings.Contains(first, "reference_number") || !strings.Contains(first, "a reference to its records") {
		t.Errorf("first suggestion is not invoice_id / reference_number with evidence: %q", first)
	}
	if v := b.value("#left-alias"); v != "invoices" {
		t.Errorf("left alias %q, want the source's alias", v)
	}
	if !b.checked("#left-key-0") || !b.checked("#right-key-0") {
		t.Errorf("the primary keys invoice_id and payment_id were not preselected")
	}
	b.click("#write-sql")
	if sql := b.value("#r-sql"); !strings.Contains(sql, "l.invoice_id = r.reference_number") || !strings.Contains(sql, "FROM left_src l") {
		t.Errorf("SQL written from the ticked pair: %q", sql)
	}
	// The generator's match also settles split and near payments.
	b.typeInto("#r-sql", gen.MatchSQL)
	b.click("#validate")
	b.waitText("#check-result", "The recipe would run", 30*time.Second)
	b.click("#preview-match")
	b.waitText("#preview-result", "Preview on samples", 60*time.Second)
	if got := b.text("#preview-result .counts"); !strings.Contains(got, "200 of "+fmtInt(int64(data.truth.Invoices))) || !strings.Contains(got, "200 of "+fmtInt(int64(data.truth.Payments))) {
		t.Errorf("preview sample sizes: %q", got)
	}
	if got := b.text("#pv-matched"); got == "0" || got == "" {
		t.Errorf("the preview matched nothing: %q", got)
	}
	b.waitText("#pv-panel table", "INV-", 5*time.Second)
	b.click("#save")
	b.waitText("#saved", "Saved recipe “invoices-vs-payments”", 30*time.Second)
	var stored struct {
		Recipe kalla.Recipe `json:"recipe"`
	}
	apiCall(t, s.url, "", "GET", "/api/recipes/invoices-vs-payments", nil, &stored)
	if l := stored.Recipe.Sources.Left; !strings.HasPrefix(l.URI, filepath.Join(s.dataDir, "uploads")) || l.PrimaryKey[0] != "invoice_id" || l.Alias != "invoices" {
		t.Errorf("saved left side: %+v", l)
	}
	if r := stored.Recipe.Sources.Right; r.URI != data.files.Payments || r.PrimaryKey[0] != "payment_id" {
		t.Errorf("saved right side: %+v", r)
	}

	// A run, started from the dashboard's button and watched to the end.
	b.eval("the builder links to starting a run", `document.querySelector("#saved a").getAttribute("href") === "/runs?start=invoices-vs-payments#start"`)
	b.open("/")
	b.waitText(".stats", "3 sources", 5*time.Second)
	b.click(".page-head a.button.primary")
	b.waitText("#start-form", "Start run", 10*time.Second)
	b.eval("the recipe is offered", `document.getElementById("start-recipe").value === "invoices-vs-payments"`)
	b.click("#start-form[data-ready] button[type=submit]")
	b.waitText("h1", "Run ", 10*time.Second)
	b.waitText("#c-matched", fmtInt(int64(data.truth.MatchedPairs())), 60*time.Second)
	if got := b.text("#c-ul"); got != fmtInt(int64(data.truth.OrphanInvoices)) {
		t.Errorf("unmatched left %s, want %d", got, data.truth.OrphanInvoices)
	}
	if got := b.text("#c-ur"); got != fmtInt(int64(data.truth.StrayPayments)) {
		t.Errorf("unmatched right %s, want %d", got, data.truth.StrayPayments)
	}
	if got := b.text(".chart desc"); !strings.Contains(got, "matched") {
		t.Errorf("match-rate chart: %q", got)
	}

	// The unmatched tab holds a known unpaid invoice; search finds it.
	orphan := orphanInvoice(t, data)
	b.waitText("#page-info", "of "+fmtInt(int64(data.truth.MatchedPairs())), 20*time.Second)
	b.click("#tab-unmatched_left")
	b.waitText("#page-info", "Rows 1–50 of "+fmtInt(int64(data.truth.OrphanInvoices)), 20*time.Second)
	b.click("#next")
	b.waitText("#page-info", "Rows 51–100 of", 20*time.Second)
	b.typeInto("#search", orphan)
	b.waitText("#page-info", "Rows 1–1 of 1 containing", 20*time.Second)
	b.waitText("#table tbody", orphan, 5*time.Second)

	// Download: a button for every file, and the file that arrives is the
	// one the run's summary vouches for.
	if n := b.count(".files a[download]"); n != 10 {
		t.Errorf("%d download buttons, want 3 tables as Parquet, CSV and XLSX, and summary.json", n)
	}
	runID := strings.TrimPrefix(b.location(), s.url+"/runs/")
	var sum kalla.Summary
	apiCall(t, s.url, "", "GET", "/api/runs/"+runID+"/files/summary.json", nil, &sum)
	b.click(`a[download="unmatched_left.parquet"]`)
	got := waitFile(t, filepath.Join(b.downloads, "unmatched_left.parquet"), 30*time.Second)
	for _, o := range sum.Outputs {
		if o.Name == "unmatched_left.parquet" && o.SHA256 != got {
			t.Errorf("downloaded unmatched_left.parquet has sha256 %s, the summary says %s", got, o.SHA256)
		}
	}
	b.click(`a[download="matched.xlsx"]`)
	waitFile(t, filepath.Join(b.downloads, "matched.xlsx"), 30*time.Second)

	// The dashboard lists the run with its match rate.
	b.open("/")
	b.waitText("table.grid tbody", "completed", 5*time.Second)
	b.waitText("table.grid tbody", "invoices-vs-payments", 5*time.Second)
	wantRate := fmt.Sprintf("%.1f%%", 100*float64(data.truth.MatchedInvoices())/float64(data.truth.Invoices))
	b.waitText("table.grid tbody", wantRate, 5*time.Second)
	b.waitText(".stats", "3 sources", 5*time.Second)
	b.waitText(".stats", "1 recipe", 5*time.Second)
}

// TestRulesInBuilder builds a recipe with structured rules instead of
// SQL: the rules are drafted from the ticked suggested pairs, checked,
// previewed on samples and saved, and the builder opens the saved recipe
// in rules mode again.
func TestRulesInBuilder(t *testing.T) {
	chromium(t)
	data := newDataset(t, 500)
	s := startServer(t, nil, data.dir)
	for alias, uri := range map[string]string{"invoices": data.files.Invoices, "payments": data.files.Payments} {
		apiCall(t, s.url, "", "POST", "/api/sources", map[string]string{"alias": alias, "uri": uri}, nil)
	}
	b := newTab(t, s.url)
	b.open("/recipes/new")
	b.typeInto("#r-id", "by-rules")
	b.choose("#left-source", "src:invoices")
	b.choose("#right-source", "src:payments")
	b.waitText("#pairs", "reference_number", 20*time.Second)
	b.click("#write-rules")
	rules := b.value("#r-rules")
	if !strings.Contains(rules, `"op": "eq"`) || !strings.Contains(rules, `"left": "invoice_id"`) || !strings.Contains(rules, `"right": "reference_number"`) {
		t.Fatalf("rules drafted from the ticked pair: %s", rules)
	}
	b.click("#validate")
	b.waitText("#check-result", "The recipe would run", 30*time.Second)
	b.click("#preview-match")
	b.waitText("#preview-result", "Preview on samples", 60*time.Second)
	if got := b.text("#pv-matched"); got == "0" {
		t.Errorf("the rules matched nothing in the preview")
	}
	b.click("#save")
	b.waitText("#saved", "Saved recipe “by-rules”", 30*time.Second)
	var stored struct {
		Recipe map[string]any `json:"recipe"`
	}
	apiCall(t, s.url, "", "GET", "/api/recipes/by-rules", nil, &stored)
	if stored.Recipe["rules"] == nil || stored.Recipe["match_sql"] != nil {
		t.Errorf("saved recipe: rules %v, match_sql %v", stored.Recipe["rules"], stored.Recipe["match_sql"])
	}
	b.open("/recipes/by-rules")
	b.waitText("#rules-panel", "reference_number", 10*time.Second)
	b.eval("rules mode is chosen", `document.getElementById("mode-rules").checked && document.getElementById("sql-panel").hidden`)

	// Deleting a recipe and a source.
	b.open("/recipes")
	b.acceptDialogs()
	b.click(`button[data-delete="by-rules"]`)
	b.waitText(".flash", "Deleted recipe “by-rules”", 10*time.Second)
	if n := b.count(`tr[data-recipe="by-rules"]`); n != 0 {
		t.Errorf("the deleted recipe is still listed")
	}
	b.open("/sources")
	b.acceptDialogs()
	// Each row's health check rewrites its cell when it answers, which
	// widens the columns; a user clicks once the table has settled.
	if got, err := b.poll(`[...document.querySelectorAll("[data-health]")].every((c) => !c.textContent.includes("checking")) ? "settled" : null`, 30*time.Second); got == nil {
		t.Fatalf("the sources' health checks did not answer within 30s (last error: %v)", err)
	}
	// ...and the row actions must not move meanwhile: the Delete buttons
	// stand where they stood while every cell said "checking…", and where
	// they would stand with a long error in every cell (each state put in
	// place of the answers, measured, and the answers put back).
	b.eval("the row actions stay put while the health checks answer", `(() => {
  const at = () => [...document.querySelectorAll("button[data-delete]")].map((e) => Math.round(e.getBoundingClientRect().left)).join();
  const cells = [...document.querySelectorAll("[data-health]")];
  const answers = cells.map((c) => c.innerHTML);
  const settled = at();
  cells.forEach((c) => { c.innerHTML = '<span class="muted">checking…</span>'; });
  const checking = at();
  cells.forEach((c) => { c.innerHTML = '<span class="health-bad">● failing</span> <span class="health-msg">source "payments": open /srv/finance/exports/2026/december/payments-of-the-whole-year-from-the-bank.csv: no such file or directory</span>'; });
  const failing = at();
  cells.forEach((c, i) => { c.innerHTML = answers[i]; });
  return settled === checking && checking === failing;
})()`)
	b.click(`button[data-delete="payments"]`)
	b.waitText(".flash", "Deleted source “payments”", 10*time.Second)
	if n := b.count(`tr[data-alias="payments"]`); n != 0 {
		t.Errorf("the deleted source is still listed")
	}
}

// TestBuilderKeepsWhatItDoesNotEdit: saving a stored recipe from the
// builder keeps the parts of its sides the builder has no fields for
// (schema overrides, CSV settings) and its filters.
func TestBuilderKeepsWhatItDoesNotEdit(t *testing.T) {
	chromium(t)
	data := newDataset(t, 300)
	s := startServer(t, nil, data.dir)
	for alias, uri := range map[string]string{"invoices": data.files.Invoices, "payments": data.files.Payments} {
		apiCall(t, s.url, "", "POST", "/api/sources", map[string]string{"alias": alias, "uri": uri}, nil)
	}
	rec := gen.Recipe(data.files)
	rec.Sources.Left.Schema = map[string]string{"amount": "DECIMAL(38,10)"}
	rec.Sources.Left.CSV = &kalla.CSVOptions{Delimiter: ","}
	rec.Sources.Right.Filters = []kalla.Filter{{Column: "paid_amount", Op: kalla.OpGte, Values: []kalla.Scalar{{Text: "100.50", IsNumber: true}}}}
	apiCall(t, s.url, "", "POST", "/api/recipes", rec, nil)

	b := newTab(t, s.url)
	b.open("/recipes/" + rec.RecipeID)
	b.waitText("#pairs", "reference_number", 20*time.Second)
	b.waitText(`fieldset[data-side="right"] .chips`, "paid_amount ≥ 100.50", 5*time.Second)
	b.typeInto("#r-name", "Renamed in the builder")
	b.click("#save")
	b.waitText("#saved", "Saved recipe", 20*time.Second)
	var stored struct {
		Name   string       `json:"name"`
		Recipe kalla.Recipe `json:"recipe"`
	}
	apiCall(t, s.url, "", "GET", "/api/recipes/"+rec.RecipeID, nil, &stored)
	l, r := stored.Recipe.Sources.Left, stored.Recipe.Sources.Right
	if stored.Name != "Renamed in the builder" || l.Schema["amount"] != "DECIMAL(38,10)" || l.CSV == nil || l.CSV.Delimiter != "," {
		t.Errorf("saved: name %q, left %+v", stored.Name, l)
	}
	if len(r.Filters) != 1 || r.Filters[0].String() != `{"column":"paid_amount","op":"gte","value":100.50}` {
		t.Errorf("saved right filters: %v", r.Filters)
	}
	if stored.Recipe.MatchSQL != rec.MatchSQL {
		t.Errorf("match SQL changed: %q", stored.Recipe.MatchSQL)
	}
}
