package exceptions

import (
	"context"
	"math/big"

	"github.com/kalla-recon/kalla/internal/kalla"
	"github.com/kalla-recon/kalla/internal/store"
)

// Tally is a count of items and their amounts, summed per currency ("" for
// items without one). Items without an amount count but add nothing.
// Amounts adds a pair's left amount to the left records' own, so Sides
// keeps them apart: per side (left and right records; a pair's left and
// right amounts) and currency. Differences sums the pairs' differences
// (right − left) per currency.
type Tally struct {
	Count       int64                        `json:"count"`
	Amounts     map[string]string            `json:"amounts"`
	Sides       map[string]map[string]string `json:"sides,omitempty"`
	Differences map[string]string            `json:"differences,omitempty"`
	sums        map[string]*big.Rat
	sides       map[string]map[string]*big.Rat
	diffs       map[string]*big.Rat
}

// addTo adds v's decimal to m[k], when v is one.
func addTo(m map[string]*big.Rat, k, v string) map[string]*big.Rat {
	a, ok := decimal(v)
	if !ok {
		return m
	}
	if m == nil {
		m = map[string]*big.Rat{}
	}
	if m[k] == nil {
		m[k] = new(big.Rat)
	}
	m[k].Add(m[k], a)
	return m
}

func (t *Tally) add(it *kalla.ExceptionItem) {
	t.Count++
	t.sums = addTo(t.sums, it.Currency, it.Amount)
	if t.sides == nil {
		t.sides = map[string]map[string]*big.Rat{}
	}
	if it.Side == "pair" {
		t.sides["left"] = addTo(t.sides["left"], it.Currency, it.Amount)
		t.sides["right"] = addTo(t.sides["right"], it.Currency, it.RightAmount)
		t.diffs = addTo(t.diffs, it.Currency, it.Difference)
	} else {
		t.sides[it.Side] = addTo(t.sides[it.Side], it.Currency, it.Amount)
	}
}

func (t *Tally) finish() {
	text := func(m map[string]*big.Rat) map[string]string {
		out := map[string]string{}
		for c, s := range m {
			out[c] = format(s)
		}
		return out
	}
	t.Amounts = text(t.sums)
	for side, m := range t.sides {
		if len(m) == 0 {
			continue
		}
		if t.Sides == nil {
			t.Sides = map[string]map[string]string{}
		}
		t.Sides[side] = text(m)
	}
	if len(t.diffs) > 0 {
		t.Differences = text(t.diffs)
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
	// RunAmounts are the run's own totals (summary.json's amounts): per
	// currency, each side's matched and open sums and the difference the
	// matched pairs absorbed, as the engine wrote them before any
	// decision; absent when Kalla could not tell which columns are money.
	RunAmounts *kalla.Amounts `json:"run_amounts,omitempty"`
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
		out.RunAmounts = rec.Summary.Amounts
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
