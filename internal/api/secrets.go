package api

import (
	"context"

	"github.com/kalla-recon/kalla/internal/kalla"
)

// restoreSecrets lets a client send back a source URI exactly as the API
// showed it, password masked, and have it stand for the real URI: the web
// UI builds recipes from registered sources whose passwords it never sees,
// and edits stored recipes it was only ever shown redacted. A side's URI is
// restored when it equals the redacted form of that side's URI in the
// stored recipe with the same recipe_id (the one being edited), else of a
// registered source's URI (the one registered under the side's alias
// first). Only an exact match counts, so
// a client cannot send a registered password to another host, user,
// database or table. URIs with nothing masked are left alone. Errors:
// EINVALID when a redacted URI fits several registered sources and none
// under the side's alias.
func (h *Handler) restoreSecrets(ctx context.Context, rec *kalla.Recipe) error {
	var prev *kalla.Recipe
	var registered []*kalla.RegisteredSource
	prevLoaded, loaded := false, false
	for i, spec := range []*kalla.SourceSpec{&rec.Sources.Left, &rec.Sources.Right} {
		if spec.URI == "" || kalla.Redact(spec.URI) != spec.URI {
			continue // carries its own secret, or none to restore
		}
		if !prevLoaded && recipeIDPattern.MatchString(rec.RecipeID) {
			if sr, err := h.store.GetRecipe(ctx, rec.RecipeID); err == nil {
				prev = &sr.Recipe
			} else if kalla.ErrorCode(err) != kalla.ENOTFOUND {
				return err
			}
		}
		prevLoaded = true
		if prev != nil {
			old := prev.Sources.Left.URI
			if i == 1 {
				old = prev.Sources.Right.URI
			}
			if old != spec.URI && kalla.Redact(old) == spec.URI {
				spec.URI = old
				continue
			}
		}
		if !loaded {
			list, err := h.store.ListSources(ctx)
			if err != nil {
				return err
			}
			registered, loaded = list, true
		}
		var found string
		ambiguous := false
		for _, rs := range registered {
			if rs.URI == spec.URI || kalla.Redact(rs.URI) != spec.URI {
				continue
			}
			if rs.Alias == spec.Alias {
				found, ambiguous = rs.URI, false
				break
			}
			if found != "" && found != rs.URI {
				ambiguous = true
			}
			found = rs.URI
		}
		if ambiguous {
			return kalla.Errorf(kalla.EINVALID, "source %q: the masked URI %s fits several registered sources; name the side after the one it means (its alias) or give the full URI", spec.Alias, spec.URI)
		}
		if found != "" {
			spec.URI = found
		}
	}
	return nil
}
