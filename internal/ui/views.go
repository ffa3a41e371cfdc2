package ui

import (
	"time"

	"github.com/kalla-recon/kalla/internal/kalla"
)

// Pages never see a raw URI: everything the store returns passes through
// these conversions first, so that no template can print a password by
// mistake.

// sourceView is a registered source as pages show it.
type sourceView struct {
	Alias         string
	Type          string
	URI           string // redacted
	Status        string
	StatusMessage string
	CreatedAt     time.Time
	UpdatedAt     time.Time
}

func viewSource(s *kalla.RegisteredSource) sourceView {
	return sourceView{Alias: s.Alias, Type: s.SourceType, URI: kalla.Redact(s.URI), Status: s.Status,
		StatusMessage: s.StatusMessage, CreatedAt: s.CreatedAt, UpdatedAt: s.UpdatedAt}
}

func viewSources(list []*kalla.RegisteredSource) []sourceView {
	out := make([]sourceView, len(list))
	for i, s := range list {
		out[i] = viewSource(s)
	}
	return out
}

// recipeView is a stored recipe as pages show it.
type recipeView struct {
	ID        string
	Name      string
	Recipe    kalla.Recipe // URIs redacted
	UpdatedAt time.Time
}

func viewRecipes(list []*kalla.StoredRecipe) []recipeView {
	out := make([]recipeView, len(list))
	for i, r := range list {
		out[i] = recipeView{ID: r.ID, Name: r.Name, Recipe: r.Recipe.Redacted(), UpdatedAt: r.UpdatedAt}
	}
	return out
}

func redactRuns(list []*kalla.RunRecord) []*kalla.RunRecord {
	out := make([]*kalla.RunRecord, len(list))
	for i, r := range list {
		out[i] = r.Redacted()
	}
	return out
}
