package api

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/kalla-recon/kalla/internal/kalla"
	"github.com/kalla-recon/kalla/internal/recon"
	"github.com/kalla-recon/kalla/internal/runner"
	"github.com/kalla-recon/kalla/internal/store"
)

// Listing bounds for GET /api/runs.
const (
	defaultRunList = 50
	maxRunList     = 500
)

var runIDPattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9-]{0,63}$`)

// runRequest is the body of POST /api/runs: a stored recipe by id, or a
// recipe given inline, with optional per-side filter overrides, a URL
// for progress/complete/error callbacks and the engine to run on (which
// wins over the recipe's own).
type runRequest struct {
	RecipeID    string            `json:"recipe_id"`
	Recipe      json.RawMessage   `json:"recipe"`
	Filters     *kalla.RunFilters `json:"filters"`
	CallbackURL string            `json:"callback_url"`
	Engine      string            `json:"engine"`
}

// runView is a run as the API shows it: the record's state, and once it
// completed the counts under the names summary.json uses, the stage
// timings and the output files with their download paths.
type runView struct {
	ID              string          `json:"run_id"`
	RecipeID        string          `json:"recipe_id"`
	Status          kalla.RunStatus `json:"status"`
	Stage           string          `json:"stage,omitempty"`
	Progress        float64         `json:"progress"`
	LeftRowsStaged  int64           `json:"left_rows_staged"`
	RightRowsStaged int64           `json:"right_rows_staged"`
	CancelRequested bool            `json:"cancel_requested,omitempty"`
	Error           string          `json:"error,omitempty"`
	// ErrorCode classifies a failure (resource_exhausted: out of memory
	// or disk, not the recipe's fault); see kalla.RunRecord.ErrorCode.
	ErrorCode string `json:"error_code,omitempty"`
	// Engine is the engine the run executes on: duckdb or spark.
	Engine string `json:"engine"`

	LeftCount           *int64   `json:"left_count,omitempty"`
	RightCount          *int64   `json:"right_count,omitempty"`
	MatchedCount        *int64   `json:"matched_count,omitempty"`
	MatchedLeftRecords  *int64   `json:"matched_left_records,omitempty"`
	MatchedRightRecords *int64   `json:"matched_right_records,omitempty"`
	UnmatchedLeftCount  *int64   `json:"unmatched_left_count,omitempty"`
	UnmatchedRightCount *int64   `json:"unmatched_right_count,omitempty"`
	MatchRateLeft       *float64 `json:"match_rate_left,omitempty"`
	MatchRateRight      *float64 `json:"match_rate_right,omitempty"`

	DurationMS *int64              `json:"duration_ms,omitempty"`
	Stages     []kalla.StageTiming `json:"stages,omitempty"`
	Warnings   []kalla.Warning     `json:"warnings,omitempty"`
	Files      []runFileView       `json:"files,omitempty"`

	Recipe      kalla.Recipe      `json:"recipe"`
	Filters     *kalla.RunFilters `json:"filters,omitempty"`
	CallbackURL string            `json:"callback_url,omitempty"`
	CreatedAt   time.Time         `json:"created_at"`
	StartedAt   *time.Time        `json:"started_at,omitempty"`
	FinishedAt  *time.Time        `json:"finished_at,omitempty"`
}

// runFileView is one output file of a completed run.
type runFileView struct {
	Name   string `json:"name"`
	Table  string `json:"table,omitempty"`
	Format string `json:"format"`
	Rows   *int64 `json:"rows,omitempty"`
	Bytes  int64  `json:"bytes,omitempty"`
	SHA256 string `json:"sha256,omitempty"`
	URL    string `json:"url"`
}

func viewRun(rec *kalla.RunRecord) *runView {
	v := &runView{
		ID: rec.ID, RecipeID: rec.RecipeID, Status: rec.Status, Stage: rec.Stage, Progress: rec.Progress,
		LeftRowsStaged: rec.LeftRows, RightRowsStaged: rec.RightRows, CancelRequested: rec.CancelRequested,
		Error: kalla.Redact(rec.Error), ErrorCode: rec.ErrorCode, Engine: rec.EngineName(), Recipe: rec.Recipe.Redacted(), Filters: rec.Filters, CallbackURL: kalla.Redact(rec.CallbackURL),
		CreatedAt: rec.CreatedAt, StartedAt: rec.StartedAt, FinishedAt: rec.FinishedAt,
	}
	if s := rec.Summary; s != nil && rec.Status == kalla.RunCompleted {
		v.Progress = 1
		v.LeftCount, v.RightCount = &s.LeftCount, &s.RightCount
		v.MatchedCount, v.MatchedLeftRecords, v.MatchedRightRecords = &s.MatchedCount, &s.MatchedLeftRecords, &s.MatchedRightRecords
		v.UnmatchedLeftCount, v.UnmatchedRightCount = &s.UnmatchedLeftCount, &s.UnmatchedRightCount
		v.MatchRateLeft, v.MatchRateRight = &s.MatchRateLeft, &s.MatchRateRight
		v.DurationMS, v.Stages, v.Warnings = &s.DurationMS, s.Stages, s.Warnings
		base := "/api/runs/" + rec.ID + "/files/"
		for _, o := range s.Outputs {
			v.Files = append(v.Files, runFileView{Name: o.Name, Table: o.Table, Format: o.Format, Rows: &o.Rows, Bytes: o.Bytes, SHA256: o.SHA256, URL: base + o.Name})
		}
		v.Files = append(v.Files, runFileView{Name: recon.SummaryFile, Format: "json", URL: base + recon.SummaryFile})
	}
	return v
}

// createRun queues a run of a stored recipe (recipe_id) or an inline recipe
// and wakes the pool. The recipe is snapshotted into the run, so editing
// the recipe later does not change what the run does. Errors: 400 for an
// invalid request or recipe, 404 for an unknown recipe_id, 429 when the
// queue is full.
func (h *Handler) createRun(w http.ResponseWriter, r *http.Request) (any, error) {
	var req runRequest
	if err := decodeJSON(r, &req); err != nil {
		return nil, err
	}
	hasInline := len(bytes.TrimSpace(req.Recipe)) > 0 && !bytes.Equal(bytes.TrimSpace(req.Recipe), []byte("null"))
	var recipe *kalla.Recipe
	switch {
	case req.RecipeID != "" && hasInline:
		return nil, kalla.Errorf(kalla.EINVALID, "give either recipe_id or an inline recipe, not both")
	case req.RecipeID != "":
		sr, err := h.lookupRecipe(r, req.RecipeID)
		if err != nil {
			return nil, err
		}
		recipe = &sr.Recipe
		// A recipe stored before the file roots changed must not slip
		// past them.
		if err := h.checkRecipeSources(recipe); err != nil {
			return nil, err
		}
	case hasInline:
		// An inline recipe names its own sources, which only an admin
		// may point the server at.
		if err := requireRole(r.Context(), kalla.RoleAdmin, "run an inline recipe (run a stored one by recipe_id)"); err != nil {
			return nil, err
		}
		rec, err := kalla.ParseRecipe(req.Recipe)
		if err != nil {
			return nil, err
		}
		if err := h.restoreSecrets(r.Context(), rec); err != nil {
			return nil, err
		}
		if err := h.checkRecipeSources(rec); err != nil {
			return nil, err
		}
		recipe = rec
	default:
		return nil, kalla.Errorf(kalla.EINVALID, "give recipe_id (a stored recipe) or recipe (an inline recipe)")
	}
	if req.Filters != nil {
		for _, f := range append(append([]kalla.Filter(nil), req.Filters.Left...), req.Filters.Right...) {
			if err := f.Validate(); err != nil {
				return nil, err
			}
		}
	}
	if req.CallbackURL != "" {
		if err := h.cfg.Callbacks.CheckURL(req.CallbackURL); err != nil {
			return nil, err
		}
	}
	engine, err := h.runEngine(req.Engine, recipe)
	if err != nil {
		return nil, err
	}
	id, err := uuid.NewV7()
	if err != nil {
		return nil, fmt.Errorf("new run id: %w", err)
	}
	rec := &kalla.RunRecord{
		ID: id.String(), RecipeID: recipe.RecipeID, Recipe: *recipe, Filters: req.Filters,
		CallbackURL: req.CallbackURL, Engine: engine, Status: kalla.RunQueued,
		OutDir: runner.OutDir(h.cfg.DataDir, id.String()), CreatedAt: time.Now().UTC(),
	}
	if err := h.enqueue(r.Context(), w, rec); err != nil {
		return nil, err
	}
	h.runs.Wake()
	return status(http.StatusAccepted, map[string]any{"run_id": rec.ID, "status": rec.Status, "engine": rec.Engine}), nil
}

// runEngine chooses the engine of a run: the request's, else the recipe's,
// else the default, and refuses one this server cannot run now rather
// than queue a run that can only fail. Errors: EINVALID naming the engines
// the server has.
func (h *Handler) runEngine(requested string, rec *kalla.Recipe) (string, error) {
	name, from := requested, `the run's "engine"`
	if name == "" {
		name, from = rec.Engine, fmt.Sprintf(`recipe %q asks for it in its "engine"`, rec.RecipeID)
	}
	if name == "" {
		name = recon.Default
	}
	if err := h.recon.CheckEngine(name); err != nil {
		return "", kalla.Errorf(kalla.EINVALID, "%s: %s", from, kalla.ErrorMessage(err))
	}
	return name, nil
}

// enqueue stores rec as queued unless the queue already holds
// MaxQueuedRuns runs. Errors: ETOOMANY, with the Retry-After header set.
func (h *Handler) enqueue(ctx context.Context, w http.ResponseWriter, rec *kalla.RunRecord) error {
	h.queueMu.Lock()
	defer h.queueMu.Unlock()
	counts, err := h.store.CountRunsByStatus(ctx)
	if err != nil {
		return err
	}
	if n := counts[kalla.RunQueued]; n >= h.cfg.MaxQueuedRuns {
		w.Header().Set("Retry-After", strconv.Itoa(int(queueRetryAfter.Seconds())))
		return kalla.Errorf(kalla.ETOOMANY, "the run queue is full: %d runs are waiting, the most this server accepts (--max-queued-runs); try again once some have started", n)
	}
	return h.store.CreateRun(ctx, rec)
}

// listRuns lists runs, newest first, optionally by status and recipe_id,
// paged by limit (default 50, at most 500) and offset. Errors: 400.
func (h *Handler) listRuns(w http.ResponseWriter, r *http.Request) (any, error) {
	q := store.RunQuery{RecipeID: r.URL.Query().Get("recipe_id")}
	// Present but empty is no status at all: refused like any other
	// value that is not one (the document lists the enum).
	if r.URL.Query().Has("status") {
		s := r.URL.Query().Get("status")
		switch st := kalla.RunStatus(s); st {
		case kalla.RunQueued, kalla.RunRunning, kalla.RunCompleted, kalla.RunFailed, kalla.RunCancelled:
			q.Status = st
		default:
			return nil, kalla.Errorf(kalla.EINVALID, "status %q is not a run status (queued, running, completed, failed, cancelled)", s)
		}
	}
	var err error
	if q.Limit, err = queryInt(r, "limit", defaultRunList, 1, maxRunList); err != nil {
		return nil, err
	}
	if q.Offset, err = queryInt(r, "offset", 0, 0, math.MaxInt); err != nil {
		return nil, err
	}
	list, err := h.store.ListRuns(r.Context(), q)
	if err != nil {
		return nil, err
	}
	out := make([]*runView, 0, len(list))
	for _, rec := range list {
		out = append(out, viewRun(rec))
	}
	return map[string]any{"runs": out, "limit": q.Limit, "offset": q.Offset}, nil
}

func (h *Handler) lookupRun(r *http.Request, id string) (*kalla.RunRecord, error) {
	return lookup(r.Context(), id, runIDPattern, h.store.GetRun, "no run has id %q")
}

// getRun returns one run. Errors: 404.
func (h *Handler) getRun(w http.ResponseWriter, r *http.Request) (any, error) {
	rec, err := h.lookupRun(r, r.PathValue("id"))
	if err != nil {
		return nil, err
	}
	return viewRun(rec), nil
}

// cancelRun cancels a queued run at once, or asks a running one to stop:
// the pool executing it cancels its context (the DuckDB query and the
// source reads stop) and the run records "cancelled" shortly after; the
// answer, 202, shows the run as it is now. Errors: 404, 409 when the run
// has already finished.
func (h *Handler) cancelRun(w http.ResponseWriter, r *http.Request) (any, error) {
	id := r.PathValue("id")
	rec, err := h.lookupRun(r, id)
	if err != nil {
		return nil, err
	}
	if rec.Status.Done() {
		return nil, kalla.Errorf(kalla.ECONFLICT, "run %s has already finished (%s)", id, rec.Status)
	}
	if _, err := h.store.RequestCancel(r.Context(), id); err != nil {
		if kalla.ErrorCode(err) == kalla.ECONFLICT {
			return nil, kalla.Errorf(kalla.ECONFLICT, "run %s has already finished", id)
		}
		return nil, err
	}
	h.runs.Cancel(id)
	h.runs.Notify(id)
	if got, err := h.store.GetRun(r.Context(), id); err == nil {
		rec = got
	}
	return status(http.StatusAccepted, viewRun(rec)), nil
}

// progressEvent is the data of an SSE "progress" event.
type progressEvent struct {
	ID              string          `json:"run_id"`
	Status          kalla.RunStatus `json:"status"`
	Stage           string          `json:"stage,omitempty"`
	Progress        float64         `json:"progress"`
	LeftRowsStaged  int64           `json:"left_rows_staged"`
	RightRowsStaged int64           `json:"right_rows_staged"`
	CancelRequested bool            `json:"cancel_requested,omitempty"`
	// StartedAt is when a worker took the run (RFC 3339), so a page can
	// count the time it has been running.
	StartedAt string `json:"started_at,omitempty"`
}

// runEvents streams a run's progress as Server-Sent Events: a "progress"
// event whenever the run's state changes, then one "done" event carrying
// the run as GET /api/runs/{id} shows it, and the stream ends. Changes made
// in this process arrive at once; a run executed by another process is
// re-read every SSEPoll. Errors before the stream starts: 404.
func (h *Handler) runEvents(w http.ResponseWriter, r *http.Request) (any, error) {
	id := r.PathValue("id")
	changed, unsubscribe := h.runs.Subscribe(id)
	defer unsubscribe()
	rec, err := h.lookupRun(r, id)
	if err != nil {
		return nil, err
	}
	rc := http.NewResponseController(w)
	hdr := w.Header()
	hdr.Set("Content-Type", "text/event-stream")
	hdr.Set("Cache-Control", "no-cache")
	hdr.Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	send := func(event string, data any) error {
		b, err := json.Marshal(data)
		if err != nil {
			return err
		}
		if _, err := fmt.Fprintf(w, "event: %s\ndata: %s\n\n", event, b); err != nil {
			return err
		}
		return rc.Flush()
	}
	poll := time.NewTicker(h.cfg.SSEPoll)
	defer poll.Stop()
	keepAlive := time.NewTicker(h.cfg.SSEKeepAlive)
	defer keepAlive.Stop()
	var last progressEvent
	first := true
	for {
		ev := progressEvent{ID: rec.ID, Status: rec.Status, Stage: rec.Stage, Progress: rec.Progress,
			LeftRowsStaged: rec.LeftRows, RightRowsStaged: rec.RightRows, CancelRequested: rec.CancelRequested}
		if rec.StartedAt != nil {
			ev.StartedAt = rec.StartedAt.UTC().Format(time.RFC3339Nano)
		}
		if rec.Status == kalla.RunCompleted {
			ev.Progress = 1
		}
		if first || ev != last {
			if err := send("progress", ev); err != nil {
				return written{}, nil
			}
			first, last = false, ev
		}
		if rec.Status.Done() {
			send("done", viewRun(rec))
			return written{}, nil
		}
		for waiting := true; waiting; {
			select {
			case <-r.Context().Done():
				return written{}, nil
			case <-h.closing:
				return written{}, nil
			case <-keepAlive.C:
				if _, err := fmt.Fprint(w, ": keep-alive\n\n"); err != nil || rc.Flush() != nil {
					return written{}, nil
				}
			case <-changed:
				waiting = false
			case <-poll.C:
				waiting = false
			}
		}
		got, err := h.store.GetRun(r.Context(), id)
		if err != nil {
			if r.Context().Err() == nil {
				send("error", errorBody(kalla.ErrorCode(err), "cannot read the run: "+kalla.Redact(kalla.ErrorMessage(err))))
			}
			return written{}, nil
		}
		rec = got
	}
}

// Content types of run files.
var fileTypes = map[string]string{
	".parquet": "application/vnd.apache.parquet",
	".csv":     "text/csv; charset=utf-8",
	".json":    "application/json",
}

// runFile downloads one output file (or summary.json) of a completed run.
// Files of runs that did not complete are never served, whatever is on
// disk: a run killed mid-write must not hand out half its evidence.
// Errors: 404 unknown run or file, 409 run not completed.
func (h *Handler) runFile(w http.ResponseWriter, r *http.Request) (any, error) {
	id, name := r.PathValue("id"), r.PathValue("name")
	rec, err := h.lookupRun(r, id)
	if err != nil {
		return nil, err
	}
	if rec.Status != kalla.RunCompleted || rec.Summary == nil {
		return nil, kalla.Errorf(kalla.ECONFLICT, "run %s is %s: its files are served only once it has completed", id, rec.Status)
	}
	etag := ""
	known := name == recon.SummaryFile
	for _, o := range rec.Summary.Outputs {
		if o.Name == name {
			known, etag = true, `"sha256:`+o.SHA256+`"`
		}
	}
	if !known || !outputName(name) {
		return nil, kalla.Errorf(kalla.ENOTFOUND, "run %s has no file %q", id, name)
	}
	f, err := os.Open(filepath.Join(runner.OutDir(h.cfg.DataDir, rec.ID), name))
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, kalla.Errorf(kalla.ENOTFOUND, "file %s of run %s is no longer in the data folder", name, id)
		}
		return nil, fmt.Errorf("open run file: %w", err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("stat run file: %w", err)
	}
	hdr := w.Header()
	hdr.Set("Content-Type", fileTypes[filepath.Ext(name)])
	hdr.Set("Content-Disposition", fmt.Sprintf(`attachment; filename="%s"`, strings.ReplaceAll(name, "/", "_")))
	if etag != "" {
		hdr.Set("ETag", etag)
	}
	http.ServeContent(w, r, name, st.ModTime(), f)
	return written{}, nil
}

// outputName reports whether name, listed in a run's summary, may be served
// from the run's folder: a file of the folder, or a part file of a table
// folder the Spark engine wrote ("matched.parquet/part-0000.parquet"); no
// other slashes, no backslash, no "." or ".." segments.
func outputName(name string) bool {
	if strings.Contains(name, `\`) || strings.Count(name, "/") > 1 {
		return false
	}
	for _, seg := range strings.Split(name, "/") {
		if seg == "" || seg == "." || seg == ".." {
			return false
		}
	}
	return true
}
