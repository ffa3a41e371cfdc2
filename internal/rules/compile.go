package rules

import (
	"fmt"
	"math/big"
	"strings"

	"github.com/kalla-recon/kalla/internal/kalla"
)

// Side is one staged side as the compiler sees it.
type Side struct {
	// Name is "left" or "right"; Alias is the recipe's alias (messages).
	Name, Alias string
	// View holds the side's records; RID is its hidden row-id column.
	View, RID string
	Cols      []kalla.Column // as staged, with engine types
	PK        []string       // real column names of the primary key
	// UniqueKey says the primary key was checked: no NULL part and no
	// value twice. It lets a pass skip counting what it implies.
	UniqueKey bool
	// IDs bounds the records' row ids (RID), which lie in [0, IDs) (with
	// gaps where filters removed rows); 0 when unknown.
	IDs int64
}

// Input is what Compile needs: the rules and both sides.
type Input struct {
	Rules       []kalla.Rule
	Left, Right Side
	// CopyLast makes the last pass of several read a copy of what the
	// earlier passes left (see lastCopied): for sides that do not fit in
	// memory, where each scan of them reads the spill folder back. In
	// memory the copy costs what it saves (gen.Standard(1M): the
	// statements it touches took 0.28 s either way).
	CopyLast bool
}

// Tables the plan writes. They all carry Kalla's reserved prefix.
const (
	// MatchTable is the result: one row per matched pair, in the engine's
	// shape (__kalla_lrid, __kalla_rrid, __kalla_lpk<i>, __kalla_rpk<i>)
	// plus __kalla_rule, __kalla_score, __kalla_status, __kalla_pass and
	// the compared columns of both records.
	MatchTable = "__kalla_match"
	// ReasonLeft and ReasonRight are views of, per unmatched record (rid),
	// its reason and closest candidate: of a table in rid order on DuckDB,
	// the order of the unmatched files it is read beside
	// (Dialect.Ordered), or, when the reasons read only the records' own
	// columns (Plan.OwnReason), of the unmatched table, in no promised
	// order (what reads it then sorts or counts).
	ReasonLeft  = "__kalla_reason_l"
	ReasonRight = "__kalla_reason_r"
	// BreaksTable holds one row per compared value that differs within a
	// matched pair.
	BreaksTable = "__kalla_breaks"

	pairsTable  = "__kalla_pairs" // a view: see pairsSQL
	edgesTable  = "__kalla_edges"
	pickTable   = "__kalla_pick"
	chosenTable = "__kalla_chosen"
)

// Status values of a matched pair.
const (
	StatusConfirmed = "confirmed"
	StatusSuggested = "suggested"
)

// Plan is a compiled set of rules, ready to run with Execute.
type Plan struct {
	d      Dialect
	in     Input
	left   []column
	right  []column
	passes []*pass
	// shown lists the compared columns the match table carries, in the
	// order they first appear in the rules.
	shown []shownCol
	// records counts, per pass, the left and right records it matched,
	// and pairs names the relation holding its pairs; Execute sets both.
	records [][2]int64
	pairs   []string
	// taken names the table of the sets of records the passes run so far
	// matched (see takenAddSQL), "" before the first pass; Execute sets it.
	taken string
	// edgeCols[k] lists the columns of pass k's edges, in order.
	edgeCols map[int][]string
	// sumsEqual[k] is true when every unit pair grouped pass k chose had
	// equal amounts on its tolerance columns (see sumsMayDiffer).
	sumsEqual map[int]bool
	// ownReason[s] is, when side s's reasons read nothing but the
	// record's own columns, the reason as an expression over them (see
	// OwnReason); explain sets it, each side's only from its own
	// goroutine.
	ownReason [2]string
}

// shownCol is a compared column copied into matched pairs.
type shownCol struct {
	side int // 0 left, 1 right
	col  column
	name string // output name: left_<col> or right_<col>
}

// pass is one rule compiled.
type pass struct {
	index   int
	rule    kalla.Rule
	pattern string
	grouped [2]bool // left, right
	conds   []*cond
	// tol and date are the conditions that order competing candidates
	// (the first tolerance and the first date_within), or nil.
	tol, date *cond
}

// cond is one condition with its columns resolved.
type cond struct {
	kalla.Condition
	index int
	col   [2]column // left, right
	ts    bool      // date_within over timestamps
	pct   string    // pct as SQL literal ("" if none)
	abs   string
	// pctWide is pct/(1-pct) rounded up: the bound |a-b| <= pct*|a|/(1-pct)
	// that "pct of the larger" implies, used as a join range.
	pctWide string
}

// Compile checks the rules against both sides' columns and compiles them.
// Errors are EINVALID and name the rule, the condition and the column.
func Compile(in Input, d Dialect) (*Plan, error) {
	p := &Plan{d: d, in: in, edgeCols: map[int][]string{}}
	var err error
	if p.left, err = resolveCols(in.Left); err != nil {
		return nil, err
	}
	if p.right, err = resolveCols(in.Right); err != nil {
		return nil, err
	}
	if len(in.Rules) == 0 {
		return nil, kalla.Errorf(kalla.EINVALID, "rules: no rules to compile")
	}
	seen := map[[2]string]bool{}
	var probs []string
	for i, r := range in.Rules {
		ps := &pass{index: i, rule: r, pattern: r.RulePattern()}
		ps.grouped = [2]bool{ps.pattern == kalla.PatternNto1 || ps.pattern == kalla.PatternNtoM, ps.pattern == kalla.Pattern1toN || ps.pattern == kalla.PatternNtoM}
		for j, c := range r.Conditions {
			where := fmt.Sprintf("rules[%d] %q.conditions[%d]", i, r.Name, j)
			cc := &cond{Condition: c, index: j}
			for s, name := range []string{c.Left, c.Right} {
				side, cols := in.Left, p.left
				if s == 1 {
					side, cols = in.Right, p.right
				}
				k := kalla.FindColumn(colsOf(cols), name)
				if k < 0 {
					probs = append(probs, fmt.Sprintf("%s.%s: %s has no column %q (columns: %s)", where, side.Name, side.Alias, name, kalla.ColumnNames(colsOf(cols))))
					continue
				}
				cc.col[s] = cols[k]
				if key := [2]string{side.Name, cols[k].Name}; !seen[key] {
					seen[key] = true
					p.shown = append(p.shown, shownCol{side: s, col: cols[k], name: side.Name + "_" + cols[k].Name})
				}
			}
			if cc.col[0].Name == "" || cc.col[1].Name == "" {
				continue
			}
			if msg := cc.prepare(); msg != "" {
				probs = append(probs, where+": "+msg)
				continue
			}
			if msg := p.supported(cc); msg != "" {
				probs = append(probs, where+": "+msg)
				continue
			}
			ps.conds = append(ps.conds, cc)
			if c.Op == kalla.CondTolerance && ps.tol == nil {
				ps.tol = cc
			}
			if c.Op == kalla.CondDateWithin && ps.date == nil {
				ps.date = cc
			}
		}
		p.passes = append(p.passes, ps)
	}
	if len(probs) > 0 {
		return nil, kalla.Errorf(kalla.EINVALID, "invalid rules:\n  - %s", strings.Join(probs, "\n  - "))
	}
	return p, nil
}

func resolveCols(s Side) ([]column, error) {
	out := make([]column, len(s.Cols))
	for i, c := range s.Cols {
		cl, sc := classify(c.EngineType)
		out[i] = column{Column: c, class: cl, scale: sc}
	}
	return out, nil
}

func colsOf(cs []column) []kalla.Column {
	out := make([]kalla.Column, len(cs))
	for i, c := range cs {
		out[i] = c.Column
	}
	return out
}

// prepare checks the condition against its columns' types and precomputes
// literals; it returns what is wrong, or "".
func (c *cond) prepare() string {
	l, r := c.col[0], c.col[1]
	switch c.Op {
	case kalla.CondTolerance:
		for _, x := range []column{l, r} {
			if !x.class.numeric() && x.class != classText {
				return fmt.Sprintf("tolerance compares amounts, but %s is %s", x.Name, x.EngineType)
			}
		}
		c.abs, c.pct = c.Abs.String(), c.Pct.String()
		if c.pct != "" && c.PctOf == "larger" {
			p, ok := new(big.Rat).SetString(c.pct)
			if !ok {
				return fmt.Sprintf("pct %q is not a number", c.pct)
			}
			w := new(big.Rat).Quo(p, new(big.Rat).Sub(big.NewRat(1, 1), p))
			// Round up at 12 decimals: the range must never be narrower
			// than the exact condition it stands in for.
			scale := new(big.Int).Exp(big.NewInt(10), big.NewInt(12), nil)
			num := new(big.Int).Mul(w.Num(), scale)
			q, m := new(big.Int).QuoRem(num, w.Denom(), new(big.Int))
			if m.Sign() != 0 {
				q.Add(q, big.NewInt(1))
			}
			c.pctWide = new(big.Rat).SetFrac(q, scale).FloatString(12)
		}
	case kalla.CondDateWithin:
		for _, x := range []column{l, r} {
			switch x.class {
			case classDate, classText:
			case classTimestamp:
				c.ts = true
			default:
				return fmt.Sprintf("date_within compares dates, but %s is %s", x.Name, x.EngineType)
			}
		}
	case kalla.CondEq:
		if c.Truncate != "" {
			for _, x := range []column{l, r} {
				if x.class != classDate && x.class != classTimestamp && x.class != classText {
					return fmt.Sprintf("truncate applies to dates, but %s is %s", x.Name, x.EngineType)
				}
			}
		}
	}
	return ""
}

// supported says why the dialect's engine cannot compute the condition
// as DuckDB does, or "": a rule it cannot carry over is refused when the
// recipe is checked, never run with a different meaning.
func (p *Plan) supported(c *cond) string {
	if c.Op == kalla.CondFuzzy && p.d.Similarity("a", "b") == "" {
		return fmt.Sprintf("fuzzy (Jaro-Winkler similarity) cannot run on the %s engine, which has no such function; use the duckdb engine, or eq with normalize instead", p.d.Name())
	}
	for _, x := range []struct{ name, re string }{{"strip_left", c.StripLeft}, {"strip_right", c.StripRight}} {
		if x.re == "" {
			continue
		}
		if msg := p.d.Regexp(x.re); msg != "" {
			return fmt.Sprintf("%s cannot run on the %s engine: %s", x.name, p.d.Name(), msg)
		}
	}
	return ""
}

// texty reports whether the condition compares its values as normalised
// text.
func (c *cond) texty() bool {
	switch c.Op {
	case kalla.CondContains, kalla.CondStartsWith, kalla.CondEndsWith, kalla.CondFuzzy:
		return true
	case kalla.CondEq:
		return len(c.Normalize) > 0 || c.StripLeft != "" || c.StripRight != "" ||
			(c.Truncate == "" && (c.col[0].class == classText) != (c.col[1].class == classText))
	}
	return false
}

// operand is how one side of a condition is seen in a query: a record
// (its columns under an alias) or a group (its aggregates).
type operand struct {
	alias   string
	grouped bool
}

func (p *Plan) colRef(o operand, c column) string {
	return o.alias + "." + p.d.Ident(c.Name)
}

// text is side s's value as normalised text. Text columns are cast too:
// a text column with no value at all is staged as an untyped NULL, which
// no string function accepts.
func (p *Plan) text(c *cond, s int, x string) string {
	x = p.d.Text(x)
	strip := c.StripLeft
	if s == 1 {
		strip = c.StripRight
	}
	if strip != "" {
		x = p.d.RegexpRemove(x, strip)
	}
	for _, n := range c.Normalize {
		switch n {
		case kalla.NormTrim:
			x = "trim(" + x + ")"
		case kalla.NormCaseFold:
			x = "lower(" + x + ")"
		case kalla.NormAlnum:
			x = p.d.Alnum(x)
		}
	}
	return x
}

// key is side s's value of an eq condition as compared (and, in a grouped
// side, as grouped by), computed from a record under alias.
func (p *Plan) key(c *cond, s int, alias string) string {
	x := alias + "." + p.d.Ident(c.col[s].Name)
	switch {
	case c.texty():
		return p.text(c, s, x)
	case c.Truncate != "":
		if c.col[s].class == classText {
			x = p.d.Date(x)
		}
		return p.d.Trunc(c.Truncate, x, c.col[s].class == classTimestamp)
	}
	return x
}

// num is side s's amount as an exact number, computed from a record.
func (p *Plan) num(c *cond, s int, alias string) string {
	x := alias + "." + p.d.Ident(c.col[s].Name)
	switch c.col[s].class {
	case classFloat, classText:
		// Binary floats have no scale of their own: 10 decimals keep what
		// a money column can mean, and compare exactly from there.
		return p.d.Decimal(x, 10)
	}
	return x
}

// date is side s's date (or timestamp) computed from a record.
func (p *Plan) date(c *cond, s int, alias string) string {
	x := alias + "." + p.d.Ident(c.col[s].Name)
	switch {
	case c.ts && c.col[s].class != classTimestamp:
		return p.d.Timestamp(x)
	case !c.ts && c.col[s].class == classText:
		return p.d.Date(x)
	}
	return x
}

// Group tables hold, per condition j, g<j> (eq: the key), v<j> (tolerance:
// the sum) and dn<j>/dx<j> (date_within: earliest and latest).
func gcol(prefix string, j int) string { return fmt.Sprintf("%s%d", prefix, j) }

// amount is side s's tolerance value: the record's amount or the group's sum.
func (p *Plan) amount(c *cond, s int, o operand) string {
	if o.grouped {
		return o.alias + "." + gcol("v", c.index)
	}
	return p.num(c, s, o.alias)
}

// dates returns side s's earliest and latest date (the same for a record).
func (p *Plan) dates(c *cond, s int, o operand) (string, string) {
	if o.grouped {
		return o.alias + "." + gcol("dn", c.index), o.alias + "." + gcol("dx", c.index)
	}
	x := p.date(c, s, o.alias)
	return x, x
}

// eqKey is side s's eq key for operand o.
func (p *Plan) eqKey(c *cond, s int, o operand) string {
	if o.grouped {
		return o.alias + "." + gcol("g", c.index)
	}
	return p.key(c, s, o.alias)
}

// allowed is a tolerance's allowance for amounts a (left) and b (right).
func (p *Plan) allowed(c *cond, a, b string) string {
	var pct string
	if c.pct != "" {
		base := "abs(" + a + ")"
		if c.PctOf == "larger" {
			base = "greatest(abs(" + a + "), abs(" + b + "))"
		}
		pct = c.pct + " * " + base
	}
	switch {
	case c.abs != "" && pct != "":
		return "greatest(" + c.abs + ", " + pct + ")"
	case pct != "":
		return pct
	}
	return c.abs
}

// wide makes an amount a wide decimal so a share of it cannot overflow.
func (p *Plan) wide(c *cond, s int, x string) string {
	sc := c.col[s].scale
	if c.col[s].class == classFloat || c.col[s].class == classText {
		sc = 10
	}
	return p.d.Decimal(x, sc)
}

// tolParts returns a tolerance's amounts (left, right, widened for shares)
// and allowance.
func (p *Plan) tolParts(c *cond, lo, ro operand) (a, b, t string) {
	a, b = p.amount(c, 0, lo), p.amount(c, 1, ro)
	if c.pct != "" {
		a, b = p.wide(c, 0, a), p.wide(c, 1, b)
	}
	return a, b, p.allowed(c, a, b)
}

// predicate is the condition as SQL over the two operands. Tolerances and
// dates are written as ranges (never ABS or BETWEEN over a difference), so
// DuckDB can keep hash joins and use range joins (shared/FACTS.md).
func (p *Plan) predicate(c *cond, lo, ro operand) string {
	switch c.Op {
	case kalla.CondEq:
		return p.eqKey(c, 0, lo) + " = " + p.eqKey(c, 1, ro)
	case kalla.CondTolerance:
		a, b, t := p.tolParts(c, lo, ro)
		pred := fmt.Sprintf("%s >= %s - %s AND %s <= %s + %s", b, a, t, b, a, t)
		if c.pctWide != "" {
			// The exact allowance depends on both amounts; this implied
			// range depends on the left one only, so it can drive a join.
			w := c.pctWide + " * abs(" + a + ")"
			if c.abs != "" {
				w = c.abs + " + " + w
			}
			pred = fmt.Sprintf("%s >= %s - (%s) AND %s <= %s + (%s) AND %s", b, a, w, b, a, w, pred)
		}
		return pred
	case kalla.CondDateWithin:
		xlo, xhi := p.dates(c, 0, lo)
		ylo, yhi := p.dates(c, 1, ro)
		from, to := -*c.Days, *c.Days
		switch c.Direction {
		case "after":
			from = 0
		case "before":
			to = 0
		}
		// Every right date y and left date x satisfy from <= y - x <= to.
		return fmt.Sprintf("%s >= %s AND %s <= %s", ylo, p.d.AddDays(xhi, from, c.ts), yhi, p.d.AddDays(xlo, to, c.ts))
	case kalla.CondContains, kalla.CondStartsWith, kalla.CondEndsWith:
		hay, needle := p.hayNeedle(c, lo, ro)
		f := map[string]func(string, string) string{kalla.CondContains: p.d.Contains, kalla.CondStartsWith: p.d.StartsWith, kalla.CondEndsWith: p.d.EndsWith}[c.Op]
		return fmt.Sprintf("length(%s) > 0 AND %s", needle, f(hay, needle))
	case kalla.CondFuzzy:
		return fmt.Sprintf("%s >= %v", p.d.Similarity(p.text(c, 0, p.colRef(lo, c.col[0])), p.text(c, 1, p.colRef(ro, c.col[1]))), *c.Threshold)
	}
	op := map[string]string{kalla.CondGt: ">", kalla.CondGte: ">=", kalla.CondLt: "<", kalla.CondLte: "<="}[c.Op]
	return p.colRef(lo, c.col[0]) + " " + op + " " + p.colRef(ro, c.col[1])
}

func (p *Plan) hayNeedle(c *cond, lo, ro operand) (string, string) {
	l, r := p.text(c, 0, p.colRef(lo, c.col[0])), p.text(c, 1, p.colRef(ro, c.col[1]))
	if c.Haystack == "left" {
		return l, r
	}
	return r, l
}

// amountDiff is |left - right| of a tolerance.
func (p *Plan) amountDiff(c *cond, lo, ro operand) string {
	return "abs(" + p.amount(c, 0, lo) + " - " + p.amount(c, 1, ro) + ")"
}

// dateDiff is the largest distance in days between a left and a right date.
func (p *Plan) dateDiff(c *cond, lo, ro operand) string {
	xlo, xhi := p.dates(c, 0, lo)
	ylo, yhi := p.dates(c, 1, ro)
	if !lo.grouped && !ro.grouped {
		return "abs(" + p.d.DaysBetween(xlo, ylo, c.ts) + ")"
	}
	return fmt.Sprintf("greatest(abs(%s), abs(%s))", p.d.DaysBetween(xlo, yhi, c.ts), p.d.DaysBetween(xhi, ylo, c.ts))
}

// closeness is how tightly a condition held, in [0, 1]: 1 for exact
// agreement, falling linearly to 0 at the edge of a tolerance or window.
func (p *Plan) closeness(c *cond, lo, ro operand) string {
	switch c.Op {
	case kalla.CondEq:
		if c.texty() && !lo.grouped && !ro.grouped {
			// Equal only after normalising is a little less sure.
			l, r := p.colRef(lo, c.col[0]), p.colRef(ro, c.col[1])
			return fmt.Sprintf("CASE WHEN %s = %s THEN 1.0 ELSE 0.9 END", p.d.Text(l), p.d.Text(r))
		}
		return "1.0"
	case kalla.CondTolerance:
		a, b, t := p.tolParts(c, lo, ro)
		return fmt.Sprintf("CASE WHEN %[3]s = 0 THEN 1.0 ELSE 1.0 - CAST(abs(%[1]s - %[2]s) AS DOUBLE) / CAST(%[3]s AS DOUBLE) END", a, b, t)
	case kalla.CondDateWithin:
		if *c.Days == 0 {
			return "1.0"
		}
		return fmt.Sprintf("1.0 - CAST(%s AS DOUBLE) / %d.0", p.dateDiff(c, lo, ro), *c.Days)
	case kalla.CondContains, kalla.CondStartsWith, kalla.CondEndsWith:
		hay, needle := p.hayNeedle(c, lo, ro)
		return fmt.Sprintf("CAST(length(%s) AS DOUBLE) / length(%s)", needle, hay)
	case kalla.CondFuzzy:
		return p.d.Similarity(p.text(c, 0, p.colRef(lo, c.col[0])), p.text(c, 1, p.colRef(ro, c.col[1])))
	}
	return "1.0"
}

// score is the mean closeness of the pass's conditions, rounded so that it
// prints the same everywhere.
func (p *Plan) score(ps *pass, lo, ro operand) string {
	parts := make([]string, len(ps.conds))
	for i, c := range ps.conds {
		parts[i] = "(" + p.closeness(c, lo, ro) + ")"
	}
	return fmt.Sprintf("round(greatest(0.0, least(1.0, (%s) / %d.0)), 6)", strings.Join(parts, " + "), len(parts))
}

// available is side s's records not matched by an earlier pass: the view
// for the first pass, then the table remainSQL left for this pass.
func (p *Plan) available(ps *pass, s int) string {
	if ps.index == 0 {
		return p.d.Ident(p.side(s).View)
	}
	if p.useSets() {
		if p.lastCopied(ps) {
			return lastTable(s)
		}
		return "(" + p.notTaken(s) + ")"
	}
	return remainTable(s, ps.index)
}

// lastTable holds, with sets, the records of side s that the passes
// before the last left over: their used columns and row id (remainCols).
func lastTable(s int) string { return "__kalla_last_" + "lr"[s:s+1] }

// lastCopied reports whether pass ps reads lastTable instead of the side's
// view minus the taken set: the last pass of several, with sets, when the
// input asks for it (Input.CopyLast). The last
// pass and the unmatched tables of the explanations (see unmatchedSQL)
// then read a narrow copy of what is left instead of scanning the whole
// staged side twice more: at gen.Standard(50M) under 4GB the staged sides
// are mostly spilled, and each such scan read them back from disk.
func (p *Plan) lastCopied(ps *pass) bool {
	return p.in.CopyLast && p.useSets() && ps.index > 0 && ps.index == len(p.passes)-1
}

// lastSQL builds lastTable(s) (see lastCopied), on the connection it runs on.
func (p *Plan) lastSQL(s int) []string {
	return append([]string{p.takenSQL(s)}, p.d.CreateTableAs(lastTable(s),
		fmt.Sprintf("SELECT %s FROM (%s) x", p.remainCols(s), p.notTaken(s)))...)
}

// takenVar names the variable holding the set of side s's records that
// the passes run so far matched (see takenSQL).
func takenVar(s int) string { return fmt.Sprintf("__kalla_taken_%s", "lr"[s:s+1]) }

// useSets tells whether what earlier passes left of each side is read as
// the side's view minus a set of taken row ids, rather than kept in
// tables: about 60 ms less per pass on the 1M benchmark, since nothing is
// copied and no anti join hashes the side.
func (p *Plan) useSets() bool {
	return p.d.IDSet("x", p.side(0).IDs) != "" && p.d.IDSet("x", p.side(1).IDs) != ""
}

// takenSQL sets takenVar(s) from the sets of the passes run so far (the
// table takenAddSQL made last), on the connection it runs on: each
// connection that reads notTaken(s) runs it first. The set is a constant
// to the statements that test it, which therefore join nothing for it.
// A side in pieces (inPieces) gets takenPieces(s) instead, from the pairs
// of the passes run so far.
func (p *Plan) takenSQL(s int) string {
	if p.inPieces(s) {
		return PiecesSQL(takenPieces(s), fmt.Sprintf("SELECT %s FROM %s", pairCol(s), pairsTable))
	}
	return p.d.SetVariable(takenVar(s), fmt.Sprintf("SELECT %s FROM %s", "lr"[s:s+1], p.taken))
}

// PiecesAbove is the number of row ids above which a side's set of row
// ids is held in pieces (PiecesSQL) rather than one bitstring in a
// variable, here (inPieces) and in the engine's own scans; a variable so
// that tests can force pieces on small data.
var PiecesAbove int64 = 4_000_000

// PieceRows is the row ids one piece of a set holds (see PiecesSQL): a
// DuckDB row group, so that a scan's vectors meet few pieces.
const PieceRows = 122880

// PiecesSQL makes DuckDB table name of the row ids src selects (one
// column; NULLs are skipped) as pieces: __kalla_k is the piece, __kalla_b
// has bit i set for row id __kalla_k*PieceRows+i; a piece with no id is
// absent. A scan tests a row by joining its piece on rowid // PieceRows
// (PieceJoin, PieceBit). The columns carry Kalla's reserved prefix, so
// that no column of a source joined to them is ambiguous.
func PiecesSQL(name, src string) string {
	return fmt.Sprintf("CREATE OR REPLACE TABLE %s AS SELECT CAST(x // %d AS INTEGER) AS __kalla_k, bitstring_agg(CAST(x %% %d AS INTEGER), 0, %d) AS __kalla_b FROM (%s) t(x) WHERE x IS NOT NULL GROUP BY ALL",
		DuckDB.Ident(name), PieceRows, PieceRows, PieceRows-1, src)
}

// PieceJoin joins the pieces of table name (PiecesSQL), under alias
// __kalla_p, to the rows whose row id is rid: at most one piece a row.
func PieceJoin(name, rid string) string {
	return fmt.Sprintf(" LEFT JOIN %s __kalla_p ON __kalla_p.__kalla_k = CAST(%s // %d AS INTEGER)", DuckDB.Ident(name), rid, PieceRows)
}

// PieceBit is 1 when row id rid is in the set PieceJoin joined, else 0.
func PieceBit(rid string) string {
	return fmt.Sprintf("coalesce(get_bit(__kalla_p.__kalla_b, CAST(%s %% %d AS INTEGER)), 0)", rid, PieceRows)
}

// inPieces reports whether the statements test side s's set of taken
// records through takenPieces(s), one bitstring per PieceRows row ids
// joined by row group, rather than one bitstring in a variable. DuckDB
// materialises a constant for every vector it evaluates: a 6.5 MB
// bitstring tested over 52.5M rows took 3.35 s in memory, the same set in
// pieces 0.72-0.77 s (engine/DESIGN.md). At 1M rows the copies cost about
// 5 ms a scan, less than the join. Only the statements that read a side's
// records through notTaken or notTakenIn test the set; none of them needs
// the records in order.
func (p *Plan) inPieces(s int) bool { return p.useSets() && p.side(s).IDs > PiecesAbove }

// takenPieces names the table of side s's taken set in pieces.
func takenPieces(s int) string { return "__kalla_takenp_" + "lr"[s:s+1] }

// takenTable holds, after pass k, the sets of both sides' records that
// passes 0 to k matched (columns l and r).
func takenTable(k int) string { return fmt.Sprintf("__kalla_taken_%d", k) }

// takenAddSQL builds takenTable(k) from the sets after pass k-1 and pass
// k's own pairs (the table or view pairs): each pass's pairs are read
// once, where building the sets from all pairs before every pass read the
// first pass's 600k pairs of the 1M benchmark five times.
func (p *Plan) takenAddSQL(k int, pairs string) []string {
	add := fmt.Sprintf("SELECT %s AS l, %s AS r FROM %s", p.d.IDSet("lrid", p.side(0).IDs), p.d.IDSet("rrid", p.side(1).IDs), pairs)
	if k > 0 {
		add = fmt.Sprintf("SELECT %s AS l, %s AS r FROM (SELECT l, r FROM %s UNION ALL %s) n", p.d.IDUnion("l"), p.d.IDUnion("r"), takenTable(k-1), add)
	}
	return p.d.CreateTableAs(takenTable(k), add)
}

// notTaken selects side s's records that no pass so far matched.
func (p *Plan) notTaken(s int) string {
	return p.notTakenIn(s, p.d.Ident(p.side(s).View))
}

// notTakenIn selects the records of relation from (side s's row id and
// columns) that no pass so far matched.
func (p *Plan) notTakenIn(s int, from string) string {
	rid := "x." + p.d.Ident(p.side(s).RID)
	if p.inPieces(s) {
		return fmt.Sprintf("SELECT x.* FROM %s x%s WHERE %s = 0", from, PieceJoin(takenPieces(s), rid), PieceBit(rid))
	}
	return fmt.Sprintf("SELECT * FROM %s x WHERE %s", from, p.d.IDNotIn(p.d.Variable(takenVar(s)), rid))
}

// usedCols lists, in the side's order, the columns of side s that the
// passes and the explanations read: those of any condition, and the
// primary key. The tables kept between passes hold only these.
func (p *Plan) usedCols(s int) []kalla.Column {
	side := p.side(s)
	used := map[string]bool{}
	for _, k := range side.PK {
		used[k] = true
	}
	for _, ps := range p.passes {
		for _, c := range ps.conds {
			used[c.col[s].Name] = true
		}
	}
	var out []kalla.Column
	for _, c := range side.Cols {
		if used[c.Name] {
			out = append(out, c)
		}
	}
	return out
}

// remainTable holds side s's records that passes before k did not match.
func remainTable(s, k int) string { return fmt.Sprintf("__kalla_rem_%s%d", "lr"[s:s+1], k) }

// remainSQL builds into table the records of side s that pass k-1 left
// over (their used columns and row id), from the records that were
// available to it. Each pass thus removes
// its own matches from a shrinking table, instead of every pass removing
// all earlier matches from the whole side again.
//
// Columns are cast to their staged types: the view shows a text column with
// no value at all as an untyped NULL, which a table would store as an
// integer, and DuckDB compares an integer with text by casting the text to
// a number, which fails (TestRulesEmptyTextColumn).
func (p *Plan) remainSQL(s, k int, table string) []string {
	side := p.side(s)
	from := p.d.Ident(side.View)
	if k > 1 {
		from = remainTable(s, k-1)
	}
	return p.d.CreateTableAs(table, fmt.Sprintf("SELECT %s FROM %s x %s %s u ON x.%s = u.%s",
		p.remainCols(s), from, p.d.AntiJoin(), p.pairs[k-1], p.d.Ident(side.RID), pairCol(s)))
}

// remainCols selects, from alias x, side s's used columns (cast to their
// staged types, see remainSQL) and its row id.
func (p *Plan) remainCols(s int) string {
	var cols []string
	for _, c := range p.usedCols(s) {
		cols = append(cols, fmt.Sprintf("CAST(x.%[1]s AS %[2]s) AS %[1]s", p.d.Ident(c.Name), c.EngineType))
	}
	return strings.Join(append(cols, "x."+p.d.Ident(p.side(s).RID)), ", ")
}

func (p *Plan) side(s int) Side {
	if s == 0 {
		return p.in.Left
	}
	return p.in.Right
}

// members and groups name a grouped side's tables for pass k.
func members(s, k int) string { return fmt.Sprintf("__kalla_gm_%s%d", "lr"[s:s+1], k) }
func groups(s, k int) string  { return fmt.Sprintf("__kalla_ga_%s%d", "lr"[s:s+1], k) }

// groupSQL builds side s's groups for a grouped pass: the members (record,
// group id, key) and one row per group with its key, sums and date span.
// A group's id is its smallest record id, so it is the same in every run.
// Records with a NULL key part form no group; a group with a NULL amount
// has no sum, since Kalla cannot tell what it adds up to.
func (p *Plan) groupSQL(ps *pass, s int) []string {
	side := p.side(s)
	var keys, sel, agg []string
	for _, c := range ps.conds {
		j := c.index
		switch c.Op {
		case kalla.CondEq:
			keys = append(keys, gcol("g", j))
			sel = append(sel, p.key(c, s, "s")+" AS "+gcol("g", j))
		case kalla.CondTolerance:
			sel = append(sel, p.num(c, s, "s")+" AS "+gcol("v", j))
			agg = append(agg, fmt.Sprintf("CASE WHEN count(%[1]s) = count(*) THEN sum(%[1]s) END AS %[1]s", gcol("v", j)))
		case kalla.CondDateWithin:
			sel = append(sel, p.date(c, s, "s")+" AS "+gcol("d", j))
			agg = append(agg, fmt.Sprintf("min(%s) AS %s, max(%s) AS %s", gcol("d", j), gcol("dn", j), gcol("d", j), gcol("dx", j)))
		}
	}
	notNull := make([]string, len(keys))
	for i, k := range keys {
		notNull[i] = k + " IS NOT NULL"
	}
	sel = append(sel, p.carrySelect(ps, s, "s", false)...)
	// The group id comes from an aggregate joined back, not from
	// min(rid) OVER (PARTITION BY key): a hash aggregate and a hash join
	// instead of partitioning and sorting every record (gen.Standard(1M)'s
	// split pass, replayed four times: median 0.076 s against 0.093 s).
	on := make([]string, len(keys))
	for i, k := range keys {
		on[i] = "g." + k + " = t." + k
	}
	m := fmt.Sprintf("WITH t AS (SELECT * FROM (SELECT s.%s AS rid, %s FROM %s s) t WHERE %s) SELECT t.*, g.gid FROM t JOIN (SELECT %s, min(rid) AS gid FROM t GROUP BY %s) g ON %s",
		p.d.Ident(side.RID), strings.Join(sel, ", "), p.available(ps, s), strings.Join(notNull, " AND "),
		strings.Join(keys, ", "), strings.Join(keys, ", "), strings.Join(on, " AND "))
	g := fmt.Sprintf("SELECT gid, %s, %s, count(*) AS n FROM %s GROUP BY gid, %s",
		strings.Join(keys, ", "), strings.Join(agg, ", "), members(s, ps.index), strings.Join(keys, ", "))
	return append(p.d.CreateTableAs(members(s, ps.index), m), p.d.CreateTableAs(groups(s, ps.index), g)...)
}

// candidates is the query of a pass's candidate edges: unit a (a left
// record or group), unit b (right), the score and the columns of the order
// that decides between competing candidates (see order), joined with every
// condition in the ON clause.
func (p *Plan) candidates(ps *pass) []string {
	lo, ro := operand{alias: "l", grouped: ps.grouped[0]}, operand{alias: "r", grouped: ps.grouped[1]}
	var sel []string
	from := make([]string, 2)
	for s, o := range []operand{lo, ro} {
		unit := "a"
		if s == 1 {
			unit = "b"
		}
		if o.grouped {
			from[s] = groups(s, ps.index) + " " + o.alias
			sel = append(sel, o.alias+".gid AS "+unit)
			for _, c := range ps.conds {
				if c.Op == kalla.CondEq {
					sel = append(sel, fmt.Sprintf("%s.%s AS k%s%d", o.alias, gcol("g", c.index), unit, c.index))
				}
			}
			continue
		}
		side := p.side(s)
		from[s] = p.available(ps, s) + " " + o.alias
		sel = append(sel, o.alias+"."+p.d.Ident(side.RID)+" AS "+unit)
		for i, k := range side.PK {
			sel = append(sel, fmt.Sprintf("CAST(%s.%s AS %s) AS k%s%d", o.alias, p.d.Ident(k), p.stagedType(s, k), unit, i))
		}
		sel = append(sel, p.carrySelect(ps, s, o.alias, true)...)
	}
	preds := make([]string, len(ps.conds))
	for i, c := range ps.conds {
		preds[i] = p.predicate(c, lo, ro)
	}
	sel = append(sel, p.score(ps, lo, ro)+" AS score")
	if ps.tol != nil {
		sel = append(sel, p.amountDiff(ps.tol, lo, ro)+" AS o_amount")
	}
	if ps.date != nil {
		sel = append(sel, p.dateDiff(ps.date, lo, ro)+" AS o_date")
	}
	where := ""
	if ps.rule.MinScore != nil {
		where = fmt.Sprintf(" WHERE score >= %v", *ps.rule.MinScore)
	}
	q := fmt.Sprintf("SELECT * FROM (SELECT %s FROM %s JOIN %s ON %s) c%s",
		strings.Join(sel, ", "), from[0], from[1], strings.Join(preds, "\n  AND "), where)
	p.edgeCols[ps.index] = aliases(sel)
	return p.d.CreateTableAs(edgesTable, q)
}

// unitsUnique reports, for each side, whether a pass's candidate edges are
// known to hold each of that side's units at most once. Side s's units are
// when the other side is records with a checked unique single-column key
// and a plain eq condition compares that key: each unit has one value to
// compare, so at most one other record shares it.
func (p *Plan) unitsUnique(ps *pass) [2]bool {
	var out [2]bool
	for s := range 2 {
		o := 1 - s
		other := p.side(o)
		if ps.grouped[o] || !other.UniqueKey || len(other.PK) != 1 {
			continue
		}
		for _, c := range ps.conds {
			if c.Op == kalla.CondEq && !c.texty() && c.Truncate == "" && c.col[o].Name == other.PK[0] {
				out[s] = true
			}
		}
	}
	return out
}

// rank is the head of the order between candidates, shared by the choice
// (order) and the search for unmatched records' closest candidates
// (nearQueries), so that the two cannot disagree: the smallest amount
// difference of the first tolerance condition, the smallest date distance
// of the first date_within condition (each only when the rule has one:
// without a date_within, dates play no part), then the highest score. The
// score comes after the differences because it is mostly made of them; it
// decides what they cannot see (an eq that holds only after normalising,
// the allowance of pct_of larger) before key order does. amount, date and
// score are the SQL of the three; docs/rules.md states this order.
func rank(ps *pass, amount, date, score string) []string {
	var o []string
	if ps.tol != nil {
		o = append(o, amount+" ASC NULLS LAST")
	}
	if ps.date != nil {
		o = append(o, date+" ASC NULLS LAST")
	}
	return append(o, score+" DESC NULLS LAST")
}

// order is the total order deciding between competing candidates of a
// pass: rank, then key order (left, then right), then row order. It is
// total, so the choice never depends on how rows were split between
// threads.
func (p *Plan) order(ps *pass) string {
	o := rank(ps, "o_amount", "o_date", "score")
	for s, unit := range []string{"a", "b"} {
		if ps.grouped[s] {
			for _, c := range ps.conds {
				if c.Op == kalla.CondEq {
					o = append(o, fmt.Sprintf("k%s%d ASC NULLS LAST", unit, c.index))
				}
			}
			continue
		}
		for i := range p.side(s).PK {
			o = append(o, fmt.Sprintf("k%s%d ASC NULLS LAST", unit, i))
		}
	}
	return strings.Join(append(o, "a ASC", "b ASC"), ", ")
}

// carried lists what side s's records carry from the passes into the
// pairs: (source column, name in the pairs table, staged type) for each
// compared column the match table shows and each primary-key column.
// Taking them along as the passes join the sides spares joining every
// pair back to both sides afterwards.
func (p *Plan) carried(s int) [][3]string {
	side := p.side(s)
	lr := "lr"[s : s+1]
	var out [][3]string
	for j, c := range p.shown {
		if c.side == s {
			out = append(out, [3]string{c.col.Name, fmt.Sprintf("__c%d", j), c.col.EngineType})
		}
	}
	for i, k := range side.PK {
		out = append(out, [3]string{k, fmt.Sprintf("__%sk%d", lr, i), p.stagedType(s, k)})
	}
	return out
}

// stagedType is the type side s's column has in its staging table.
func (p *Plan) stagedType(s int, col string) string {
	side := p.side(s)
	if x := kalla.FindColumn(side.Cols, col); x >= 0 {
		return side.Cols[x].EngineType
	}
	return p.d.TextType()
}

// exact reports whether c is an eq that compares values as themselves, by
// one equality that is transitive and holds only between equal values:
// text with text, integers and decimals with each other, dates with dates;
// no normalising, no truncation, no binary floats (whose -0 equals 0).
func (c *cond) exact() bool {
	if c.Op != kalla.CondEq || c.texty() || c.Truncate != "" {
		return false
	}
	a, b := c.col[0].class, c.col[1].class
	number := func(x class) bool { return x == classInt || x == classDecimal }
	return (a == classText && b == classText) || (a == classDate && b == classDate) || (number(a) && number(b))
}

// sameAsLeft names the left column that holds, in every pair the pass
// makes, exactly the value of right column col: one an exact eq of the
// pass compares it with, of the same type (so the same value is written
// the same way); "" when there is none. The pairs show such a right column
// from the left record instead of carrying it through the pass: at gen's
// 1M invoices the exact pass carried the reference and the amount of
// 600,000 payments that equal the invoice's.
func (ps *pass) sameAsLeft(col string) string {
	for _, c := range ps.conds {
		if c.col[1].Name == col && c.exact() && strings.EqualFold(c.col[0].EngineType, c.col[1].EngineType) {
			return c.col[0].Name
		}
	}
	return ""
}

// carryName is the name under which edges (record) or group members carry
// side s's column src: a record's primary key is already there as the
// unit's key column (ka<i>, kb<i>), anything else once per column, however
// many pairs columns show it.
func (p *Plan) carryName(s int, src string, record bool) string {
	side := p.side(s)
	if record {
		for i, k := range side.PK {
			if k == src {
				return fmt.Sprintf("k%s%d", "ab"[s:s+1], i)
			}
		}
	}
	seen := map[string]bool{}
	n := 0
	for _, c := range p.carried(s) {
		if c[0] == src {
			break
		}
		if !seen[c[0]] {
			seen[c[0]] = true
			n++
		}
	}
	return fmt.Sprintf("x%s%d", "lr"[s:s+1], n)
}

// carrySelect selects side s's carried columns from a record under alias,
// each once and cast to its staged type (see remainSQL); for a record unit
// (record) the primary key is left to the unit's key columns.
func (p *Plan) carrySelect(ps *pass, s int, alias string, record bool) []string {
	var sel []string
	seen := map[string]bool{}
	for _, c := range p.carried(s) {
		name := p.carryName(s, c[0], record)
		if seen[name] || (record && strings.HasPrefix(name, "k")) || (s == 1 && ps.sameAsLeft(c[0]) != "") {
			continue
		}
		seen[name] = true
		sel = append(sel, fmt.Sprintf("CAST(%s.%s AS %s) AS %s", alias, p.d.Ident(c[0]), c[2], name))
	}
	return sel
}

// passPairs is the table holding the record pairs of pass k, and
// passPairsView the view that holds them instead when they need no copy
// (see expand); pairsTable is the view of all passes' pairs so far. The
// two kinds have different names so that one database can run several
// plans.
func passPairs(k int) string     { return fmt.Sprintf("__kalla_pairs_%d", k) }
func passPairsView(k int) string { return fmt.Sprintf("__kalla_pairv_%d", k) }

// pairsSQL redefines the pairs view over the pairs of the passes so far.
func (p *Plan) pairsSQL() []string {
	parts := make([]string, len(p.pairs))
	for i, name := range p.pairs {
		parts[i] = "SELECT * FROM " + name
	}
	return p.d.CreateViewAs(pairsTable, strings.Join(parts, " UNION ALL "))
}

// recordsSQL counts the records a pass's chosen units hold on each side: a
// record unit is one record, a group its members. Every record of a pass is
// in one unit at most (groups split the records by key) and every unit is
// chosen once at most, so these are the pass's matched records, without
// counting distinct ids over its pairs.
func (p *Plan) recordsSQL(ps *pass) string {
	sums, join := []string{"count(*)", "count(*)"}, ""
	for s, unit := range []string{"a", "b"} {
		if ps.grouped[s] {
			g := "g" + unit
			sums[s] = "coalesce(sum(" + g + ".n), 0)"
			join += fmt.Sprintf(" JOIN %s %s ON %s.gid = c.%s", groups(s, ps.index), g, g, unit)
		}
	}
	return fmt.Sprintf("SELECT %s, %s FROM %s c%s", sums[0], sums[1], chosenTable, join)
}

// passChosen keeps pass k's chosen edges when its pairs are a view of them.
func passChosen(k int) string { return fmt.Sprintf("__kalla_chosen_%d", k) }

// expand makes the pass's pairs from its chosen units: the record pair,
// pass, score and units, and the carried columns of each record (from the
// chosen edge for a record unit, from the group's members for a group).
// Every pass's pairs have the same columns and types, so the pairs view
// can stack them. When neither side is grouped a chosen edge is a pair:
// the chosen table is kept under the pass's name and the pairs are a view
// of it, instead of a copy.
func (p *Plan) expand(ps *pass) (pairs string, stmts []string) {
	from := chosenTable
	if !ps.grouped[0] && !ps.grouped[1] {
		from = passChosen(ps.index)
	}
	sel := []string{"CAST(c.a AS BIGINT) AS lrid", "CAST(c.b AS BIGINT) AS rrid", fmt.Sprintf("CAST(%d AS INTEGER) AS pass", ps.index),
		"CAST(c.score AS DOUBLE) AS score", "CAST(c.a AS BIGINT) AS ua", "CAST(c.b AS BIGINT) AS ub"}
	join := ""
	for s, unit := range []string{"a", "b"} {
		alias := "c"
		if ps.grouped[s] {
			alias = "m" + unit
			sel[s] = fmt.Sprintf("CAST(%s.rid AS BIGINT) AS %s", alias, pairCol(s))
			join += fmt.Sprintf(" JOIN %s %s ON %s.gid = c.%s", members(s, ps.index), alias, alias, unit)
		}
		for _, c := range p.carried(s) {
			from := alias + "." + p.carryName(s, c[0], !ps.grouped[s])
			if left := ps.sameAsLeft(c[0]); s == 1 && left != "" {
				// Equal to a left column in every pair of the pass:
				// shown from the pair's left record (a member, when the
				// left side is grouped) instead.
				la := "c"
				if ps.grouped[0] {
					la = "ma"
				}
				from = la + "." + p.carryName(0, left, !ps.grouped[0])
			}
			sel = append(sel, fmt.Sprintf("%s AS %s", from, c[1]))
		}
	}
	q := fmt.Sprintf("SELECT %s FROM %s c%s", strings.Join(sel, ", "), from, join)
	if from == chosenTable {
		return passPairs(ps.index), p.d.CreateTableAs(passPairs(ps.index), q)
	}
	return passPairsView(ps.index), append(p.d.RenameTable(chosenTable, from), p.d.CreateViewAs(passPairsView(ps.index), q)...)
}

// matchSQL defines the match table over the pairs of all passes, which
// already hold every column it shows: a view, since each reader takes
// only some of its rows or columns.
func (p *Plan) matchSQL() []string {
	var sel []string
	for j, c := range p.shown {
		sel = append(sel, fmt.Sprintf("p.__c%d AS %s", j, p.d.Ident(c.name)))
	}
	sel = append(sel, "p.lrid AS __kalla_lrid", "p.rrid AS __kalla_rrid")
	for s, lr := range []string{"l", "r"} {
		for i := range p.side(s).PK {
			sel = append(sel, fmt.Sprintf("p.__%sk%d AS __kalla_%spk%d", lr, i, lr, i))
		}
	}
	sel = append(sel, p.RuleOf("p.pass")+" AS __kalla_rule", "p.score AS __kalla_score",
		p.status("p")+" AS __kalla_status", "p.pass AS __kalla_pass", "p.ua AS __kalla_ua", "p.ub AS __kalla_ub")
	return p.d.CreateViewAs(MatchTable, fmt.Sprintf("SELECT %s FROM %s p", strings.Join(sel, ", "), pairsTable))
}

// RuleOf is the name of the rule whose pass number is pass (an
// expression), as the match table's __kalla_rule shows it. With StatusOf
// it lets a reader carry the pass number instead of the two labels, as
// the matched file's sort does.
func (p *Plan) RuleOf(pass string) string {
	var names []string
	for _, ps := range p.passes {
		names = append(names, fmt.Sprintf("WHEN %d THEN %s", ps.index, p.d.Str(ps.rule.Name)))
	}
	return "CASE " + pass + " " + strings.Join(names, " ") + " END"
}

// status is a pair's status from the pairs table under alias a.
func (p *Plan) status(a string) string { return p.StatusOf(a+".pass", a+".score") }

// StatusOf is a pair's status (confirmed, or suggested below its rule's
// auto_confirm) from its pass number and score, both expressions, as the
// match table's __kalla_status shows it.
func (p *Plan) StatusOf(pass, score string) string {
	var status []string
	for _, ps := range p.passes {
		if ps.rule.AutoConfirm != nil {
			status = append(status, fmt.Sprintf("WHEN %s = %d AND %s < %v THEN '%s'", pass, ps.index, score, *ps.rule.AutoConfirm, StatusSuggested))
		}
	}
	st := "'" + StatusConfirmed + "'"
	if len(status) > 0 {
		st = "CASE " + strings.Join(status, " ") + " ELSE " + st + " END"
	}
	return st
}

// ShownColumns are the names of the compared columns the match table
// carries, in order.
func (p *Plan) ShownColumns() []string {
	out := make([]string, len(p.shown))
	for i, c := range p.shown {
		out[i] = c.name
	}
	return out
}

// KeyColumns names, for each primary-key column of side s (0 left, 1
// right), the shown column of the match table that holds it as is, or ""
// when no rule compares it: both are carried from the same staged column,
// so a writer may show the key from the shown column.
func (p *Plan) KeyColumns(s int) []string {
	pk := p.side(s).PK
	out := make([]string, len(pk))
	for i, k := range pk {
		for _, c := range p.shown {
			if c.side == s && c.col.Name == k {
				out[i] = c.name
			}
		}
	}
	return out
}

// SameColumns names, for each shown column (in ShownColumns' order), the
// other shown column that holds the same value in every pair, or "": a
// right column that every pass shows from the same left column (see
// sameAsLeft), when that left column is shown too. A writer may copy it
// after a sort instead of carrying both through it, as with KeyColumns: at
// gen's 1M invoices every pass compares reference_number with invoice_id.
func (p *Plan) SameColumns() []string {
	out := make([]string, len(p.shown))
	for i, c := range p.shown {
		if c.side != 1 || len(p.passes) == 0 {
			continue
		}
		left := p.passes[0].sameAsLeft(c.col.Name)
		for _, ps := range p.passes[1:] {
			if ps.sameAsLeft(c.col.Name) != left {
				left = ""
			}
		}
		for _, d := range p.shown {
			if left != "" && d.side == 0 && d.col.Name == left {
				out[i] = d.name
			}
		}
	}
	return out
}

// Cleanup lists the statements that drop what Execute made, for an engine
// whose session outlives the run (Spark); DuckDB's database is thrown away
// with the run, so there it is nil.
func (p *Plan) Cleanup() []string { return p.d.Cleanup() }

// RuleNames lists the rules in pass order.
func (p *Plan) RuleNames() []string {
	out := make([]string, len(p.passes))
	for i, ps := range p.passes {
		out[i] = ps.rule.Name
	}
	return out
}

// aliases returns the names a select list gives its columns (the word
// after each item's last " AS ").
func aliases(sel []string) []string {
	out := make([]string, len(sel))
	for i, x := range sel {
		out[i] = x[strings.LastIndex(x, " AS ")+4:]
	}
	return out
}

// firstPer selects cols from src (a relation with those columns and the
// ones the windows read) keeping the rows that come first in every window
// (each "PARTITION BY ... ORDER BY ..."), all computed over all of src:
// what DuckDB writes as QUALIFY, which Spark SQL lacks.
func firstPer(cols []string, src string, windows ...string) string {
	var sel, where []string
	for i, w := range windows {
		sel = append(sel, fmt.Sprintf("row_number() OVER (%s) AS __kalla_q%d", w, i))
		where = append(where, fmt.Sprintf("__kalla_q%d = 1", i))
	}
	return fmt.Sprintf("SELECT %s FROM (SELECT *, %s FROM %s) q WHERE %s", strings.Join(cols, ", "), strings.Join(sel, ", "), src, strings.Join(where, " AND "))
}
