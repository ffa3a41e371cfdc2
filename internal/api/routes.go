package api

import (
	"crypto/subtle"
	"net/http"
	"slices"
	"strings"

	"github.com/kalla-recon/kalla/internal/kalla"
)

// route is one entry of the route table.
type route struct {
	Method string
	Path   string // ServeMux pattern path, also the OpenAPI path
	// Public routes skip the bearer token: probes and metrics, which
	// orchestrators call without credentials and which reveal no data.
	Public bool
	// MaxBody caps the request body; 0 means Config.MaxBodyBytes.
	MaxBody int64
	Handle  apiFunc
}

// routeTable is every route the API serves. openapi.json documents exactly
// these (TestOpenAPIMatchesRoutes).
func (h *Handler) routeTable() []route {
	return append([]route{
		{Method: "GET", Path: "/healthz", Public: true, Handle: h.healthz},
		{Method: "GET", Path: "/readyz", Public: true, Handle: h.readyz},
		{Method: "GET", Path: "/metrics", Public: true, Handle: h.metrics},
		{Method: "GET", Path: "/api/openapi.json", Handle: h.openapi},

		{Method: "GET", Path: "/api/sources", Handle: h.listSources},
		{Method: "POST", Path: "/api/sources", Handle: h.createSource},
		{Method: "GET", Path: "/api/sources/{alias}", Handle: h.getSource},
		{Method: "DELETE", Path: "/api/sources/{alias}", Handle: h.deleteSource},
		{Method: "GET", Path: "/api/sources/{alias}/preview", Handle: h.previewSource},
		{Method: "POST", Path: "/api/sources/{alias}/load-scoped", Handle: h.loadScoped},

		{Method: "GET", Path: "/api/recipes", Handle: h.listRecipes},
		{Method: "POST", Path: "/api/recipes", Handle: h.createRecipe},
		{Method: "POST", Path: "/api/recipes/validate", Handle: h.validateRecipe},
		{Method: "POST", Path: "/api/recipes/preview", Handle: h.previewRecipe},
		{Method: "POST", Path: "/api/recipes/suggest", Handle: h.suggestRecipe},
		{Method: "GET", Path: "/api/recipes/{id}", Handle: h.getRecipe},
		{Method: "PUT", Path: "/api/recipes/{id}", Handle: h.putRecipe},
		{Method: "DELETE", Path: "/api/recipes/{id}", Handle: h.deleteRecipe},

		{Method: "GET", Path: "/api/runs", Handle: h.listRuns},
		{Method: "POST", Path: "/api/runs", Handle: h.createRun},
		{Method: "GET", Path: "/api/runs/{id}", Handle: h.getRun},
		{Method: "POST", Path: "/api/runs/{id}/cancel", Handle: h.cancelRun},
		{Method: "GET", Path: "/api/runs/{id}/events", Handle: h.runEvents},
		{Method: "GET", Path: "/api/runs/{id}/results/{table}", Handle: h.runResults},
		{Method: "GET", Path: "/api/runs/{id}/files/{name}", Handle: h.runFile},
		{Method: "GET", Path: "/api/runs/{id}/export/{file}", Handle: h.runExport},

		{Method: "POST", Path: "/api/uploads", MaxBody: -1, Handle: h.upload},
	}, h.exceptionRoutes()...)
}

// serve wraps a route's handler with the token check, the body limit and
// the one response writer.
func (h *Handler) serve(rt route) http.Handler {
	limit := rt.MaxBody
	switch {
	case limit == 0:
		limit = h.cfg.MaxBodyBytes
	case limit < 0:
		limit = h.cfg.MaxUploadBytes
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !rt.Public && !h.authorized(r) {
			w.Header().Set("WWW-Authenticate", `Bearer realm="kalla"`)
			h.writeError(w, r, kalla.Errorf(kalla.EUNAUTHORIZED, "missing or wrong API token: send \"Authorization: Bearer <token>\""))
			return
		}
		r.Body = http.MaxBytesReader(w, r.Body, limit)
		data, err := rt.Handle(w, r)
		if err != nil {
			h.writeError(w, r, err)
			return
		}
		h.writeData(w, data)
	})
}

// Authorized reports whether a request carries the API's credentials (the
// bearer token, or what Config.Authorize admits): other handlers mounted
// beside the API, such as the MCP endpoint, admit exactly whom it admits.
func (h *Handler) Authorized(r *http.Request) bool { return h.authorized(r) }

// authorized checks the bearer token in constant time; a request without
// one may be admitted by Config.Authorize.
func (h *Handler) authorized(r *http.Request) bool {
	if h.cfg.Token == "" {
		return true
	}
	auth := r.Header.Get("Authorization")
	if auth == "" && h.cfg.Authorize != nil {
		return h.cfg.Authorize(r)
	}
	const prefix = "Bearer "
	if len(auth) <= len(prefix) || !strings.EqualFold(auth[:len(prefix)], prefix) {
		return false
	}
	return subtle.ConstantTimeCompare([]byte(auth[len(prefix):]), []byte(h.cfg.Token)) == 1
}

// methods are the HTTP methods the API may serve on a path.
var methods = []string{"GET", "POST", "PUT", "DELETE"}

// shadowWildcards answers 405 for the methods a literal route path does not
// serve but a wildcard route would take: without it GET
// /api/recipes/preview would read a recipe named "preview" through GET
// /api/recipes/{id}, a method the document does not give that path (and
// Allow would list it).
func (h *Handler) shadowWildcards() {
	for _, rt := range h.routes {
		if strings.Contains(rt.Path, "{") {
			continue
		}
		allowed := h.allowed(rt.Path)
		for _, m := range methods {
			if slices.Contains(allowed, m) {
				continue
			}
			probe, _ := http.NewRequest(m, rt.Path, nil)
			if _, p := h.mux.Handler(probe); p != "" && p != m+" "+rt.Path {
				h.mux.HandleFunc(m+" "+rt.Path, h.noRoute)
			}
		}
	}
}

// allowed returns the methods of the route path that path falls under, in
// the order of methods: the most literal route path matching it, as the
// mux prefers. None when no route path matches.
func (h *Handler) allowed(path string) []string {
	segs := strings.Split(path, "/")
	best, bestLiterals := "", -1
	for _, rt := range h.routes {
		pat := strings.Split(rt.Path, "/")
		if len(pat) != len(segs) {
			continue
		}
		literals, ok := 0, true
		for i, p := range pat {
			switch {
			case strings.HasPrefix(p, "{"):
				ok = ok && segs[i] != ""
			case p == segs[i]:
				literals++
			default:
				ok = false
			}
		}
		if ok && literals > bestLiterals {
			best, bestLiterals = rt.Path, literals
		}
	}
	var out []string
	for _, m := range methods {
		for _, rt := range h.routes {
			if rt.Path == best && rt.Method == m {
				out = append(out, m)
			}
		}
	}
	return out
}

// noRoute answers a request no route serves: 405 with the path's methods in
// Allow when the path exists under other methods, 404 otherwise; JSON under
// /api/.
func (h *Handler) noRoute(w http.ResponseWriter, r *http.Request) {
	if strings.HasPrefix(r.URL.Path, "/api/") && !h.authorized(r) {
		// Do not tell unauthenticated callers which paths exist.
		w.Header().Set("WWW-Authenticate", `Bearer realm="kalla"`)
		h.writeError(w, r, kalla.Errorf(kalla.EUNAUTHORIZED, "missing or wrong API token: send \"Authorization: Bearer <token>\""))
		return
	}
	if allowed := h.allowed(r.URL.EscapedPath()); len(allowed) > 0 {
		w.Header().Set("Allow", strings.Join(allowed, ", "))
		writeJSON(w, http.StatusMethodNotAllowed, errorBody(kalla.EINVALID, r.Method+" is not allowed on "+r.URL.Path+" (use "+strings.Join(allowed, ", ")+")"))
		return
	}
	writeJSON(w, http.StatusNotFound, errorBody(kalla.ENOTFOUND, "no such API route: "+r.Method+" "+r.URL.Path))
}
