package ui_test

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/kalla-recon/kalla/internal/exceptions/exctest"
	"github.com/kalla-recon/kalla/internal/kalla"
	"github.com/kalla-recon/kalla/internal/server"
)

// bulkFiles are the sides of the bulk test, worked out by hand:
//
//   - I01~P01 are equal: rule exact, confirmed (no item).
//   - Rule tolerance (same reference, amounts within 1.00, every pair
//     suggested) pairs B01..B52 (10.00) with Q01..Q52 (10.01): difference
//     0.01 each; I02~P02 0.02; I03~P03 0.05 (the bound: "at most"
//     includes it); I04~P04 0.04; I05~P05 0.06; I06~P06 0.50.
//   - Rule by_amount (same date, amounts within 0.05, suggested) pairs
//     I07~P07, whose reference is wrong: difference 0.01, but not rule
//     tolerance.
//   - I08 (1500.00) and I09 (20.00) have no payment, P10 no invoice.
//
// So rule tolerance with a difference of at most 0.05 selects 55 pairs:
// B01..B52, I02, I03, I04, whose left amounts add up to 520.00 + 900.00 =
// 1420.00 EUR. I05, I06 and I07 stay open.
func bulkFiles() map[string]string {
	var l, r strings.Builder
	l.WriteString("invoice_id,amount,currency,invoice_date\n")
	r.WriteString("payment_id,reference,amount,currency,paid_date\n")
	for i := 1; i <= 52; i++ {
		fmt.Fprintf(&l, "B%02d,10.00,EUR,2026-11-15\n", i)
		fmt.Fprintf(&r, "Q%02d,B%02d,10.01,EUR,2026-11-16\n", i, i)
	}
	l.WriteString(`I01,100.00,EUR,2026-11-01
I02,200.00,EUR,2026-11-02
I03,300.00,EUR,2026-11-03
I04,400.00,EUR,2026-11-04
I05,500.00,EUR,2026-11-05
I06,600.00,EUR,2026-11-06
I07,75.00,EUR,2026-11-07
I08,1500.00,EUR,2026-11-08
I09,20.00,EUR,2026-11-09
`)
	r.WriteString(`P01,I01,100.00,EUR,2026-11-02
P02,I02,199.98,EUR,2026-11-03
P03,I03,300.05,EUR,2026-11-04
P04,I04,400.04,EUR,2026-11-05
P05,I05,500.06,EUR,2026-11-06
P06,I06,599.50,EUR,2026-11-07
P07,X-77,75.01,EUR,2026-11-07
P10,ZZ,33.00,EUR,2026-11-20
`)
	return map[string]string{"left.csv": l.String(), "right.csv": r.String()}
}

// bulkRecipe is the recipe over bulkFiles in dir.
func bulkRecipe(dir string) kalla.Recipe {
	one := 1.0
	key := kalla.Condition{Op: "eq", Left: "invoice_id", Right: "reference"}
	cur := kalla.Condition{Op: "eq", Left: "currency", Right: "currency"}
	tol := func(abs string) kalla.Condition {
		return kalla.Condition{Op: "tolerance", Left: "amount", Right: "amount", Abs: json.Number(abs)}
	}
	return kalla.Recipe{RecipeID: "bulk-test", Sources: kalla.Sources{
		Left:  kalla.SourceSpec{Alias: "invoices", URI: filepath.Join(dir, "left.csv"), PrimaryKey: []string{"invoice_id"}},
		Right: kalla.SourceSpec{Alias: "payments", URI: filepath.Join(dir, "right.csv"), PrimaryKey: []string{"payment_id"}},
	}, Rules: []kalla.Rule{
		{Name: "exact", Conditions: []kalla.Condition{key, cur, tol("0")}},
		{Name: "tolerance", AutoConfirm: &one, Conditions: []kalla.Condition{key, cur, tol("1.00")}},
		{Name: "by_amount", AutoConfirm: &one, Conditions: []kalla.Condition{{Op: "eq", Left: "invoice_date", Right: "paid_date"}, cur, tol("0.05")}},
	}}
}

// runItems returns every exception item of a run by key (a pair by its
// left key).
func runItems(t *testing.T, s *testServer, token, runID string) map[string]kalla.ExceptionItem {
	t.Helper()
	var page struct {
		Items []kalla.ExceptionItem `json:"items"`
	}
	if st := apiCall(t, s.url, token, "GET", "/api/exceptions?limit=1000&run_id="+runID, nil, &page); st != 200 {
		t.Fatalf("list the run's items: %d", st)
	}
	out := map[string]kalla.ExceptionItem{}
	for _, it := range page.Items {
		out[it.Key] = it
	}
	return out
}

// keysWith lists the keys of the items in a status, sorted.
func keysWith(items map[string]kalla.ExceptionItem, status string) []string {
	var out []string
	for k, it := range items {
		if it.Status == status {
			out = append(out, k)
		}
	}
	slices.Sort(out)
	return out
}

// waitFlash waits for the queue's notice after its page reloaded (or the
// error shown instead, which fails the test with its words).
func (b *tab) waitFlash(want string) {
	b.t.Helper()
	got, err := b.poll(`(() => {
		const e = document.getElementById("queue-error"), s = document.getElementById("queue-status");
		if (e && !e.hidden) return "error: " + e.textContent;
		if (s && s.textContent.includes(`+js(want)+`)) return s.textContent;
		return null;
	})()`, 30*time.Second)
	if got == nil || !strings.Contains(*got, want) {
		b.fail("wait for "+want, fmt.Errorf("the page says %v (%v)", got, err))
	}
}

// TestBulkActionsInBrowser works the queue's bulk actions in Chromium at
// 1280 and 390 px on bulkFiles (see there for the answers worked out by
// hand): a preparer filters rule tolerance with a difference of at most
// 0.05, selects all 55 matching items (two pages), cancels once, then
// accepts them with the key Enter on the confirmation, which states the
// count and the total; exactly those 55 items change. Ticking three rows
// (clicks and the x key) after another person rejected one of them,
// accepting fails all or none, naming the item, and changes nothing. A
// bulk write-off of two records leaves the one of 1500.00 pending (four
// eyes per item) and resolves the other.
func TestBulkActionsInBrowser(t *testing.T) {
	chromium(t)
	for _, w := range widths {
		t.Run(fmt.Sprint(w), func(t *testing.T) {
			dir := t.TempDir()
			for name, body := range bulkFiles() {
				if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			s := startServer(t, func(c *server.Config) { c.ApprovalAmount = "1000" }, dir)
			runID := queueRun(t, s, map[string]any{"recipe": bulkRecipe(dir)})
			waitRun(t, s, runID, 2*time.Minute, func(st kalla.RunStatus, _ float64) bool { return st == kalla.RunCompleted })
			// 57 pairs suggested by rule tolerance, 1 by by_amount, 2 left and 1 right record unmatched.
			var items map[string]kalla.ExceptionItem
			for deadline := time.Now().Add(30 * time.Second); len(items) < 61 && time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
				items = runItems(t, s, "", runID)
			}
			if len(items) != 61 || items["I07"].Rule != "by_amount" || items["I03"].Difference != "0.05" || items["B52"].Rule != "tolerance" {
				t.Fatalf("the run recorded %d items (I07 %+v, I03 %+v), want 61", len(items), items["I07"], items["I03"])
			}
			var ada, pat issued
			apiCall(t, s.url, "", "POST", "/api/tokens", map[string]string{"name": "ada", "role": "admin"}, &ada)
			apiCall(t, s.url, ada.Token, "POST", "/api/tokens", map[string]string{"name": "pat", "role": "preparer"}, &pat)

			// The filter, typed into the queue's form.
			b := tabAt(t, s.url, w)
			b.signIn("/exceptions?run_id="+runID, pat.Token, "pat (preparer)")
			b.waitText("h1", "Exceptions", 10*time.Second)
			b.loaded()
			b.choose("#fx-kind", "suggested")
			b.typeInto("#fx-rule", "tolerance")
			b.typeInto("#fx-diff", "0.05")
			b.click("#exc-filters button[type=submit]")
			b.waitText("#queue-status", "Items 1–50 of 55", 15*time.Second)
			b.loaded()
			b.fits(w)
			b.click("#bulk-all")
			b.waitText("#bulk-count", "All 55 items matching the filter are selected", 5*time.Second)
			if n := b.count("#queue input.tick:checked"); n != 50 {
				t.Errorf("%d rows ticked on the page, want all 50", n)
			}
			// Cancel once: nothing is sent.
			b.click("#bulk-accept")
			b.waitText("#bulk-q", "Accept 55 items? Total amount 1,420.00 EUR. All of them or none.", 15*time.Second)
			b.waitText("#bulk-more", "B01", 5*time.Second)
			b.fits(w)
			b.click("#bulk-cancel")
			b.waitText("#queue-status", "Cancelled: nothing was changed.", 5*time.Second)
			if got := keysWith(runItems(t, s, pat.Token, runID), kalla.ExcAccepted); len(got) != 0 {
				t.Fatalf("cancelled, yet accepted: %v", got)
			}
			// Then accept, with Enter on the focused confirmation button.
			b.click("#bulk-accept")
			b.waitText("#bulk-q", "Accept 55 items?", 15*time.Second)
			b.waitFor("the confirmation's button focused", `document.activeElement && document.activeElement.id === "bulk-go"`, 5*time.Second)
			b.key("\r")
			b.waitFlash("Accepted 55 items.")
			items = runItems(t, s, pat.Token, runID)
			want := []string{"I02", "I03", "I04"}
			for i := 1; i <= 52; i++ {
				want = append(want, fmt.Sprintf("B%02d", i))
			}
			slices.Sort(want)
			if got := keysWith(items, kalla.ExcAccepted); !slices.Equal(got, want) {
				t.Fatalf("accepted %v\nwant %v", got, want)
			}
			if got := keysWith(items, kalla.ExcOpen); !slices.Equal(got, []string{"I05", "I06", "I07", "I08", "I09", "P10"}) {
				t.Fatalf("still open: %v", got)
			}
			if items["B52"].DecidedBy != "pat" {
				t.Errorf("B52 decided by %q, want pat", items["B52"].DecidedBy)
			}

			// All or none: three rows ticked, one of them rejected by
			// someone else meanwhile.
			b.open("/exceptions?run_id=" + runID + "&kind=suggested")
			b.waitFor("three open pairs", `document.querySelectorAll("#queue tr[data-id]").length === 3`, 10*time.Second)
			b.loaded()
			b.click(`#queue tr[data-key="I05"] input.tick`)
			b.click(`#queue tr[data-key="I06"] input.tick`)
			for i := 0; i < 3 && b.read("#queue", `(document.querySelector("#queue tr.current") || {dataset: {}}).dataset.key || ""`, "the selected row") != "I07"; i++ {
				b.key("j")
			}
			b.key("x")
			b.waitText("#bulk-count", "3 items ticked on this page.", 5*time.Second)
			apiCall(t, s.url, ada.Token, "POST", "/api/exceptions/actions", map[string]any{"action": "reject", "items": []int64{items["I06"].ID}}, nil)
			b.click("#bulk-accept")
			b.waitText("#bulk-q", "Accept 3 items? Total amount 1,175.00 EUR.", 15*time.Second)
			b.click("#bulk-go")
			msg := b.waitText("#queue-error", "Nothing was changed", 15*time.Second)
			wantMsg := "I06 ↔ P06 (item " + strconv.FormatInt(items["I06"].ID, 10) + ") was changed by someone else after you selected it"
			if !strings.Contains(msg, wantMsg) || !strings.Contains(msg, "all 3 items or none") {
				t.Errorf("the refusal says %q, want it to name %q", msg, wantMsg)
			}
			b.fits(w)
			after := runItems(t, s, pat.Token, runID)
			for _, k := range []string{"I05", "I07"} {
				if after[k].Status != kalla.ExcOpen || after[k].Version != items[k].Version {
					t.Errorf("%s changed although the action was refused: %+v", k, after[k])
				}
			}
			if after["I06"].Status != kalla.ExcRejected || after["I06"].DecidedBy != "ada" {
				t.Errorf("I06: %+v, want rejected by ada", after["I06"])
			}

			// Four eyes per item: a bulk write-off of I08 (1500.00) and
			// I09 (20.00).
			b.open("/exceptions?run_id=" + runID + "&side=left")
			b.waitFor("two open left records", `document.querySelectorAll("#queue tr[data-id]").length === 2`, 10*time.Second)
			b.loaded()
			b.click("#tick-page")
			b.waitText("#bulk-count", "2 items ticked on this page.", 5*time.Second)
			b.choose("#bulk-code", "write-off")
			b.click("#bulk-resolve")
			b.waitText("#bulk-q", "Resolve 2 items with code “write-off”? Total amount 1,520.00 EUR.", 15*time.Second)
			b.waitText("#bulk-more", "waits for a second person's approval", 5*time.Second)
			b.click("#bulk-go")
			b.waitFlash("Resolved 1 item. 1 item waits for a second person's approval (four eyes).")
			after = runItems(t, s, pat.Token, runID)
			if after["I08"].Status != kalla.ExcPending || after["I09"].Status != kalla.ExcResolved || after["I09"].Code != "write-off" {
				t.Errorf("after the bulk write-off: I08 %s, I09 %s %s; want pending, resolved write-off", after["I08"].Status, after["I09"].Status, after["I09"].Code)
			}

			// Bulk assign of every open item of the run: I05 (500.00),
			// I07 (75.00) and P10 (33.00).
			b.open("/exceptions?run_id=" + runID)
			b.waitText("#queue-status", "Items 1–3 of 3", 10*time.Second)
			b.loaded()
			b.click("#bulk-all")
			b.typeInto("#bulk-assignee", "cid")
			b.click("#bulk-assign")
			b.waitText("#bulk-q", "Assign 3 items to cid? Total amount 608.00 EUR.", 15*time.Second)
			b.click("#bulk-go")
			b.waitFlash("Assigned 3 items to cid.")
			after = runItems(t, s, pat.Token, runID)
			for _, k := range []string{"I05", "I07", "P10"} {
				if after[k].Assignee != "cid" {
					t.Errorf("%s assigned to %q, want cid", k, after[k].Assignee)
				}
			}
			var v struct {
				OK bool `json:"ok"`
			}
			if st := apiCall(t, s.url, ada.Token, "GET", "/api/audit/verify", nil, &v); st != 200 || !v.OK {
				t.Errorf("audit verify: %d %+v", st, v)
			}
		})
	}
}

// TestLearnRuleInBrowser learns a rule from manual matches on the run page
// in Chromium at 1280 and 390 px, on exctest.LearnFiles (worked out by
// hand there): before anyone matched by hand the reason is shown; after
// three manual matches the proposal shows the change in words, the
// recipe's diff and the two open pairs it would match (INV-1005~P5,
// INV-1006~P6); a fourth manual match meanwhile makes Accept answer that
// the proposal changed, with the new one shown (1 pair); accepting that
// saves the recipe with exactly the proposal's rules, recorded in the
// audit chain; learning again says there is nothing left to learn.
func TestLearnRuleInBrowser(t *testing.T) {
	chromium(t)
	for _, w := range widths {
		t.Run(fmt.Sprint(w), func(t *testing.T) {
			dir := t.TempDir()
			for name, body := range exctest.LearnFiles {
				if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			s := startServer(t, func(c *server.Config) { c.ApprovalAmount = "1000000" }, dir)
			rec := exctest.LearnRecipe(dir)
			if st := apiCall(t, s.url, "", "POST", "/api/recipes", rec, nil); st != 201 {
				t.Fatalf("save the recipe: %d", st)
			}
			runID := queueRun(t, s, map[string]any{"recipe_id": rec.RecipeID})
			waitRun(t, s, runID, 2*time.Minute, func(st kalla.RunStatus, _ float64) bool { return st == kalla.RunCompleted })
			var items map[string]kalla.ExceptionItem
			for deadline := time.Now().Add(30 * time.Second); len(items) < 14 && time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
				items = runItems(t, s, "", runID)
			}
			if len(items) != 14 {
				t.Fatalf("the run recorded %d items, want 14 (7 invoices and 7 payments unmatched)", len(items))
			}
			var before kalla.StoredRecipe
			apiCall(t, s.url, "", "GET", "/api/recipes/"+rec.RecipeID, nil, &before)
			var ada, pat issued
			apiCall(t, s.url, "", "POST", "/api/tokens", map[string]string{"name": "ada", "role": "admin"}, &ada)
			apiCall(t, s.url, ada.Token, "POST", "/api/tokens", map[string]string{"name": "pat", "role": "preparer"}, &pat)
			match := func(l, r, code string) {
				t.Helper()
				body := map[string]any{"action": "match", "items": []int64{items[l].ID, items[r].ID}}
				if code != "" {
					body["code"] = code
				}
				if st := apiCall(t, s.url, pat.Token, "POST", "/api/exceptions/actions", body, nil); st != 200 {
					t.Fatalf("match %s with %s: %d", l, r, st)
				}
			}

			b := tabAt(t, s.url, w)
			b.signIn("/runs/"+runID, ada.Token, "ada (admin)")
			b.waitText("#learn-h", "Learn a rule from manual matches", 15*time.Second)
			b.loaded()
			// Nothing to learn from yet: the reason, in words.
			b.click("#learn-btn")
			b.waitText("#learn-error", "No rule can be learned: nobody has matched records by hand on the runs of recipe \"learn-test\" yet", 60*time.Second)

			match("INV-1002", "P2", "")
			match("INV-1003", "P3", "")
			match("INV-1004", "P4", "bank fee")
			b.click("#learn-btn")
			b.waitText("#learn-status", "Not saved yet.", 60*time.Second)
			b.waitText("#learn-words", "invoice_id (without ^INV-) = reference", 5*time.Second)
			b.waitText("#learn-words", "amount within 1 % of amount", 5*time.Second)
			b.waitText("#learn-impact", "Learned from 3 manual matches. On run "+runID+" the new rules would match 2 pairs of still-open records", 5*time.Second)
			pairs := b.read("#learn-pairs", `[...e.querySelectorAll("tbody tr")].map((r) => r.cells[0].textContent + "~" + r.cells[1].textContent + ":" + r.dataset.effect).sort().join(" ")`, "the proposed pairs")
			if want := "INV-1002~P2:confirms INV-1003~P3:confirms INV-1004~P4:confirms INV-1005~P5:match INV-1006~P6:match"; pairs != want {
				t.Errorf("proposed pairs %q, want %q", pairs, want)
			}
			// The recipe's diff: the new rules added, nothing removed.
			added := b.read("#learn-recipe", `[...e.querySelectorAll(".add")].map((s) => s.textContent).join("")`, "the added lines")
			removed := b.count("#learn-recipe .del")
			if !strings.Contains(added, `"name": "learned_`) || !strings.Contains(added, `"strip_left": "^INV-"`) {
				t.Errorf("the recipe diff adds:\n%s", added)
			}
			if removed > 1 { // at most the closing bracket of the rules moves
				t.Errorf("the recipe diff removes %d lines", removed)
			}
			b.fits(w)

			// Someone matches another pair meanwhile: the proposal changed.
			match("INV-1005", "P5", "bank fee")
			b.click("#learn-accept")
			b.waitText("#learn-error", "The proposal changed since it was shown", 60*time.Second)
			b.waitText("#learn-impact", "Learned from 4 manual matches. On run "+runID+" the new rules would match 1 pair", 60*time.Second)
			var unchanged kalla.StoredRecipe
			apiCall(t, s.url, ada.Token, "GET", "/api/recipes/"+rec.RecipeID, nil, &unchanged)
			if len(unchanged.Recipe.Rules) != 1 {
				t.Fatalf("the recipe changed on a refused acceptance: %d rules", len(unchanged.Recipe.Rules))
			}
			status := b.text("#learn-status")
			b.click("#learn-accept")
			saved := b.waitText("#learn-status", "Saved: recipe learn-test now has the rules exact, learned_", 60*time.Second)
			if status == saved {
				t.Fatal("the status did not change")
			}
			var stored kalla.StoredRecipe
			apiCall(t, s.url, ada.Token, "GET", "/api/recipes/"+rec.RecipeID, nil, &stored)
			var names []string
			for _, r := range stored.Recipe.Rules {
				names = append(names, r.Name)
			}
			if len(names) < 2 || names[0] != "exact" || !strings.Contains(saved, strings.Join(names, ", ")+" (audit entry ") || !stored.UpdatedAt.After(before.UpdatedAt) {
				t.Errorf("saved recipe: rules %v, updated %s (was %s); the page says %q", names, stored.UpdatedAt, before.UpdatedAt, saved)
			}
			for _, r := range stored.Recipe.Rules[1:] {
				if !strings.HasPrefix(r.Name, "learned_") {
					t.Errorf("rule %s is not a learned one", r.Name)
				}
			}
			var v struct {
				OK      bool  `json:"ok"`
				Entries int64 `json:"entries"`
			}
			// 8 item entries (four matches of two records) and the recipe change.
			if st := apiCall(t, s.url, ada.Token, "GET", "/api/audit/verify", nil, &v); st != 200 || !v.OK || v.Entries != 9 {
				t.Errorf("audit verify: %d %+v, want 9 entries", st, v)
			}
			// Learning again: the rules are the recipe's own now.
			b.click("#learn-btn")
			b.waitText("#learn-error", "No rule can be learned: the 4 manual matches teach no rule the recipe lacks", 60*time.Second)
			b.fits(w)
		})
	}
}
