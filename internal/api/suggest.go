package api

import (
	"bytes"
	"encoding/json"
	"net/http"
	"strings"

	"github.com/kalla-recon/kalla/internal/kalla"
	"github.com/kalla-recon/kalla/internal/suggest"
)

// maxSuggestPairs bounds the example pairs of one suggestion: a handful
// teaches the rules; thousands only make the request slow.
const maxSuggestPairs = 1000

// suggestSide is one side of a suggestion: a registered source's alias (a
// JSON string) or a source as a recipe holds it (a JSON object, its URI
// possibly sent back masked). Scripts and assistants name registered
// sources; the builder sends the sides it is editing, filters included.
type suggestSide struct {
	Alias string
	Spec  *kalla.SourceSpec
}

// UnmarshalJSON reads an alias string or a source object.
func (s *suggestSide) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	if len(b) > 0 && b[0] == '"' {
		return json.Unmarshal(b, &s.Alias)
	}
	var spec kalla.SourceSpec
	if err := json.Unmarshal(b, &spec); err != nil {
		return err
	}
	s.Spec = &spec
	return nil
}

// suggestRecipeRequest is the body of POST /api/recipes/suggest.
type suggestRecipeRequest struct {
	// RecipeID names the stored recipe whose masked URIs object sides may
	// send back (as for validate and preview); optional.
	RecipeID string `json:"recipe_id"`
	// Left and Right are the two sides: aliases or source objects.
	Left  suggestSide `json:"left"`
	Right suggestSide `json:"right"`
	// LeftKey and RightKey name each side's key column; detected when
	// empty.
	LeftKey  string `json:"left_key"`
	RightKey string `json:"right_key"`
	// Pairs are confirmed example pairs: [left key, right key].
	Pairs [][]string `json:"pairs"`
}

// suggestRecipe proposes a recipe for two sources, as `kalla recipe
// suggest` does: keys detected (or given), columns paired by name, type and
// shared values, rules from strict to loose learned from the optional
// example pairs and tried on the data, through the same reconciliation
// service. The recipe's source URIs come back redacted, and stand for the
// real ones when sent back (see restoreSecrets). Errors: 400 for a bad
// body, an unknown key column or example key, 404 for an unknown alias or a
// missing file or table, 502 when a source cannot be reached.
func (h *Handler) suggestRecipe(w http.ResponseWriter, r *http.Request) (any, error) {
	var req suggestRecipeRequest
	if err := decodeJSON(r, &req); err != nil {
		return nil, err
	}
	if len(req.Pairs) > maxSuggestPairs {
		return nil, kalla.Errorf(kalla.EINVALID, "%d example pairs is more than the %d a suggestion takes", len(req.Pairs), maxSuggestPairs)
	}
	opt := suggest.Options{LeftKey: req.LeftKey, RightKey: req.RightKey}
	for i, p := range req.Pairs {
		if len(p) != 2 {
			return nil, kalla.Errorf(kalla.EINVALID, "pairs[%d] has %d values: each pair is [left key, right key]", i, len(p))
		}
		if strings.TrimSpace(p[0]) == "" || strings.TrimSpace(p[1]) == "" {
			return nil, kalla.Errorf(kalla.EINVALID, "pairs[%d] has an empty key: each pair is [left key, right key]", i)
		}
		opt.Pairs = append(opt.Pairs, [2]string{strings.TrimSpace(p[0]), strings.TrimSpace(p[1])})
	}
	rec := &kalla.Recipe{RecipeID: req.RecipeID}
	specs := [2]*kalla.SourceSpec{&rec.Sources.Left, &rec.Sources.Right}
	for i, side := range []suggestSide{req.Left, req.Right} {
		name := [2]string{"left", "right"}[i]
		switch {
		case side.Spec != nil:
			if side.Spec.URI == "" || side.Spec.Alias == "" {
				return nil, kalla.Errorf(kalla.EINVALID, "the %s side needs an alias and a uri: pick the two sources", name)
			}
			for _, f := range side.Spec.Filters {
				if err := f.Validate(); err != nil {
					return nil, err
				}
			}
			*specs[i] = *side.Spec
		case strings.TrimSpace(side.Alias) != "":
			rs, err := h.lookupSource(r, strings.TrimSpace(side.Alias))
			if err != nil {
				return nil, err
			}
			*specs[i] = kalla.SourceSpec{Alias: rs.Alias, Type: rs.SourceType, URI: rs.URI}
		default:
			return nil, kalla.Errorf(kalla.EINVALID, "left and right are required: the aliases of two registered sources (GET /api/sources) or two sources as a recipe holds them")
		}
	}
	if rec.Sources.Left.Alias == rec.Sources.Right.Alias && rec.Sources.Left.URI == rec.Sources.Right.URI {
		return nil, kalla.Errorf(kalla.EINVALID, "left and right are both %q: a recipe reconciles two different sources", rec.Sources.Left.Alias)
	}
	if err := h.restoreSecrets(r.Context(), rec); err != nil {
		return nil, err
	}
	// A source registered before the file roots changed must not slip
	// past them.
	if err := h.checkRecipeSources(rec); err != nil {
		return nil, err
	}
	opt.Left, opt.Right = rec.Sources.Left, rec.Sources.Right
	ctx := r.Context()
	release, err := h.engineSlot(ctx)
	if err != nil {
		return nil, err
	}
	defer release()
	res, err := h.recon.Suggest(ctx, opt)
	if err != nil {
		return nil, err
	}
	redacted := res.Recipe.Redacted()
	res.Recipe = &redacted
	for i, n := range res.Notes {
		res.Notes[i] = kalla.Redact(n)
	}
	return res, nil
}
