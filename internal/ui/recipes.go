package ui

import (
	"net/http"
)

// recipes lists the stored recipes, with their two sides (URIs redacted)
// and the actions on each: edit in the builder, run, delete. ?saved= and
// ?deleted= name the recipe an action just changed, for the notice.
func (h *Handler) recipes(w http.ResponseWriter, r *http.Request) (*view, error) {
	list, err := h.store.ListRecipes(r.Context())
	if err != nil {
		return nil, err
	}
	v := &view{Page: "recipes.html", Title: "Recipes", Nav: "recipes", Data: viewRecipes(list)}
	if d := r.URL.Query().Get("deleted"); d != "" {
		v.Flash = "Deleted recipe “" + d + "”. Its runs keep their own copy of it."
	}
	return v, nil
}
