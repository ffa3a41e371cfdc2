package ui

import (
	"net/http"

	"github.com/kalla-recon/kalla/internal/kalla"
	"github.com/kalla-recon/kalla/internal/store"
)

// recentRuns is how many runs the dashboard lists.
const recentRuns = 10

// dashboardData is what the dashboard shows.
type dashboardData struct {
	Sources int
	Recipes int
	Active  int // runs queued or running
	Runs    runRows
}

// dashboard shows the recent runs with their status and match rate, how
// many sources and recipes there are, and the way to start a
// reconciliation. With ?fragment=runs it renders only the runs table, which
// the page's script refreshes while runs are active.
func (h *Handler) dashboard(w http.ResponseWriter, r *http.Request) (*view, error) {
	ctx := r.Context()
	runs, err := h.store.ListRuns(ctx, store.RunQuery{Limit: recentRuns})
	if err != nil {
		return nil, err
	}
	d := dashboardData{Runs: runRows{Runs: redactRuns(runs), Empty: "No runs yet.", Refresh: "/?fragment=runs"}}
	if r.URL.Query().Get("fragment") == "runs" {
		return &view{Page: "dashboard.html", Fragment: "runs_table", Data: d.Runs}, nil
	}
	srcs, err := h.store.ListSources(ctx)
	if err != nil {
		return nil, err
	}
	recs, err := h.store.ListRecipes(ctx)
	if err != nil {
		return nil, err
	}
	d.Sources, d.Recipes = len(srcs), len(recs)
	for _, st := range []kalla.RunStatus{kalla.RunQueued, kalla.RunRunning} {
		active, err := h.store.ListRuns(ctx, store.RunQuery{Status: st, Limit: 1000})
		if err != nil {
			return nil, err
		}
		d.Active += len(active)
	}
	return &view{Page: "dashboard.html", Title: "Dashboard", Nav: "dashboard", Data: d}, nil
}

// runRows is a runs table, shared by the dashboard and the runs page.
type runRows struct {
	Runs []*kalla.RunRecord
	// Empty is shown when there are no runs.
	Empty string
	// Refresh is the URL of this table alone, which the page's script
	// reloads while a listed run is active.
	Refresh string
}

// Active reports whether a listed run is still queued or running.
func (rr runRows) Active() bool {
	for _, r := range rr.Runs {
		if !r.Status.Done() {
			return true
		}
	}
	return false
}
