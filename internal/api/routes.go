package api

import (
	"net/http"
	"slices"
	"strings"

	"github.com/kalla-recon/kalla/internal/kalla"
)

// route is one entry of the route table.
type route struct {
	Method string
	Path   string // ServeMux pattern path, also the OpenAPI path
	// Public routes skip authentication: probes and metrics, which
	// orchestrators call without credentials and which reveal no data.
	Public bool
	// Need is the least role that may call the route when the caller is
	// named (a token or a signed-in session); every route that is not
	// Public states it (TestEveryRouteNeedsARole). Left empty it means
	// admin, so a route added without thought is closed, not open.
	Need kalla.Role
	// MaxBody caps the request body; 0 means Config.MaxBodyBytes.
	MaxBody int64
	Handle  apiFunc
}

// The route table below is the one place that says which role may do
// what (handlers add checks only where the body decides, as an inline
// recipe in POST /api/runs does):
//
//   - viewer reads: sources and their previews (load-scoped filters a
//     registered source, it changes nothing), recipes, runs, results,
//     files and exports.
//   - preparer starts and cancels runs of stored recipes (and acts on
//     exceptions).
//   - approver approves what another person prepared.
//   - admin registers and removes sources, writes recipes and uses the
//     recipe builder's tools (validate, preview and suggest take inline
//     source URIs, which reach places with the server's credentials just
//     as registering a source does), uploads files and manages tokens.
const (
	viewer   = kalla.RoleViewer
	preparer = kalla.RolePreparer
	admin    = kalla.RoleAdmin
)

// routeTable is every route the API serves. openapi.json documents exactly
// these (TestOpenAPIMatchesRoutes).
func (h *Handler) routeTable() []route {
	return []route{
		{Method: "GET", Path: "/healthz", Public: true, Handle: h.healthz},
		{Method: "GET", Path: "/readyz", Public: true, Handle: h.readyz},
		{Method: "GET", Path: "/metrics", Public: true, Handle: h.metrics},
		{Method: "GET", Path: "/api/openapi.json", Need: viewer, Handle: h.openapi},

		{Method: "GET", Path: "/api/sources", Need: viewer, Handle: h.listSources},
		{Method: "POST", Path: "/api/sources", Need: admin, Handle: h.createSource},
		{Method: "GET", Path: "/api/sources/{alias}", Need: viewer, Handle: h.getSource},
		{Method: "DELETE", Path: "/api/sources/{alias}", Need: admin, Handle: h.deleteSource},
		{Method: "GET", Path: "/api/sources/{alias}/preview", Need: viewer, Handle: h.previewSource},
		{Method: "POST", Path: "/api/sources/{alias}/load-scoped", Need: viewer, Handle: h.loadScoped},

		{Method: "GET", Path: "/api/recipes", Need: viewer, Handle: h.listRecipes},
		{Method: "POST", Path: "/api/recipes", Need: admin, Handle: h.createRecipe},
		{Method: "POST", Path: "/api/recipes/validate", Need: admin, Handle: h.validateRecipe},
		{Method: "POST", Path: "/api/recipes/preview", Need: admin, Handle: h.previewRecipe},
		{Method: "POST", Path: "/api/recipes/suggest", Need: admin, Handle: h.suggestRecipe},
		{Method: "GET", Path: "/api/recipes/{id}", Need: viewer, Handle: h.getRecipe},
		{Method: "PUT", Path: "/api/recipes/{id}", Need: admin, Handle: h.putRecipe},
		{Method: "DELETE", Path: "/api/recipes/{id}", Need: admin, Handle: h.deleteRecipe},

		{Method: "GET", Path: "/api/runs", Need: viewer, Handle: h.listRuns},
		{Method: "POST", Path: "/api/runs", Need: preparer, Handle: h.createRun},
		{Method: "GET", Path: "/api/runs/{id}", Need: viewer, Handle: h.getRun},
		{Method: "POST", Path: "/api/runs/{id}/cancel", Need: preparer, Handle: h.cancelRun},
		{Method: "GET", Path: "/api/runs/{id}/events", Need: viewer, Handle: h.runEvents},
		{Method: "GET", Path: "/api/runs/{id}/results/{table}", Need: viewer, Handle: h.runResults},
		{Method: "GET", Path: "/api/runs/{id}/files/{name}", Need: viewer, Handle: h.runFile},
		{Method: "GET", Path: "/api/runs/{id}/export/{file}", Need: viewer, Handle: h.runExport},

		{Method: "POST", Path: "/api/uploads", Need: admin, MaxBody: -1, Handle: h.upload},

		{Method: "GET", Path: "/api/tokens", Need: admin, Handle: h.listTokens},
		{Method: "POST", Path: "/api/tokens", Need: admin, Handle: h.createToken},
		{Method: "DELETE", Path: "/api/tokens/{name}", Need: admin, Handle: h.revokeToken},

		// The exception queue and the audit trail (package exceptions does
		// the work). Acting needs a preparer; approving an action also
		// needs an approver who did not prepare it, checked by the
		// exceptions service since it depends on the item.
		{Method: "GET", Path: "/api/exceptions", Need: viewer, Handle: h.listExceptions},
		{Method: "GET", Path: "/api/exceptions/{id}", Need: viewer, Handle: h.getException},
		{Method: "POST", Path: "/api/exceptions/actions", Need: preparer, Handle: h.actOnExceptions},
		{Method: "POST", Path: "/api/exceptions/import", Need: preparer, MaxBody: 64 << 20, Handle: h.importExceptions},
		{Method: "GET", Path: "/api/audit/verify", Need: viewer, Handle: h.verifyAudit},
		{Method: "GET", Path: "/api/runs/{id}/exceptions/summary", Need: viewer, Handle: h.exceptionSummary},
		{Method: "GET", Path: "/api/runs/{id}/exceptions.csv", Need: viewer, Handle: h.exportExceptions("csv")},
		{Method: "GET", Path: "/api/runs/{id}/exceptions.xlsx", Need: viewer, Handle: h.exportExceptions("xlsx")},
		// A run's evidence package: viewers may download it (it holds no
		// credentials). Learning a rule reads only run files, so a preparer
		// may ask for a proposal; saving it changes a recipe: admin.
		{Method: "GET", Path: "/api/runs/{id}/evidence.zip", Need: viewer, Handle: h.runEvidence},
		{Method: "POST", Path: "/api/recipes/{id}/learn", Need: preparer, Handle: h.learnRule},
		{Method: "POST", Path: "/api/recipes/{id}/learn/accept", Need: admin, Handle: h.acceptLearnedRule},
	}
}

// serve wraps a route's handler with authentication and the route's role,
// the body limit and the one response writer.
func (h *Handler) serve(rt route) http.Handler {
	limit := rt.MaxBody
	switch {
	case limit == 0:
		limit = h.cfg.MaxBodyBytes
	case limit < 0:
		limit = h.cfg.MaxUploadBytes
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !rt.Public {
			var err error
			if r, err = h.admit(r, rt.Need, rt.Method+" "+rt.Path); err != nil {
				h.refuse(w, r, err)
				return
			}
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
	if strings.HasPrefix(r.URL.Path, "/api/") {
		// Do not tell unauthenticated callers which paths exist.
		if _, _, err := h.authenticate(r); err != nil {
			h.refuse(w, r, err)
			return
		}
	}
	if allowed := h.allowed(r.URL.EscapedPath()); len(allowed) > 0 {
		w.Header().Set("Allow", strings.Join(allowed, ", "))
		writeJSON(w, http.StatusMethodNotAllowed, errorBody(kalla.EINVALID, r.Method+" is not allowed on "+r.URL.Path+" (use "+strings.Join(allowed, ", ")+")"))
		return
	}
	writeJSON(w, http.StatusNotFound, errorBody(kalla.ENOTFOUND, "no such API route: "+r.Method+" "+r.URL.Path))
}
