package api

import (
	"net/http"

	"github.com/kalla-recon/kalla/internal/connector"
	"github.com/kalla-recon/kalla/internal/kalla"
	"github.com/kalla-recon/kalla/internal/suggest"
)

// suggestRequest is the body of POST /api/recipes/suggest.
type suggestRequest struct {
	// RecipeID names the stored recipe whose masked URIs the sides may
	// send back (as for validate and preview); optional.
	RecipeID string `json:"recipe_id"`
	// Left and Right are the two sides as a recipe holds them; URIs may be
	// sent back masked (restoreSecrets).
	Left  kalla.SourceSpec `json:"left"`
	Right kalla.SourceSpec `json:"right"`
	// LeftKey and RightKey name each side's key column; detected when empty.
	LeftKey  string `json:"left_key"`
	RightKey string `json:"right_key"`
	// Pairs are confirmed example pairs: [left key, right key].
	Pairs [][2]string `json:"pairs"`
}

// maxExamplePairs caps the example pairs of one request.
const maxExamplePairs = 10000

// suggestRecipe proposes a recipe for two sides, as `kalla recipe suggest`
// does: the sides are read whole under their filters, each side's key is
// detected (or given), columns are paired by name, type and shared values,
// and the rules, strict to loose, are tried on the data before they are
// proposed. With example pairs the rules are learnt from them. The
// recipe's URIs come back masked. Errors: 400 for bad sides or example
// pairs, or when nothing pairs; 404 for a missing file or table; 502 when
// a source cannot be reached.
func (h *Handler) suggestRecipe(w http.ResponseWriter, r *http.Request) (any, error) {
	var req suggestRequest
	if err := decodeJSON(r, &req); err != nil {
		return nil, err
	}
	if len(req.Pairs) > maxExamplePairs {
		return nil, kalla.Errorf(kalla.EINVALID, "give at most %d example pairs, not %d", maxExamplePairs, len(req.Pairs))
	}
	ctx := r.Context()
	rec := &kalla.Recipe{RecipeID: req.RecipeID, Sources: kalla.Sources{Left: req.Left, Right: req.Right}}
	for _, s := range []kalla.SourceSpec{req.Left, req.Right} {
		if s.URI == "" || s.Alias == "" {
			return nil, kalla.Errorf(kalla.EINVALID, "both sides need an alias and a uri: pick the two sources")
		}
	}
	if err := h.restoreSecrets(ctx, rec); err != nil {
		return nil, err
	}
	if err := h.checkRecipeSources(rec); err != nil {
		return nil, err
	}
	var srcs [2]connector.Source
	for i, spec := range []kalla.SourceSpec{rec.Sources.Left, rec.Sources.Right} {
		for _, f := range spec.Filters {
			if err := f.Validate(); err != nil {
				return nil, err
			}
		}
		side := [2]string{"left", "right"}[i]
		src, err := h.sources.Open(ctx, spec, "")
		if err != nil {
			return nil, kalla.AsSourceError(err, side, spec.Alias)
		}
		defer src.Close()
		srcs[i] = src
	}
	opts := h.cfg.Engine
	if opts.Logger == nil {
		opts.Logger = h.log
	}
	eng, closeEngine, err := h.openEngine(ctx, opts)
	if err != nil {
		return nil, err
	}
	defer closeEngine()
	res, err := suggest.FromSources(ctx, eng, srcs[0], srcs[1], suggest.Options{
		Left: rec.Sources.Left, Right: rec.Sources.Right, LeftKey: req.LeftKey, RightKey: req.RightKey, Pairs: req.Pairs})
	if err != nil {
		return nil, err
	}
	red := res.Recipe.Redacted()
	res.Recipe = &red
	return res, nil
}
