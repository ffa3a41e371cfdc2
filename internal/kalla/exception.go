package kalla

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"time"
)

// Exception statuses. An item starts open (or pending nothing); a decision
// moves it to accepted, rejected, matched or resolved, or to pending when the
// decision needs a second person's approval (four eyes).
const (
	ExcOpen     = "open"
	ExcAccepted = "accepted" // a suggested pair confirmed by a person
	ExcRejected = "rejected" // a suggested pair refused by a person
	ExcMatched  = "matched"  // matched by hand with other records
	ExcResolved = "resolved" // closed with a resolution code
	ExcPending  = "pending"  // a decision awaiting approval
)

// Exception kinds: an unmatched record of one side, or a pair the rules
// matched below the rule's auto_confirm ("suggested").
const (
	ExcKindUnmatched = "unmatched"
	ExcKindSuggested = "suggested"
)

// ExceptionItem is one break of a completed run a person must decide on. It
// is made from the run's own output files, never from the sources, and
// keeps what a reviewer needs without opening them.
type ExceptionItem struct {
	ID       int64  `json:"id"`
	RunID    string `json:"run_id"`
	RecipeID string `json:"recipe_id"`
	Kind     string `json:"kind"`
	// Side is left or right for an unmatched record, pair for a suggested
	// pair.
	Side string `json:"side"`
	// Row is the record's (or pair's) 1-based row in the run's output file
	// of its kind, which stays the evidence.
	Row int64 `json:"row"`
	// Key is the record's primary key (a pair's left key); RightKey is a
	// pair's right key. Several key columns are joined with "|".
	Key      string `json:"key"`
	RightKey string `json:"right_key,omitempty"`
	// Amount is the exact decimal text of the record's amount (a pair's
	// left amount), empty when the recipe names no amount column.
	Amount      string `json:"amount"`
	RightAmount string `json:"right_amount,omitempty"`
	// Difference is a pair's right amount minus its left amount.
	Difference string   `json:"difference,omitempty"`
	Currency   string   `json:"currency,omitempty"`
	Date       string   `json:"date,omitempty"`
	Rule       string   `json:"rule,omitempty"`
	Score      *float64 `json:"score,omitempty"`
	Reason     string   `json:"reason,omitempty"`
	Closest    string   `json:"closest_candidate,omitempty"`
	Status     string   `json:"status"`
	// Code is the resolution code of a resolved item, or of a manual
	// match whose difference is beyond the recipe's tolerance.
	Code     string `json:"code,omitempty"`
	Assignee string `json:"assignee,omitempty"`
	// MatchGroup ties the records a person matched by hand together.
	MatchGroup string `json:"match_group,omitempty"`
	// Pending is the decision awaiting approval while Status is pending.
	Pending *PendingDecision `json:"pending,omitempty"`
	// PreparedBy is who took the decision now pending or last taken;
	// DecidedBy who approved it (or took it when no approval was needed).
	PreparedBy string `json:"prepared_by,omitempty"`
	DecidedBy  string `json:"decided_by,omitempty"`
	// AgeFrom is the day the item's age counts from: the record's date
	// when the recipe names a date column, else the day the item was made.
	AgeFrom string `json:"age_from"`
	// AgeDays is today minus AgeFrom, in days, when the item was read.
	AgeDays int `json:"age_days"`
	// Version grows with every change: an action given a stale version
	// is refused with ECONFLICT.
	Version   int64     `json:"version"`
	CreatedAt time.Time `json:"created_at"`
	UpdatedAt time.Time `json:"updated_at"`
}

// PendingDecision is a decision that needs a second person: the status and
// code it will give the item once approved.
type PendingDecision struct {
	Action     string `json:"action"`
	Status     string `json:"status"`
	Code       string `json:"code,omitempty"`
	MatchGroup string `json:"match_group,omitempty"`
	Amount     string `json:"amount,omitempty"`
}

// ExceptionAction is one action a person took on one or more items.
type ExceptionAction struct {
	ID       int64     `json:"id"`
	Action   string    `json:"action"`
	Actor    string    `json:"actor"`
	Role     Role      `json:"role"`
	Code     string    `json:"code,omitempty"`
	Note     string    `json:"note,omitempty"`
	Assignee string    `json:"assignee,omitempty"`
	Items    int       `json:"items"`
	Result   string    `json:"result"`
	At       time.Time `json:"at"`
}

// AuditEntry is one row of the append-only audit log: an action's effect on
// one item, before and after, chained to the entry before it by PrevHash.
type AuditEntry struct {
	Seq      int64     `json:"seq"`
	At       time.Time `json:"at"`
	Actor    string    `json:"actor"`
	Role     Role      `json:"role"`
	Action   string    `json:"action"`
	ActionID int64     `json:"action_id"`
	ItemID   int64     `json:"item_id"`
	RunID    string    `json:"run_id"`
	// Before and After are the item's JSON before and after the action,
	// exactly as hashed.
	Before   string `json:"before"`
	After    string `json:"after"`
	Note     string `json:"note,omitempty"`
	PrevHash string `json:"prev_hash"`
	Hash     string `json:"hash"`
}

// AuditGenesis is the PrevHash of the first audit entry.
const AuditGenesis = "0000000000000000000000000000000000000000000000000000000000000000"

// auditCanon is the canonical form an audit entry is hashed in: a JSON
// object with exactly these keys in this order, At in UTC as RFC 3339 with
// microseconds, Before and After as the JSON text stored (strings, not
// re-encoded objects), encoded by encoding/json without HTML escaping.
type auditCanon struct {
	Seq      int64  `json:"seq"`
	At       string `json:"at"`
	Actor    string `json:"actor"`
	Role     string `json:"role"`
	Action   string `json:"action"`
	ActionID int64  `json:"action_id"`
	ItemID   int64  `json:"item_id"`
	RunID    string `json:"run_id"`
	Before   string `json:"before"`
	After    string `json:"after"`
	Note     string `json:"note"`
	PrevHash string `json:"prev_hash"`
}

// AuditTimeLayout is how an audit entry's time enters its hash.
const AuditTimeLayout = "2006-01-02T15:04:05.000000Z"

// ComputeHash returns the hex SHA-256 of the entry's canonical form (every
// field but Hash, PrevHash included), so that changing any field of an
// entry, or of one before it, breaks the chain.
func (e *AuditEntry) ComputeHash() string {
	var b []byte
	enc := auditCanon{
		Seq: e.Seq, At: e.At.UTC().Format(AuditTimeLayout), Actor: e.Actor, Role: string(e.Role),
		Action: e.Action, ActionID: e.ActionID, ItemID: e.ItemID, RunID: e.RunID,
		Before: e.Before, After: e.After, Note: e.Note, PrevHash: e.PrevHash,
	}
	buf := &jsonBuf{}
	je := json.NewEncoder(buf)
	je.SetEscapeHTML(false)
	if err := je.Encode(enc); err != nil {
		// Strings and integers always encode.
		panic(err)
	}
	b = buf.b
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

type jsonBuf struct{ b []byte }

func (j *jsonBuf) Write(p []byte) (int, error) { j.b = append(j.b, p...); return len(p), nil }
