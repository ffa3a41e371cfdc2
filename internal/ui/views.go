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
	return sourceView{Alias: s.Alias, Type: s.SourceType, URI: kalla.RedactURI(s.URI), Status: s.Status,
		StatusMessage: s.StatusMessage, CreatedAt: s.CreatedAt, UpdatedAt: s.UpdatedAt}
}

func viewSources(list []*kalla.RegisteredSource) []sourceView {
	out := make([]sourceView, len(list))
	for i, s := range list {
		out[i] = viewSource(s)
	}
	return out
}

// redactRecipe returns a copy of rec whose source URIs are redacted.
func redactRecipe(rec kalla.Recipe) kalla.Recipe {
	rec.Sources.Left.URI = kalla.RedactURI(rec.Sources.Left.URI)
	rec.Sources.Right.URI = kalla.RedactURI(rec.Sources.Right.URI)
	return rec
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
		out[i] = recipeView{ID: r.ID, Name: r.Name, Recipe: redactRecipe(r.Recipe), UpdatedAt: r.UpdatedAt}
	}
	return out
}

// redactRun returns a copy of a run record with its recipe's URIs and its
// callback URL redacted.
func redactRun(r *kalla.RunRecord) *kalla.RunRecord {
	c := *r
	c.Recipe = redactRecipe(r.Recipe)
	c.CallbackURL = kalla.RedactURI(r.CallbackURL)
	return &c
}

func redactRuns(list []*kalla.RunRecord) []*kalla.RunRecord {
	out := make([]*kalla.RunRecord, len(list))
	for i, r := range list {
		out[i] = redactRun(r)
	}
	return out
}
