package suggest

import (
	"encoding/json"
	"fmt"
	"math"
	"strconv"

	"github.com/kalla-recon/kalla/internal/kalla"
)

// pick returns the best relation of a kind satisfying ok, or nil.
func pick(rels []*relation, kind string, ok func(*relation) bool) *relation {
	var best *relation
	for _, x := range rels {
		if x.kind == kind && ok(x) && (best == nil || x.score > best.score) {
			best = x
		}
	}
	return best
}

func (x *relation) eqCondition() kalla.Condition {
	return kalla.Condition{Op: kalla.CondEq, Left: x.l.Name, Right: x.r.Name, Normalize: x.norm, StripLeft: x.strip[0], StripRight: x.strip[1]}
}

// buildRules writes the rules, strict to loose: an exact rule on the link
// (the key-like column pair that is equal) and the amount; a looser 1:1
// rule when amounts or dates drift; and, when the examples pair one
// record with several, a grouped rule comparing sums.
func buildRules(l, r *side, rels []*relation, link *relation, ex *examples, shape *dataPattern) ([]kalla.Rule, []string) {
	var notes []string
	if link == nil {
		return nil, []string{"no key-like column pair is equal in every example (or shares values): there is nothing to join the sides on"}
	}
	amount := pick(rels, "number", func(x *relation) bool { return x.l.Name != link.l.Name })
	date := pick(rels, "date", func(*relation) bool { return true })
	pattern, groupEv := kalla.Pattern1to1, ""
	switch {
	case ex != nil:
		pattern, groupEv = ex.pattern, fmt.Sprintf("pattern %s: %d example pairs form %d groups", ex.pattern, ex.n, ex.groups)
	case shape != nil:
		pattern, groupEv = shape.pattern, shape.evidence
	}
	linkEv := "link: " + link.evidence
	var out []kalla.Rule

	// Strict: the link, the amount equal, and every other column pair the
	// examples show equal (a currency, a customer).
	exact := kalla.Rule{Name: "exact", Conditions: []kalla.Condition{link.eqCondition()}, Evidence: []string{linkEv}}
	if ex != nil {
		for _, x := range rels {
			if x.kind == "text" && x.eq && x != link && x.l.Name != link.l.Name && x.r.Name != link.r.Name && !usesColumn(exact, x) {
				exact.Conditions = append(exact.Conditions, x.eqCondition())
				exact.Evidence = append(exact.Evidence, x.evidence)
			}
		}
	}
	if amount != nil {
		exact.Conditions = append(exact.Conditions, kalla.Condition{Op: kalla.CondEq, Left: amount.l.Name, Right: amount.r.Name})
		exact.Evidence = append(exact.Evidence, "amount: "+amount.evidence)
	}
	out = append(out, exact)
	if amount == nil {
		notes = append(notes, "no amount column pair found: the rules compare the link only")
		return out, notes
	}

	// Looser, one to one: amounts within what the examples showed (or a
	// common 2 % without examples), dates within their window.
	if ex == nil || !amount.exact || (pattern == kalla.Pattern1to1 && date != nil) {
		loose := kalla.Rule{Name: "tolerance", Conditions: []kalla.Condition{link.eqCondition()}, Evidence: []string{linkEv}}
		loose.Conditions = append(loose.Conditions, amount.tolerance(ex))
		loose.Evidence = append(loose.Evidence, amount.toleranceEvidence(ex))
		if date != nil && ex != nil {
			c, ev := date.window()
			loose.Conditions = append(loose.Conditions, c)
			loose.Evidence = append(loose.Evidence, ev)
		}
		if ex != nil || !amount.exact {
			out = append(out, loose)
		}
	}

	// Grouped: the examples pair one record with several.
	if pattern != kalla.Pattern1to1 {
		name := map[string]string{kalla.Pattern1toN: "split", kalla.PatternNto1: "batch", kalla.PatternNtoM: "groups"}[pattern]
		g := kalla.Rule{Name: name, Pattern: pattern, Conditions: []kalla.Condition{link.eqCondition()}, Evidence: []string{linkEv, groupEv}}
		g.Conditions = append(g.Conditions, amount.tolerance(ex))
		g.Evidence = append(g.Evidence, amount.toleranceEvidence(ex))
		if date != nil && ex != nil {
			c, ev := date.window()
			g.Conditions = append(g.Conditions, c)
			g.Evidence = append(g.Evidence, ev)
		}
		out = append(out, g)
	}
	return out, notes
}

func usesColumn(r kalla.Rule, x *relation) bool {
	for _, c := range r.Conditions {
		if c.Left == x.l.Name || c.Right == x.r.Name {
			return true
		}
	}
	return false
}

// tolerance is an amount condition allowing what the examples showed,
// rounded up to a round share; without examples, 2 %.
func (x *relation) tolerance(ex *examples) kalla.Condition {
	c := kalla.Condition{Op: kalla.CondTolerance, Left: x.l.Name, Right: x.r.Name}
	switch {
	case ex == nil:
		c.Pct = "0.02"
	case x.exact:
		c.Abs = "0"
	default:
		c.Pct = json.Number(niceUp(x.share))
	}
	return c
}

func (x *relation) toleranceEvidence(ex *examples) string {
	switch {
	case ex == nil:
		return "amount: no example pairs to learn from; 2 % is a common start (give --pairs to learn it)"
	case x.exact:
		return "amount: " + x.evidence + "; sums must be equal"
	}
	p, _ := strconv.ParseFloat(niceUp(x.share), 64)
	return fmt.Sprintf("amount: %s; allowing %s %%", x.evidence, strconv.FormatFloat(100*p, 'f', -1, 64))
}

// window is a date condition covering the examples' offsets, rounded up:
// directed when every payment came on or after its invoice.
func (x *relation) window() (kalla.Condition, string) {
	c := kalla.Condition{Op: kalla.CondDateWithin, Left: x.l.Name, Right: x.r.Name}
	var d int
	switch {
	case x.minDays >= 0:
		d = niceDays(x.maxDays)
		c.Direction = "after"
	case x.maxDays <= 0:
		d = niceDays(-x.minDays)
		c.Direction = "before"
	default:
		d = niceDays(math.Max(-x.minDays, x.maxDays))
	}
	c.Days = &d
	dir := "either way"
	if c.Direction != "" {
		dir = c.Direction
	}
	return c, fmt.Sprintf("date: %s; allowing %d days %s", x.evidence, d, dir)
}

// pickLink chooses the column pair that joins the sides: equal (after
// normalising or stripping) and key-like on the left.
func pickLink(rels []*relation) *relation {
	return pick(rels, "text", isLink)
}

// isLink reports whether a relation may join the sides: equal, key-like,
// and not a category.
func isLink(x *relation) bool { return x.kind == "text" && x.eq && x.keyLike >= 0.2 && !x.category }

// dataPattern is the pattern the data itself shows when there are no
// examples: how often a link value is shared by several records.
type dataPattern struct {
	pattern  string
	evidence string
}

// linkKey renders side s's value of the link as the rule compiler compares
// it (strip, then trim, casefold, alnum).
func linkKey(x *relation, s int) string {
	col := []string{x.l.Name, x.r.Name}[s]
	v := "CAST(" + qi(col) + " AS VARCHAR)"
	if x.strip[s] != "" {
		v = "regexp_replace(" + v + ", " + lit(x.strip[s]) + ", '', 'g')"
	}
	for _, n := range x.norm {
		switch n {
		case kalla.NormTrim:
			v = "trim(" + v + ")"
		case kalla.NormCaseFold:
			v = "lower(" + v + ")"
		case kalla.NormAlnum:
			v = `regexp_replace(` + v + `, '[^\p{L}\p{N}]', '', 'g')`
		}
	}
	return v
}
