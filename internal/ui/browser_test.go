package ui_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/browser"
	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"

	"github.com/kalla-recon/kalla/internal/server"
	"github.com/kalla-recon/kalla/internal/testenv"
	"github.com/kalla-recon/kalla/internal/testenv/testserver"
)

// Browser tests drive a real headless Chromium (Debian package chromium,
// installed by scripts/services.sh) against a real server started in
// process on 127.0.0.1:0 with a temporary data folder. Without Chromium
// they skip, unless KALLA_TEST_REQUIRE_SERVICES=1 (CI), where they fail.

// envChromium overrides the browser's path (default /usr/bin/chromium).
const envChromium = "KALLA_CHROMIUM"

// envScreenshots names the folder where screenshots are written: the
// screenshots of failing tests, and TestScreenshots' one per page. Unset,
// failure screenshots go to the system's temporary folder.
const envScreenshots = "KALLA_SCREENSHOT_DIR"

// chromium returns the browser's path, or skips (fails in CI) the test
// when there is none.
func chromium(t *testing.T) string {
	t.Helper()
	p := os.Getenv(envChromium)
	if p == "" {
		p = "/usr/bin/chromium"
	}
	if _, err := os.Stat(p); err != nil {
		if testenv.Required() {
			t.Fatalf("chromium not found at %s and services are required (%s=1 or %s=true): install it with `bash scripts/services.sh start` (apt-get install chromium)", p, testenv.EnvRequireServices, testenv.EnvCI)
		}
		t.Skipf("chromium not found at %s: install it with `bash scripts/services.sh start` (or set %s)", p, envChromium)
	}
	return p
}

// testServer is a real Kalla server for a browser test.
type testServer struct {
	*server.Main
	url     string
	dataDir string
	token   string
}

// startServer starts a server on 127.0.0.1:0 whose file roots include
// roots; edit may change its configuration first. It is closed when the
// test ends.
func startServer(t *testing.T, edit func(*server.Config), roots ...string) *testServer {
	t.Helper()
	cfg := testserver.Config(t, slog.LevelWarn, roots...)
	if edit != nil {
		edit(&cfg)
	}
	m := testserver.Start(t, cfg)
	return &testServer{Main: m, url: m.URL(), dataDir: cfg.DataDir, token: cfg.APIToken}
}

// tab is one browser tab on a test server. Its methods fail the test on
// error; a failing test saves a screenshot of the tab.
type tab struct {
	t         *testing.T
	ctx       context.Context
	base      string
	downloads string

	mu         sync.Mutex
	exceptions []string
}

// newTab starts Chromium with the flags these machines need (and extra
// ones a test adds) and opens a tab, 1280 px wide, that saves downloads in
// a temporary folder.
func newTab(t *testing.T, base string, extra ...chromedp.ExecAllocatorOption) *tab {
	t.Helper()
	exe := chromium(t)
	// Chromium keeps its singleton socket in a folder of its own under
	// TMPDIR (org.chromium.Chromium.*), which it leaves behind when it is
	// stopped: about 36 folders in /tmp after each run of the suite. A
	// short folder of the test's own (a socket's path is limited to 108
	// bytes) is removed once the browser is gone: cleanups run last-in
	// first-out, and the browser's is registered below.
	tmp, err := os.MkdirTemp("", "kalla-chromium-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(tmp) })
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.Env("TMPDIR="+tmp),
		chromedp.ExecPath(exe),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-quic", true),
		chromedp.NoFirstRun,
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1280, 900),
	)
	opts = append(opts, extra...)
	root, stop := context.WithTimeout(context.Background(), 4*time.Minute)
	actx, acancel := chromedp.NewExecAllocator(root, opts...)
	ctx, cancel := chromedp.NewContext(actx)
	tb := &tab{t: t, ctx: ctx, base: base, downloads: t.TempDir()}
	t.Cleanup(func() { cancel(); acancel(); stop() })
	t.Cleanup(tb.screenshotOnFailure) // runs first: cleanups run last-in first-out
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("start chromium: %v", err)
	}
	// The page behaves as focused whatever the browser's own window
	// does: a Tab past the last control hands focus to the browser's
	// toolbar, and a page without focus shows no focus ring. Focus rings
	// are the page's business; the window's focus is not.
	if _, err := chromedp.Call(ctx, emulation.SetFocusEmulationEnabled, emulation.SetFocusEmulationEnabledParams{Enabled: true}); err != nil {
		t.Fatalf("emulate focus: %v", err)
	}
	if _, err := chromedp.CallBrowser(ctx, browser.SetDownloadBehavior, browser.SetDownloadBehaviorParams{
		Behavior: browser.SetDownloadBehaviorBehaviorAllow, DownloadPath: tb.downloads, EventsEnabled: new(true),
	}); err != nil {
		t.Fatalf("allow downloads: %v", err)
	}
	// Uncaught script errors fail the test: a page whose script broke
	// would otherwise fail silently for its user. So do refusals by the
	// content security policy: something the page needs was blocked.
	msgs := chromedp.Console(ctx)
	go func() {
		for m, err := range msgs {
			if err != nil {
				return
			}
			if m.IsException() || strings.Contains(m.Text, "Content Security Policy") {
				tb.mu.Lock()
				tb.exceptions = append(tb.exceptions, fmt.Sprintf("%s:%d: %s", m.URL, m.Line+1, m.Text))
				tb.mu.Unlock()
			}
		}
	}()
	t.Cleanup(func() {
		tb.mu.Lock()
		defer tb.mu.Unlock()
		for _, e := range tb.exceptions {
			t.Errorf("page error (uncaught exception or content blocked by the security policy): %s", e)
		}
	})
	return tb
}

// screenshotDir is where screenshots go.
func screenshotDir(t *testing.T) string {
	d := os.Getenv(envScreenshots)
	if d == "" {
		d = filepath.Join(os.TempDir(), "kalla-ui-screenshots")
	}
	if err := os.MkdirAll(d, 0o755); err != nil {
		t.Errorf("screenshot folder: %v", err)
	}
	return d
}

var unsafeName = regexp.MustCompile(`[^A-Za-z0-9_.-]+`)

func (b *tab) screenshotOnFailure() {
	if !b.t.Failed() {
		return
	}
	path := filepath.Join(screenshotDir(b.t), "FAILED-"+unsafeName.ReplaceAllString(b.t.Name(), "_")+".png")
	if err := b.saveScreenshot(path); err != nil {
		b.t.Logf("no failure screenshot: %v", err)
		return
	}
	b.t.Logf("screenshot of the failure: %s", path)
}

// saveScreenshot writes a full-page PNG of the tab.
func (b *tab) saveScreenshot(path string) error {
	ctx, cancel := context.WithTimeout(b.ctx, 20*time.Second)
	defer cancel()
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		return err
	}
	return os.WriteFile(path, png, 0o644)
}

// fail stops the test with what was being done.
func (b *tab) fail(what string, err error) {
	b.t.Helper()
	url, _ := chromedp.Run(b.ctx, chromedp.Location())
	b.t.Fatalf("%s (page %s): %v", what, url, err)
}

// do runs steps.
func (b *tab) do(what string, steps ...chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 60*time.Second)
	defer cancel()
	if err := chromedp.Do(ctx, steps...); err != nil {
		b.fail(what, err)
	}
}

// open navigates to a path of the server and waits for the page's body.
func (b *tab) open(path string) {
	b.t.Helper()
	b.do("open "+path, chromedp.Navigate(b.base+path), chromedp.WaitReady(chromedp.CSS("body")))
}

// click clicks the first element matching css. chromedp finds the node,
// then clicks it by its id: when the page replaces that part of the
// document in between (a live table's refresh re-reads chromedp's DOM
// tree), the id is gone and the click is made again on the element the
// selector matches now. chromedp clicks at the point where it measured
// the element, so the click first waits for the element's box to stay
// put: a page that fills a table cell after loading moves the cells
// beside it, and TestRulesInBuilder once followed a row's "Use in
// recipe" link where that row's Delete button had been a moment before.
func (b *tab) click(css string) {
	b.t.Helper()
	b.onFreshNode("click "+css, func() { b.still(css) }, chromedp.Click(chromedp.CSS(css), chromedp.NodeVisible))
}

// still waits until the first element matching css has a box and reads
// the same box twice in a row, the readings one poll apart.
func (b *tab) still(css string) {
	b.t.Helper()
	expr := fmt.Sprintf(`(() => { const e = document.querySelector(%s); if (!e) return null; const r = e.getBoundingClientRect(); return [r.x, r.y, r.width, r.height].join(" "); })()`, js(css))
	deadline := time.Now().Add(30 * time.Second)
	last := ""
	for {
		got, err := b.poll(expr, time.Until(deadline))
		if got == nil {
			b.fail("find "+css, fmt.Errorf("no such element within 30s (last error: %v)", err))
			return
		}
		if *got == last {
			return
		}
		if time.Now().After(deadline) {
			b.fail("wait for "+css+" to stay put", fmt.Errorf("its box still moved after 30s (last %s)", *got))
			return
		}
		last = *got
		time.Sleep(50 * time.Millisecond)
	}
}

// typeInto replaces a field's text by typing it, as a user would. Just
// after a navigation chromedp's copy of the document can still hold the
// old page's node for css: the field is emptied and typed into again, as
// click does. The field is emptied once the page has it: a page still
// being parsed can show what comes before the field (a flash message a
// test waited for) and not yet the field (TestProofFlow failed so once).
func (b *tab) typeInto(css, text string) {
	b.t.Helper()
	empty := func() {
		expr := fmt.Sprintf(`(() => { const e = document.querySelector(%s); if (!e) return null; e.value = ""; e.dispatchEvent(new Event("input", { bubbles: true })); return "emptied"; })()`, js(css))
		if got, err := b.poll(expr, 30*time.Second); got == nil {
			b.fail("empty "+css, fmt.Errorf("no such field within 30s (last error: %v)", err))
		}
	}
	b.onFreshNode("type into "+css, empty, chromedp.SendKeys(chromedp.CSS(css), text, chromedp.NodeVisible))
}

// onFreshNode runs act (after before, when given), up to five times while
// it fails with "Could not find node": chromedp resolved the selector to a
// node of its copy of the document that the page has since replaced.
func (b *tab) onFreshNode(what string, before func(), act chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	for try := 0; ; try++ {
		if before != nil {
			before()
		}
		ctx, cancel := context.WithTimeout(b.ctx, 60*time.Second)
		_, err := chromedp.Run(ctx, act)
		cancel()
		if err == nil {
			return
		}
		if try == 4 || !strings.Contains(err.Error(), "Could not find node") {
			b.fail(what, err)
			return
		}
	}
}

// choose picks an option of a select with the keyboard, as a user
// without a mouse does: it focuses the select and presses the arrow keys
// until the option is selected (Chromium changes a closed select's value
// on each arrow key and fires input and change), then checks that the
// page's select holds the value. Options that are disabled are skipped by
// the browser itself, so one arrow key may move several options.
func (b *tab) choose(css, value string) {
	b.t.Helper()
	steps := b.read(css, fmt.Sprintf(`(() => {
		const want = [...e.options].findIndex((o) => o.value === %s);
		if (want < 0) return "no option";
		return String(want - e.selectedIndex);
	})()`, js(value)), "find "+value+" in "+css)
	n, err := strconv.Atoi(steps)
	if err != nil {
		b.fail("choose "+value+" in "+css, fmt.Errorf("%s", steps))
	}
	key := kb.ArrowDown
	if n < 0 {
		key, n = kb.ArrowUp, -n
	}
	b.do("focus "+css, chromedp.Focus(chromedp.CSS(css), chromedp.NodeVisible))
	for range n {
		b.do("press a key in "+css, chromedp.KeyEvent(key))
	}
	b.eval("chose "+value+" in "+css, fmt.Sprintf(`document.querySelector(%s).value === %s`, js(css), js(value)))
}

// eval evaluates a JavaScript expression and fails the test unless its
// value is true.
func (b *tab) eval(what, expr string) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 30*time.Second)
	defer cancel()
	ok, err := chromedp.Run(ctx, chromedp.Evaluate[bool](expr))
	if err != nil {
		b.fail(what, err)
	}
	if !ok {
		b.fail(what, errors.New("the page's answer was false"))
	}
}

// text returns the text of the first element matching css, waiting up to
// 30 seconds for one to exist.
func (b *tab) text(css string) string {
	b.t.Helper()
	return b.read(css, "e.textContent", "read text of "+css)
}

// read waits until an element matching css exists in the page as it is
// now and returns prop (a JavaScript expression over the element e), read
// in the same evaluation that found it. Reading through the page's own
// script, as waitText does, and never through chromedp's node queries is
// what keeps reads right when a page reloads: the run page reloads itself
// when its run ends, and a node query could resolve the selector in
// chromedp's copy of the document from before the reload and then read a
// node that no longer existed (TestReconcileInBrowser failed so reading
// #c-ul just after waitText had seen the reloaded page's #c-matched). An
// evaluation interrupted by a navigation is tried again.
func (b *tab) read(css, prop, what string) string {
	b.t.Helper()
	expr := fmt.Sprintf(`(() => { const e = document.querySelector(%s); return e ? String(%s) : null; })()`, js(css), prop)
	got, lastErr := b.poll(expr, 30*time.Second)
	if got != nil {
		return *got
	}
	if lastErr == nil {
		lastErr = errors.New("no element matches")
	}
	b.fail(what, lastErr)
	return ""
}

// poll evaluates expr, a script returning a string or null, until it
// returns a string or timeout passes; it returns the string, or nil and
// the last evaluation error (nil when the script only ever returned null).
// Each evaluation reads the page as it is then, so a page that navigates
// meanwhile is simply looked at again.
func (b *tab) poll(expr string, timeout time.Duration) (*string, error) {
	deadline := time.Now().Add(timeout)
	var lastErr error
	for {
		ctx, cancel := context.WithTimeout(b.ctx, 5*time.Second)
		got, err := chromedp.Run(ctx, chromedp.Evaluate[*string](expr))
		cancel()
		if err == nil && got != nil {
			return got, nil
		}
		lastErr = err
		if b.ctx.Err() != nil || time.Now().After(deadline) {
			return nil, lastErr
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// html returns the page's HTML as the browser has it now, after its
// scripts ran.
func (b *tab) html() string {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 30*time.Second)
	defer cancel()
	s, err := chromedp.Run(ctx, chromedp.Evaluate[string](`document.documentElement.outerHTML`))
	if err != nil {
		b.fail("read the page's HTML", err)
	}
	return s
}

// waitText waits until the text of a visible element matching css
// contains want, and returns that text. Pages that navigate meanwhile
// (a form that reloads its page) are looked at again.
func (b *tab) waitText(css, want string, timeout time.Duration) string {
	b.t.Helper()
	expr := fmt.Sprintf(`(() => {
		for (const e of document.querySelectorAll(%s)) {
			if (e.getClientRects().length > 0 && e.textContent.includes(%s)) return e.textContent;
		}
		return null;
	})()`, js(css), js(want))
	got, lastErr := b.poll(expr, timeout)
	if got != nil {
		return *got
	}
	now, _ := chromedp.Run(b.ctx, chromedp.Evaluate[string](fmt.Sprintf(`[...document.querySelectorAll(%s)].map((e) => e.textContent.trim()).join(" | ")`, js(css))))
	b.fail(fmt.Sprintf("wait %s for %q in %s (now: %q; last error: %v)", timeout, want, css, now, lastErr), errTimeout)
	return ""
}

var errTimeout = errors.New("timed out")

// value returns a form field's value, waiting up to 30 seconds for the
// field to exist.
func (b *tab) value(css string) string {
	b.t.Helper()
	return b.read(css, "e.value", "read the value of "+css)
}

// checked reports whether a checkbox is ticked.
func (b *tab) checked(css string) bool {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 30*time.Second)
	defer cancel()
	on, err := chromedp.Run(ctx, chromedp.Evaluate[bool](fmt.Sprintf(`!!(document.querySelector(%s) || {}).checked`, js(css))))
	if err != nil {
		b.fail("read "+css, err)
	}
	return on
}

// count returns how many elements match css.
func (b *tab) count(css string) int {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 30*time.Second)
	defer cancel()
	n, err := chromedp.Run(ctx, chromedp.Evaluate[int](fmt.Sprintf(`document.querySelectorAll(%s).length`, js(css))))
	if err != nil {
		b.fail("count "+css, err)
	}
	return n
}

// location returns the tab's URL.
func (b *tab) location() string {
	b.t.Helper()
	u, err := chromedp.Run(b.ctx, chromedp.Location())
	if err != nil {
		b.fail("read the location", err)
	}
	return u
}

// addChip adds a filter through the source preview's filter editor, as a
// user does: column, operator, value, then the add button.
func (b *tab) addChip(column, op, value string) {
	b.t.Helper()
	b.choose("#f-column", column)
	b.choose("#f-op", op)
	if value != "" { // is_null and is_not_null hide the value field
		b.typeInto("#f-value", value)
	}
	b.click(".chip-editor button[type=submit]")
}

// submitURI fills the sources page's register-by-URI form and presses its
// button; what the page says next is the caller's to wait for.
func (b *tab) submitURI(alias, uri string) {
	b.t.Helper()
	b.typeInto("#uri-alias", alias)
	b.typeInto("#uri-uri", uri)
	b.click("#uri-form button[type=submit]")
}

// chooseUpload chooses a local file in the sources page's upload form once
// the page's script listens for it (the form's data-ready): a file chosen
// while the page was still loading fired its change event unheard (a CI
// run waited 30 s for a check that never started, just after the redirect
// of a first upload).
func (b *tab) chooseUpload(path string) {
	b.t.Helper()
	b.do("choose "+path, chromedp.WaitReady(chromedp.CSS("#upload-form[data-ready]")),
		chromedp.SetUploadFiles(chromedp.CSS("#up-file"), []string{path}))
}

// submitUpload fills the sources page's upload form with a local file and
// presses its button; what the page says next is the caller's to wait for.
//
// Choosing a CSV or TSV file starts the page's check of it, whose preview
// is inserted above the buttons when the server answers. A press made
// before then could land where the button was (a CI run failed so: the
// page asked whether to replace an alias, and the second press missed), so
// the check's answer is waited for first: its preview, or its error.
func (b *tab) submitUpload(alias, path string) {
	b.t.Helper()
	b.typeInto("#up-alias", alias)
	b.chooseUpload(path)
	if ext := strings.ToLower(filepath.Ext(path)); ext == ".csv" || ext == ".tsv" {
		checked := `(() => {
			const busy = document.getElementById("up-check").getAttribute("aria-busy") === "true";
			const shown = !document.getElementById("up-preview").hidden;
			const said = document.querySelector("#upload-form .alert").textContent.trim() !== "";
			return !busy && (shown || said) ? "answered" : null;
		})()`
		if got, err := b.poll(checked, 30*time.Second); got == nil {
			b.fail("wait for the page's check of "+path, errors.Join(errTimeout, err))
		}
	}
	b.click("#upload-form button[type=submit]")
}

// acceptDialogs makes confirm() answer yes on the current page.
func (b *tab) acceptDialogs() {
	b.t.Helper()
	b.eval("accept dialogs", `(() => { window.confirm = () => true; return true; })()`)
}

// js quotes a string for JavaScript.
func js(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}
