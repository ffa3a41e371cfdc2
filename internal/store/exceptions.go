package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/kalla-recon/kalla/internal/kalla"
)

const excColumns = `id, run_id, recipe_id, kind, side, row_num, record_key, right_key, amount, right_amount,
	difference, currency, record_date, age_from, rule, score, reason, closest, status, code, assignee,
	match_group, pending_json, prepared_by, decided_by, version, created_at, updated_at`

// auditLockKey serialises appends to the audit chain on PostgreSQL (an
// advisory transaction lock): "audit" in ASCII. SQLite's single writer
// serialises them already.
const auditLockKey = 0x6175646974

// ExceptionQuery selects exception items. Zero fields do not filter.
type ExceptionQuery struct {
	IDs   []int64
	RunID string
	// RecipeID keeps the items of the runs of one recipe.
	RecipeID string
	Status   string
	Kind     string
	Side     string
	Rule     string
	// Reason keeps items whose reason contains it, ignoring case.
	Reason   string
	Assignee string
	// MatchGroup keeps the records matched by hand together.
	MatchGroup string
	// MinAmount and MaxAmount bound the item's amount (a pair's left
	// amount); MaxDifference bounds a pair's absolute difference.
	MinAmount, MaxAmount, MaxDifference *float64
	// MinAgeDays and MaxAgeDays bound the item's age on Today.
	MinAgeDays, MaxAgeDays *int
	Today                  time.Time
	Limit, Offset          int
}

// InsertExceptions records a completed run's items. It is idempotent: an
// item of the same run, side and row that exists already is left as it is,
// so recording a run twice (a retried hook) adds nothing. It returns how
// many items it added and sets ID, Version and the timestamps of those.
func (s *Store) InsertExceptions(ctx context.Context, items []*kalla.ExceptionItem) (int, error) {
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return 0, fmt.Errorf("record exceptions: %w", err)
	}
	defer tx.Rollback()
	now := s.timestamp()
	q := s.d.rebind(`INSERT INTO exception_items (run_id, recipe_id, kind, side, row_num, record_key, right_key,
	amount, amount_num, right_amount, difference, diff_num, currency, record_date, age_from, rule, score, reason,
	closest, status, version, created_at, updated_at)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 1, ?, ?)
ON CONFLICT (run_id, side, row_num) DO NOTHING RETURNING id`)
	stmt, err := tx.PrepareContext(ctx, q)
	if err != nil {
		return 0, fmt.Errorf("record exceptions: %w", err)
	}
	defer stmt.Close()
	added := 0
	for _, it := range items {
		if it.Status == "" {
			it.Status = kalla.ExcOpen
		}
		var id int64
		err := stmt.QueryRowContext(ctx, it.RunID, it.RecipeID, it.Kind, it.Side, it.Row, it.Key, it.RightKey,
			it.Amount, numOrNil(it.Amount), it.RightAmount, it.Difference, absNumOrNil(it.Difference), it.Currency, it.Date,
			it.AgeFrom, it.Rule, it.Score, it.Reason, it.Closest, it.Status, s.d.time(now), s.d.time(now)).Scan(&id)
		switch {
		case errors.Is(err, sql.ErrNoRows):
			continue
		case err != nil:
			return 0, fmt.Errorf("record exception of run %q row %d: %w", it.RunID, it.Row, err)
		}
		it.ID, it.Version, it.CreatedAt, it.UpdatedAt = id, 1, now, now
		added++
	}
	if err := tx.Commit(); err != nil {
		return 0, fmt.Errorf("record exceptions: %w", err)
	}
	return added, nil
}

// numOrNil is the value of a decimal text for the filtering column, nil
// when it is empty or not a number.
func numOrNil(s string) any {
	f, ok := parseNum(s)
	if !ok {
		return nil
	}
	return f
}

func absNumOrNil(s string) any {
	f, ok := parseNum(s)
	if !ok {
		return nil
	}
	if f < 0 {
		f = -f
	}
	return f
}

func parseNum(s string) (float64, bool) {
	if s == "" {
		return 0, false
	}
	var f float64
	if _, err := fmt.Sscan(s, &f); err != nil {
		return 0, false
	}
	return f, true
}

// where builds the query's conditions.
func (q ExceptionQuery) where() (string, []any, error) {
	var where []string
	var args []any
	add := func(cond string, a ...any) { where, args = append(where, cond), append(args, a...) }
	if len(q.IDs) > 0 {
		add("id IN (?"+strings.Repeat(", ?", len(q.IDs)-1)+")", anySlice(q.IDs)...)
	}
	for _, f := range []struct{ col, v string }{{"run_id", q.RunID}, {"recipe_id", q.RecipeID}, {"status", q.Status}, {"kind", q.Kind},
		{"side", q.Side}, {"rule", q.Rule}, {"assignee", q.Assignee}, {"match_group", q.MatchGroup}} {
		if f.v != "" {
			add(f.col+" = ?", f.v)
		}
	}
	if q.Reason != "" {
		add(`LOWER(reason) LIKE ? ESCAPE '\'`, "%"+likeEscape(strings.ToLower(q.Reason))+"%")
	}
	if q.MinAmount != nil {
		add("amount_num >= ?", *q.MinAmount)
	}
	if q.MaxAmount != nil {
		add("amount_num <= ?", *q.MaxAmount)
	}
	if q.MaxDifference != nil {
		add("diff_num <= ?", *q.MaxDifference)
	}
	today := q.Today
	if today.IsZero() {
		today = time.Now()
	}
	// age_from is a YYYY-MM-DD text on both backends: an age of at least
	// n days is a day on or before today − n.
	if q.MinAgeDays != nil {
		add("age_from <= ?", today.AddDate(0, 0, -*q.MinAgeDays).Format(time.DateOnly))
	}
	if q.MaxAgeDays != nil {
		add("age_from >= ?", today.AddDate(0, 0, -*q.MaxAgeDays).Format(time.DateOnly))
	}
	if q.Limit < 0 || q.Offset < 0 {
		return "", nil, kalla.Errorf(kalla.EINVALID, "limit and offset must not be negative")
	}
	if len(where) == 0 {
		return "", args, nil
	}
	return " WHERE " + strings.Join(where, " AND "), args, nil
}

func likeEscape(s string) string {
	return strings.NewReplacer(`\`, `\\`, `%`, `\%`, `_`, `\_`).Replace(s)
}

func anySlice[T any](v []T) []any {
	out := make([]any, len(v))
	for i := range v {
		out[i] = v[i]
	}
	return out
}

// ListExceptions returns the items q selects in id order, one page of them,
// and how many q selects in all. Errors: EINVALID for negative paging.
func (s *Store) ListExceptions(ctx context.Context, q ExceptionQuery) ([]*kalla.ExceptionItem, int64, error) {
	where, args, err := q.where()
	if err != nil {
		return nil, 0, err
	}
	var total int64
	if err := s.r.QueryRowContext(ctx, s.d.rebind("SELECT COUNT(*) FROM exception_items"+where), args...).Scan(&total); err != nil {
		return nil, 0, fmt.Errorf("count exceptions: %w", err)
	}
	items, err := s.selectExceptions(ctx, s.r, q, where, args, "")
	if err != nil {
		return nil, 0, err
	}
	return items, total, nil
}

type querier interface {
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
}

func (s *Store) selectExceptions(ctx context.Context, db querier, q ExceptionQuery, where string, args []any, suffix string) ([]*kalla.ExceptionItem, error) {
	query := "SELECT " + excColumns + " FROM exception_items" + where + " ORDER BY id"
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
	rows, err := db.QueryContext(ctx, s.d.rebind(query+suffix), args...)
	if err != nil {
		return nil, fmt.Errorf("list exceptions: %w", err)
	}
	defer rows.Close()
	today := q.Today
	if today.IsZero() {
		today = s.now()
	}
	out := []*kalla.ExceptionItem{}
	for rows.Next() {
		it, err := scanException(rows, today)
		if err != nil {
			return nil, fmt.Errorf("list exceptions: %w", err)
		}
		out = append(out, it)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list exceptions: %w", err)
	}
	return out, nil
}

// GetException returns one item. Errors: ENOTFOUND.
func (s *Store) GetException(ctx context.Context, id int64) (*kalla.ExceptionItem, error) {
	items, err := s.selectExceptions(ctx, s.r, ExceptionQuery{}, " WHERE id = ?", []any{id}, "")
	if err != nil {
		return nil, err
	}
	if len(items) == 0 {
		return nil, notFound("exception %d", id)
	}
	return items[0], nil
}

func scanException(row rowScanner, today time.Time) (*kalla.ExceptionItem, error) {
	var it kalla.ExceptionItem
	var score sql.NullFloat64
	var pending string
	var created, updated timeScan
	if err := row.Scan(&it.ID, &it.RunID, &it.RecipeID, &it.Kind, &it.Side, &it.Row, &it.Key, &it.RightKey,
		&it.Amount, &it.RightAmount, &it.Difference, &it.Currency, &it.Date, &it.AgeFrom, &it.Rule, &score,
		&it.Reason, &it.Closest, &it.Status, &it.Code, &it.Assignee, &it.MatchGroup, &pending, &it.PreparedBy,
		&it.DecidedBy, &it.Version, &created, &updated); err != nil {
		return nil, err
	}
	if score.Valid {
		it.Score = &score.Float64
	}
	if pending != "" {
		it.Pending = new(kalla.PendingDecision)
		if err := json.Unmarshal([]byte(pending), it.Pending); err != nil {
			return nil, fmt.Errorf("decode exception %d pending decision: %w", it.ID, err)
		}
	}
	it.CreatedAt, it.UpdatedAt = created.t, updated.t
	if from, err := time.Parse(time.DateOnly, it.AgeFrom); err == nil {
		y, m, d := today.UTC().Date()
		it.AgeDays = int(time.Date(y, m, d, 0, 0, 0, 0, time.UTC).Sub(from).Hours() / 24)
	}
	return &it, nil
}

// Decision is what an action does to the items it selected: the action's
// record and, for every selected item in the order given, its state after.
type Decision struct {
	Action kalla.ExceptionAction
	After  []*kalla.ExceptionItem
}

// DecideFunc decides an action on the items it is given, read inside the
// action's transaction. An error it returns rolls everything back and is
// returned as it is.
type DecideFunc func(items []*kalla.ExceptionItem) (*Decision, error)

// ActOnExceptions applies one action to the items q selects, all or none:
// in one write transaction it reads the items, asks decide for their new
// states, writes each only if its version is still the one read (else
// ECONFLICT: someone else changed it), records the action, and appends one
// audit entry per item, chained by hash. It returns the action and the items
// as written. Errors: ENOTFOUND when q selects nothing, ECONFLICT, and
// whatever decide returns.
func (s *Store) ActOnExceptions(ctx context.Context, q ExceptionQuery, decide DecideFunc) (*kalla.ExceptionAction, []*kalla.ExceptionItem, error) {
	res, err := s.ActOnExceptionsBatch(ctx, []ActionStep{{Query: q, Decide: decide}}, false)
	if err != nil {
		if len(res) == 1 && res[0].Err != nil {
			return nil, nil, res[0].Err
		}
		return nil, nil, err
	}
	return res[0].Action, res[0].Items, nil
}

// ActionStep is one action of a batch: the items it selects and how it
// decides on them.
type ActionStep struct {
	Query  ExceptionQuery
	Decide DecideFunc
}

// StepResult is what one step of a batch did, or why it was refused.
type StepResult struct {
	Action *kalla.ExceptionAction
	Items  []*kalla.ExceptionItem
	Err    error
}

// ErrBatchRefused is the cause of the error ActOnExceptionsBatch returns
// when a step was refused: the step results say which and why, and nothing
// was applied.
var ErrBatchRefused = errors.New("batch refused")

// ActOnExceptionsBatch applies several actions in one transaction, in
// order, each seeing what the ones before it did: all of them or none. A
// refused step does not stop the others from being tried, so every
// refusal is reported (each step's Err); then everything is rolled back
// and the error wraps ErrBatchRefused (EINVALID). With rollback, the steps
// are tried and reported but never committed (a caller that refused other
// parts of the same work itself).
func (s *Store) ActOnExceptionsBatch(ctx context.Context, steps []ActionStep, rollback bool) ([]StepResult, error) {
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return nil, fmt.Errorf("act on exceptions: %w", err)
	}
	defer tx.Rollback()
	if s.d.dollar {
		// One action at a time appends to the chain; items read after
		// the lock are the state the previous action left.
		if _, err := tx.ExecContext(ctx, fmt.Sprintf("SELECT pg_advisory_xact_lock(%d)", auditLockKey)); err != nil {
			return nil, fmt.Errorf("act on exceptions: %w", err)
		}
	}
	out := make([]StepResult, len(steps))
	refused := 0
	for i, st := range steps {
		var r StepResult
		r.Action, r.Items, r.Err = s.actStep(ctx, tx, st.Query, st.Decide)
		if r.Err != nil {
			if kalla.ErrorCode(r.Err) == kalla.EINTERNAL {
				return out, r.Err
			}
			refused++
		}
		out[i] = r
	}
	if refused > 0 {
		return out, kalla.WrapError(kalla.EINVALID, ErrBatchRefused, "%d of %d actions refused: nothing was applied", refused, len(steps))
	}
	if rollback {
		return out, nil
	}
	if err := tx.Commit(); err != nil {
		return nil, fmt.Errorf("act on exceptions: %w", err)
	}
	return out, nil
}

// actStep applies one action inside tx. A refusal may leave part of the
// step written: the batch then rolls everything back.
func (s *Store) actStep(ctx context.Context, tx *sql.Tx, q ExceptionQuery, decide DecideFunc) (*kalla.ExceptionAction, []*kalla.ExceptionItem, error) {
	where, args, err := q.where()
	if err != nil {
		return nil, nil, err
	}
	q.Limit, q.Offset = 0, 0
	items, err := s.selectExceptions(ctx, tx, q, where, args, "")
	if err != nil {
		return nil, nil, err
	}
	if len(items) == 0 && len(q.IDs) > 0 {
		return nil, nil, notFound("exception %d does not exist", q.IDs[0])
	}
	if len(items) == 0 {
		return nil, nil, notFound("no exception matches the selection")
	}
	before := make([]string, len(items))
	for i, it := range items {
		if before[i], err = itemJSON(it); err != nil {
			return nil, nil, err
		}
	}
	dec, err := decide(items)
	if err != nil {
		return nil, nil, err
	}
	if len(dec.After) != len(items) {
		return nil, nil, fmt.Errorf("act on exceptions: decided %d items of %d", len(dec.After), len(items))
	}
	now := s.timestamp()
	act := dec.Action
	act.At, act.Items = now, len(items)
	if err := tx.QueryRowContext(ctx, s.d.rebind(`INSERT INTO exception_actions (action, actor, role, code, note, assignee, items, result, created_at)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id`), act.Action, act.Actor, string(act.Role), act.Code, act.Note, act.Assignee,
		act.Items, act.Result, s.d.time(now)).Scan(&act.ID); err != nil {
		return nil, nil, fmt.Errorf("record action: %w", err)
	}
	seq, prev, err := s.auditHead(ctx, tx)
	if err != nil {
		return nil, nil, err
	}
	for i, after := range dec.After {
		old := items[i]
		if after.ID != old.ID {
			return nil, nil, fmt.Errorf("act on exceptions: decided item %d in place of %d", after.ID, old.ID)
		}
		var pending string
		if after.Pending != nil {
			b, err := json.Marshal(after.Pending)
			if err != nil {
				return nil, nil, fmt.Errorf("encode pending decision: %w", err)
			}
			pending = string(b)
		}
		res, err := tx.ExecContext(ctx, s.d.rebind(`UPDATE exception_items SET status = ?, code = ?, assignee = ?,
	match_group = ?, pending_json = ?, prepared_by = ?, decided_by = ?, version = version + 1, updated_at = ?
WHERE id = ? AND version = ?`), after.Status, after.Code, after.Assignee, after.MatchGroup, pending, after.PreparedBy,
			after.DecidedBy, s.d.time(now), old.ID, old.Version)
		if err != nil {
			return nil, nil, fmt.Errorf("update exception %d: %w", old.ID, err)
		}
		if err := oneRow(res, func() error {
			return kalla.Errorf(kalla.ECONFLICT, "exception %d was changed by someone else meanwhile: reload it and try again", old.ID)
		}); err != nil {
			return nil, nil, err
		}
		after.Version, after.UpdatedAt = old.Version+1, now
		afterJSON, err := itemJSON(after)
		if err != nil {
			return nil, nil, err
		}
		seq++
		e := kalla.AuditEntry{Seq: seq, At: now, Actor: act.Actor, Role: act.Role, Action: act.Action, ActionID: act.ID,
			ItemID: old.ID, RunID: old.RunID, Before: before[i], After: afterJSON, Note: act.Note, PrevHash: prev}
		e.Hash = e.ComputeHash()
		if err := s.appendAudit(ctx, tx, &e); err != nil {
			return nil, nil, err
		}
		prev = e.Hash
	}
	return &act, dec.After, nil
}

// appendAudit inserts one audit entry, hashed already, and moves the head
// to it. The caller holds the chain's lock (PostgreSQL) or the single
// writer (SQLite).
func (s *Store) appendAudit(ctx context.Context, tx *sql.Tx, e *kalla.AuditEntry) error {
	if _, err := tx.ExecContext(ctx, s.d.rebind(`INSERT INTO audit_log (seq, at, actor, role, action, action_id, item_id,
	run_id, before_json, after_json, note, prev_hash, hash) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`),
		e.Seq, s.d.time(e.At), e.Actor, string(e.Role), e.Action, e.ActionID, e.ItemID, e.RunID, e.Before, e.After,
		e.Note, e.PrevHash, e.Hash); err != nil {
		return fmt.Errorf("append audit entry: %w", err)
	}
	if _, err := tx.ExecContext(ctx, s.d.rebind(`INSERT INTO audit_head (id, seq, hash) VALUES (1, ?, ?)
ON CONFLICT (id) DO UPDATE SET seq = excluded.seq, hash = excluded.hash`), e.Seq, e.Hash); err != nil {
		return fmt.Errorf("advance audit head: %w", err)
	}
	return nil
}

// itemJSON is an item as the audit log keeps it: its JSON without the age,
// which depends on the day it is read.
func itemJSON(it *kalla.ExceptionItem) (string, error) {
	c := *it
	c.AgeDays = 0
	b, err := json.Marshal(&c)
	if err != nil {
		return "", fmt.Errorf("encode exception %d: %w", it.ID, err)
	}
	return string(b), nil
}

func (s *Store) auditHead(ctx context.Context, tx *sql.Tx) (int64, string, error) {
	var seq int64
	var hash string
	err := tx.QueryRowContext(ctx, "SELECT seq, hash FROM audit_head WHERE id = 1").Scan(&seq, &hash)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return 0, kalla.AuditGenesis, nil
	case err != nil:
		return 0, "", fmt.Errorf("read audit head: %w", err)
	}
	return seq, hash, nil
}

// AuditHead returns the sequence number and hash of the last audit entry
// as recorded when it was appended (0 and kalla.AuditGenesis before the
// first), so a verifier can tell entries cut off the end of the log.
func (s *Store) AuditHead(ctx context.Context) (int64, string, error) {
	var seq int64
	var hash string
	err := s.r.QueryRowContext(ctx, "SELECT seq, hash FROM audit_head WHERE id = 1").Scan(&seq, &hash)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return 0, kalla.AuditGenesis, nil
	case err != nil:
		return 0, "", fmt.Errorf("read audit head: %w", err)
	}
	return seq, hash, nil
}

// AuditEntries returns up to limit audit entries with a sequence number
// above after, in order; itemID > 0 keeps only that item's.
func (s *Store) AuditEntries(ctx context.Context, after int64, itemID int64, limit int) ([]*kalla.AuditEntry, error) {
	q := `SELECT seq, at, actor, role, action, action_id, item_id, run_id, before_json, after_json, note, prev_hash, hash
FROM audit_log WHERE seq > ?`
	args := []any{after}
	if itemID > 0 {
		q += " AND item_id = ?"
		args = append(args, itemID)
	}
	q += " ORDER BY seq LIMIT ?"
	args = append(args, limit)
	rows, err := s.r.QueryContext(ctx, s.d.rebind(q), args...)
	if err != nil {
		return nil, fmt.Errorf("read audit log: %w", err)
	}
	defer rows.Close()
	out := []*kalla.AuditEntry{}
	for rows.Next() {
		var e kalla.AuditEntry
		var at timeScan
		var role string
		if err := rows.Scan(&e.Seq, &at, &e.Actor, &role, &e.Action, &e.ActionID, &e.ItemID, &e.RunID, &e.Before,
			&e.After, &e.Note, &e.PrevHash, &e.Hash); err != nil {
			return nil, fmt.Errorf("read audit log: %w", err)
		}
		e.At, e.Role = at.t, kalla.Role(role)
		out = append(out, &e)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read audit log: %w", err)
	}
	return out, nil
}

// GetExceptionAction returns one recorded action. Errors: ENOTFOUND.
func (s *Store) GetExceptionAction(ctx context.Context, id int64) (*kalla.ExceptionAction, error) {
	var a kalla.ExceptionAction
	var at timeScan
	var role string
	err := s.r.QueryRowContext(ctx, s.d.rebind(`SELECT id, action, actor, role, code, note, assignee, items, result, created_at
FROM exception_actions WHERE id = ?`), id).Scan(&a.ID, &a.Action, &a.Actor, &role, &a.Code, &a.Note, &a.Assignee, &a.Items, &a.Result, &at)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, notFound("action %d", id)
	}
	if err != nil {
		return nil, fmt.Errorf("read action %d: %w", id, err)
	}
	a.Role, a.At = kalla.Role(role), at.t
	return &a, nil
}
