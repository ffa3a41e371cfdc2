package api

import (
	"net/http"
	"strings"

	"github.com/kalla-recon/kalla/internal/kalla"
	"github.com/kalla-recon/kalla/internal/suggest"
)

// maxSuggestPairs bounds the example pairs of one suggestion: a handful
// teaches the rules; thousands only make the request slow.
const maxSuggestPairs = 1000

// suggestRecipeRequest is the body of POST /api/recipes/suggest.
type suggestRecipeRequest struct {
	// Left and Right are registered sources' aliases.
	Left  string `json:"left"`
	Right string `json:"right"`
	// LeftKey and RightKey name each side's key column; detected when
	// empty.
	LeftKey  string `json:"left_key"`
	RightKey string `json:"right_key"`
	// Pairs are confirmed example pairs: [left key, right key].
	Pairs [][]string `json:"pairs"`
}

// suggestRecipe proposes a recipe for two registered sources, as `kalla
// recipe suggest` does for two URIs: keys detected, columns paired by name,
// type and shared values, rules from strict to loose learned from the
// optional example pairs and tried on the data. The recipe's source URIs
// come back redacted, and stand for the real ones when sent back (see
// restoreSecrets). Errors: 400 for a bad body, an unknown key column or
// example key, 404 for an unknown alias or a missing file or table, 502
// when a source cannot be reached.
func (h *Handler) suggestRecipe(w http.ResponseWriter, r *http.Request) (any, error) {
	var req suggestRecipeRequest
	if err := decodeJSON(r, &req); err != nil {
		return nil, err
	}
	req.Left, req.Right = strings.TrimSpace(req.Left), strings.TrimSpace(req.Right)
	if req.Left == "" || req.Right == "" {
		return nil, kalla.Errorf(kalla.EINVALID, "left and right are required: the aliases of two registered sources (GET /api/sources)")
	}
	if req.Left == req.Right {
		return nil, kalla.Errorf(kalla.EINVALID, "left and right are both %q: a recipe reconciles two different sources", req.Left)
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
	specs := [2]*kalla.SourceSpec{&opt.Left, &opt.Right}
	for i, alias := range []string{req.Left, req.Right} {
		rs, err := h.lookupSource(r, alias)
		if err != nil {
			return nil, err
		}
		*specs[i] = kalla.SourceSpec{Alias: rs.Alias, Type: rs.SourceType, URI: rs.URI}
		// A source registered before the file roots changed must not
		// slip past them.
		if err := h.cfg.Roots.CheckSpec(*specs[i]); err != nil {
			return nil, err
		}
	}
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
