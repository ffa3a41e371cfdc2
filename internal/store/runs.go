package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strings"

	"github.com/kalla-recon/kalla/internal/kalla"
)

const runColumns = `id, recipe_id, recipe_json, filters_json, callback_url, status, stage, progress,
	left_rows, right_rows, cancel_requested, summary_json, error, out_dir,
	created_at, started_at, finished_at`

// RunQuery selects runs for ListRuns. Zero fields do not filter.
type RunQuery struct {
	// Status keeps only runs in this state.
	Status kalla.RunStatus
	// RecipeID keeps only runs of this recipe.
	RecipeID string
	// Limit is the most runs to return; 0 means all.
	Limit int
	// Offset skips that many runs first, for paging.
	Offset int
}

// CreateRun queues a new run. The store sets Status to queued and CreatedAt
// to now, clears the progress, outcome and timing fields, and writes them
// back into run. It returns kalla.ECONFLICT when a run with that ID exists
// and kalla.EINVALID when the ID is empty.
func (s *Store) CreateRun(ctx context.Context, run *kalla.RunRecord) error {
	if run.ID == "" {
		return kalla.Errorf(kalla.EINVALID, "run id is required")
	}
	recipe, err := json.Marshal(run.Recipe)
	if err != nil {
		return fmt.Errorf("create run %q: encode recipe: %w", run.ID, err)
	}
	var filters any
	if run.Filters != nil {
		b, err := json.Marshal(run.Filters)
		if err != nil {
			return fmt.Errorf("create run %q: encode filters: %w", run.ID, err)
		}
		filters = string(b)
	}
	now := s.timestamp()
	res, err := s.w.ExecContext(ctx, s.d.rebind(`
INSERT INTO runs (id, recipe_id, recipe_json, filters_json, callback_url, status, out_dir, created_at)
VALUES (?, ?, ?, ?, ?, ?, ?, ?)
ON CONFLICT (id) DO NOTHING`),
		run.ID, run.RecipeID, string(recipe), filters, run.CallbackURL, string(kalla.RunQueued), run.OutDir, s.d.time(now))
	if err != nil {
		return fmt.Errorf("create run %q: %w", run.ID, err)
	}
	if err := oneRow(res, func() error {
		return kalla.Errorf(kalla.ECONFLICT, "run %q already exists", run.ID)
	}); err != nil {
		return err
	}
	run.Status, run.CreatedAt = kalla.RunQueued, now
	run.Stage, run.Progress, run.LeftRows, run.RightRows = "", 0, 0, 0
	run.CancelRequested, run.Summary, run.Error = false, nil, ""
	run.StartedAt, run.FinishedAt = nil, nil
	return nil
}

// GetRun returns the run with the given ID. It returns kalla.ENOTFOUND
// (ErrNotFound) when there is none.
func (s *Store) GetRun(ctx context.Context, id string) (*kalla.RunRecord, error) {
	run, err := scanRun(s.r.QueryRowContext(ctx, s.d.rebind("SELECT "+runColumns+" FROM runs WHERE id = ?"), id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, notFound("run %q", id)
	}
	if err != nil {
		return nil, fmt.Errorf("get run %q: %w", id, err)
	}
	return run, nil
}

// ListRuns returns the runs q selects, newest first. It returns
// kalla.EINVALID for an unknown status or a negative limit or offset.
func (s *Store) ListRuns(ctx context.Context, q RunQuery) ([]*kalla.RunRecord, error) {
	if q.Status != "" && !knownStatus(q.Status) {
		return nil, kalla.Errorf(kalla.EINVALID, "unknown run status %q", q.Status)
	}
	if q.Limit < 0 || q.Offset < 0 {
		return nil, kalla.Errorf(kalla.EINVALID, "limit and offset must not be negative")
	}
	var where []string
	var args []any
	if q.Status != "" {
		where, args = append(where, "status = ?"), append(args, string(q.Status))
	}
	if q.RecipeID != "" {
		where, args = append(where, "recipe_id = ?"), append(args, q.RecipeID)
	}
	query := "SELECT " + runColumns + " FROM runs"
	if len(where) > 0 {
		query += " WHERE " + strings.Join(where, " AND ")
	}
	query += " ORDER BY created_at DESC, id DESC"
	switch {
	case q.Limit > 0:
		query += " LIMIT ?"
		args = append(args, q.Limit)
	case q.Offset > 0:
		query += " " + s.d.noLimit
	}
	if q.Offset > 0 {
		query += " OFFSET ?"
		args = append(args, q.Offset)
	}
	rows, err := s.r.QueryContext(ctx, s.d.rebind(query), args...)
	if err != nil {
		return nil, fmt.Errorf("list runs: %w", err)
	}
	defer rows.Close()
	out := []*kalla.RunRecord{}
	for rows.Next() {
		run, err := scanRun(rows)
		if err != nil {
			return nil, fmt.Errorf("list runs: %w", err)
		}
		out = append(out, run)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list runs: %w", err)
	}
	return out, nil
}

// ClaimRun takes the oldest queued run, marks it running with StartedAt set
// to now, and returns it. Each queued run is claimed by exactly one caller,
// however many workers (and, on PostgreSQL, processes) claim at once. It
// returns kalla.ENOTFOUND (ErrNotFound) when no run is queued.
func (s *Store) ClaimRun(ctx context.Context) (*kalla.RunRecord, error) {
	// One statement, so it is atomic on both backends: SQLite runs it under
	// its single write lock; on PostgreSQL the subquery locks the row it
	// picks and skips rows another transaction is claiming. The clock is
	// read before the statement waits for its turn, so started_at is kept
	// no earlier than created_at of a run queued meanwhile.
	run, err := scanRun(s.w.QueryRowContext(ctx, s.d.rebind(`
UPDATE runs SET status = ?, started_at = `+s.d.greatest+`(created_at, ?)
WHERE id = (
	SELECT id FROM runs WHERE status = ?
	ORDER BY created_at, id
	LIMIT 1`+s.d.skipLocked+`
)
RETURNING `+runColumns),
		string(kalla.RunRunning), s.d.time(s.timestamp()), string(kalla.RunQueued)))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, notFound("queued run")
	}
	if err != nil {
		return nil, fmt.Errorf("claim run: %w", err)
	}
	return run, nil
}

// UpdateRunProgress records how far a running run has got: its stage, its
// overall progress in [0, 1] and the rows staged per side. It returns
// kalla.ENOTFOUND (ErrNotFound) when there is no such run, kalla.ECONFLICT
// when the run is not running, and kalla.EINVALID for a progress outside
// [0, 1] or a negative row count.
func (s *Store) UpdateRunProgress(ctx context.Context, id, stage string, progress float64, leftRows, rightRows int64) error {
	if math.IsNaN(progress) || progress < 0 || progress > 1 {
		return kalla.Errorf(kalla.EINVALID, "run %q: progress %v is outside [0, 1]", id, progress)
	}
	if leftRows < 0 || rightRows < 0 {
		return kalla.Errorf(kalla.EINVALID, "run %q: row counts must not be negative", id)
	}
	res, err := s.w.ExecContext(ctx, s.d.rebind(`
UPDATE runs SET stage = ?, progress = ?, left_rows = ?, right_rows = ?
WHERE id = ? AND status = ?`),
		stage, progress, leftRows, rightRows, id, string(kalla.RunRunning))
	if err != nil {
		return fmt.Errorf("update run %q progress: %w", id, err)
	}
	return oneRow(res, func() error { return s.notRunning(ctx, id) })
}

// FinishRun ends a running run with a final status (completed, failed or
// cancelled), its summary (nil for none) and, for a failure, the
// user-facing error message; FinishedAt is set to now. Only a running run
// can finish: a run that already finished keeps its outcome. It returns
// kalla.ENOTFOUND (ErrNotFound) when there is no such run, kalla.ECONFLICT
// when the run is not running, and kalla.EINVALID when status is not final.
func (s *Store) FinishRun(ctx context.Context, id string, status kalla.RunStatus, summary *kalla.Summary, errMsg string) error {
	if !status.Done() {
		return kalla.Errorf(kalla.EINVALID, "run %q: %q is not a final status", id, status)
	}
	var doc any
	if summary != nil {
		b, err := json.Marshal(summary)
		if err != nil {
			return fmt.Errorf("finish run %q: encode summary: %w", id, err)
		}
		doc = string(b)
	}
	res, err := s.w.ExecContext(ctx, s.d.rebind(`
UPDATE runs SET status = ?, summary_json = ?, error = ?, finished_at = ?
WHERE id = ? AND status = ?`),
		string(status), doc, errMsg, s.d.time(s.timestamp()), id, string(kalla.RunRunning))
	if err != nil {
		return fmt.Errorf("finish run %q: %w", id, err)
	}
	return oneRow(res, func() error { return s.notRunning(ctx, id) })
}

// RequestCancel asks a run to stop and returns its status afterwards. A
// queued run is cancelled at once (FinishedAt set); a running run gets
// CancelRequested and stays running until its worker stops it and calls
// FinishRun; asking again then is harmless. It returns kalla.ENOTFOUND
// (ErrNotFound) when there is no such run, and kalla.ECONFLICT, with the
// run's final status, when it has already finished.
func (s *Store) RequestCancel(ctx context.Context, id string) (kalla.RunStatus, error) {
	// Each step is one conditional statement, so a worker claiming or
	// finishing the run at the same time is never overwritten; when neither
	// applies the run moved on, and the loop looks again. Status only moves
	// forward, so it ends within three rounds.
	for range 3 {
		res, err := s.w.ExecContext(ctx, s.d.rebind(`
UPDATE runs SET status = ?, finished_at = ? WHERE id = ? AND status = ?`),
			string(kalla.RunCancelled), s.d.time(s.timestamp()), id, string(kalla.RunQueued))
		if err != nil {
			return "", fmt.Errorf("cancel run %q: %w", id, err)
		}
		if n, err := res.RowsAffected(); err != nil {
			return "", fmt.Errorf("cancel run %q: %w", id, err)
		} else if n == 1 {
			return kalla.RunCancelled, nil
		}

		res, err = s.w.ExecContext(ctx, s.d.rebind(`
UPDATE runs SET cancel_requested = TRUE WHERE id = ? AND status = ?`),
			id, string(kalla.RunRunning))
		if err != nil {
			return "", fmt.Errorf("cancel run %q: %w", id, err)
		}
		if n, err := res.RowsAffected(); err != nil {
			return "", fmt.Errorf("cancel run %q: %w", id, err)
		} else if n == 1 {
			return kalla.RunRunning, nil
		}

		status, err := s.runStatus(ctx, id)
		if err != nil {
			return "", err
		}
		if status.Done() {
			return status, kalla.Errorf(kalla.ECONFLICT, "run %q is already %s", id, status)
		}
	}
	return "", fmt.Errorf("cancel run %q: status kept changing", id)
}

// MarkInterrupted fails every run still marked running, with reason as its
// error, and returns how many it failed. A server calls it at start: a run
// left running belonged to a process that died. With several processes on
// one PostgreSQL store it would also fail runs that live processes are
// working on, so call it only when no other Kalla process is running runs.
func (s *Store) MarkInterrupted(ctx context.Context, reason string) (int, error) {
	if reason == "" {
		reason = "interrupted: Kalla stopped while the run was in progress"
	}
	res, err := s.w.ExecContext(ctx, s.d.rebind(`
UPDATE runs SET status = ?, error = ?, finished_at = ? WHERE status = ?`),
		string(kalla.RunFailed), reason, s.d.time(s.timestamp()), string(kalla.RunRunning))
	if err != nil {
		return 0, fmt.Errorf("mark interrupted runs: %w", err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return 0, fmt.Errorf("mark interrupted runs: %w", err)
	}
	return int(n), nil
}

// CountRunsByStatus returns how many runs are in each state, for metrics.
// Every state is present, with 0 when no run is in it.
func (s *Store) CountRunsByStatus(ctx context.Context) (map[kalla.RunStatus]int, error) {
	out := map[kalla.RunStatus]int{}
	for _, st := range allStatuses {
		out[st] = 0
	}
	rows, err := s.r.QueryContext(ctx, "SELECT status, COUNT(*) FROM runs GROUP BY status")
	if err != nil {
		return nil, fmt.Errorf("count runs: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var st string
		var n int
		if err := rows.Scan(&st, &n); err != nil {
			return nil, fmt.Errorf("count runs: %w", err)
		}
		out[kalla.RunStatus(st)] = n
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("count runs: %w", err)
	}
	return out, nil
}

var allStatuses = []kalla.RunStatus{kalla.RunQueued, kalla.RunRunning, kalla.RunCompleted, kalla.RunFailed, kalla.RunCancelled}

func knownStatus(st kalla.RunStatus) bool {
	for _, s := range allStatuses {
		if s == st {
			return true
		}
	}
	return false
}

// runStatus returns a run's status, or ENOTFOUND.
func (s *Store) runStatus(ctx context.Context, id string) (kalla.RunStatus, error) {
	var st string
	err := s.r.QueryRowContext(ctx, s.d.rebind("SELECT status FROM runs WHERE id = ?"), id).Scan(&st)
	if errors.Is(err, sql.ErrNoRows) {
		return "", notFound("run %q", id)
	}
	if err != nil {
		return "", fmt.Errorf("get run %q status: %w", id, err)
	}
	return kalla.RunStatus(st), nil
}

// notRunning explains why a statement meant for a running run changed
// nothing: ENOTFOUND, or ECONFLICT naming the run's status.
func (s *Store) notRunning(ctx context.Context, id string) error {
	st, err := s.runStatus(ctx, id)
	if err != nil {
		return err
	}
	return kalla.Errorf(kalla.ECONFLICT, "run %q is %s, not running", id, st)
}

func scanRun(row rowScanner) (*kalla.RunRecord, error) {
	var run kalla.RunRecord
	var recipe string
	var filters, summary sql.NullString
	var status string
	var created, started, finished timeScan
	if err := row.Scan(&run.ID, &run.RecipeID, &recipe, &filters, &run.CallbackURL, &status, &run.Stage, &run.Progress,
		&run.LeftRows, &run.RightRows, &run.CancelRequested, &summary, &run.Error, &run.OutDir,
		&created, &started, &finished); err != nil {
		return nil, err
	}
	run.Status = kalla.RunStatus(status)
	if err := json.Unmarshal([]byte(recipe), &run.Recipe); err != nil {
		return nil, fmt.Errorf("decode run %q recipe: %w", run.ID, err)
	}
	if filters.Valid {
		run.Filters = new(kalla.RunFilters)
		if err := json.Unmarshal([]byte(filters.String), run.Filters); err != nil {
			return nil, fmt.Errorf("decode run %q filters: %w", run.ID, err)
		}
	}
	if summary.Valid {
		run.Summary = new(kalla.Summary)
		if err := json.Unmarshal([]byte(summary.String), run.Summary); err != nil {
			return nil, fmt.Errorf("decode run %q summary: %w", run.ID, err)
		}
	}
	run.CreatedAt, run.StartedAt, run.FinishedAt = created.t, started.ptr(), finished.ptr()
	return &run, nil
}
