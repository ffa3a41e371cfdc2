package ui

import (
	"net/http"
	"net/url"
	"strconv"

	"github.com/kalla-recon/kalla/internal/kalla"
	"github.com/kalla-recon/kalla/internal/store"
)

// runsPage is how many runs the runs page lists at a time.
const runsPage = 50

// runsData is what the runs page shows.
type runsData struct {
	Runs     runRows
	Recipes  []recipeView
	Statuses []kalla.RunStatus
	// Status and Recipe are the filters in force.
	Status kalla.RunStatus
	Recipe string
	// Offset is where this page starts; Prev and Next link the pages
	// around it ("" when there is none).
	Offset     int
	Prev, Next string
	// Start preselects a recipe in the start form (?start=recipe).
	Start string
	// Engines are the engines the start form offers, none when the
	// server has only DuckDB.
	Engines []string
}

// runs lists runs, newest first, filtered by status and recipe and paged,
// with the form that starts a run from a recipe. With ?fragment=1 it
// renders only the table, which the page's script refreshes while a listed
// run is active. Errors: EINVALID for an unknown status.
func (h *Handler) runs(w http.ResponseWriter, r *http.Request) (*view, error) {
	ctx := r.Context()
	q := r.URL.Query()
	d := runsData{Statuses: []kalla.RunStatus{kalla.RunQueued, kalla.RunRunning, kalla.RunCompleted, kalla.RunFailed, kalla.RunCancelled},
		Recipe: q.Get("recipe"), Start: q.Get("start"), Engines: h.engineChoice()}
	if s := q.Get("status"); s != "" {
		st := kalla.RunStatus(s)
		switch st {
		case kalla.RunQueued, kalla.RunRunning, kalla.RunCompleted, kalla.RunFailed, kalla.RunCancelled:
			d.Status = st
		default:
			return nil, kalla.Errorf(kalla.EINVALID, "%q is not a run status (queued, running, completed, failed, cancelled)", s)
		}
	}
	if o, err := strconv.Atoi(q.Get("offset")); err == nil && o > 0 {
		d.Offset = o
	}
	// One more than a page tells whether there is a next page.
	list, err := h.store.ListRuns(ctx, store.RunQuery{Status: d.Status, RecipeID: d.Recipe, Limit: runsPage + 1, Offset: d.Offset})
	if err != nil {
		return nil, err
	}
	link := func(offset int) string {
		v := url.Values{}
		if d.Status != "" {
			v.Set("status", string(d.Status))
		}
		if d.Recipe != "" {
			v.Set("recipe", d.Recipe)
		}
		if offset > 0 {
			v.Set("offset", strconv.Itoa(offset))
		}
		if len(v) == 0 {
			return "/runs"
		}
		return "/runs?" + v.Encode()
	}
	if len(list) > runsPage {
		list = list[:runsPage]
		d.Next = link(d.Offset + runsPage)
	}
	if d.Offset > 0 {
		d.Prev = link(max(0, d.Offset-runsPage))
	}
	empty := "No runs yet. Start one from a recipe above."
	if d.Status != "" || d.Recipe != "" {
		empty = "No runs match these filters."
	}
	refresh := link(d.Offset)
	if refresh == "/runs" {
		refresh += "?fragment=1"
	} else {
		refresh += "&fragment=1"
	}
	d.Runs = runRows{Runs: redactRuns(list), Empty: empty, Refresh: refresh}
	if q.Get("fragment") != "" {
		return &view{Page: "runs.html", Fragment: "runs_table", Data: d.Runs}, nil
	}
	recs, err := h.store.ListRecipes(ctx)
	if err != nil {
		return nil, err
	}
	d.Recipes = viewRecipes(recs)
	return &view{Page: "runs.html", Title: "Runs", Nav: "runs", Data: d}, nil
}
