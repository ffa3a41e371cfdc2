package ui_test

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/kalla-recon/kalla/internal/exceptions/exctest"
	"github.com/kalla-recon/kalla/internal/kalla"
	"github.com/kalla-recon/kalla/internal/server"
)

// signIn signs a tab in with a token from the sign-in page it is shown.
func (b *tab) signIn(path, token, who string) {
	b.t.Helper()
	b.open(path)
	b.waitText("h1", "Sign in", 10*time.Second)
	b.typeInto("#token", token)
	b.click("form button[type=submit]")
	b.waitText("#who", "Signed in as "+who, 10*time.Second)
}

// key presses a key as the keyboard does (keydown, keypress, keyup
// dispatched by the browser's input pipeline to the focused element).
func (b *tab) key(k string) {
	b.t.Helper()
	b.do("press "+k, chromedp.KeyEvent(k))
}

// count reads a status's count in the queue's counts bar.
func (b *tab) statusCount(status string) string {
	b.t.Helper()
	return strings.TrimSpace(b.text(`#exc-counts a[data-status="` + status + `"] .stat-n`))
}

// waitCount waits until a status's count in the counts bar reads want.
func (b *tab) waitCount(status, want string) {
	b.t.Helper()
	b.waitFor(status+" count "+want, `(document.querySelector('#exc-counts a[data-status="`+status+`"] .stat-n') || {}).textContent === `+js(want), 15*time.Second)
}

// firstException waits for a completed run's exception items (recorded
// by the runner's completion hook) and returns the first one's page.
func firstException(t *testing.T, s *testServer, runID string) string {
	t.Helper()
	var page struct {
		Items []kalla.ExceptionItem `json:"items"`
	}
	for deadline := time.Now().Add(30 * time.Second); len(page.Items) == 0; time.Sleep(50 * time.Millisecond) {
		apiCall(t, s.url, s.token, "GET", "/api/exceptions?limit=1&run_id="+runID, nil, &page)
		if time.Now().After(deadline) {
			t.Fatalf("run %s recorded no exception items", runID)
		}
	}
	return "/exceptions/" + strconv.FormatInt(page.Items[0].ID, 10)
}

// loaded waits until the page's scripts have run (module scripts run
// before the document is complete), so their handlers are in place before
// a key or a click.
func (b *tab) loaded() {
	b.t.Helper()
	b.waitFor("the page loaded", `document.readyState === "complete"`, 15*time.Second)
}

// acted waits for the item page's answer to an action: the notice shown
// after the page reloads (which must contain want), or the error shown
// instead, which fails the test with its words.
func (b *tab) acted(want string) {
	b.t.Helper()
	got, err := b.poll(`(() => {
		const e = document.getElementById("exc-error"), f = document.getElementById("exc-flash");
		if (e && !e.hidden) return "error: " + e.textContent;
		if (f && !f.hidden && f.textContent.includes(`+js(want)+`)) return f.textContent;
		return null;
	})()`, 15*time.Second)
	if got == nil || !strings.Contains(*got, want) {
		says := "nothing"
		if got != nil {
			says = *got
		}
		b.fail("wait for "+want, fmt.Errorf("the page says %s (%v)", says, err))
	}
}

// TestExceptionQueueInBrowser works a run's exceptions in Chromium at 1280
// and 390 px, on the exception test data (internal/exceptions/exctest): a
// preparer signs in, filters the queue, accepts a suggested pair with the
// keyboard, matches one invoice with two payments by hand (sums and
// difference shown, a code asked for beyond the tolerance), resolves a
// 1500.00 invoice as a write-off (pending: four eyes above 1000), sees a
// stale page refused in words; an approver with another token approves it
// in a second browser while the preparer's queue counts follow without a
// reload; the run page shows the decisions; comment, assign, reopen and
// unmatch work from the item page; and the audit chain verifies.
func TestExceptionQueueInBrowser(t *testing.T) {
	chromium(t)
	for _, w := range widths {
		t.Run(fmt.Sprint(w), func(t *testing.T) {
			dir := t.TempDir()
			for name, body := range map[string]string{"left.csv": exctest.LeftCSV, "right.csv": exctest.RightCSV} {
				if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			s := startServer(t, func(c *server.Config) { c.ApprovalAmount = "1000" }, dir)
			runID := queueRun(t, s, map[string]any{"recipe": exctest.Recipe(dir)})
			waitRun(t, s, runID, 2*time.Minute, func(st kalla.RunStatus, _ float64) bool { return st == kalla.RunCompleted })
			var page struct {
				Items []kalla.ExceptionItem `json:"items"`
				Total int64                 `json:"total"`
			}
			for deadline := time.Now().Add(30 * time.Second); page.Total < 10 && time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
				apiCall(t, s.url, "", "GET", "/api/exceptions?run_id="+runID+"&limit=50", nil, &page)
			}
			if page.Total != 10 {
				t.Fatalf("the run recorded %d exception items, want 10", page.Total)
			}
			id, num := map[string]string{}, map[string]int64{}
			for _, it := range page.Items {
				id[it.Key], num[it.Key] = strconv.FormatInt(it.ID, 10), it.ID
			}
			var ada, pat, abe issued
			apiCall(t, s.url, "", "POST", "/api/tokens", map[string]string{"name": "ada", "role": "admin"}, &ada)
			apiCall(t, s.url, ada.Token, "POST", "/api/tokens", map[string]string{"name": "pat", "role": "preparer"}, &pat)
			apiCall(t, s.url, ada.Token, "POST", "/api/tokens", map[string]string{"name": "abe", "role": "approver"}, &abe)
			if pat.Token == "" || abe.Token == "" {
				t.Fatalf("tokens not issued: %+v %+v", pat, abe)
			}

			// The preparer filters the queue to the run's suggested pairs.
			b := tabAt(t, s.url, w)
			b.signIn("/exceptions", pat.Token, "pat (preparer)")
			b.waitText("h1", "Exceptions", 10*time.Second)
			b.waitText("#keys-hint", "accept", 5*time.Second)
			b.loaded()
			b.choose("#fx-run", runID)
			b.choose("#fx-side", "pair")
			b.click("#exc-filters button[type=submit]")
			b.waitFor("the filtered queue", `location.search.includes("side=pair") && document.querySelectorAll("#queue tr[data-id]").length === 2`, 10*time.Second)
			b.fits(w)
			b.loaded()
			if got := b.statusCount("open"); got != "2" {
				t.Errorf("open pairs counted %s, want 2", got)
			}

			// j selects the first pair (I3 ↔ P3), a accepts it; the
			// selection moves on and the counts follow.
			b.key("j")
			b.waitFor("I3 selected", `document.querySelector("#queue tr.current").dataset.key === "I3"`, 5*time.Second)
			b.key("a")
			b.waitText(`#queue tr[data-key="I3"] .st`, "accepted", 10*time.Second)
			b.waitFor("I4 selected next", `document.querySelector("#queue tr.current").dataset.key === "I4"`, 5*time.Second)
			b.waitCount("accepted", "1")
			b.waitCount("open", "1")
			// r on an accepted pair is refused in words, nothing sent.
			b.key("k")
			b.key("r")
			b.waitText("#queue-error", "Only an open suggested pair can be rejected: I3 is accepted", 5*time.Second)

			// A filter that is not a number is refused in words.
			b.open("/exceptions?min_amount=lots")
			b.waitText("#filter-error", `the lowest amount "lots" is not a number`, 10*time.Second)

			// Unmatched left records: the reason is on screen, wrapped.
			b.open("/exceptions?run_id=" + runID + "&side=left")
			b.waitFor("the left records", `document.querySelectorAll("#queue tr[data-id]").length === 4`, 10*time.Second)
			b.fits(w)
			// The reason is the column after the tick box and the item; the
			// four rows' reasons must be found, so the check cannot pass empty.
			b.eval("the reasons are on screen", fmt.Sprintf(`(() => { const cells = [...document.querySelectorAll("#queue tr[data-id] td.reason:nth-child(3)")]; return cells.length === 4 && cells.every((c) => {
				const r = c.getBoundingClientRect();
				return c.textContent.trim().length > 0 && r.left >= 0 && r.right <= %d && r.width > 100;
			}); })()`, w))

			// j moves down to I8, Enter opens it.
			b.loaded()
			for i := 0; i < 4 && b.read("#queue", `(document.querySelector("#queue tr.current") || {dataset: {}}).dataset.key || ""`, "the selected row") != "I8"; i++ {
				b.key("j")
			}
			b.key("\r")
			// I8 (50.00) by hand with P8a (30.00) and P8b (20.00).
			b.waitText("h1", "Unmatched left record I8", 10*time.Second)
			b.loaded()
			b.fits(w)
			b.click(`#cands-right input[data-id="` + id["P8a"] + `"]`)
			b.click(`#cands-right input[data-id="` + id["P5"] + `"]`)
			b.waitText("#sum-right", "121.00", 5*time.Second)
			b.waitText("#sum-diff", "71.00", 5*time.Second)
			b.waitFor("a code asked for beyond the tolerance", `!document.getElementById("match-code-wrap").hidden && document.getElementById("match").disabled`, 5*time.Second)
			b.click(`#cands-right input[data-id="` + id["P5"] + `"]`)
			b.click(`#cands-right input[data-id="` + id["P8b"] + `"]`)
			b.waitText("#sum-left", "50.00", 5*time.Second)
			b.waitText("#sum-right", "50.00", 5*time.Second)
			b.waitText("#sum-diff", "0.00", 5*time.Second)
			b.waitFor("no code needed within the tolerance", `document.getElementById("match-code-wrap").hidden && !document.getElementById("match").disabled`, 5*time.Second)
			b.click("#match")
			b.acted("Match: done")
			b.waitText(".meta .badge", "matched", 5*time.Second)

			// I7 (1500.00 EUR) written off: pending, naming who must approve.
			b.open("/exceptions/" + id["I7"])
			b.waitText("h1", "Unmatched left record I7", 10*time.Second)
			b.loaded()
			b.choose("#resolve-code", "write-off")
			b.click("#resolve")
			b.acted("pending approval")
			b.waitText("#pending", "prepared by pat", 5*time.Second)
			b.waitText("#pending", "other than pat: abe, ada", 5*time.Second)
			b.waitFor("no approve button for a preparer", `getComputedStyle(document.getElementById("approve")).display === "none"`, 5*time.Second)

			// A page gone stale (someone assigned I5 meanwhile) is refused
			// and reloaded, in words.
			b.open("/exceptions/" + id["I5"])
			b.waitText("h1", "Unmatched left record I5", 10*time.Second)
			b.loaded()
			apiCall(t, s.url, ada.Token, "POST", "/api/exceptions/actions", map[string]any{"action": "assign", "items": []int64{num["I5"]}, "assignee": "cid"}, nil)
			b.choose("#resolve-code", "timing difference")
			b.click("#resolve")
			b.acted("Someone else changed this item; reloaded.")
			b.waitText("#assigned", "cid", 5*time.Second)

			// The preparer watches the queue while the approver approves.
			b.open("/exceptions?run_id=" + runID)
			b.waitCount("pending", "1")
			b.waitCount("resolved", "0")
			b.eval("mark the page", `(() => { window.__same = true; return true; })()`)
			a := tabAt(t, s.url, w)
			a.signIn("/exceptions/"+id["I7"], abe.Token, "abe (approver)")
			a.waitText("#pending", "prepared by pat", 10*time.Second)
			a.loaded()
			a.click("#approve")
			a.acted("Approve: done")
			a.waitText(".meta .badge", "resolved", 5*time.Second)
			b.waitCount("pending", "0")
			b.waitCount("resolved", "1")
			b.waitCount("matched", "3")
			b.waitCount("accepted", "1")
			b.waitCount("open", "5")
			b.eval("the counts changed without a reload", `window.__same === true`)

			// The run page's decisions, with amounts.
			a.open("/runs/" + runID)
			a.waitText("#d-rule", "2 pairs", 10*time.Second)
			a.waitText("#d-hand", "3 · 100.00 EUR", 5*time.Second)
			a.waitText("#d-resolved", "write-off: 1 · 1,500.00 EUR", 5*time.Second)
			a.waitText("#d-pending", "0", 5*time.Second)
			a.waitText("#d-open", "right: 2", 5*time.Second)
			a.fits(w)

			// The other actions from the item page: comment, assign,
			// reopen a resolved record, unmatch a manual match (whole).
			a.open("/exceptions/" + id["I9"])
			a.waitText("h1", "Unmatched left record I9", 10*time.Second)
			a.loaded()
			a.typeInto("#note", "asked the bank for the USD statement")
			a.click("#comment")
			a.acted("Comment: done")
			a.waitText("#history", "asked the bank for the USD statement", 5*time.Second)
			a.typeInto("#assignee", "pat")
			a.click("#assign")
			a.acted("Assign: done")
			a.waitText("#assigned", "pat", 5*time.Second)
			a.open("/exceptions/" + id["I7"])
			a.waitText("h1", "Unmatched left record I7", 10*time.Second)
			a.loaded()
			a.click("#reopen")
			a.acted("Reopen: done")
			a.waitText(".meta .badge", "open", 5*time.Second)
			a.open("/exceptions/" + id["P8b"])
			a.waitText("h1", "Unmatched right record P8b", 10*time.Second)
			a.loaded()
			a.click("#unmatch")
			a.acted("Unmatch: done")
			a.waitText(".meta .badge", "open", 5*time.Second)
			b.waitCount("matched", "0")
			b.waitCount("resolved", "0")
			b.waitCount("open", "9")

			var v struct {
				OK      bool   `json:"ok"`
				Entries int64  `json:"entries"`
				Message string `json:"message"`
			}
			if st := apiCall(t, s.url, abe.Token, "GET", "/api/audit/verify", nil, &v); st != 200 || !v.OK || v.Entries < 13 {
				t.Errorf("audit verify: %d %+v", st, v)
			}
		})
	}
}
