package ui_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/kalla-recon/kalla/internal/gen"
	"github.com/kalla-recon/kalla/internal/kalla"
)

// overflowJS lists elements reaching past the right edge of the window,
// those outside any box that scrolls or clips first: what to look at when
// a page scrolls sideways (an absolutely positioned element inside a
// scrolling box can escape it too, so the others follow).
const overflowJS = `(() => {
	const vw = document.documentElement.clientWidth, out = [], inBox = [];
	for (const e of document.querySelectorAll("body *")) {
		const r = e.getBoundingClientRect();
		if (r.width === 0 || r.right <= vw + 0.5) continue;
		let p = e.parentElement, boxed = false;
		for (; p && p !== document.body; p = p.parentElement) {
			const o = getComputedStyle(p).overflowX;
			if (o === "auto" || o === "scroll" || o === "hidden") { boxed = true; break; }
		}
		(boxed ? inBox : out).push(e.tagName.toLowerCase() + (e.id ? "#" + e.id : "") + (e.className && typeof e.className === "string" ? "." + e.className.split(" ").join(".") : "") + " right=" + Math.round(r.right));
	}
	return out.concat(inBox).slice(0, 14);
})()`

// TestNarrowScreens visits every page in a 390 px wide window (a phone)
// and in a 1280 px one: no page may be wider than its window (wide
// tables scroll inside their own box), the main navigation's links are
// all inside the window, and every result tab of the run page can be
// seen and reached.
func TestNarrowScreens(t *testing.T) {
	chromium(t)
	data := newDataset(t, 300)
	s := startServer(t, nil, data.dir)
	for alias, uri := range map[string]string{"invoices": data.files.Invoices, "payments": data.files.Payments} {
		apiCall(t, s.url, "", "POST", "/api/sources", map[string]string{"alias": alias, "uri": uri}, nil)
	}
	rec := gen.Recipe(data.files)
	apiCall(t, s.url, "", "POST", "/api/recipes", rec, nil)
	run := queueRun(t, s, map[string]string{"recipe_id": rec.RecipeID})
	waitRun(t, s, run, 60*time.Second, func(st kalla.RunStatus, _ float64) bool { return st.Done() })
	b := newTab(t, s.url)
	parent := t

	pages := []struct{ path, ready string }{
		{"/", "Recent runs"},
		{"/sources", "rows"},
		{"/sources/payments", "rows in the source"},
		{"/recipes", rec.RecipeID},
		{"/recipes/new", "Left"},
		{"/recipes/" + rec.RecipeID, "reference_number"},
		{"/runs", rec.RecipeID},
		{"/runs/" + run, "Pairs 1–"},
		{"/exceptions", "open"},
		{"/exceptions?kind=unmatched&status=any&max_difference=", "Select all"},
		{firstException(t, s, run), "Reason"},
		{"/no-such-page", "no page"},
	}
	for _, width := range []int64{390, 1280} {
		for _, p := range pages {
			t.Run(strings.TrimPrefix(p.path, "/")+"@"+itoa(width), func(t *testing.T) {
				b.t = t
				defer func() { b.t = parent }()
				b.do("set the window width", chromedp.EmulateViewport(width, 844))
				b.open(p.path)
				b.waitText("main", p.ready, 30*time.Second)
				ctx, cancel := context.WithTimeout(b.ctx, 30*time.Second)
				defer cancel()
				wide, err := chromedp.Run(ctx, chromedp.Evaluate[int64](`document.documentElement.scrollWidth`))
				if err != nil {
					t.Fatal(err)
				}
				if wide > width {
					bad, _ := chromedp.Run(ctx, chromedp.Evaluate[[]string](overflowJS))
					t.Errorf("the page is %d px wide in a %d px window; too wide: %v", wide, width, bad)
				}
				b.eval("every navigation link inside the window", `[...document.querySelectorAll(".top nav a")].every((a) => {
					const r = a.getBoundingClientRect(); return r.width > 0 && r.left >= 0 && r.right <= document.documentElement.clientWidth; })`)
				if strings.HasPrefix(p.path, "/runs/") {
					b.eval("every result tab inside the window", `[...document.querySelectorAll('[role="tab"]')].every((e) => {
						const r = e.getBoundingClientRect(); return r.width > 0 && r.left >= 0 && r.right <= document.documentElement.clientWidth; })`)
					// Each tab's table, with its own columns and reasons,
					// scrolls in its box: the page stays as wide as the window.
					tabs, err := chromedp.Run(ctx, chromedp.Evaluate[[]string](`[...document.querySelectorAll('[role="tab"]')].map((e) => e.dataset.table)`))
					if err != nil || len(tabs) < 3 {
						t.Fatalf("the run page's tabs: %v %v", tabs, err)
					}
					for _, tab := range append(tabs[1:], tabs[0]) {
						b.click("#tab-" + tab)
						b.waitFor(tab+" shown", `document.getElementById("tab-`+tab+`").getAttribute("aria-selected") === "true" && !/Loading/.test(document.getElementById("page-info").textContent) && document.querySelector("#table tbody tr")`, 30*time.Second)
						if wide := b.scrollWidth(); wide > width {
							bad, _ := chromedp.Run(ctx, chromedp.Evaluate[[]string](overflowJS))
							t.Errorf("the run page's %s tab is %d px wide in a %d px window; too wide: %v", tab, wide, width, bad)
						}
					}
				}
			})
		}
	}
}

func itoa(n int64) string { return itoaPlain(n) }

func itoaPlain(n int64) string { return strings.ReplaceAll(fmtInt(n), ",", "") }

// emulate sets the tab's viewport to width × 844 px.
func emulate(width int64) chromedp.Action[chromedp.Void] { return chromedp.EmulateViewport(width, 844) }

// scrollWidth is the page's width as laid out.
func (b *tab) scrollWidth() int64 {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 30*time.Second)
	defer cancel()
	w, err := chromedp.Run(ctx, chromedp.Evaluate[int64](`document.documentElement.scrollWidth`))
	if err != nil {
		b.fail("read the page's width", err)
	}
	return w
}

// waitUntil waits until expr, a script returning a string or null,
// returns a string.
func (b *tab) waitUntil(what, expr string, timeout time.Duration) string {
	b.t.Helper()
	got, err := b.poll(expr, timeout)
	if got == nil {
		if err == nil {
			err = errTimeout
		}
		b.fail("wait for "+what, err)
		return ""
	}
	return *got
}
