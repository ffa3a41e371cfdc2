package api

import (
	"bytes"
	"context"
	"database/sql/driver"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strconv"

	"github.com/kalla-recon/kalla/internal/connector"
	"github.com/kalla-recon/kalla/internal/engine"
	"github.com/kalla-recon/kalla/internal/kalla"
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
	var srcs [2]*sampleSource
	var opened [2]connector.Source
	out := &previewResponse{Limit: limit, Warnings: []kalla.Warning{}}
	for i, spec := range []kalla.SourceSpec{rec.Sources.Left, rec.Sources.Right} {
		for _, f := range filters[i] {
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
		cols, err := src.Columns(ctx)
		if err != nil {
			return nil, kalla.AsSourceError(err, side, spec.Alias)
		}
		if err := kalla.ValidateFilters(spec.Alias, filters[i], cols); err != nil {
			return nil, err
		}
		opened[i] = src
		// A file is staged from what its preview reads (its start), not
		// fetched whole.
		stage := src
		if pf, ok := src.(connector.Prefix); ok {
			if stage, err = pf.PrefixSource(ctx); err != nil {
				return nil, kalla.AsSourceError(err, side, spec.Alias)
			}
		}
		srcs[i] = &sampleSource{Source: stage, limit: int64(limit)}
	}

	tmp := filepath.Join(h.cfg.DataDir, "tmp")
	if err := os.MkdirAll(tmp, 0o750); err != nil {
		return nil, fmt.Errorf("create preview folder: %w", err)
	}
	dir, err := os.MkdirTemp(tmp, "preview-")
	if err != nil {
		return nil, fmt.Errorf("create preview folder: %w", err)
	}
	defer os.RemoveAll(dir)
	opts := h.cfg.Engine
	opts.TempDir = filepath.Join(dir, "spill")
	if opts.Logger == nil {
		opts.Logger = h.log
	}
	eng, closeEngine, err := h.openEngine(ctx, opts)
	if err != nil {
		return nil, err
	}
	defer closeEngine()
	sum, err := eng.Execute(ctx, engine.Run{
		Recipe: rec, Left: srcs[0], Right: srcs[1],
		LeftFilters: nonNil(filters[0]), RightFilters: nonNil(filters[1]),
		OutDir: filepath.Join(dir, "out"), Formats: []string{engine.FormatParquet}, RunID: "preview",
	})
	if err != nil {
		return nil, err
	}
	out.Left.Staged, out.Right.Staged = sum.LeftCount, sum.RightCount
	// Each side's total as a source preview gives it: exact when the
	// sample held every match or counting is cheap, else a lower bound.
	for i, side := range []*previewSide{&out.Left, &out.Right} {
		n, kind, err := connector.Total(ctx, opened[i], filters[i], side.Staged, int64(limit), connector.LoadOptions{ExactTotal: req.ExactTotal})
		if err != nil {
			return nil, kalla.AsSourceError(err, [2]string{"left", "right"}[i], [2]string{rec.Sources.Left.Alias, rec.Sources.Right.Alias}[i])
		}
		side.Total, side.TotalKind, side.TotalExact = n, kind, kind == connector.TotalExact
	}
	out.MatchedCount, out.MatchedLeftRecords, out.MatchedRightRecords = sum.MatchedCount, sum.MatchedLeftRecords, sum.MatchedRightRecords
	out.UnmatchedLeftCount, out.UnmatchedRightCount = sum.UnmatchedLeftCount, sum.UnmatchedRightCount
	out.Warnings = append(out.Warnings, sum.Warnings...)
	db, err := h.results()
	if err != nil {
		return nil, err
	}
	for _, t := range []struct {
		table string
		dst   **resultsPage
	}{{engine.TableMatched, &out.Matched}, {engine.TableUnmatchedLeft, &out.UnmatchedLeft}, {engine.TableUnmatchedRight, &out.UnmatchedRight}} {
		page, err := readPage(ctx, db, filepath.Join(dir, "out", t.table+"."+engine.FormatParquet), 0, previewResultRows, "")
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

// errSampleFull stops a source's staging once the sample is complete.
var errSampleFull = errors.New("sample complete")

// sampleSource stages only the first limit rows of a source. Database
// sources are stopped after limit rows (their query is cancelled, so a
// large table is not read to the end); file sources (the start of the file
// a preview reads, connector.Prefix) are read by DuckDB in one scan and
// trimmed to their first limit rows, in file order.
type sampleSource struct {
	connector.Source
	limit int64
}

// Stage stages at most s.limit rows matching filters.
func (s *sampleSource) Stage(ctx context.Context, filters []kalla.Filter, sink connector.Sink) (int64, error) {
	ss := &sampleSink{Sink: sink, limit: s.limit}
	n, err := s.Source.Stage(ctx, filters, ss)
	if ss.full {
		// The source failed only because the sample was complete: the
		// appender has flushed the first limit rows.
		return s.limit, nil
	}
	if err != nil {
		return n, err
	}
	if n <= s.limit {
		return n, nil
	}
	t := sink.Table()
	if _, err := sink.ExecContext(ctx, "DELETE FROM "+t+" WHERE rowid NOT IN (SELECT rowid FROM "+t+" ORDER BY rowid LIMIT "+strconv.FormatInt(s.limit, 10)+")"); err != nil {
		return 0, fmt.Errorf("trim sample: %w", err)
	}
	return s.limit, nil
}

// sampleSink passes at most limit appended rows to the engine's sink.
type sampleSink struct {
	connector.Sink
	limit int64
	full  bool
}

// Append appends the first limit rows fill writes, then stops fill.
func (s *sampleSink) Append(ctx context.Context, cols []kalla.Column, fill func(w connector.RowWriter) error) (int64, error) {
	return s.Sink.Append(ctx, cols, func(w connector.RowWriter) error {
		return fill(&sampleWriter{w: w, s: s, left: s.limit})
	})
}

type sampleWriter struct {
	w    connector.RowWriter
	s    *sampleSink
	left int64
}

func (w *sampleWriter) WriteRow(values ...driver.Value) error {
	if w.left <= 0 {
		w.s.full = true
		return errSampleFull
	}
	w.left--
	return w.w.WriteRow(values...)
}
