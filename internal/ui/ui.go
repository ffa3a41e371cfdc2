// Package ui is Kalla's web UI, served by `kalla serve` at "/": server-
// rendered pages (html/template, one file per page, templates and static
// files embedded with go:embed) that plain JavaScript modules enhance where
// a page needs interaction. The pages read the metadata store directly to
// render; every action (register, preview, validate, save, run, cancel)
// is a call from the browser to the JSON API under /api/, so the UI can do
// nothing the API does not allow and shows the API's own error messages.
//
// No credential is ever written into a page: source and recipe URIs are
// rendered redacted, and when the server has an API token the browser
// holds an HttpOnly session cookie obtained by signing in with the token
// (login.go), which the API admits through Handler.Session. See
// DESIGN.md for the choices made.
package ui

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"html/template"
	"io/fs"
	"log/slog"
	"net/http"
	"path"
	"strings"
	"time"

	"github.com/kalla-recon/kalla/internal/auth"
	"github.com/kalla-recon/kalla/internal/kalla"
	"github.com/kalla-recon/kalla/internal/store"
)

// Store is what the pages read from the metadata store (*store.Store).
// Errors are *kalla.Error values, ENOTFOUND for a missing source, recipe
// or run.
type Store interface {
	ListSources(ctx context.Context) ([]*kalla.RegisteredSource, error)
	GetSource(ctx context.Context, alias string) (*kalla.RegisteredSource, error)
	ListRecipes(ctx context.Context) ([]*kalla.StoredRecipe, error)
	GetRecipe(ctx context.Context, id string) (*kalla.StoredRecipe, error)
	ListRuns(ctx context.Context, q store.RunQuery) ([]*kalla.RunRecord, error)
	GetRun(ctx context.Context, id string) (*kalla.RunRecord, error)
}

// DefaultSessionTTL is how long a sign-in lasts.
const DefaultSessionTTL = 12 * time.Hour

// Config configures a Handler.
type Config struct {
	// Store is the metadata store the pages render from. Required.
	Store Store
	// Auth resolves tokens and sessions to principals and says whether a
	// session is needed (package auth); nil means one that knows only
	// Token. When sign-in is required every page needs a session, obtained
	// by signing in with a token; otherwise (a loopback server without
	// tokens) the UI is open, as the API is.
	Auth *auth.Authenticator
	// Token is the bootstrap token (KALLA_API_TOKEN) when Auth is nil.
	Token string
	// SessionTTL is how long a session lasts; zero means DefaultSessionTTL.
	SessionTTL time.Duration
	// Version is shown in the page footer.
	Version string
	// Engines are the engines the server runs (recon.Service.Engines):
	// where a run is started, the pages offer the choice only when there
	// is one to make (Spark configured besides DuckDB).
	Engines []string
	// Exceptions serves the exception queue, the item pages and the run
	// page's decision summary; nil leaves them out (they answer
	// "unavailable").
	Exceptions Exceptions
	// Logger receives errors of page renders. Nil discards.
	Logger *slog.Logger
}

// Handler serves the web UI. Create it with New.
type Handler struct {
	store   Store
	cfg     Config
	auth    *auth.Authenticator
	log     *slog.Logger
	mux     *http.ServeMux
	pages   map[string]*template.Template
	assets  map[string]asset
	now     func() time.Time
	version string
}

// asset is one embedded static file with its content hash, which names
// its version in URLs (/static/app.js?v=…) and serves as its ETag.
type asset struct {
	body []byte
	hash string
}

// New returns a Handler. Errors: a template that does not parse, which
// is a bug caught by the package's tests.
func New(cfg Config) (*Handler, error) {
	if cfg.SessionTTL <= 0 {
		cfg.SessionTTL = DefaultSessionTTL
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	h := &Handler{store: cfg.Store, cfg: cfg, auth: cfg.Auth, log: log, now: time.Now, version: cfg.Version}
	if h.auth == nil {
		h.auth = auth.New(auth.Config{Bootstrap: cfg.Token, Logger: log, Now: func() time.Time { return h.now() }})
	}
	if err := h.loadAssets(); err != nil {
		return nil, err
	}
	if err := h.parsePages(); err != nil {
		return nil, err
	}
	h.mux = http.NewServeMux()
	for _, rt := range h.routeTable() {
		h.mux.Handle(rt.pattern, rt.handler)
	}
	return h, nil
}

// engineChoice is the engines a page offers where a run is started, none
// when the server has only one (the choice is then no choice).
func (h *Handler) engineChoice() []string {
	if len(h.cfg.Engines) < 2 {
		return nil
	}
	return h.cfg.Engines
}

// route is one entry of the UI's route table.
type route struct {
	pattern string
	handler http.Handler
}

// routeTable is every route the UI serves; /api/, /healthz, /readyz and
// /metrics belong to the API and are routed there by the server.
func (h *Handler) routeTable() []route {
	return []route{
		{"GET /{$}", h.page(h.dashboard)},
		{"GET /sources", h.page(h.sources)},
		{"GET /sources/{alias}", h.page(h.sourcePreview)},
		{"GET /recipes", h.page(h.recipes)},
		{"GET /recipes/new", h.page(h.recipeBuilder)},
		{"GET /recipes/{id}", h.page(h.recipeBuilder)},
		{"GET /runs", h.page(h.runs)},
		{"GET /runs/{id}", h.page(h.run)},
		{"GET /exceptions", h.page(h.exceptionQueue)},
		{"GET /exceptions/{id}", h.page(h.exceptionItem)},

		{"GET /login", http.HandlerFunc(h.loginForm)},
		{"POST /login", http.HandlerFunc(h.login)},
		{"POST /logout", http.HandlerFunc(h.logout)},

		{"GET /static/{file}", http.HandlerFunc(h.static)},
		{"/", h.page(h.notFound)},
	}
}

// ServeHTTP serves a UI route, with the headers every answer carries: a
// content security policy that admits only this server's own scripts,
// styles and connections, so that nothing injected into a page could run
// or send data elsewhere.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	hdr := w.Header()
	hdr.Set("Content-Security-Policy", "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "+
		"connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'")
	hdr.Set("X-Content-Type-Options", "nosniff")
	hdr.Set("Referrer-Policy", "same-origin")
	hdr.Set("X-Frame-Options", "DENY")
	h.mux.ServeHTTP(w, r)
}

// loadAssets reads the embedded static files and hashes them.
func (h *Handler) loadAssets() error {
	h.assets = map[string]asset{}
	return fs.WalkDir(staticFS, "static", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := staticFS.ReadFile(p)
		if err != nil {
			return err
		}
		sum := sha256.Sum256(b)
		h.assets[path.Base(p)] = asset{body: b, hash: hex.EncodeToString(sum[:8])}
		return nil
	})
}

// static serves an embedded file. URLs carry the file's hash, so a
// browser may keep a file as long as it likes; the ETag covers URLs
// without it.
func (h *Handler) static(w http.ResponseWriter, r *http.Request) {
	a, ok := h.assets[r.PathValue("file")]
	if !ok {
		http.NotFound(w, r)
		return
	}
	if r.URL.Query().Get("v") == a.hash {
		w.Header().Set("Cache-Control", "public, max-age=31536000, immutable")
	} else {
		w.Header().Set("Cache-Control", "no-cache")
	}
	w.Header().Set("ETag", `"`+a.hash+`"`)
	http.ServeContent(w, r, r.PathValue("file"), time.Time{}, strings.NewReader(string(a.body)))
}

// assetURL is the versioned URL of a static file.
func (h *Handler) assetURL(name string) string {
	a, ok := h.assets[name]
	if !ok {
		return "/static/" + name
	}
	return "/static/" + name + "?v=" + a.hash
}
