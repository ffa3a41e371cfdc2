package ui

import (
	"bytes"
	"embed"
	"fmt"
	"html/template"
	"io/fs"
	"math"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/kalla-recon/kalla/internal/kalla"
)

//go:embed templates
var templateFS embed.FS

//go:embed static
var staticFS embed.FS

// view is what a page handler returns: the page template to render, its
// title, the navigation entry it belongs to, and its data.
type view struct {
	Page  string // template file under templates/, such as "dashboard.html"
	Title string
	Nav   string // "dashboard", "sources", "recipes" or "runs"
	Data  any
	// Status is the HTTP status; 0 means 200.
	Status int
	// Fragment, when set, renders only the named template of the page, for
	// scripts that refresh part of a page in place.
	Fragment string
	// Flash is a one-line notice shown above the content.
	Flash string
}

// layoutData is what the layout template sees.
type layoutData struct {
	*view
	SignedIn bool    // the visitor may see the pages (no token, or a session)
	Who      visitor // who is signed in; Who.Named when a session names them
	Version  string  // Kalla's version, in the footer
}

// pageFunc is a page handler: it returns the view to render, or an error
// the one error page shows with its status.
type pageFunc func(w http.ResponseWriter, r *http.Request) (*view, error)

// parsePages parses each page template together with the layout and the
// shared partials (partials.html).
func (h *Handler) parsePages() error {
	entries, err := fs.ReadDir(templateFS, "templates")
	if err != nil {
		return fmt.Errorf("read templates: %w", err)
	}
	funcs := h.funcs()
	h.pages = map[string]*template.Template{}
	for _, e := range entries {
		name := e.Name()
		if name == "layout.html" || name == "partials.html" {
			continue
		}
		t, err := template.New(name).Funcs(funcs).ParseFS(templateFS, "templates/layout.html", "templates/partials.html", "templates/"+name)
		if err != nil {
			return fmt.Errorf("parse template %s: %w", name, err)
		}
		h.pages[name] = t
	}
	return nil
}

// page wraps a page handler: it sends visitors without a session to the
// sign-in page, renders the view, and renders errors as the error page.
func (h *Handler) page(f pageFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !h.signedIn(r) {
			if r.URL.Query().Get("fragment") != "" {
				http.Error(w, "sign in again", http.StatusUnauthorized)
				return
			}
			http.Redirect(w, r, "/login?next="+url.QueryEscape(r.URL.RequestURI()), http.StatusSeeOther)
			return
		}
		v, err := f(w, r)
		if err != nil {
			v = h.errorView(r, err)
		}
		h.render(w, r, v)
	})
}

// errorView turns an error into the error page: the user-facing message
// (credentials masked) and the status its code stands for. Unclassified
// errors are logged in full and shown as "internal error".
func (h *Handler) errorView(r *http.Request, err error) *view {
	code := kalla.ErrorCode(err)
	if code == kalla.EINTERNAL {
		h.log.Error("page failed", "path", r.URL.Path, "err", kalla.Redact(err.Error()))
	}
	title := "Something went wrong"
	switch code {
	case kalla.ENOTFOUND:
		title = "Not found"
	case kalla.EUNAVAILABLE:
		title = "Unavailable"
	}
	return &view{Page: "error.html", Title: title, Status: kalla.HTTPStatus(code),
		Data: map[string]string{"Message": kalla.Redact(kalla.ErrorMessage(err)), "Code": code}}
}

// notFound answers paths no page has.
func (h *Handler) notFound(w http.ResponseWriter, r *http.Request) (*view, error) {
	return nil, kalla.Errorf(kalla.ENOTFOUND, "there is no page at %s", r.URL.Path)
}

// render writes a view. Pages are never cached: they show live state.
func (h *Handler) render(w http.ResponseWriter, r *http.Request, v *view) {
	t, ok := h.pages[v.Page]
	if !ok {
		h.log.Error("no such page template", "page", v.Page)
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	var buf bytes.Buffer
	who, in := h.whoIs(r)
	var name string
	var data any
	if v.Fragment != "" {
		name, data = v.Fragment, v.Data
	} else {
		name, data = "layout", layoutData{view: v, SignedIn: in, Who: who, Version: h.version}
	}
	if err := t.ExecuteTemplate(&buf, name, data); err != nil {
		h.log.Error("render page", "page", v.Page, "err", err)
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Content-Length", strconv.Itoa(buf.Len()))
	st := v.Status
	if st == 0 {
		st = http.StatusOK
	}
	w.WriteHeader(st)
	w.Write(buf.Bytes())
}

// uiHeader is the header the UI's scripts send with every call; see
// Authorized.
const uiHeader = "X-Kalla-UI"

// funcs are the template functions.
func (h *Handler) funcs() template.FuncMap {
	return template.FuncMap{
		"asset":     h.assetURL,
		"redact":    kalla.Redact,
		"int":       fmtInt,
		"amount":    fmtAmount,
		"pct":       fmtPct,
		"when":      fmtTime,
		"iso":       func(t time.Time) string { return t.UTC().Format(time.RFC3339) },
		"isoNano":   func(t time.Time) string { return t.UTC().Format(time.RFC3339Nano) },
		"nowISO":    func() string { return h.now().UTC().Format(time.RFC3339Nano) },
		"ms":        fmtDuration,
		"short":     shortID,
		"stage":     stageLabel,
		"runStage":  runStage,
		"sideState": sideState,
		"percent":   func(f float64) int { return int(math.Round(f * 100)) },
		"deref":     func(p *time.Time) time.Time { return *p },
		"runTime":   runDuration,
		"list":      func(s ...string) []string { return s },
		"deref64":   func(p *float64) float64 { return *p },
	}
}

// fmtInt writes an integer with thousands separators: 1,234,567.
func fmtInt(n int64) string {
	s := strconv.FormatInt(n, 10)
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	if neg {
		return "-" + b.String()
	}
	return b.String()
}

// fmtAmount groups the digits of an exact decimal's text as fmtInt does,
// keeping every decimal as written: 27386.14 → 27,386.14. Amount totals
// come as exact decimal text (never floats), so they are grouped as text;
// anything else is shown as it is.
func fmtAmount(s string) string {
	neg := strings.HasPrefix(s, "-")
	digits, frac, hasFrac := strings.Cut(strings.TrimPrefix(s, "-"), ".")
	n, err := strconv.ParseInt(digits, 10, 64)
	if err != nil || digits == "" || strings.TrimLeft(digits, "0123456789") != "" || (hasFrac && strings.TrimLeft(frac, "0123456789") != "") {
		return s
	}
	out := fmtInt(n)
	if hasFrac {
		out += "." + frac
	}
	if neg {
		out = "-" + out
	}
	return out
}

// fmtPct writes a fraction as a percentage with one decimal: 0.8 → 80.0%.
func fmtPct(f float64) string {
	return strconv.FormatFloat(f*100, 'f', 1, 64) + "%"
}

// fmtTime writes a time as the UI shows it: UTC, to the second.
func fmtTime(t time.Time) string {
	if t.IsZero() {
		return "—"
	}
	return t.UTC().Format("2006-01-02 15:04:05") + " UTC"
}

// fmtDuration writes milliseconds as 850 ms, 12.3 s or 4 min 05 s.
func fmtDuration(ms int64) string {
	switch {
	case ms < 1000:
		return strconv.FormatInt(ms, 10) + " ms"
	case ms < 60_000:
		return strconv.FormatFloat(float64(ms)/1000, 'f', 1, 64) + " s"
	default:
		return fmt.Sprintf("%d min %02d s", ms/60_000, (ms%60_000)/1000)
	}
}

// runDuration is how long a run took, or has been running, as text.
func runDuration(r *kalla.RunRecord) string {
	if r.StartedAt == nil {
		return "—"
	}
	end := time.Now()
	if r.FinishedAt != nil {
		end = *r.FinishedAt
	}
	return fmtDuration(end.Sub(*r.StartedAt).Milliseconds())
}

// shortID abbreviates a run id for lists: its first 8 characters (a
// UUIDv7 starts with its time) and its last 4 (random, so runs queued in
// the same millisecond still differ). The full id is in the link.
func shortID(id string) string {
	if len(id) <= 14 {
		return id
	}
	return id[:8] + "…" + id[len(id)-4:]
}

// stageLabel names a run stage in words.
func stageLabel(stage string) string {
	switch stage {
	case "stage_left":
		return "Reading the left source"
	case "stage_right":
		return "Reading the right source"
	case "match":
		return "Matching"
	case "write":
		return "Writing results"
	case "":
		return "Waiting to start"
	}
	return stage
}

// runStage names where a run is in words: its stage, or "Starting" for a
// run a worker has taken that has not reported a stage yet.
func runStage(r *kalla.RunRecord) string {
	if r.Stage == "" && r.Status == kalla.RunRunning {
		return "Starting"
	}
	return stageLabel(r.Stage)
}

// sideState is what one side of a running run is doing, in words, from
// the run's stage: while staging, the recorded stage is the first side
// still being read (the runner's tracker), so a side after it may be done
// or not, and then nothing is said.
func sideState(r *kalla.RunRecord, side string) string {
	switch {
	case r.Status == kalla.RunQueued:
		return "waiting"
	case r.Stage == "":
		return "starting"
	case r.Stage == "stage_left" && side == "left", r.Stage == "stage_right" && side == "right":
		return "reading…"
	case r.Stage == "stage_left":
		return ""
	}
	return "done"
}
