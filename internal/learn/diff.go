package learn

import (
	"encoding/json"
	"fmt"
	"reflect"
	"strings"

	"github.com/kalla-recon/kalla/internal/kalla"
)

// sameRule returns the name of the rule of rules that compares what r
// compares (its conditions, pattern and scores; names and evidence aside),
// or "".
func sameRule(rules []kalla.Rule, r kalla.Rule) string {
	strip := func(x kalla.Rule) kalla.Rule {
		x.Name, x.Evidence = "", nil
		return x
	}
	for _, have := range rules {
		if reflect.DeepEqual(strip(have), strip(r)) {
			return have.Name
		}
	}
	return ""
}

func ruleNames(rules []kalla.Rule) string {
	names := make([]string, len(rules))
	for i, r := range rules {
		names[i] = r.Name
	}
	return strings.Join(names, ", ")
}

// diffLines says a proposal's change in words: the recipe's rules kept as
// they are, then each new rule with its conditions and evidence.
func diffLines(old, added []kalla.Rule) []string {
	out := []string{fmt.Sprintf("  rules %s stay as they are and run first", ruleNames(old))}
	for _, r := range added {
		conds := make([]string, len(r.Conditions))
		for i, c := range r.Conditions {
			conds[i] = describe(c)
		}
		line := fmt.Sprintf("+ rule %s: %s", r.Name, strings.Join(conds, " and "))
		if r.Pattern != "" && r.Pattern != kalla.Pattern1to1 {
			line += fmt.Sprintf(" (pattern %s)", r.Pattern)
		}
		out = append(out, line)
		for _, ev := range r.Evidence {
			out = append(out, "    because "+ev)
		}
	}
	return out
}

// describe writes one condition as a person reads it.
func describe(c kalla.Condition) string {
	side := func(col, strip string) string {
		if strip != "" {
			return fmt.Sprintf("%s (without %s)", col, strip)
		}
		return col
	}
	l, r := side(c.Left, c.StripLeft), side(c.Right, c.StripRight)
	switch c.Op {
	case kalla.CondEq:
		s := l + " = " + r
		if len(c.Normalize) > 0 {
			s += " (" + strings.Join(c.Normalize, ", ") + ")"
		}
		if c.Truncate != "" {
			s += " (same " + c.Truncate + ")"
		}
		return s
	case kalla.CondTolerance:
		switch {
		case c.Pct != "":
			return fmt.Sprintf("%s within %s %% of %s", l, pct(c.Pct), r)
		case c.Abs != "" && c.Abs != "0":
			return fmt.Sprintf("%s within %s of %s", l, c.Abs, r)
		}
		return l + " = " + r
	case kalla.CondDateWithin:
		d := 0
		if c.Days != nil {
			d = *c.Days
		}
		dir := "either way"
		if c.Direction != "" {
			dir = c.Direction
		}
		return fmt.Sprintf("%s within %d days of %s (%s)", r, d, l, dir)
	}
	b, _ := json.Marshal(c)
	return string(b)
}

// pct writes a share (0.02) as a percentage (2).
func pct(share json.Number) string {
	f, err := share.Float64()
	if err != nil {
		return string(share)
	}
	return strings.TrimSuffix(strings.TrimRight(fmt.Sprintf("%.4f", f*100), "0"), ".")
}
