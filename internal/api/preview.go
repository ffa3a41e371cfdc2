package api

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"path/filepath"

	"github.com/kalla-recon/kalla/internal/connector"
	"github.com/kalla-recon/kalla/internal/kalla"
	"github.com/kalla-recon/kalla/internal/recon"
	"github.com/kalla-recon/kalla/internal/scratch"
)

// previewResultRows is how many rows of each output table a match preview
// returns: enough to judge a recipe by, small enough to show at once.
const previewResultRows = 100

// previewRequest is the body of POST /api/recipes/preview.
type previewRequest struct {
	// Recipe is the recipe to try, as for an inline run; source URIs may
	// be sent back masked (restoreSecrets).
	Recipe json.RawMessage `json:"recipe"`
	// Filters override the recipe's filters per side, as for a run.
	Filters *kalla.RunFilters `json:"filters"`
	// Limit is the sample size per side: the first rows under the
	// filters, in the source's order. Default 200, at most 1000.
	Limit *int `json:"limit"`
	// ExactTotal counts every matching row of each side, however long it
	// takes, where by default a large total is a labelled lower bound.
	ExactTotal bool `json:"exact_total"`
}

// previewSide describes one side's sample.
type previewSide struct {
	// Staged is how many rows of the side were in the sample; Total is
	// how many rows match the filters in the whole source: exact, or at
	// least that many, as TotalKind says (connector.Total, as for a
	// source preview).
	Staged     int64  `json:"staged"`
	Total      int64  `json:"total"`
	TotalKind  string `json:"total_kind"`
	TotalExact bool   `json:"total_exact"`
}

// previewResponse is the answer of POST /api/recipes/preview: a real run's
// counts and the first rows of its three outputs, over the samples.
type previewResponse struct {
	Limit               int             `json:"limit"`
	Left                previewSide     `json:"left"`
	Right               previewSide     `json:"right"`
	MatchedCount        int64           `json:"matched_count"`
	MatchedLeftRecords  int64           `json:"matched_left_records"`
	MatchedRightRecords int64           `json:"matched_right_records"`
	UnmatchedLeftCount  int64           `json:"unmatched_left_count"`
	UnmatchedRightCount int64           `json:"unmatched_right_count"`
	Warnings            []kalla.Warning `json:"warnings"`
	Matched             *resultsPage    `json:"matched"`
	UnmatchedLeft       *resultsPage    `json:"unmatched_left"`
	UnmatchedRight      *resultsPage    `json:"unmatched_right"`
}

// previewRecipe runs a recipe for real, with the engine a run uses, on a
// sample of each side: the first limit rows under the sides' filters. It
// answers with each side's total (bounded and labelled as a source
// preview's, exact with exact_total), the match counts and the first rows of the matched pairs
// and of each side's unmatched records, and keeps nothing: no run is
// recorded and the outputs are removed. Unmatched rows of a sample may
// have their partner outside it. A file side's sample comes from the start
// its previews read (see file.Options.SampleBytes), so a large remote
// file is not fetched whole. Errors: 400 for an invalid recipe,
// filter, or match SQL (the engine's message), 404 for a missing file or
// table, 502 when a source cannot be reached.
func (h *Handler) previewRecipe(w http.ResponseWriter, r *http.Request) (any, error) {
	var req previewRequest
	if err := decodeJSON(r, &req); err != nil {
		return nil, err
	}
	if len(bytes.TrimSpace(req.Recipe)) == 0 || bytes.Equal(bytes.TrimSpace(req.Recipe), []byte("null")) {
		return nil, kalla.Errorf(kalla.EINVALID, "recipe is required: the recipe to preview, as for an inline run")
	}
	limit := connector.DefaultLimit
	if req.Limit != nil {
		if *req.Limit < 1 || *req.Limit > connector.MaxLimit {
			return nil, kalla.Errorf(kalla.EINVALID, "limit must be between 1 and %d rows per side", connector.MaxLimit)
		}
		limit = *req.Limit
	}
	ctx := r.Context()
	rec, err := kalla.ParseRecipe(req.Recipe)
	if err != nil {
		return nil, err
	}
	if err := h.restoreSecrets(ctx, rec); err != nil {
		return nil, err
	}
	if err := h.checkRecipeSources(rec); err != nil {
		return nil, err
	}
	filters := [2][]kalla.Filter{rec.Sources.Left.Filters, rec.Sources.Right.Filters}
	if req.Filters != nil {
		if req.Filters.Left != nil {
			filters[0] = req.Filters.Left
		}
		if req.Filters.Right != nil {
			filters[1] = req.Filters.Right
		}
	}
	out := &previewResponse{Limit: limit, Warnings: []kalla.Warning{}}
	// A folder this process holds (package scratch): a process starting
	// on the same data folder leaves it alone while this one lives.
	own, _, err := scratch.Make(filepath.Join(h.cfg.DataDir, "tmp"), "kalla-preview-")
	if err != nil {
		return nil, fmt.Errorf("create preview folder: %w", err)
	}
	defer own.Remove()
	dir := own.Path()
	// The service validates each side's filters, counts its rows under
	// them (the whole source) and runs on the first limit rows.
	sum, err := h.recon.Run(ctx, recon.Default, recon.Job{
		Recipe:      rec,
		LeftFilters: nonNil(filters[0]), RightFilters: nonNil(filters[1]),
		Sample: int64(limit),
		Counted: func(side string, n int64, kind string) {
			p := &out.Left
			if side == "right" {
				p = &out.Right
			}
			p.Total, p.TotalKind, p.TotalExact = n, kind, kind == connector.TotalExact
		},
		ExactTotal: req.ExactTotal,
		Out:        filepath.Join(dir, "out"), Formats: []string{recon.FormatParquet}, RunID: "preview",
		TempDir: filepath.Join(dir, "spill"),
		Admit:   h.engineSlot,
	})
	if err != nil {
		return nil, err
	}
	out.Left.Staged, out.Right.Staged = sum.LeftCount, sum.RightCount
	out.MatchedCount, out.MatchedLeftRecords, out.MatchedRightRecords = sum.MatchedCount, sum.MatchedLeftRecords, sum.MatchedRightRecords
	out.UnmatchedLeftCount, out.UnmatchedRightCount = sum.UnmatchedLeftCount, sum.UnmatchedRightCount
	out.Warnings = append(out.Warnings, sum.Warnings...)
	// Many more pairs than records on both sides: the match compares
	// records that have nothing to do with each other (a join on a
	// currency or a customer, not on a reference).
	if most := max(sum.MatchedLeftRecords, sum.MatchedRightRecords); most > 0 && sum.MatchedCount > 2*most {
		out.Warnings = append(out.Warnings, kalla.Warning{Code: kalla.WarnManyToMany, Count: sum.MatchedCount, Message: fmt.Sprintf(
			"the match made %d pairs from %d left and %d right records: each record is paired with many others, as a join on a category (a currency, a customer) does; join on a reference such as an invoice number",
			sum.MatchedCount, sum.MatchedLeftRecords, sum.MatchedRightRecords)})
	}
	db, err := h.results()
	if err != nil {
		return nil, err
	}
	for _, t := range []struct {
		table string
		dst   **resultsPage
	}{{recon.TableMatched, &out.Matched}, {recon.TableUnmatchedLeft, &out.UnmatchedLeft}, {recon.TableUnmatchedRight, &out.UnmatchedRight}} {
		page, err := readPage(ctx, db, filepath.Join(dir, "out", t.table+"."+recon.FormatParquet), 0, previewResultRows, "", pageOrder{})
		if err != nil {
			return nil, err
		}
		page.RunID, page.Table = "preview", t.table
		*t.dst = page
	}
	return out, nil
}

// nonNil returns f, or an empty list standing for "no filters": the engine
// reads nil as "the recipe's filters", which were already resolved.
func nonNil(f []kalla.Filter) []kalla.Filter {
	if f == nil {
		return []kalla.Filter{}
	}
	return f
}
