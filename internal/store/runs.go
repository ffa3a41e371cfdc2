package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/kalla-recon/kalla/internal/kalla"
)

const runColumns = `id, recipe_id, recipe_json, filters_json, callback_url, status, stage, progress,
	left_rows, right_rows, cancel_requested, summary_json, error, out_dir,
	created_at, started_at, finished_at, lease_owner, attempts, lease_expires_at, error_code, engine`

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
INSERT INTO runs (id, recipe_id, recipe_json, filters_json, callback_url, status, out_dir, created_at, engine)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
ON CONFLICT (id) DO NOTHING`),
		run.ID, run.RecipeID, string(recipe), filters, run.CallbackURL, string(kalla.RunQueued), run.OutDir, s.d.time(now), run.Engine)
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
	run.Owner, run.Attempts, run.LeaseExpires = "", 0, nil
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

// ClaimRun takes the oldest queued run for owner (the claiming process's
// ID), marks it running with StartedAt set to now under a lease that expires
// after ttl, counts the claim in Attempts, and returns it. Each queued run is
// claimed by exactly one caller, however many workers (and, on PostgreSQL,
// processes) claim at once. The owner keeps the run by calling RenewLease
// before the lease expires; ExpireLeases hands a run whose lease expired to
// whoever calls it. It returns kalla.ENOTFOUND (ErrNotFound) when no run is
// queued, and kalla.EINVALID for an empty owner or a ttl that is not
// positive.
func (s *Store) ClaimRun(ctx context.Context, owner string, ttl time.Duration) (*kalla.RunRecord, error) {
	if owner == "" || ttl <= 0 {
		return nil, kalla.Errorf(kalla.EINVALID, "claim run: an owner and a positive lease are required")
	}
	// One statement, so it is atomic on both backends: SQLite runs it under
	// its single write lock; on PostgreSQL the subquery locks the row it
	// picks and skips rows another transaction is claiming. The clock is
	// read before the statement waits for its turn, so started_at is kept
	// no earlier than created_at of a run queued meanwhile.
	now := s.timestamp()
	run, err := scanRun(s.w.QueryRowContext(ctx, s.d.rebind(`
UPDATE runs SET status = ?, started_at = `+s.d.greatest+`(created_at, ?),
	lease_owner = ?, lease_expires_at = ?, attempts = attempts + 1
WHERE id = (
	SELECT id FROM runs WHERE status = ?
	ORDER BY created_at, id
	LIMIT 1`+s.d.skipLocked+`
)
RETURNING `+runColumns),
		string(kalla.RunRunning), s.d.time(now), owner, s.d.time(now.Add(ttl)), string(kalla.RunQueued)))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, notFound("queued run")
	}
	if err != nil {
		return nil, fmt.Errorf("claim run: %w", err)
	}
	return run, nil
}

// RenewLease extends the lease of run id to ttl from now, if lease still
// holds it: the heartbeat of a running run. It returns kalla.ECONFLICT
// (ErrLeaseLost) when the run is no longer running under that lease (its
// lease expired and another process failed or re-queued it, or it
// finished), kalla.ENOTFOUND when there is no such run, and kalla.EINVALID
// for a ttl that is not positive. A renewal that arrives after the expiry
// but before anyone took the run over still succeeds: nobody else has it.
func (s *Store) RenewLease(ctx context.Context, id string, lease kalla.Lease, ttl time.Duration) error {
	if ttl <= 0 {
		return kalla.Errorf(kalla.EINVALID, "renew lease of run %q: the lease must be positive", id)
	}
	res, err := s.w.ExecContext(ctx, s.d.rebind(`
UPDATE runs SET lease_expires_at = ?
WHERE id = ? AND `+leaseHeld),
		s.d.time(s.timestamp().Add(ttl)), id, string(kalla.RunRunning), lease.Owner, lease.Attempt)
	if err != nil {
		return fmt.Errorf("renew lease of run %q: %w", id, err)
	}
	return oneRow(res, func() error { return s.notHeld(ctx, id) })
}

// ExpireLeases settles every running run whose lease expired before now (or
// that has none, left by a version without leases): its owner stopped
// renewing it, so it died or lost the store. A run asked to cancel is
// recorded cancelled; a run claimed fewer than maxAttempts times is queued
// again (progress cleared) for any worker to claim; any other run is
// recorded failed with reason as its error. Each run is settled by one
// conditional statement, so when several processes expire at once, or the
// owner renews at the same moment, each run is settled once or not at all.
// It returns the IDs of the runs it ended (failed or cancelled) and of those
// it queued again.
func (s *Store) ExpireLeases(ctx context.Context, maxAttempts int, reason string) (ended, requeued []string, err error) {
	if reason == "" {
		reason = "interrupted: the process running it stopped"
	}
	now := s.d.time(s.timestamp())
	expired := `status = ? AND (lease_expires_at IS NULL OR lease_expires_at < ?)`
	// The order matters: a run asked to cancel is never queued again.
	steps := []struct {
		set, cond   string
		set1, cond1 []any
		out         *[]string
	}{
		{set: `status = ?, finished_at = ?, lease_expires_at = NULL`, set1: []any{string(kalla.RunCancelled), now},
			cond: ` AND cancel_requested`, out: &ended},
		{set: `status = ?, started_at = NULL, lease_expires_at = NULL, stage = '', progress = 0, left_rows = 0, right_rows = 0`,
			set1: []any{string(kalla.RunQueued)}, cond: ` AND attempts < ?`, cond1: []any{maxAttempts}, out: &requeued},
		{set: `status = ?, error = ?, finished_at = ?, lease_expires_at = NULL`, set1: []any{string(kalla.RunFailed), reason, now},
			out: &ended},
	}
	for _, st := range steps {
		args := append(append(append([]any{}, st.set1...), string(kalla.RunRunning), now), st.cond1...)
		ids, err := s.returningIDs(ctx, `UPDATE runs SET `+st.set+` WHERE `+expired+st.cond+` RETURNING id`, args...)
		if err != nil {
			return ended, requeued, fmt.Errorf("expire run leases: %w", err)
		}
		*st.out = append(*st.out, ids...)
	}
	return ended, requeued, nil
}

// returningIDs runs a write statement that returns the ids it changed.
func (s *Store) returningIDs(ctx context.Context, query string, args ...any) ([]string, error) {
	rows, err := s.w.QueryContext(ctx, s.d.rebind(query), args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var ids []string
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			return nil, err
		}
		ids = append(ids, id)
	}
	return ids, rows.Err()
}

// leaseHeld is the condition of every write a worker makes to its run: the
// run is running under the worker's claim. Its arguments are the running
// status, the owner and the attempt.
const leaseHeld = `status = ? AND lease_owner = ? AND attempts = ?`

// UpdateRunProgress records how far a running run has got: its stage, its
// overall progress in [0, 1] and the rows staged per side, if lease still
// holds it. It returns kalla.ENOTFOUND (ErrNotFound) when there is no such
// run, kalla.ECONFLICT when the run is not running under that lease, and
// kalla.EINVALID for a progress outside [0, 1] or a negative row count.
func (s *Store) UpdateRunProgress(ctx context.Context, id string, lease kalla.Lease, stage string, progress float64, leftRows, rightRows int64) error {
	if math.IsNaN(progress) || progress < 0 || progress > 1 {
		return kalla.Errorf(kalla.EINVALID, "run %q: progress %v is outside [0, 1]", id, progress)
	}
	if leftRows < 0 || rightRows < 0 {
		return kalla.Errorf(kalla.EINVALID, "run %q: row counts must not be negative", id)
	}
	res, err := s.w.ExecContext(ctx, s.d.rebind(`
UPDATE runs SET stage = ?, progress = ?, left_rows = ?, right_rows = ?
WHERE id = ? AND `+leaseHeld),
		stage, progress, leftRows, rightRows, id, string(kalla.RunRunning), lease.Owner, lease.Attempt)
	if err != nil {
		return fmt.Errorf("update run %q progress: %w", id, err)
	}
	return oneRow(res, func() error { return s.notHeld(ctx, id) })
}

// FinishRun ends a running run with a final status (completed, failed or
// cancelled), its summary (nil for none) and, for a failure, the
// user-facing error message; FinishedAt is set to now. Only the holder of
// the run's lease can finish it: a run that already finished keeps its
// outcome, and a worker whose lease was taken over records nothing. It
// returns kalla.ENOTFOUND (ErrNotFound) when there is no such run,
// kalla.ECONFLICT when the run is not running under that lease, and
// kalla.EINVALID when status is not final.
func (s *Store) FinishRun(ctx context.Context, id string, lease kalla.Lease, status kalla.RunStatus, summary *kalla.Summary, errMsg string) error {
	return s.FinishRunCode(ctx, id, lease, status, summary, "", errMsg)
}

// FinishRunCode is FinishRun recording also the failure's error code
// (RunRecord.ErrorCode); same errors.
func (s *Store) FinishRunCode(ctx context.Context, id string, lease kalla.Lease, status kalla.RunStatus, summary *kalla.Summary, errCode, errMsg string) error {
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
UPDATE runs SET status = ?, summary_json = ?, error = ?, error_code = ?, finished_at = ?, lease_expires_at = NULL
WHERE id = ? AND `+leaseHeld),
		string(status), doc, errMsg, errCode, s.d.time(s.timestamp()), id, string(kalla.RunRunning), lease.Owner, lease.Attempt)
	if err != nil {
		return fmt.Errorf("finish run %q: %w", id, err)
	}
	return oneRow(res, func() error { return s.notHeld(ctx, id) })
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

// ErrLeaseLost is the cause of the ECONFLICT a worker's write to its run
// gets once the run is no longer running under the worker's lease.
var ErrLeaseLost = errors.New("the run is no longer held by this lease")

// notHeld explains why a statement meant for a run held under a lease
// changed nothing: ENOTFOUND, or ECONFLICT (ErrLeaseLost) naming the run's
// status, or saying that another claim holds it.
func (s *Store) notHeld(ctx context.Context, id string) error {
	st, err := s.runStatus(ctx, id)
	if err != nil {
		return err
	}
	if st == kalla.RunRunning {
		return kalla.WrapError(kalla.ECONFLICT, ErrLeaseLost, "run %q is running under another claim", id)
	}
	return kalla.WrapError(kalla.ECONFLICT, ErrLeaseLost, "run %q is %s, not running", id, st)
}

func scanRun(row rowScanner) (*kalla.RunRecord, error) {
	var run kalla.RunRecord
	var recipe string
	var filters, summary sql.NullString
	var status string
	var created, started, finished, expires timeScan
	if err := row.Scan(&run.ID, &run.RecipeID, &recipe, &filters, &run.CallbackURL, &status, &run.Stage, &run.Progress,
		&run.LeftRows, &run.RightRows, &run.CancelRequested, &summary, &run.Error, &run.OutDir,
		&created, &started, &finished, &run.Owner, &run.Attempts, &expires, &run.ErrorCode, &run.Engine); err != nil {
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
	run.LeaseExpires = expires.ptr()
	return &run, nil
}
