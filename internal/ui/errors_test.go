package ui_test

import (
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kalla-recon/kalla/internal/gen"
	"github.com/kalla-recon/kalla/internal/kalla"
)

// serverMessage returns the message of the error the API answers to a
// request, to compare with what the page shows.
func serverMessage(t *testing.T, s *testServer, method, path string, body any) string {
	t.Helper()
	var e apiError
	if st := apiCall(t, s.url, s.token, method, path, body, &e); st < 400 || e.Error.Message == "" {
		t.Fatalf("%s %s: status %d, no error", method, path, st)
	}
	return e.Error.Message
}

// TestErrorsShownInBrowser makes each action that can fail fail, and
// checks that the page shows the server's own message for it: a source
// that does not exist, an upload of the wrong kind, a filter the source
// refuses, a recipe whose SQL does not bind, a match preview and a save
// that the server refuses, and a run that failed.
func TestErrorsShownInBrowser(t *testing.T) {
	chromium(t)
	data := newDataset(t, 200)
	s := startServer(t, nil, data.dir)
	b := newTab(t, s.url)

	// Registering a file that is not there.
	missing := filepath.Join(data.dir, "nope.csv")
	want := serverMessage(t, s, "POST", "/api/sources", map[string]string{"alias": "nope", "uri": missing, "source_type": ""})
	b.open("/sources")
	b.submitURI("nope", missing)
	b.waitText("#uri-form .alert", want, 20*time.Second)

	// Uploading a spreadsheet.
	xlsx := filepath.Join(t.TempDir(), "books.xlsx")
	if err := os.WriteFile(xlsx, []byte("PK\x03\x04 not really"), 0o644); err != nil {
		t.Fatal(err)
	}
	b.submitUpload("books", xlsx)
	b.waitText("#upload-form .alert", "upload a .csv, .tsv, .csv.gz or .parquet file", 20*time.Second)

	// A filter the source cannot apply: the message stands by its chip.
	apiCall(t, s.url, "", "POST", "/api/sources", map[string]string{"alias": "payments", "uri": data.files.Payments}, nil)
	apiCall(t, s.url, "", "POST", "/api/sources", map[string]string{"alias": "invoices", "uri": data.files.Invoices}, nil)
	bad := map[string]any{"column": "paid_on", "op": "gt", "value": "last week"}
	dateMsg := serverMessage(t, s, "POST", "/api/sources/payments/load-scoped", map[string]any{"conditions": []any{bad}, "limit": 0})
	// The editor refuses a date that is not one, in the user's words, with
	// focus on the field; the server's own refusal (a chip from a shared
	// link) stands by its chip, the filter written as the chip reads.
	b.open("/sources/payments")
	b.waitText("#summary", "rows in the source", 20*time.Second)
	b.addChip("payer", "eq", "Acme GmbH")
	b.waitText("#total", "match the filter", 20*time.Second)
	b.choose("#f-column", "paid_on")
	b.choose("#f-op", "gt")
	b.typeInto("#f-value", "last week")
	b.click(".chip-editor button[type=submit]")
	b.waitText(".chip-editor-error", "Give a value to compare paid_on with", 10*time.Second)
	b.eval("focus on the date field", `document.activeElement.id === "f-value"`)
	want = strings.Replace(dateMsg, `{"column":"paid_on","op":"gt","value":"last week"}`, `paid_on > “last week”`, 1)
	b.open("/sources/payments?f=" + url.QueryEscape(`[{"column":"payer","op":"eq","array":false,"values":[{"text":"Acme GmbH","number":false}]},{"column":"paid_on","op":"gt","array":false,"values":[{"text":"last week","number":false}]}]`))
	b.waitText(".chip-bad .chip-error", want, 20*time.Second)
	if n := b.count(".chip-bad"); n != 1 {
		t.Errorf("%d chips marked bad, want only the date one", n)
	}
	b.click(`.chips button[aria-label^="Remove filter paid_on"]`)
	b.waitText("#total", "match the filter", 20*time.Second)
	if n := b.count(".chip-error"); n != 0 {
		t.Errorf("an error is still shown after removing the bad chip")
	}

	// The builder: SQL naming a column that does not exist.
	rec := gen.Recipe(data.files)
	rec.RecipeID = "broken"
	rec.MatchSQL = "SELECT * FROM left_src l JOIN right_src r ON l.invoice_number = r.reference_number"
	var chk struct {
		Problems []string `json:"problems"`
	}
	apiCall(t, s.url, "", "POST", "/api/recipes/validate", rec, &chk)
	if len(chk.Problems) == 0 {
		t.Fatal("validate found no problem in a broken recipe")
	}
	b.open("/recipes/new")
	b.typeInto("#r-id", "broken")
	b.choose("#left-source", "src:invoices")
	b.choose("#right-source", "src:payments")
	b.waitText("#pairs", "reference_number", 20*time.Second)
	// The same refused filter, scoping the builder's right side.
	b.choose("#right-f-column", "paid_on")
	b.choose("#right-f-op", "gt")
	b.click(`fieldset[data-side="right"] .f-add`)
	b.waitText(`fieldset[data-side="right"] .chip-editor-error`, "Give a value to compare paid_on with", 20*time.Second)
	if n := b.count(`fieldset[data-side="right"] li.chip`); n != 0 {
		t.Errorf("a chip without a value was added")
	}
	b.typeInto("#r-sql", rec.MatchSQL)
	b.click("#validate")
	b.waitText("#check-result .alert", chk.Problems[0], 20*time.Second)
	want = serverMessage(t, s, "POST", "/api/recipes/preview", map[string]any{"recipe": rec})
	b.click("#preview-match")
	b.waitText("#builder-error", want, 30*time.Second)
	b.typeInto("#r-id", "no spaces allowed")
	b.click("#save")
	b.waitText("#check-result", `"recipe_id" "no spaces allowed" may contain only letters`, 20*time.Second)

	// A run that failed shows its error in full.
	gone := filepath.Join(data.dir, "gone.csv")
	if err := os.WriteFile(gone, []byte("invoice_id,amount\nINV-1,1.00\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	failing := gen.Recipe(data.files)
	failing.RecipeID = "failing"
	failing.Sources.Left.URI = gone
	apiCall(t, s.url, "", "POST", "/api/recipes", failing, nil)
	if err := os.Remove(gone); err != nil {
		t.Fatal(err)
	}
	b.open("/runs?start=failing")
	b.click("#start-form[data-ready] button[type=submit]")
	// The text is taken as waitText finds it: the run page re-renders while
	// it polls, so a second lookup can meet a node that was just replaced.
	shown := b.waitText("#failure", "does not exist", 60*time.Second)
	runID := strings.TrimPrefix(b.location(), s.url+"/runs/")
	var run struct {
		Status kalla.RunStatus `json:"status"`
		Error  string          `json:"error"`
	}
	apiCall(t, s.url, "", "GET", "/api/runs/"+runID, nil, &run)
	if run.Status != kalla.RunFailed || shown != run.Error {
		t.Errorf("the page shows %q; the run (%s) failed with %q", shown, run.Status, run.Error)
	}
}
