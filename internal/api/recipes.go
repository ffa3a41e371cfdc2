package api

import (
	"context"
	"net/http"
	"regexp"
	"slices"
	"strings"

	"github.com/kalla-recon/kalla/internal/kalla"
	"github.com/kalla-recon/kalla/internal/recon"
)

var recipeIDPattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$`)

func redactStored(r *kalla.StoredRecipe) *kalla.StoredRecipe {
	c := *r
	c.Recipe = r.Recipe.Redacted()
	return &c
}

// reservedRecipeIDs name routes beside /api/recipes/{id}; a recipe stored
// under one could never be read back.
var reservedRecipeIDs = []string{"preview", "validate", "suggest"}

// parseRecipeBody reads a recipe in the original JSON format (or YAML) from
// the request body, restores source URIs sent back masked (restoreSecrets)
// and validates its fields and file-source paths.
// Errors: EINVALID listing every problem.
func (h *Handler) parseRecipeBody(r *http.Request) (*kalla.Recipe, error) {
	body, err := readBody(r)
	if err != nil {
		return nil, err
	}
	if err := rejectNulls(body); err != nil {
		return nil, err
	}
	rec, err := kalla.ParseRecipe(body)
	if err != nil {
		return nil, err
	}
	if slices.Contains(reservedRecipeIDs, rec.RecipeID) {
		return nil, kalla.Errorf(kalla.EINVALID, "recipe_id %q is reserved: Kalla keeps the names %s for itself; choose another recipe ID", rec.RecipeID, strings.Join(reservedRecipeIDs, ", "))
	}
	if err := h.restoreSecrets(r.Context(), rec); err != nil {
		return nil, err
	}
	if err := h.checkRecipeSources(rec); err != nil {
		return nil, err
	}
	return rec, nil
}

func (h *Handler) checkRecipeSources(rec *kalla.Recipe) error {
	for _, s := range []kalla.SourceSpec{rec.Sources.Left, rec.Sources.Right} {
		if err := h.cfg.Roots.CheckSpec(s); err != nil {
			return err
		}
	}
	return nil
}

// listRecipes lists stored recipes.
func (h *Handler) listRecipes(w http.ResponseWriter, r *http.Request) (any, error) {
	list, err := h.store.ListRecipes(r.Context())
	if err != nil {
		return nil, err
	}
	out := make([]*kalla.StoredRecipe, 0, len(list))
	for _, x := range list {
		out = append(out, redactStored(x))
	}
	return map[string]any{"recipes": out}, nil
}

// createRecipe stores a new recipe under its recipe_id. Errors: 400 for an
// invalid recipe, 409 when the id is taken.
func (h *Handler) createRecipe(w http.ResponseWriter, r *http.Request) (any, error) {
	rec, err := h.parseRecipeBody(r)
	if err != nil {
		return nil, err
	}
	if err := h.refuseUnrunnable(r.Context(), rec); err != nil {
		return nil, err
	}
	sr := &kalla.StoredRecipe{ID: rec.RecipeID, Name: rec.Name, Recipe: *rec}
	if err := h.store.CreateRecipe(r.Context(), sr); err != nil {
		if kalla.ErrorCode(err) == kalla.ECONFLICT {
			return nil, kalla.Errorf(kalla.ECONFLICT, "a recipe with id %q exists already: change it with PUT /api/recipes/%s", rec.RecipeID, rec.RecipeID)
		}
		return nil, err
	}
	return status(http.StatusCreated, h.storedOrSelf(r, sr)), nil
}

// storedOrSelf re-reads a recipe for its timestamps.
func (h *Handler) storedOrSelf(r *http.Request, sr *kalla.StoredRecipe) *kalla.StoredRecipe {
	if got, err := h.store.GetRecipe(r.Context(), sr.ID); err == nil {
		sr = got
	}
	return redactStored(sr)
}

// getRecipe returns one recipe, source URIs redacted. Errors: 404.
func (h *Handler) getRecipe(w http.ResponseWriter, r *http.Request) (any, error) {
	sr, err := h.lookupRecipe(r, r.PathValue("id"))
	if err != nil {
		return nil, err
	}
	return redactStored(sr), nil
}

func (h *Handler) lookupRecipe(r *http.Request, id string) (*kalla.StoredRecipe, error) {
	return lookup(r.Context(), id, recipeIDPattern, h.store.GetRecipe, "no recipe has id %q")
}

// putRecipe creates or replaces the recipe {id}; the body's recipe_id must
// be the same or empty. Runs already queued keep the recipe they were
// queued with. Errors: 400.
func (h *Handler) putRecipe(w http.ResponseWriter, r *http.Request) (any, error) {
	id := r.PathValue("id")
	if !recipeIDPattern.MatchString(id) {
		return nil, kalla.Errorf(kalla.EINVALID, "recipe id %q may contain only letters, digits, \".\", \"_\" and \"-\" (at most 128)", id)
	}
	rec, err := h.parseRecipeBody(r)
	if err != nil {
		return nil, err
	}
	if rec.RecipeID != id {
		return nil, kalla.Errorf(kalla.EINVALID, "the body's recipe_id %q differs from the path's %q", rec.RecipeID, id)
	}
	if err := h.refuseUnrunnable(r.Context(), rec); err != nil {
		return nil, err
	}
	sr := &kalla.StoredRecipe{ID: id, Name: rec.Name, Recipe: *rec}
	if err := h.store.PutRecipe(r.Context(), sr); err != nil {
		return nil, err
	}
	return h.storedOrSelf(r, sr), nil
}

// deleteRecipe removes a recipe; its runs keep their snapshot. Errors: 404.
func (h *Handler) deleteRecipe(w http.ResponseWriter, r *http.Request) (any, error) {
	id := r.PathValue("id")
	if _, err := h.lookupRecipe(r, id); err != nil {
		return nil, err
	}
	if err := h.store.DeleteRecipe(r.Context(), id); err != nil {
		return nil, err
	}
	return status(http.StatusNoContent, nil), nil
}

// validateResponse is the answer of POST /api/recipes/validate, the same
// as `kalla recipe check --json`.
type validateResponse struct {
	OK bool `json:"ok"`
	*recon.Check
}

// validateRecipe checks a recipe against its real sources without running
// it, like `kalla recipe check`: a well-formed request always answers 200,
// with ok=false and the problems when the recipe would not run.
func (h *Handler) validateRecipe(w http.ResponseWriter, r *http.Request) (any, error) {
	body, err := readBody(r)
	if err != nil {
		return nil, err
	}
	rec, err := kalla.ParseRecipe(body)
	if err != nil {
		if kalla.ErrorCode(err) == kalla.EINVALID {
			return validateResponse{OK: false, Check: &recon.Check{Problems: []string{kalla.ErrorMessage(err)}}}, nil
		}
		return nil, err
	}
	ctx := r.Context()
	if err := h.restoreSecrets(ctx, rec); err != nil {
		if kalla.ErrorCode(err) == kalla.EINVALID {
			return validateResponse{OK: false, Check: &recon.Check{Problems: []string{kalla.ErrorMessage(err)}}}, nil
		}
		return nil, err
	}
	chk, _, err := h.checkRecipe(ctx, rec)
	if err != nil {
		return nil, err
	}
	return validateResponse{OK: chk.OK(), Check: chk}, nil
}

// checkRecipe checks a recipe (secrets restored) against its real sources
// through the reconciliation service; opened reports whether both sources
// could be read, so that the check got as far as the match.
func (h *Handler) checkRecipe(ctx context.Context, rec *kalla.Recipe) (chk *recon.Check, opened bool, err error) {
	var refused [2]error
	for i, spec := range []kalla.SourceSpec{rec.Sources.Left, rec.Sources.Right} {
		refused[i] = h.cfg.Roots.CheckSpec(spec)
	}
	chk, err = h.recon.Check(ctx, recon.Default, rec, recon.CheckOptions{Refused: refused, Admit: h.engineSlot})
	if err != nil {
		return nil, false, err
	}
	for i, p := range chk.Problems {
		chk.Problems[i] = kalla.Redact(p)
	}
	// An engine learns a side's columns only once it could read the side.
	opened = refused == [2]error{} && chk.LeftColumns != nil && chk.RightColumns != nil
	return chk, opened, nil
}

// refuseUnrunnable checks a recipe about to be saved against its sources:
// one whose sources can be read but whose match SQL, rules, keys or
// filters would not run is refused (EUNRUNNABLE, 422) with the check's
// problems. A source that cannot be reached now does not stop the save:
// the run will say so.
func (h *Handler) refuseUnrunnable(ctx context.Context, rec *kalla.Recipe) error {
	chk, opened, err := h.checkRecipe(ctx, rec)
	if err != nil {
		return err
	}
	if opened && !chk.OK() {
		return kalla.Errorf(kalla.EUNRUNNABLE, "the recipe was not saved: it would not run: %s", strings.Join(chk.Problems, "; "))
	}
	return nil
}
