// Package exceptions is the work people do on a run's breaks: the open
// items a completed run leaves (unmatched records, suggested pairs), the
// actions taken on them (accept, reject, match by hand, unmatch, resolve
// with a code, reopen, assign, comment, approve), four eyes on the large
// ones, and the audit trail every action appends to, chained by SHA-256.
//
// The run's output files stay the immutable evidence: items are made from
// them once, when the run completes, and decisions are a separate layer in
// the metadata store. See DESIGN.md.
package exceptions

import (
	"context"
	"fmt"
	"log/slog"
	"math/big"
	"slices"
	"strconv"
	"strings"

	"github.com/kalla-recon/kalla/internal/kalla"
	"github.com/kalla-recon/kalla/internal/store"
)

// Actions a person may take.
const (
	ActAccept  = "accept"
	ActReject  = "reject"
	ActMatch   = "match"
	ActUnmatch = "unmatch"
	ActResolve = "resolve"
	ActReopen  = "reopen"
	ActAssign  = "assign"
	ActComment = "comment"
	ActApprove = "approve"
)

// Actions lists every action, in the order the API documents them.
var Actions = []string{ActAccept, ActReject, ActMatch, ActUnmatch, ActResolve, ActReopen, ActAssign, ActComment, ActApprove}

// DefaultCodes are the resolution codes when none are configured.
var DefaultCodes = []string{"write-off", "timing difference", "duplicate", "bank fee", "other"}

// Defaults of Config.
const (
	// DefaultApprovalAmount is the amount from which a write-off or a
	// manual match with a difference needs a second person.
	DefaultApprovalAmount = "1000"
	// MaxBulkItems bounds one action's items: a larger selection is
	// refused, so one request cannot hold the store's write lock for long.
	MaxBulkItems = 10000
)

// Store is what the service needs of the metadata store (*store.Store).
type Store interface {
	GetRun(ctx context.Context, id string) (*kalla.RunRecord, error)
	InsertExceptions(ctx context.Context, items []*kalla.ExceptionItem) (int, error)
	ListExceptions(ctx context.Context, q store.ExceptionQuery) ([]*kalla.ExceptionItem, int64, error)
	GetException(ctx context.Context, id int64) (*kalla.ExceptionItem, error)
	ActOnExceptions(ctx context.Context, q store.ExceptionQuery, decide store.DecideFunc) (*kalla.ExceptionAction, []*kalla.ExceptionItem, error)
	ActOnExceptionsBatch(ctx context.Context, steps []store.ActionStep, rollback bool) ([]store.StepResult, error)
	AuditHead(ctx context.Context) (int64, string, error)
	AuditEntries(ctx context.Context, after, itemID int64, limit int) ([]*kalla.AuditEntry, error)
}

// Config configures a Service.
type Config struct {
	// Codes are the resolution codes people may give; nil means
	// DefaultCodes.
	Codes []string
	// ApprovalAmount is the absolute amount from which a decision needs
	// approval: a resolve whose code is one of ApprovalCodes on an item of
	// at least this amount, or a manual match with a difference whose
	// larger side sums to at least this. Empty means
	// DefaultApprovalAmount.
	ApprovalAmount string
	// ApprovalCodes are the codes that need approval above the amount;
	// nil means write-off only.
	ApprovalCodes []string
	// Logger receives what the run hook could not do. Nil discards.
	Logger *slog.Logger
}

// Service applies actions to exception items through the store.
type Service struct {
	store     Store
	cfg       Config
	threshold *big.Rat
	log       *slog.Logger
}

// New returns a Service. Errors: EINVALID for an approval amount that is
// not a number or an approval code that is not a resolution code.
func New(st Store, cfg Config) (*Service, error) {
	if len(cfg.Codes) == 0 {
		cfg.Codes = DefaultCodes
	}
	if cfg.ApprovalAmount == "" {
		cfg.ApprovalAmount = DefaultApprovalAmount
	}
	if cfg.ApprovalCodes == nil {
		cfg.ApprovalCodes = []string{"write-off"}
	}
	t, ok := decimal(cfg.ApprovalAmount)
	if !ok || t.Sign() < 0 {
		return nil, kalla.Errorf(kalla.EINVALID, "approval amount %q is not a non-negative number", cfg.ApprovalAmount)
	}
	for _, c := range cfg.ApprovalCodes {
		if !slices.Contains(cfg.Codes, c) {
			return nil, kalla.Errorf(kalla.EINVALID, "approval code %q is not one of the resolution codes %s", c, strings.Join(cfg.Codes, ", "))
		}
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Service{store: st, cfg: cfg, threshold: t, log: log}, nil
}

// Codes returns the resolution codes people may give.
func (s *Service) Codes() []string { return slices.Clone(s.cfg.Codes) }

// RecordRun makes a completed run's exception items from its output files
// in outDir and stores them; recording a run twice adds nothing. It returns
// how many items it added.
func (s *Service) RecordRun(ctx context.Context, rec *kalla.RunRecord, outDir string) (int, error) {
	items, err := Items(ctx, rec, outDir)
	if err != nil {
		return 0, err
	}
	n, err := s.store.InsertExceptions(ctx, items)
	if err != nil {
		return 0, fmt.Errorf("record exceptions of run %q: %w", rec.ID, err)
	}
	return n, nil
}

// Filter selects items for a list, an export or a bulk action. Zero
// fields do not filter.
type Filter struct {
	RunID    string `json:"run_id,omitempty"`
	RecipeID string `json:"recipe_id,omitempty"`
	Status   string `json:"status,omitempty"`
	Kind     string `json:"kind,omitempty"`
	Side     string `json:"side,omitempty"`
	Rule     string `json:"rule,omitempty"`
	Reason   string `json:"reason,omitempty"`
	Assignee string `json:"assignee,omitempty"`
	// MinAmount and MaxAmount bound the amount (a pair's left amount);
	// MaxDifference bounds a pair's absolute difference.
	MinAmount     *float64 `json:"min_amount,omitempty"`
	MaxAmount     *float64 `json:"max_amount,omitempty"`
	MaxDifference *float64 `json:"max_difference,omitempty"`
	// Age is an age bucket in days: "N-M" or "N+".
	Age string `json:"age,omitempty"`
}

// Empty reports whether the filter selects everything.
func (f Filter) Empty() bool { return f == Filter{} }

// query checks the filter and turns it into a store query.
func (f Filter) query() (store.ExceptionQuery, error) {
	q := store.ExceptionQuery{RunID: f.RunID, RecipeID: f.RecipeID, Status: f.Status, Kind: f.Kind, Side: f.Side, Rule: f.Rule,
		Reason: f.Reason, Assignee: f.Assignee, MinAmount: f.MinAmount, MaxAmount: f.MaxAmount, MaxDifference: f.MaxDifference}
	if f.Status != "" && !slices.Contains([]string{kalla.ExcOpen, kalla.ExcAccepted, kalla.ExcRejected, kalla.ExcMatched, kalla.ExcResolved, kalla.ExcPending}, f.Status) {
		return q, kalla.Errorf(kalla.EINVALID, "status %q: want open, accepted, rejected, matched, resolved or pending", f.Status)
	}
	if f.Side != "" && f.Side != "left" && f.Side != "right" && f.Side != "pair" {
		return q, kalla.Errorf(kalla.EINVALID, "side %q: want left, right or pair", f.Side)
	}
	if f.Kind != "" && f.Kind != kalla.ExcKindUnmatched && f.Kind != kalla.ExcKindSuggested {
		return q, kalla.Errorf(kalla.EINVALID, "kind %q: want unmatched or suggested", f.Kind)
	}
	if f.Age != "" {
		lo, hi, ok := strings.Cut(f.Age, "-")
		plus := false
		if !ok {
			lo, plus = strings.CutSuffix(f.Age, "+")
		}
		a, err1 := strconv.Atoi(lo)
		if err1 != nil || a < 0 || !ok && !plus {
			return q, kalla.Errorf(kalla.EINVALID, "age %q: want a bucket of days such as 0-7, 8-30 or 90+", f.Age)
		}
		q.MinAgeDays = &a
		if ok {
			b, err := strconv.Atoi(hi)
			if err != nil || b < a {
				return q, kalla.Errorf(kalla.EINVALID, "age %q: want a bucket of days such as 0-7, 8-30 or 90+", f.Age)
			}
			q.MaxAgeDays = &b
		}
	}
	return q, nil
}

// Page is one page of items and how many the filter selects in all.
type Page struct {
	Items  []*kalla.ExceptionItem `json:"items"`
	Total  int64                  `json:"total"`
	Limit  int                    `json:"limit"`
	Offset int                    `json:"offset"`
}

// List returns one page of the items f selects, in id order.
func (s *Service) List(ctx context.Context, f Filter, limit, offset int) (*Page, error) {
	q, err := f.query()
	if err != nil {
		return nil, err
	}
	q.Limit, q.Offset = limit, offset
	items, total, err := s.store.ListExceptions(ctx, q)
	if err != nil {
		return nil, err
	}
	return &Page{Items: items, Total: total, Limit: limit, Offset: offset}, nil
}

// Detail is one item with its history: the audit entries of every action
// on it, oldest first.
type Detail struct {
	*kalla.ExceptionItem
	History []*kalla.AuditEntry `json:"history"`
}

// Get returns one item and its history. Errors: ENOTFOUND.
func (s *Service) Get(ctx context.Context, id int64) (*Detail, error) {
	it, err := s.store.GetException(ctx, id)
	if err != nil {
		return nil, err
	}
	hist := []*kalla.AuditEntry{} // an item nobody acted on has an empty history, not null
	for after := int64(0); ; {
		page, err := s.store.AuditEntries(ctx, after, id, 1000)
		if err != nil {
			return nil, err
		}
		hist = append(hist, page...)
		if len(page) < 1000 {
			break
		}
		after = page[len(page)-1].Seq
	}
	return &Detail{ExceptionItem: it, History: hist}, nil
}

// Recorder returns the runner's completion hook (runner.Config.OnCompleted):
// it records the items of each completed run.
func Recorder(s *Service) func(ctx context.Context, rec *kalla.RunRecord, outDir string) error {
	return func(ctx context.Context, rec *kalla.RunRecord, outDir string) error {
		n, err := s.RecordRun(ctx, rec, outDir)
		if err == nil {
			s.log.Info("exceptions recorded", "run", rec.ID, "items", n)
		}
		return err
	}
}

// ApprovalAmount is the absolute amount from which a write-off (or a
// manual match with a difference) waits for a second person, so that
// screens can say so before anyone acts.
func (s *Service) ApprovalAmount() string { return s.cfg.ApprovalAmount }
