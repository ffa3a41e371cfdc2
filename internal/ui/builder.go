package ui

import (
	"bytes"
	"encoding/json"
	"net/http"

	"github.com/kalla-recon/kalla/internal/kalla"
)

// builderData is what the recipe builder starts from: the registered
// sources to choose from and, when editing, the stored recipe.
type builderData struct {
	Sources []sourceView
	// Recipe is the recipe being edited (URIs redacted), nil for a new
	// one. The page's script reads it from a JSON block.
	Recipe *kalla.Recipe
	// Left and Right preselect registered sources when the builder is
	// opened from a source (?left=alias).
	Left, Right string
	// RulesJSON is the recipe's structured rules as indented JSON, "" for
	// a recipe matched by SQL.
	RulesJSON string
	// Filters are the recipe's filters per side as the filter bars hold
	// them, numbers with their own digits (JSON numbers would reach the
	// script as floats: 100.50 would come back 100.5).
	Filters map[string][]chip
}

// chip is a filter as the pages' filter bars hold it (static/chips.js).
type chip struct {
	Column string      `json:"column"`
	Op     kalla.Op    `json:"op"`
	Array  bool        `json:"array"`
	Values []chipValue `json:"values"`
}

// chipValue is one value of a chip, with the text the user wrote.
type chipValue struct {
	Text   string `json:"text"`
	Number bool   `json:"number"`
}

func chips(fs []kalla.Filter) []chip {
	out := make([]chip, len(fs))
	for i, f := range fs {
		out[i] = chip{Column: f.Column, Op: f.Op, Array: f.IsArray, Values: make([]chipValue, len(f.Values))}
		for j, v := range f.Values {
			out[i].Values[j] = chipValue{Text: v.Text, Number: v.IsNumber}
		}
	}
	return out
}

// rulesJSON returns a recipe's "rules" as indented JSON, read from the
// recipe's own JSON form so that this package does not depend on the
// rules' Go types.
func rulesJSON(rec kalla.Recipe) string {
	b, err := json.Marshal(rec)
	if err != nil {
		return ""
	}
	var fields map[string]json.RawMessage
	if json.Unmarshal(b, &fields) != nil || len(fields["rules"]) == 0 || string(fields["rules"]) == "null" {
		return ""
	}
	var out bytes.Buffer
	if json.Indent(&out, fields["rules"], "", "  ") != nil {
		return ""
	}
	return out.String()
}

// recipeBuilder is the recipe builder, for a new recipe (/recipes/new) or
// a stored one (/recipes/{id}): pick the two sources, see their schemas
// side by side with suggested column pairs, write the match SQL (or the
// structured rules, edited as JSON), then
// validate it, preview the match on samples, and save. Everything after
// the first render happens in the page's script through the API; the
// recipe's URIs travel redacted and the API restores them.
// Errors: ENOTFOUND for an unknown recipe id.
func (h *Handler) recipeBuilder(w http.ResponseWriter, r *http.Request) (*view, error) {
	ctx := r.Context()
	srcs, err := h.store.ListSources(ctx)
	if err != nil {
		return nil, err
	}
	d := builderData{Sources: viewSources(srcs), Left: r.URL.Query().Get("left"), Right: r.URL.Query().Get("right")}
	title := "New recipe"
	if id := r.PathValue("id"); id != "" {
		sr, err := h.store.GetRecipe(ctx, id)
		if err != nil {
			if kalla.ErrorCode(err) == kalla.ENOTFOUND {
				return nil, kalla.Errorf(kalla.ENOTFOUND, "no recipe has id %q", id)
			}
			return nil, err
		}
		rec := sr.Recipe.Redacted()
		d.Recipe = &rec
		d.RulesJSON = rulesJSON(rec)
		d.Filters = map[string][]chip{"left": chips(rec.Sources.Left.Filters), "right": chips(rec.Sources.Right.Filters)}
		title = "Recipe " + sr.ID
	}
	return &view{Page: "builder.html", Title: title, Nav: "recipes", Data: d}, nil
}
