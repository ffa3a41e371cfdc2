package ui_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"

	"github.com/kalla-recon/kalla/internal/gen"
	"github.com/kalla-recon/kalla/internal/kalla"
)

// focusInfo describes the focused element and how its focus shows.
type focusInfo struct {
	ID      string `json:"id"`
	Tag     string `json:"tag"`
	Text    string `json:"text"`
	Outline string `json:"outline"`
	Visible bool   `json:"visible"`
	// Focused: the document has focus (document.hasFocus()), without
	// which no focus ring shows; said when a ring is missing.
	Focused bool `json:"focused"`
}

const focusedJS = `(() => {
	const e = document.activeElement;
	if (!e || e === document.body) return { id: "", tag: "BODY", text: "", outline: "", visible: false };
	const s = getComputedStyle(e);
	const visible = (s.outlineStyle !== "none" && parseFloat(s.outlineWidth) >= 2) || (s.boxShadow && s.boxShadow !== "none");
	return { id: e.id, tag: e.tagName, text: (e.textContent || e.value || "").trim().slice(0, 40), outline: s.outlineStyle + " " + s.outlineWidth, visible, focused: document.hasFocus() };
})()`

// unlabelledJS lists the visible form fields and buttons that have no
// accessible name.
const unlabelledJS = `(() => {
	const out = [];
	for (const e of document.querySelectorAll("input, select, textarea, button")) {
		if (e.type === "hidden" || e.getClientRects().length === 0) continue;
		const named = (e.labels && e.labels.length > 0) || e.getAttribute("aria-label") || e.getAttribute("aria-labelledby") ||
			(e.tagName === "BUTTON" && e.textContent.trim() !== "");
		if (!named) out.push(e.outerHTML.slice(0, 120));
	}
	return out;
})()`

// TestKeyboardAndLabels checks on every page that each form field and
// button has a label, that Tab reaches the page's controls and each one
// shows a visible focus ring, that the result tabs follow the arrow keys,
// and that nothing overflows the page sideways at 1280 px.
func TestKeyboardAndLabels(t *testing.T) {
	chromium(t)
	data := newDataset(t, 500)
	s := startServer(t, nil, data.dir)
	for alias, uri := range map[string]string{"invoices": data.files.Invoices, "payments": data.files.Payments} {
		apiCall(t, s.url, "", "POST", "/api/sources", map[string]string{"alias": alias, "uri": uri}, nil)
	}
	rec := gen.Recipe(data.files)
	apiCall(t, s.url, "", "POST", "/api/recipes", rec, nil)
	run := queueRun(t, s, map[string]string{"recipe_id": rec.RecipeID})
	waitRun(t, s, run, 60*time.Second, func(st kalla.RunStatus, _ float64) bool { return st.Done() })
	item := firstException(t, s, run)
	b := newTab(t, s.url)
	parent := t

	for _, p := range []struct {
		path, ready string
		reach       []string // ids Tab must reach
	}{
		{"/", "Recent runs", nil},
		{"/sources", "rows", []string{"uri-alias", "uri-type", "uri-uri", "uri-password", "up-alias", "up-file"}},
		{"/sources/payments", "rows in the source", []string{"f-column", "f-op", "f-value", "limit"}},
		{"/recipes", rec.RecipeID, nil},
		{"/recipes/" + rec.RecipeID, "reference_number", []string{"r-id", "left-source", "right-source", "suggest", "write-sql", "r-sql", "validate", "sample", "preview-match", "save"}},
		{"/runs", rec.RecipeID, []string{"start-recipe", "fl-status", "fl-recipe"}},
		{"/runs/" + run, "Pairs 1–", []string{"tab-matched", "search", "next"}},
		{"/exceptions", "open", []string{"fx-run", "fx-status", "fx-reason", "fx-min", "fx-assignee"}},
		{item, "Reason", []string{"note", "assignee"}},
	} {
		t.Run(strings.TrimPrefix(p.path, "/"), func(t *testing.T) {
			b.t = t // the tab fails the subtest, from its goroutine
			defer func() { b.t = parent }()
			b.open(p.path)
			b.waitText("main", p.ready, 30*time.Second)
			ctx, cancel := context.WithTimeout(b.ctx, 60*time.Second)
			defer cancel()
			bad, err := chromedp.Run(ctx, chromedp.Evaluate[[]string](unlabelledJS))
			if err != nil {
				t.Fatal(err)
			}
			for _, e := range bad {
				t.Errorf("no label: %s", e)
			}
			wide, err := chromedp.Run(ctx, chromedp.Evaluate[int](`document.documentElement.scrollWidth`))
			if err != nil {
				t.Fatal(err)
			}
			if wide > 1280 {
				t.Errorf("the page is %d px wide at a 1280 px window", wide)
			}
			reached := map[string]bool{}
			for i := 0; i < 120; i++ {
				if err := chromedp.Do(ctx, chromedp.KeyEvent(kb.Tab)); err != nil {
					t.Fatal(err)
				}
				f, err := chromedp.Run(ctx, chromedp.Evaluate[focusInfo](focusedJS))
				if err != nil {
					t.Fatal(err)
				}
				if f.Tag == "BODY" {
					continue
				}
				// Under load the browser has been seen to report a just
				// focused link's style before :focus-visible applied (once
				// in many full-suite runs); the outline must show within
				// a moment, so look again before failing.
				for try := 0; !f.Visible && try < 5; try++ {
					time.Sleep(100 * time.Millisecond)
					if f, err = chromedp.Run(ctx, chromedp.Evaluate[focusInfo](focusedJS)); err != nil {
						t.Fatal(err)
					}
				}
				if !f.Visible {
					t.Errorf("focus on <%s id=%q> %q does not show (outline %s, document focused %v)", f.Tag, f.ID, f.Text, f.Outline, f.Focused)
				}
				reached[f.ID] = true
			}
			for _, id := range p.reach {
				if !reached[id] {
					t.Errorf("Tab never reached #%s", id)
				}
			}
		})
	}

	// Result tabs: arrow keys move between them.
	t.Run("tabs", func(t *testing.T) {
		b.t = t
		defer func() { b.t = parent }()
		b.open("/runs/" + run)
		b.waitText("#page-info", "Pairs 1–", 20*time.Second)
		b.do("focus the first tab", chromedp.Focus(chromedp.ID("tab-matched")), chromedp.KeyEvent(kb.ArrowRight))
		b.waitText(`[role="tab"][aria-selected="true"]`, "Unmatched left", 5*time.Second)
		b.eval("focus follows", `document.activeElement.id === "tab-unmatched_left"`)
		b.waitText("#page-info", "of "+fmtInt(int64(data.truth.OrphanInvoices)), 20*time.Second)
	})
}
