package ui

import (
	"net/http"

	"github.com/kalla-recon/kalla/internal/kalla"
)

// sourcesData is what the sources page shows.
type sourcesData struct {
	Sources []sourceView
	Types   []string
}

// sources lists the registered sources with their type, redacted URI and
// health (the page's script tests each connection through the API), and
// offers the two ways to register one: by URI, with the password in a
// field of its own, or by uploading a file. ?registered= and ?deleted=
// name the source an action just changed, for the notice.
func (h *Handler) sources(w http.ResponseWriter, r *http.Request) (*view, error) {
	list, err := h.store.ListSources(r.Context())
	if err != nil {
		return nil, err
	}
	v := &view{Page: "sources.html", Title: "Sources", Nav: "sources",
		Data: sourcesData{Sources: viewSources(list), Types: []string{kalla.SourceCSV, kalla.SourceParquet, kalla.SourcePostgres, kalla.SourceMySQL}}}
	q := r.URL.Query()
	switch {
	case q.Get("registered") != "":
		v.Flash = "Registered source “" + q.Get("registered") + "”: its connection was tested."
	case q.Get("deleted") != "":
		v.Flash = "Deleted source “" + q.Get("deleted") + "”. Recipes that use its URI are unchanged."
	}
	return v, nil
}

// sourcePreview shows one source: its columns with their types, a sample
// of rows, and a filter bar of removable conditions; the page's script
// loads the sample through load-scoped whenever the conditions change.
// Errors: ENOTFOUND for an unknown alias.
func (h *Handler) sourcePreview(w http.ResponseWriter, r *http.Request) (*view, error) {
	alias := r.PathValue("alias")
	src, err := h.store.GetSource(r.Context(), alias)
	if err != nil {
		if kalla.ErrorCode(err) == kalla.ENOTFOUND {
			return nil, kalla.Errorf(kalla.ENOTFOUND, "no source is registered as %q", alias)
		}
		return nil, err
	}
	return &view{Page: "source.html", Title: "Source " + src.Alias, Nav: "sources",
		Data: map[string]any{"Source": viewSource(src)}}, nil
}
