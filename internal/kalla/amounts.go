package kalla

import (
	"fmt"
	"math/big"
	"regexp"
	"sort"
	"strings"
)

// Amounts are a run's money, not only its counts: per currency, each side's
// matched and still-open totals and the net difference the matches
// absorbed. Every figure is an exact decimal written as text (never a
// binary float), with the scale of the engine's sums.
type Amounts struct {
	// LeftColumn and RightColumn are the amounts summed, and how they were
	// known ("recipe": amount_column; "rule": a tolerance condition;
	// "match_sql": the one tolerance_match of the match SQL).
	LeftColumn  string `json:"left_column"`
	RightColumn string `json:"right_column"`
	From        string `json:"from"`
	// LeftCurrency and RightCurrency are the sources' currency_column; empty
	// when the recipe names none, and then Totals has one entry without a
	// currency.
	LeftCurrency  string        `json:"left_currency_column,omitempty"`
	RightCurrency string        `json:"right_currency_column,omitempty"`
	Totals        []AmountTotal `json:"totals"`
}

// AmountTotal is one currency's totals. MatchedDifference is the left's
// matched total minus the right's: the sum of the matched pairs'
// differences when each record is in one pair or one group (rules, and
// match SQL whose pairs do not repeat a record).
type AmountTotal struct {
	Currency          *string `json:"currency,omitempty"`
	LeftMatched       string  `json:"left_matched"`
	LeftOpen          string  `json:"left_open"`
	RightMatched      string  `json:"right_matched"`
	RightOpen         string  `json:"right_open"`
	MatchedDifference string  `json:"matched_difference"`
}

// AmountSpec says which columns hold the money of a recipe's sides; found
// by AmountColumns.
type AmountSpec struct {
	Column   [2]string // left, right
	Currency [2]string // "" when not named
	From     string
}

// Amount sources, for Amounts.From.
const (
	AmountFromRecipe   = "recipe"
	AmountFromRule     = "rule"
	AmountFromMatchSQL = "match_sql"
)

// toleranceCall finds tolerance_match(x.col, y.col, ...) in match SQL.
var toleranceCall = regexp.MustCompile(`(?i)\btolerance_match\s*\(\s*"?([A-Za-z_][A-Za-z0-9_]*)"?\s*\.\s*"?([A-Za-z_][A-Za-z0-9_]*)"?\s*,\s*"?([A-Za-z_][A-Za-z0-9_]*)"?\s*\.\s*"?([A-Za-z_][A-Za-z0-9_]*)"?\s*,`)

// sqlWords are the words that may follow a table name without being its
// alias ("FROM left_src JOIN ...").
var sqlWords = map[string]bool{"join": true, "on": true, "where": true, "group": true, "left": true, "right": true,
	"inner": true, "full": true, "outer": true, "cross": true, "natural": true, "using": true, "order": true, "limit": true,
	"union": true, "anti": true, "semi": true, "having": true, "qualify": true, "window": true, "positional": true, "asof": true}

// AmountColumns tells which columns of the recipe's sides are amounts:
// the sources' amount_column when both are set; else the first tolerance
// condition of the rules; else the match SQL's tolerance_match when it
// has exactly one, over one column of each side named through their
// views, aliases or table aliases. ok is false when Kalla cannot tell:
// the summary then has no amounts rather than a guess.
func AmountColumns(rec *Recipe) (spec AmountSpec, ok bool) {
	spec.Currency = [2]string{rec.Sources.Left.CurrencyColumn, rec.Sources.Right.CurrencyColumn}
	if spec.Currency[0] == "" || spec.Currency[1] == "" {
		spec.Currency = [2]string{}
	}
	if l, r := rec.Sources.Left.AmountColumn, rec.Sources.Right.AmountColumn; l != "" && r != "" {
		spec.Column, spec.From = [2]string{l, r}, AmountFromRecipe
		return spec, true
	}
	for _, r := range rec.Rules {
		for _, c := range r.Conditions {
			if c.Op == CondTolerance {
				spec.Column, spec.From = [2]string{c.Left, c.Right}, AmountFromRule
				return spec, true
			}
		}
	}
	if len(rec.Rules) > 0 || rec.MatchSQL == "" {
		return spec, false
	}
	calls := toleranceCall.FindAllStringSubmatch(rec.MatchSQL, -1)
	if len(calls) != 1 {
		return spec, false
	}
	// Which side each qualifier names: the views, the aliases, and the
	// table aliases the SQL gives them.
	side := map[string]int{"left_src": 0, "right_src": 1}
	names := map[string]int{"left_src": 0, "right_src": 1, strings.ToLower(rec.Sources.Left.Alias): 0, strings.ToLower(rec.Sources.Right.Alias): 1}
	for k, v := range names {
		side[k] = v
	}
	for name, s := range names {
		if name == "" {
			continue
		}
		// "left_src l", "payments AS p": the table aliases of each side.
		re := regexp.MustCompile(`(?i)\b` + regexp.QuoteMeta(name) + `"?\s+(?:AS\s+)?([A-Za-z_][A-Za-z0-9_]*)\b`)
		for _, m := range re.FindAllStringSubmatch(rec.MatchSQL, -1) {
			a := strings.ToLower(m[1])
			if sqlWords[a] {
				continue
			}
			if prev, seen := side[a]; seen && prev != s {
				return spec, false // one name for both sides: cannot tell
			}
			side[a] = s
		}
	}
	c := calls[0]
	s1, ok1 := side[strings.ToLower(c[1])]
	s2, ok2 := side[strings.ToLower(c[3])]
	if !ok1 || !ok2 || s1 == s2 {
		return spec, false
	}
	spec.Column[s1], spec.Column[s2], spec.From = c[2], c[4], AmountFromMatchSQL
	return spec, true
}

// AmountSum is one engine-computed sum: side (0 left, 1 right), currency
// (nil for no currency column or a NULL currency), all records or only the
// open ones, and the sum as the engine's exact decimal text (NULL: "").
type AmountSum struct {
	Side     int
	Currency *string
	Open     bool
	Sum      string
}

// MakeAmounts turns the engine's sums into the summary's totals (matched =
// all - open), sorted by currency; every engine goes through it, so the
// figures and their digits are the same whichever computed the sums.
func MakeAmounts(spec AmountSpec, sums []AmountSum) (*Amounts, error) {
	type acc struct{ all, open [2]*big.Rat }
	by := map[string]*acc{}
	cur := map[string]*string{}
	scale := 0
	for _, s := range sums {
		k := "\x00"
		if s.Currency != nil {
			k = *s.Currency
		}
		a := by[k]
		if a == nil {
			a = &acc{}
			for i := range 2 {
				a.all[i], a.open[i] = new(big.Rat), new(big.Rat)
			}
			by[k], cur[k] = a, s.Currency
		}
		if s.Sum == "" {
			continue
		}
		v, ok := new(big.Rat).SetString(s.Sum)
		if !ok {
			return nil, fmt.Errorf("amounts: %q is not a decimal", s.Sum)
		}
		if i := strings.IndexByte(s.Sum, '.'); i >= 0 {
			scale = max(scale, len(s.Sum)-i-1)
		}
		if s.Open {
			a.open[s.Side].Add(a.open[s.Side], v)
		} else {
			a.all[s.Side].Add(a.all[s.Side], v)
		}
	}
	keys := make([]string, 0, len(by))
	for k := range by {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	out := &Amounts{LeftColumn: spec.Column[0], RightColumn: spec.Column[1], From: spec.From,
		LeftCurrency: spec.Currency[0], RightCurrency: spec.Currency[1], Totals: []AmountTotal{}}
	text := func(r *big.Rat) string { return r.FloatString(scale) }
	for _, k := range keys {
		a := by[k]
		var matched [2]*big.Rat
		for i := range 2 {
			matched[i] = new(big.Rat).Sub(a.all[i], a.open[i])
		}
		out.Totals = append(out.Totals, AmountTotal{Currency: cur[k],
			LeftMatched: text(matched[0]), LeftOpen: text(a.open[0]),
			RightMatched: text(matched[1]), RightOpen: text(a.open[1]),
			MatchedDifference: text(new(big.Rat).Sub(matched[0], matched[1]))})
	}
	return out, nil
}

// CheckNamedColumns refuses, before a match runs, an amount_column or
// currency_column the recipe names that the side (0 left, 1 right) lacks.
// Amount columns found in the rules or the match SQL are not checked here:
// the rule compiler and the SQL name a missing column with more context
// (the rule and condition at fault) than the summary's totals could.
func CheckNamedColumns(spec AmountSpec, side int, cols []Column) error {
	name := [2]string{"left", "right"}[side]
	if spec.From == AmountFromRecipe && FindColumn(cols, spec.Column[side]) < 0 {
		return Errorf(EINVALID, "sources.%s: amount column %q is not a column of the source (columns: %s)", name, spec.Column[side], ColumnNames(cols))
	}
	if spec.Currency[side] != "" && FindColumn(cols, spec.Currency[side]) < 0 {
		return Errorf(EINVALID, "sources.%s: currency column %q is not a column of the source (columns: %s)", name, spec.Currency[side], ColumnNames(cols))
	}
	return nil
}

// AmountExprs resolves spec against one side's staged columns (side 0
// left, 1 right) and returns the SQL expressions an engine sums and groups
// by, quoted with quote: the amount as an exact decimal (binary floats as
// DECIMAL(38,10), so every engine writes the same digits) and the currency
// as text, or "" without a currency column. ok is false when the amount is
// not a number column (amounts kept as text): no totals then. A column the
// recipe names that the side lacks is an EINVALID error naming it.
func AmountExprs(spec AmountSpec, side int, alias string, cols []Column, quote func(string) string, textType string) (amount, currency string, ok bool, err error) {
	name := [2]string{"left", "right"}[side]
	i := FindColumn(cols, spec.Column[side])
	if i < 0 {
		return "", "", false, Errorf(EINVALID, "sources.%s: amount column %q is not a column of the source (columns: %s)", name, spec.Column[side], ColumnNames(cols))
	}
	t := strings.ToLower(cols[i].EngineType)
	if t == "" {
		t = strings.ToLower(cols[i].DataType)
	}
	col := alias + "." + quote(cols[i].Name)
	switch {
	case strings.HasPrefix(t, "decimal"), strings.HasPrefix(t, "numeric"), strings.HasSuffix(t, "int"), strings.HasSuffix(t, "integer"), t == "bigint", t == "hugeint":
		amount = col
	case t == "double", t == "float", t == "real":
		amount = "CAST(" + col + " AS DECIMAL(38,10))"
	default:
		return "", "", false, nil
	}
	if spec.Currency[side] != "" {
		j := FindColumn(cols, spec.Currency[side])
		if j < 0 {
			return "", "", false, Errorf(EINVALID, "sources.%s: currency column %q is not a column of the source (columns: %s)", name, spec.Currency[side], ColumnNames(cols))
		}
		currency = "CAST(" + alias + "." + quote(cols[j].Name) + " AS " + textType + ")"
	}
	return amount, currency, true, nil
}
