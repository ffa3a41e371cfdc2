package kalla

import (
	"encoding/json"
	"time"
)

// RegisteredSource is a source registered under an alias in Kalla's
// metadata store. The store only answers "what is the source called X?";
// its rows are always read through the connector layer from URI.
type RegisteredSource struct {
	Alias      string `json:"alias"`
	URI        string `json:"-"` // raw, with credentials: never serialized
	SourceType string `json:"source_type"`
	// Status is "ok" when the last connection test passed, "error"
	// otherwise; StatusMessage says why (redacted).
	Status        string    `json:"status"`
	StatusMessage string    `json:"status_message,omitempty"`
	CreatedAt     time.Time `json:"created_at"`
	UpdatedAt     time.Time `json:"updated_at"`
}

// MarshalJSON adds the redacted URI: a registered source is never shown with
// its password.
func (s RegisteredSource) MarshalJSON() ([]byte, error) {
	type plain RegisteredSource
	return json.Marshal(struct {
		plain
		URI string `json:"uri"`
	}{plain(s), Redact(s.URI)})
}

// StoredRecipe is a recipe kept in the metadata store.
type StoredRecipe struct {
	ID        string    `json:"recipe_id"`
	Name      string    `json:"name"`
	Recipe    Recipe    `json:"recipe"`
	CreatedAt time.Time `json:"created_at"`
	UpdatedAt time.Time `json:"updated_at"`
}

// RunStatus is the state of a run.
type RunStatus string

// Run states. A run moves queued → running → completed | failed |
// cancelled; a queued run may be cancelled directly.
const (
	RunQueued    RunStatus = "queued"
	RunRunning   RunStatus = "running"
	RunCompleted RunStatus = "completed"
	RunFailed    RunStatus = "failed"
	RunCancelled RunStatus = "cancelled"
)

// Done reports whether the status is final.
func (s RunStatus) Done() bool {
	return s == RunCompleted || s == RunFailed || s == RunCancelled
}

// RunFilters are per-side filter overrides for one run; nil keeps the
// recipe's.
type RunFilters struct {
	Left  []Filter `json:"left,omitempty"`
	Right []Filter `json:"right,omitempty"`
}

// RunRecord is one run as the metadata store keeps it. The recipe is a
// snapshot taken when the run was queued, so later edits do not change what
// a run did.
type RunRecord struct {
	ID          string      `json:"run_id"`
	RecipeID    string      `json:"recipe_id"`
	Recipe      Recipe      `json:"recipe"`
	Filters     *RunFilters `json:"filters,omitempty"`
	CallbackURL string      `json:"callback_url,omitempty"`
	// Engine is the engine the run executes on (EngineDuckDB or
	// EngineSpark), chosen when it was queued; empty in runs queued before
	// runs recorded it, which ran on DuckDB.
	Engine string    `json:"engine,omitempty"`
	Status RunStatus `json:"status"`
	// Stage and Progress report where a running run is: the engine stage
	// name and the overall fraction in [0, 1].
	Stage    string  `json:"stage,omitempty"`
	Progress float64 `json:"progress"`
	// LeftRows and RightRows count rows staged so far per side.
	LeftRows  int64 `json:"left_rows_staged"`
	RightRows int64 `json:"right_rows_staged"`
	// CancelRequested is set when a running run is asked to stop.
	CancelRequested bool `json:"cancel_requested,omitempty"`
	// Summary is set when the run completed.
	Summary *Summary `json:"summary,omitempty"`
	// Error says why a run failed (redacted, user-facing).
	Error string `json:"error,omitempty"`
	// ErrorCode classifies a failure with one of the error codes:
	// ERESOURCE when the machine ran out of memory or disk (change a
	// limit, not the recipe), EINVALID for the recipe or its data,
	// EUNAVAILABLE for a source, EINTERNAL otherwise. Empty unless failed.
	ErrorCode string `json:"error_code,omitempty"`
	// OutDir is where the run's files are (internal; files are served by
	// name through the API).
	OutDir     string     `json:"-"`
	CreatedAt  time.Time  `json:"created_at"`
	StartedAt  *time.Time `json:"started_at,omitempty"`
	FinishedAt *time.Time `json:"finished_at,omitempty"`
	// Owner is the process that claimed the run last (kept after the run
	// ends: it names who executed it), Attempts how many times it was
	// claimed, and LeaseExpires when the owner's lease ends unless its
	// heartbeat extends it (nil once the run left running). Internal.
	Owner        string     `json:"-"`
	Attempts     int        `json:"-"`
	LeaseExpires *time.Time `json:"-"`
}

// Lease names one claim of a running run: the owner that claimed it and
// which claim it was. A worker passes it with every write to its run, and
// the store refuses the write once the lease was taken over, so a process
// that lost its run can never record an outcome for it.
type Lease struct {
	Owner   string
	Attempt int
}

// EngineName is the engine the run executes on as the API and the UI show
// it: a run queued before runs recorded their engine ran on DuckDB.
func (r *RunRecord) EngineName() string {
	if r.Engine == "" {
		return EngineDuckDB
	}
	return r.Engine
}

// Lease returns the claim the record was read under.
func (r *RunRecord) Lease() Lease { return Lease{Owner: r.Owner, Attempt: r.Attempts} }
