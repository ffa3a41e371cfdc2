package server_test

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/kalla-recon/kalla/internal/kalla"
	"github.com/kalla-recon/kalla/internal/server"
	"github.com/kalla-recon/kalla/internal/suggest"
)

// seedDir holds the seed files: 15 invoices, 15 payments, customers who
// pay several invoices.
func seedDir(t *testing.T) string {
	t.Helper()
	d, err := filepath.Abs(filepath.Join("..", "suggest", "testdata", "seed"))
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// TestSuggestAPI: POST /api/recipes/suggest proposes the same recipe as
// `kalla recipe suggest`, linked on the invoices' key, with the customer
// and the currency called categories.
func TestSuggestAPI(t *testing.T) {
	dir := seedDir(t)
	s := startServer(t, func(c *server.Config) { c.FileRoots = append(c.FileRoots, dir) })
	body := map[string]any{
		"left":  map[string]string{"alias": "invoices", "uri": filepath.Join(dir, "invoices.csv")},
		"right": map[string]string{"alias": "payments", "uri": filepath.Join(dir, "payments.csv")},
	}
	var res suggest.Result
	s.call("POST", "/api/recipes/suggest", body, 200, &res)
	if res.Recipe == nil || len(res.Recipe.Rules) == 0 {
		t.Fatalf("no recipe: %+v", res)
	}
	if c := res.Recipe.Rules[0].Conditions[0]; c.Left != "invoice_id" || c.Right != "reference_number" {
		t.Errorf("link %s ~ %s, want invoice_id ~ reference_number", c.Left, c.Right)
	}
	for _, p := range res.Pairings {
		if p.Left == "currency" && (!p.Category || p.Used) {
			t.Errorf("currency ~ currency: %+v", p)
		}
	}
	// Example pairs: a split of INV-1006 in two payments.
	body["pairs"] = [][2]string{{"INV-1001", "PAY-501"}, {"INV-1006", "PAY-506"}, {"INV-1006", "PAY-507"}}
	s.call("POST", "/api/recipes/suggest", body, 200, &res)
	if !strings.Contains(strings.Join(res.Notes, "\n"), "pattern 1:N") {
		t.Errorf("notes: %v", res.Notes)
	}
	body["pairs"] = [][2]string{{"NOPE", "NOPE"}}
	s.wantError("POST", "/api/recipes/suggest", body, 400, kalla.EINVALID, "none of the 1 example pairs was found")
	s.wantError("POST", "/api/recipes/suggest", map[string]any{"left": map[string]string{"alias": "a"}}, 400, kalla.EINVALID, "pick the two sources")
}

// TestSaveRefusesWhatCannotRun: POST and PUT /api/recipes check a recipe
// against its sources and refuse one that would not run (422, code
// unrunnable) with the check's own message; nothing is stored.
func TestSaveRefusesWhatCannotRun(t *testing.T) {
	dir := seedDir(t)
	s := startServer(t, func(c *server.Config) { c.FileRoots = append(c.FileRoots, dir) })
	rec := kalla.Recipe{RecipeID: "bad-column", Sources: kalla.Sources{
		Left:  kalla.SourceSpec{Alias: "invoices", URI: filepath.Join(dir, "invoices.csv"), PrimaryKey: []string{"invoice_id"}},
		Right: kalla.SourceSpec{Alias: "payments", URI: filepath.Join(dir, "payments.csv"), PrimaryKey: []string{"payment_id"}}},
		MatchSQL: "SELECT l.invoice_id, r.payment_id FROM left_src l JOIN right_src r ON l.invoice_no = r.reference_number"}
	s.wantError("POST", "/api/recipes", rec, 422, kalla.EUNRUNNABLE, "unknown column `l.invoice_no`; did you mean `invoice_id`?")
	s.wantError("PUT", "/api/recipes/bad-column", rec, 422, kalla.EUNRUNNABLE, "unknown column `l.invoice_no`")
	s.wantError("GET", "/api/recipes/bad-column", nil, 404, kalla.ENOTFOUND)
	rec.MatchSQL = "SELECT l.invoice_id, r.payment_id FROM left_src l JOIN right_src r ON l.invoice_id = r.reference_number"
	s.call("POST", "/api/recipes", rec, 201, nil)
	// A cross join runs: it is saved, and validate warns about it.
	rec.RecipeID, rec.MatchSQL = "cross", "SELECT l.invoice_id, r.payment_id FROM left_src l, right_src r"
	var chk struct {
		OK       bool     `json:"ok"`
		Warnings []string `json:"warnings"`
	}
	s.call("POST", "/api/recipes/validate", rec, 200, &chk)
	if !chk.OK || len(chk.Warnings) != 1 || !strings.Contains(chk.Warnings[0], "compares every left record with every right record") {
		t.Errorf("validate of a cross join: %+v", chk)
	}
	// A join on a category: the preview says each record pairs with many.
	rec.MatchSQL = "SELECT l.invoice_id, r.payment_id FROM left_src l JOIN right_src r ON l.currency = r.currency"
	var pv struct {
		Matched  int64           `json:"matched_count"`
		Warnings []kalla.Warning `json:"warnings"`
	}
	s.call("POST", "/api/recipes/preview", map[string]any{"recipe": rec}, 200, &pv)
	found := false
	for _, w := range pv.Warnings {
		found = found || w.Code == kalla.WarnManyToMany && strings.Contains(w.Message, "a join on a category")
	}
	if pv.Matched < 50 || !found {
		t.Errorf("preview of a currency join: %d pairs, warnings %+v", pv.Matched, pv.Warnings)
	}
}
