package exceptions

import (
	"context"
	"math/big"

	"github.com/kalla-recon/kalla/internal/kalla"
	"github.com/kalla-recon/kalla/internal/store"
)

// Tally is a count of items and their amounts, summed per currency ("" for
// items without one). Items without an amount count but add nothing.
type Tally struct {
	Count   int64             `json:"count"`
	Amounts map[string]string `json:"amounts"`
	sums    map[string]*big.Rat
}

func (t *Tally) add(it *kalla.ExceptionItem) {
	t.Count++
	a, ok := decimal(it.Amount)
	if !ok {
		return
	}
	if t.sums == nil {
		t.sums = map[string]*big.Rat{}
	}
	if t.sums[it.Currency] == nil {
		t.sums[it.Currency] = new(big.Rat)
	}
	t.sums[it.Currency].Add(t.sums[it.Currency], a)
}

func (t *Tally) finish() {
	t.Amounts = map[string]string{}
	for c, s := range t.sums {
		t.Amounts[c] = format(s)
	}
}

// RunSummary is a run's decisions, the layer on top of its immutable
// evidence: pairs matched by the rules (the run's own count, less the
// suggested pairs not accepted), suggested pairs accepted or rejected by a
// person, records matched by hand, records resolved per code, decisions
// pending approval and items still open. Amounts of unmatched records are
// their own; of a pair, its left amount.
type RunSummary struct {
	RunID string `json:"run_id"`
	// MatchedByRule counts the run's matched pairs that stand: confirmed
	// by the rules, or suggested and accepted.
	MatchedByRule int64            `json:"matched_by_rule"`
	Accepted      Tally            `json:"accepted"`
	Rejected      Tally            `json:"rejected"`
	MatchedByHand Tally            `json:"matched_by_hand"`
	ResolvedBy    map[string]Tally `json:"resolved_by_code"`
	Pending       Tally            `json:"pending_approval"`
	// Open counts the items still open, per side (left, right, pair).
	Open map[string]Tally `json:"still_open"`
}

// Summary adds up the decisions on a run's items.
func (s *Service) Summary(ctx context.Context, rec *kalla.RunRecord) (*RunSummary, error) {
	items, _, err := s.store.ListExceptions(ctx, store.ExceptionQuery{RunID: rec.ID})
	if err != nil {
		return nil, err
	}
	out := &RunSummary{RunID: rec.ID, ResolvedBy: map[string]Tally{}, Open: map[string]Tally{}}
	if rec.Summary != nil {
		out.MatchedByRule = rec.Summary.MatchedCount
	}
	resolved := map[string]*Tally{}
	open := map[string]*Tally{}
	for _, it := range items {
		if it.Kind == kalla.ExcKindSuggested && it.Status != kalla.ExcAccepted {
			out.MatchedByRule--
		}
		switch it.Status {
		case kalla.ExcAccepted:
			out.Accepted.add(it)
		case kalla.ExcRejected:
			out.Rejected.add(it)
		case kalla.ExcMatched:
			out.MatchedByHand.add(it)
		case kalla.ExcPending:
			out.Pending.add(it)
		case kalla.ExcResolved:
			if resolved[it.Code] == nil {
				resolved[it.Code] = &Tally{}
			}
			resolved[it.Code].add(it)
		case kalla.ExcOpen:
			if open[it.Side] == nil {
				open[it.Side] = &Tally{}
			}
			open[it.Side].add(it)
		}
	}
	for _, t := range []*Tally{&out.Accepted, &out.Rejected, &out.MatchedByHand, &out.Pending} {
		t.finish()
	}
	for c, t := range resolved {
		t.finish()
		out.ResolvedBy[c] = *t
	}
	for side, t := range open {
		t.finish()
		out.Open[side] = *t
	}
	return out, nil
}
