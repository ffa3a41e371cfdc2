package exceptions

import (
	"context"
	"fmt"
	"math/big"
	"slices"
	"strconv"
	"strings"

	"github.com/kalla-recon/kalla/internal/kalla"
	"github.com/kalla-recon/kalla/internal/store"
)

// ActionRequest is one action on a selection of items: listed by ID
// (Items) or chosen by a filter (Filter, for bulk work), not both.
type ActionRequest struct {
	Action string  `json:"action"`
	Items  []int64 `json:"items,omitempty"`
	Filter *Filter `json:"filter,omitempty"`
	// Versions, optional, maps an item ID to the version the person saw:
	// an item changed since is refused with ECONFLICT (a stale screen or
	// spreadsheet).
	Versions map[string]int64 `json:"versions,omitempty"`
	Code     string           `json:"code,omitempty"`
	Note     string           `json:"note,omitempty"`
	Assignee string           `json:"assignee,omitempty"`
	// Actor names the person when the request carries no principal (a
	// server without tokens, the CLI on its store); such a person acts as
	// admin. With a principal it must be empty or the principal's name.
	Actor string `json:"actor,omitempty"`
}

// MatchSums is what a manual match adds up: each side's sum, the
// difference (right − left) and the recipe's tolerance it was held to.
type MatchSums struct {
	Left       string `json:"left_sum"`
	Right      string `json:"right_sum"`
	Difference string `json:"difference"`
	Tolerance  string `json:"tolerance"`
}

// ActionResult is what an action did.
type ActionResult struct {
	Action *kalla.ExceptionAction `json:"action"`
	Items  []*kalla.ExceptionItem `json:"items"`
	Match  *MatchSums             `json:"match,omitempty"`
}

// Actor returns who acts: the context's principal, or with none the
// request's actor name as admin. Errors: EINVALID without a name.
func Actor(ctx context.Context, name string) (kalla.Principal, error) {
	if p, ok := kalla.PrincipalFrom(ctx); ok {
		if name != "" && name != p.Name {
			return p, kalla.Errorf(kalla.EINVALID, "actor %q is not the signed-in person %q: leave actor out", kalla.Excerpt(name), p.Name)
		}
		return p, nil
	}
	name = strings.TrimSpace(name)
	if name == "" {
		return kalla.Principal{}, kalla.Errorf(kalla.EINVALID, "actor is required: name the person taking the action")
	}
	return kalla.Principal{Name: name, Role: kalla.RoleAdmin}, nil
}

// need is the least role each action needs.
func need(action string) kalla.Role {
	if action == ActApprove {
		return kalla.RoleApprover
	}
	return kalla.RolePreparer
}

// Act applies one action to its items, all or none. Errors: EINVALID for a
// bad request, EFORBIDDEN for a role that may not take the action,
// EFOUREYES for an approval by the person who prepared it, ENOTFOUND for an
// unknown item, ECONFLICT for an item whose state does not allow the action
// or changed meanwhile.
func (s *Service) Act(ctx context.Context, req ActionRequest) (*ActionResult, error) {
	p, err := s.prepare(ctx, req)
	if err != nil {
		return nil, err
	}
	act, items, err := s.store.ActOnExceptions(ctx, p.query, p.decide)
	if err != nil {
		return nil, err
	}
	return &ActionResult{Action: act, Items: items, Match: p.sums}, nil
}

// prepared is an action checked and ready for the store: its selection, its
// decision, and the sums a manual match found once it ran.
type prepared struct {
	query  store.ExceptionQuery
	decide store.DecideFunc
	sums   *MatchSums
}

// prepare checks who acts and what the request asks, before the store.
func (s *Service) prepare(ctx context.Context, req ActionRequest) (*prepared, error) {
	who, err := Actor(ctx, req.Actor)
	if err != nil {
		return nil, err
	}
	if !slices.Contains(Actions, req.Action) {
		return nil, kalla.Errorf(kalla.EINVALID, "action %q: want one of %s", kalla.Excerpt(req.Action), strings.Join(Actions, ", "))
	}
	if !who.Role.Allows(need(req.Action)) {
		return nil, kalla.Errorf(kalla.EFORBIDDEN, "%s (role %s) may not %s: it needs role %s", who.Name, who.Role, req.Action, need(req.Action))
	}
	q, err := s.selection(ctx, req)
	if err != nil {
		return nil, err
	}
	if err := s.checkFields(req); err != nil {
		return nil, err
	}
	p := &prepared{query: q}
	p.decide = func(items []*kalla.ExceptionItem) (*store.Decision, error) {
		if len(req.Items) > 0 && len(items) < len(uniq(req.Items)) {
			return nil, kalla.Errorf(kalla.ENOTFOUND, "exception %d does not exist", missing(req.Items, items))
		}
		for _, it := range items {
			if v, ok := req.Versions[strconv.FormatInt(it.ID, 10)]; ok && v != it.Version {
				return nil, kalla.Errorf(kalla.ECONFLICT, "exception %d is at version %d, not %d: someone changed it since; reload it", it.ID, it.Version, v)
			}
		}
		after := make([]*kalla.ExceptionItem, len(items))
		for i, it := range items {
			c := *it
			after[i] = &c
		}
		result, m, err := s.decide(ctx, req, who, after)
		p.sums = m
		if err != nil {
			return nil, err
		}
		return &store.Decision{Action: kalla.ExceptionAction{Action: req.Action, Actor: who.Name, Role: who.Role,
			Code: req.Code, Note: req.Note, Assignee: req.Assignee, Result: result}, After: after}, nil
	}
	return p, nil
}

// selection turns the request's items or filter into a store query; an
// unmatch or an approval also takes every record matched by hand with a
// selected one.
func (s *Service) selection(ctx context.Context, req ActionRequest) (store.ExceptionQuery, error) {
	var q store.ExceptionQuery
	switch {
	case len(req.Items) > 0 && req.Filter != nil:
		return q, kalla.Errorf(kalla.EINVALID, "give items or filter, not both")
	case len(req.Items) > 0:
		if len(req.Items) > MaxBulkItems {
			return q, kalla.Errorf(kalla.EINVALID, "%d items in one action: at most %d", len(req.Items), MaxBulkItems)
		}
		q.IDs = uniq(req.Items)
	case req.Filter != nil:
		if req.Filter.Empty() {
			return q, kalla.Errorf(kalla.EINVALID, "filter is empty: it would select every exception; narrow it")
		}
		var err error
		if q, err = req.Filter.query(); err != nil {
			return q, err
		}
		q.Limit = 1
		_, total, err := s.store.ListExceptions(ctx, q)
		if err != nil {
			return q, err
		}
		if total > MaxBulkItems {
			return q, kalla.Errorf(kalla.EINVALID, "the filter selects %d exceptions: at most %d in one action", total, MaxBulkItems)
		}
		q.Limit = 0
	default:
		return q, kalla.Errorf(kalla.EINVALID, "items is required: the IDs of the exceptions to act on (or a filter)")
	}
	// A manual match is undone or approved whole.
	if (req.Action == ActUnmatch || req.Action == ActApprove) && len(q.IDs) > 0 {
		items, _, err := s.store.ListExceptions(ctx, store.ExceptionQuery{IDs: q.IDs})
		if err != nil {
			return q, err
		}
		for _, it := range items {
			if it.MatchGroup == "" {
				continue
			}
			group, _, err := s.store.ListExceptions(ctx, store.ExceptionQuery{RunID: it.RunID, MatchGroup: it.MatchGroup})
			if err != nil {
				return q, err
			}
			for _, g := range group {
				if !slices.Contains(q.IDs, g.ID) {
					q.IDs = append(q.IDs, g.ID)
				}
			}
		}
	}
	return q, nil
}

func uniq(ids []int64) []int64 {
	out := slices.Clone(ids)
	slices.Sort(out)
	return slices.Compact(out)
}

func missing(want []int64, got []*kalla.ExceptionItem) int64 {
	for _, id := range want {
		if !slices.ContainsFunc(got, func(it *kalla.ExceptionItem) bool { return it.ID == id }) {
			return id
		}
	}
	return 0
}

// checkFields checks what the action needs besides its items.
func (s *Service) checkFields(req ActionRequest) error {
	if req.Code != "" && !slices.Contains(s.cfg.Codes, req.Code) {
		return kalla.Errorf(kalla.EINVALID, "code %q is not a resolution code: want one of %s", kalla.Excerpt(req.Code), strings.Join(s.cfg.Codes, ", "))
	}
	switch req.Action {
	case ActResolve:
		if req.Code == "" {
			return kalla.Errorf(kalla.EINVALID, "resolve needs a code: one of %s", strings.Join(s.cfg.Codes, ", "))
		}
	case ActComment:
		if strings.TrimSpace(req.Note) == "" {
			return kalla.Errorf(kalla.EINVALID, "comment needs a note")
		}
	case ActAssign:
		if strings.TrimSpace(req.Assignee) == "" {
			return kalla.Errorf(kalla.EINVALID, "assign needs an assignee")
		}
	}
	return nil
}

// conflict is the error for an item whose state does not allow an action.
func conflict(it *kalla.ExceptionItem, action, want string) error {
	return kalla.Errorf(kalla.ECONFLICT, "exception %d is %s %s: %s needs %s", it.ID, it.Status, it.Kind, action, want)
}

// decide changes items (copies, in place) as the action says and returns
// the action's result: "applied" or "pending" (awaiting approval).
func (s *Service) decide(ctx context.Context, req ActionRequest, who kalla.Principal, items []*kalla.ExceptionItem) (string, *MatchSums, error) {
	done := func(it *kalla.ExceptionItem) {
		it.PreparedBy, it.DecidedBy, it.Pending = who.Name, who.Name, nil
	}
	switch req.Action {
	case ActAccept, ActReject:
		for _, it := range items {
			if it.Kind != kalla.ExcKindSuggested || it.Status != kalla.ExcOpen {
				return "", nil, conflict(it, req.Action, "an open suggested pair")
			}
			it.Status = kalla.ExcAccepted
			if req.Action == ActReject {
				it.Status = kalla.ExcRejected
			}
			done(it)
		}
	case ActResolve:
		pending := false
		for _, it := range items {
			if it.Kind != kalla.ExcKindUnmatched || it.Status != kalla.ExcOpen {
				return "", nil, conflict(it, req.Action, "an open unmatched record")
			}
			if slices.Contains(s.cfg.ApprovalCodes, req.Code) && s.above(it.Amount) {
				it.Status, it.PreparedBy, it.DecidedBy = kalla.ExcPending, who.Name, ""
				it.Pending = &kalla.PendingDecision{Action: ActResolve, Status: kalla.ExcResolved, Code: req.Code, Amount: it.Amount}
				pending = true
				continue
			}
			it.Status, it.Code = kalla.ExcResolved, req.Code
			done(it)
		}
		if pending {
			return "pending", nil, nil
		}
	case ActMatch:
		return s.match(ctx, req, who, items)
	case ActUnmatch:
		for _, it := range items {
			switch {
			case it.Status == kalla.ExcMatched, it.Status == kalla.ExcPending && it.Pending != nil && it.Pending.Action == ActMatch:
			case it.Status == kalla.ExcAccepted:
			default:
				return "", nil, conflict(it, req.Action, "a record matched by hand or an accepted pair")
			}
			it.Status, it.Code, it.MatchGroup, it.Pending = kalla.ExcOpen, "", "", nil
			it.PreparedBy, it.DecidedBy = "", ""
		}
	case ActReopen:
		for _, it := range items {
			if it.Status != kalla.ExcAccepted && it.Status != kalla.ExcRejected && it.Status != kalla.ExcResolved && it.Status != kalla.ExcPending {
				return "", nil, conflict(it, req.Action, "a decided or pending item (unmatch a manual match)")
			}
			if it.Pending != nil && it.Pending.Action == ActMatch {
				return "", nil, conflict(it, req.Action, "an item not pending a manual match (unmatch it)")
			}
			it.Status, it.Code, it.Pending, it.PreparedBy, it.DecidedBy = kalla.ExcOpen, "", nil, "", ""
		}
	case ActAssign:
		for _, it := range items {
			it.Assignee = req.Assignee
		}
	case ActComment:
		// The note is the whole action; the audit entry keeps it.
	case ActApprove:
		for _, it := range items {
			if it.Status != kalla.ExcPending || it.Pending == nil {
				return "", nil, conflict(it, req.Action, "an item pending approval")
			}
			if it.PreparedBy == who.Name {
				return "", nil, kalla.Errorf(kalla.EFOUREYES, "exception %d was prepared by %s, who may not approve it too: a second person must", it.ID, who.Name)
			}
			it.Status, it.Code, it.MatchGroup = it.Pending.Status, it.Pending.Code, it.Pending.MatchGroup
			it.Pending, it.DecidedBy = nil, who.Name
		}
	}
	return "applied", nil, nil
}

// above reports whether an amount reaches the approval threshold.
func (s *Service) above(amount string) bool {
	a, ok := decimal(amount)
	if !ok {
		return false
	}
	return a.Abs(a).Cmp(s.threshold) >= 0
}

// match matches open unmatched records of one run by hand: at least one of
// each side. A difference beyond the recipe's tolerance needs a code, and
// a difference on an amount reaching the threshold needs approval.
func (s *Service) match(ctx context.Context, req ActionRequest, who kalla.Principal, items []*kalla.ExceptionItem) (string, *MatchSums, error) {
	sum := map[string]*big.Rat{"left": new(big.Rat), "right": new(big.Rat)}
	runID := items[0].RunID
	for _, it := range items {
		if it.Kind != kalla.ExcKindUnmatched || it.Status != kalla.ExcOpen {
			return "", nil, conflict(it, req.Action, "an open unmatched record")
		}
		if it.RunID != runID {
			return "", nil, kalla.Errorf(kalla.EINVALID, "a manual match takes records of one run: exception %d is of run %s, not %s", it.ID, it.RunID, runID)
		}
		a, ok := decimal(it.Amount)
		if !ok {
			return "", nil, kalla.Errorf(kalla.EINVALID, "exception %d has no amount (%q) to add up: the recipe names no amount column", it.ID, it.Amount)
		}
		sum[it.Side].Add(sum[it.Side], a)
	}
	nl := slices.IndexFunc(items, func(it *kalla.ExceptionItem) bool { return it.Side == "left" })
	nr := slices.IndexFunc(items, func(it *kalla.ExceptionItem) bool { return it.Side == "right" })
	if nl < 0 || nr < 0 {
		return "", nil, kalla.Errorf(kalla.EINVALID, "a manual match needs at least one left and one right record")
	}
	run, err := s.store.GetRun(ctx, runID)
	if err != nil {
		return "", nil, err
	}
	tol := Tolerance(&run.Recipe)
	diff := new(big.Rat).Sub(sum["right"], sum["left"])
	ms := &MatchSums{Left: format(sum["left"]), Right: format(sum["right"]), Difference: format(diff), Tolerance: format(tol)}
	absDiff := new(big.Rat).Abs(diff)
	if absDiff.Cmp(tol) > 0 && req.Code == "" {
		return "", ms, kalla.Errorf(kalla.EINVALID, "the sums differ by %s (left %s, right %s), beyond the recipe's tolerance %s: give a resolution code (%s)",
			ms.Difference, ms.Left, ms.Right, ms.Tolerance, strings.Join(s.cfg.Codes, ", "))
	}
	larger := new(big.Rat).Abs(sum["left"])
	if r := new(big.Rat).Abs(sum["right"]); r.Cmp(larger) > 0 {
		larger = r
	}
	group := fmt.Sprintf("M%d", slices.MinFunc(items, func(a, b *kalla.ExceptionItem) int { return int(a.ID - b.ID) }).ID)
	pending := diff.Sign() != 0 && larger.Cmp(s.threshold) >= 0
	for _, it := range items {
		if pending {
			it.Status, it.PreparedBy, it.DecidedBy = kalla.ExcPending, who.Name, ""
			it.Pending = &kalla.PendingDecision{Action: ActMatch, Status: kalla.ExcMatched, Code: req.Code, MatchGroup: group, Amount: ms.Difference}
			it.MatchGroup = group
			continue
		}
		it.Status, it.Code, it.MatchGroup = kalla.ExcMatched, req.Code, group
		it.PreparedBy, it.DecidedBy, it.Pending = who.Name, who.Name, nil
	}
	if pending {
		return "pending", ms, nil
	}
	return "applied", ms, nil
}

// Tolerance is the largest absolute tolerance of the recipe's rules (0 for
// a SQL recipe, or rules with only relative ones): the difference a manual
// match may have without a resolution code.
func Tolerance(r *kalla.Recipe) *big.Rat {
	t := new(big.Rat)
	for _, rule := range r.Rules {
		for _, c := range rule.Conditions {
			if c.Op != kalla.CondTolerance || c.Abs == "" {
				continue
			}
			if a, ok := decimal(string(c.Abs)); ok && a.Cmp(t) > 0 {
				t = a
			}
		}
	}
	return t
}
