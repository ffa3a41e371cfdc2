package rules

import (
	"context"
	"fmt"
	"math/big"
	"slices"
	"strings"

	"github.com/kalla-recon/kalla/internal/kalla"
)

// Kinds of reasons, counted in the summary.
const (
	KindNoCandidate = "no_candidate"      // nothing on the other side shares a rule's key
	KindFailed      = "conditions_failed" // a candidate shares the key, other conditions fail
	KindTaken       = "taken"             // a candidate met a rule but was matched elsewhere
	KindLowScore    = "below_min_score"   // a candidate met a rule but scored too low
)

// nearLimit bounds the candidate pairs one rule may compare to explain the
// unmatched records of one side. A rule keyed on something shared by many
// records (a customer) would otherwise compare every unmatched record with
// thousands of others; such a rule gives no closest candidate instead.
//
// A single eq condition is used as the search key only when it is
// selective: on average at most nearFanout candidates per record (a
// reference, not a month or a currency).
var (
	nearLimit  int64 = 2_000_000
	nearFanout int64 = 16
)

func nearTable(s, k int) string { return fmt.Sprintf("__kalla_near_%s%d", "lr"[s:s+1], k) }

// pkText renders side s's primary key of the record under alias as text
// ("INV-1", "A|7" for a composite key), or "row N" when it is NULL.
func (p *Plan) pkText(s int, alias string) string {
	side := p.side(s)
	parts := make([]string, len(side.PK))
	for i, k := range side.PK {
		parts[i] = p.d.Text(alias + "." + p.d.Ident(k))
	}
	key := parts[0]
	if len(parts) > 1 {
		key = "nullif(concat_ws('|', " + strings.Join(parts, ", ") + "), '')"
	}
	return fmt.Sprintf("coalesce(%s, %s)", key, p.d.Concat("'row '", alias+"."+p.d.Ident(side.RID)+" + 1"))
}

// ridCol is the match table's record-id column of side s.
func ridCol(s int) string { return []string{"__kalla_lrid", "__kalla_rrid"}[s] }

// pairCol is the pairs table's record-id column of side s.
func pairCol(s int) string { return []string{"lrid", "rrid"}[s] }

// unmatchedTable holds side s's records no pass matched (all columns),
// made once so each rule's search does not repeat the anti-join.
func unmatchedTable(s int) string { return []string{"__kalla_ul", "__kalla_ur"}[s] }

// unmatched is side s's unmatched records under alias a.
func (p *Plan) unmatched(s int, a string) string { return unmatchedTable(s) + " " + a }

// unmatchedSQL builds unmatchedTable(s): what the last pass left over.
func (p *Plan) unmatchedSQL(s int) []string {
	if p.useSets() {
		if last := p.passes[len(p.passes)-1]; p.lastCopied(last) {
			// What the last pass read, minus what it matched: the
			// columns are remainCols already. The copy is dropped
			// once read: at 50M it held 12.5M and 15M records that
			// would otherwise push the staged sides out of memory
			// while the files are written.
			return append(append([]string{p.takenSQL(s)}, p.d.CreateTableAs(unmatchedTable(s), p.notTakenIn(s, lastTable(s)))...),
				"DROP TABLE "+lastTable(s))
		}
		return append([]string{p.takenSQL(s)}, p.d.CreateTableAs(unmatchedTable(s),
			fmt.Sprintf("SELECT %s FROM (%s) x", p.remainCols(s), p.notTaken(s)))...)
	}
	return p.remainSQL(s, len(p.passes), unmatchedTable(s))
}

// colLabel names a condition's columns as seen from side s: the other
// side's column (what the record is compared with), or "a/b" when both
// are named differently and both matter.
func colLabel(c *cond) string {
	if strings.EqualFold(c.col[0].Name, c.col[1].Name) {
		return c.col[0].Name
	}
	return c.col[0].Name + "/" + c.col[1].Name
}

// percent renders a share (0.02) as a percentage ("2").
func percent(share string) string {
	r, ok := new(big.Rat).SetString(share)
	if !ok {
		return share
	}
	r.Mul(r, big.NewRat(100, 1))
	s := r.FloatString(6)
	s = strings.TrimRight(strings.TrimRight(s, "0"), ".")
	return s
}

// amountText renders an exact amount expression as text; amounts that came
// from binary floats or text carry 10 decimals, whose trailing zeros go.
func (p *Plan) amountText(c *cond, x string) string {
	t := p.d.Text(x)
	for _, col := range c.col {
		if col.class == classFloat || col.class == classText {
			return fmt.Sprintf("CASE WHEN %s THEN %s ELSE %s END", p.d.Contains(t, "'.'"), p.d.TrimRight(p.d.TrimRight(t, "0"), "."), t)
		}
	}
	return t
}

// scoreText renders a score (a double rounded to 6 decimals) as its
// shortest decimal text, "0.75", "1.0": through an exact decimal, so every
// engine writes the same digits (Spark writes a small double as 1.0E-4).
func (p *Plan) scoreText(x string) string {
	t := p.d.TrimRight(p.d.Text(p.d.Decimal(x, 6)), "0")
	return fmt.Sprintf("CASE WHEN %s THEN %s ELSE %s END", p.d.EndsWith(t, "'.'"), p.d.Concat(t, "'0'"), t)
}

// failure is a SQL text saying how condition c fails between the operands.
func (p *Plan) failure(c *cond, lo, ro operand) string {
	lit := p.d.Str
	switch c.Op {
	case kalla.CondTolerance:
		a, b := p.amount(c, 0, lo), p.amount(c, 1, ro)
		what := colLabel(c)
		if lo.grouped || ro.grouped {
			what = "sum of " + what
		}
		diff := "abs(" + a + " - " + b + ")"
		base := "abs(" + a + ")"
		if c.PctOf == "larger" {
			base = "greatest(abs(" + a + "), abs(" + b + "))"
		}
		pct := fmt.Sprintf("CASE WHEN %[2]s = 0 THEN 'n/a' ELSE %[3]s END", diff, base, p.d.Format(fmt.Sprintf("100.0 * CAST(%s AS DOUBLE) / CAST(%s AS DOUBLE)", diff, base), 1))
		var msg []string
		switch {
		case c.abs != "" && c.pct != "":
			of := ""
			if c.PctOf == "larger" {
				of = " of the larger"
			}
			msg = []string{lit(what + " differs by "), p.amountText(c, diff), "' ('", pct, lit(" %) > " + c.abs + " and > " + percent(c.pct) + " %" + of)}
		case c.pct != "":
			of := ""
			if c.PctOf == "larger" {
				of = " of the larger"
			}
			msg = []string{lit(what + " differs by "), pct, lit(" % > " + percent(c.pct) + " %" + of)}
		default:
			msg = []string{lit(what + " differs by "), p.amountText(c, diff), lit(" > " + c.abs)}
		}
		return fmt.Sprintf("CASE WHEN %s IS NULL THEN %s WHEN %s IS NULL THEN %s ELSE %s END",
			a, lit(c.col[0].Name+" is empty"), b, lit(c.col[1].Name+" is empty"), p.d.Concat(msg...))
	case kalla.CondDateWithin:
		xlo, xhi := p.dates(c, 0, lo)
		ylo, yhi := p.dates(c, 1, ro)
		to := *c.Days
		window := fmt.Sprintf("within %d days", *c.Days)
		switch c.Direction {
		case "after":
			window = fmt.Sprintf("0 to %d days after", *c.Days)
		case "before":
			to, window = 0, fmt.Sprintf("0 to %d days before", *c.Days)
		}
		off := p.d.DaysBetween(xlo, ylo, c.ts)
		if lo.grouped || ro.grouped {
			off = fmt.Sprintf("CASE WHEN %[1]s > %[3]d THEN %[1]s ELSE %[2]s END", p.d.DaysBetween(xlo, yhi, c.ts), p.d.DaysBetween(xhi, ylo, c.ts), to)
		}
		decimals := 0
		if c.ts {
			decimals = 1
		}
		return fmt.Sprintf("CASE WHEN %s IS NULL THEN %s WHEN %s IS NULL THEN %s WHEN %s = 0 THEN %s ELSE %s END",
			xlo, lit(c.col[0].Name+" is empty"), ylo, lit(c.col[1].Name+" is empty"), off,
			lit(c.col[1].Name+" is the same day as "+c.col[0].Name+" (allowed: "+window+")"),
			p.d.Concat(lit(c.col[1].Name+" is "), p.d.Format("abs("+off+")", decimals),
				fmt.Sprintf("CASE WHEN %s > 0 THEN ' days after ' ELSE ' days before ' END", off), lit(c.col[0].Name+" (allowed: "+window+")")))
	case kalla.CondContains, kalla.CondStartsWith, kalla.CondEndsWith:
		hay, needle := p.hayNeedle(c, lo, ro)
		hn, nn := c.col[1].Name, c.col[0].Name
		if c.Haystack == "left" {
			hn, nn = nn, hn
		}
		verb := map[string]string{kalla.CondContains: " does not contain ", kalla.CondStartsWith: " does not start with ", kalla.CondEndsWith: " does not end with "}[c.Op]
		return fmt.Sprintf("CASE WHEN %s IS NULL THEN %s WHEN %s IS NULL OR length(%s) = 0 THEN %s ELSE %s END", hay, lit(hn+" is empty"), needle, needle, lit(nn+" is empty"),
			p.d.Concat(lit(hn+" '"), hay, lit("'"+verb+nn+" '"), needle, "''''"))
	case kalla.CondFuzzy:
		sim := p.d.Similarity(p.text(c, 0, p.colRef(lo, c.col[0])), p.text(c, 1, p.colRef(ro, c.col[1])))
		return fmt.Sprintf("CASE WHEN %s IS NULL THEN %s ELSE %s END", sim, lit(colLabel(c)+" is empty"),
			p.d.Concat(lit(colLabel(c)+" similarity "), p.d.Format(sim, 2), lit(fmt.Sprintf(" < %v", *c.Threshold))))
	case kalla.CondEq:
		if lo.grouped || ro.grouped {
			return lit(colLabel(c) + " differs")
		}
		l, r := p.colRef(lo, c.col[0]), p.colRef(ro, c.col[1])
		return fmt.Sprintf("CASE WHEN %s IS NULL THEN %s WHEN %s IS NULL THEN %s ELSE %s END", l, lit(c.col[0].Name+" is empty"), r, lit(c.col[1].Name+" is empty"),
			p.d.Concat(lit(colLabel(c)+" differs ("), p.d.Text(l), "' vs '", p.d.Text(r), "')'"))
	}
	op := map[string]string{kalla.CondGt: ">", kalla.CondGte: ">=", kalla.CondLt: "<", kalla.CondLte: "<="}[c.Op]
	l, r := p.colRef(lo, c.col[0]), p.colRef(ro, c.col[1])
	return p.d.Concat(lit(c.col[0].Name+" "+op+" "+c.col[1].Name+" does not hold ("), p.d.Text(l), "' vs '", p.d.Text(r), "')'")
}

// nearQueries returns, for side s in pass ps, the query estimating how many
// pairs explaining its unmatched records would compare, and the statements
// building its near table: per unmatched record, the closest candidate the
// rule finds among records sharing the rule's eq keys, and why they did
// not match. It returns no statements when the rule has no eq condition (a
// range alone is no basis for "closest").
//
// key lists the eq conditions the search joins on; the rule's other
// conditions, eq ones included, are checked and reported.
func (p *Plan) nearQueries(ps *pass, s int, key []*cond) (estimate string, build func() []string) {
	var eqs, others []*cond
	for _, c := range ps.conds {
		if slices.Contains(key, c) {
			eqs = append(eqs, c)
		} else {
			others = append(others, c)
		}
	}
	if len(eqs) == 0 {
		return "", nil
	}
	o := 1 - s
	names := []string{"l", "r"}
	own, other := names[s], names[o]
	ops := [2]operand{{alias: "l", grouped: ps.grouped[0]}, {alias: "r", grouped: ps.grouped[1]}}
	lo, ro := ops[0], ops[1]
	side, oside := p.side(s), p.side(o)
	best := "__kalla_best_" + "lr"[s:s+1] // one per side: the sides are explained at once

	// The unmatched records (or, grouped, their groups at this pass) and
	// what they are compared with.
	var from, ownRid, ownGid string
	if ps.grouped[s] {
		from = fmt.Sprintf("(SELECT m.rid AS __kalla_urid, g.* FROM %s m JOIN %s g ON g.gid = m.gid %s %s u ON m.rid = u.%s) %s",
			members(s, ps.index), groups(s, ps.index), p.d.SemiJoin(), unmatchedTable(s), p.d.Ident(side.RID), own)
		ownRid, ownGid = own+".__kalla_urid", own+".gid"
	} else {
		from = p.unmatched(s, own)
		// Typed: a dialect may write the table to files (Spark's
		// Parquet has no type for a bare NULL).
		ownRid, ownGid = own+"."+p.d.Ident(side.RID), "CAST(NULL AS BIGINT)"
	}
	var otherFrom, cid string
	switch {
	case ps.grouped[o]:
		otherFrom, cid = groups(o, ps.index)+" "+other, other+".gid"
	case p.onlyOpenShare(s, eqs):
		// Every record sharing the key is still open: searching the other
		// side's unmatched records finds the same candidates as searching
		// all of them, without hashing the whole side.
		otherFrom, cid = p.unmatched(o, other), other+"."+p.d.Ident(oside.RID)
	default:
		otherFrom, cid = p.d.Ident(oside.View)+" "+other, other+"."+p.d.Ident(oside.RID)
	}
	var on, eqNames []string
	for _, c := range eqs {
		on = append(on, p.predicate(c, lo, ro))
		eqNames = append(eqNames, c.col[o].Name)
	}
	fails, nfail := []string{}, []string{}
	for _, c := range others {
		holds := "coalesce(" + p.predicate(c, lo, ro) + ", false)"
		fails = append(fails, fmt.Sprintf("CASE WHEN NOT %s THEN %s END", holds, p.failure(c, lo, ro)))
		nfail = append(nfail, fmt.Sprintf("CASE WHEN %s THEN 0 ELSE 1 END", holds))
	}
	failText, nfailExpr := p.d.Text("NULL"), "0"
	if len(others) > 0 {
		failText = "concat_ws('; ', " + strings.Join(fails, ", ") + ")"
		nfailExpr = strings.Join(nfail, " + ")
	}
	var oAmount, oDate string
	if ps.tol != nil {
		oAmount = p.amountDiff(ps.tol, lo, ro)
	}
	if ps.date != nil {
		oDate = p.dateDiff(ps.date, lo, ro)
	}
	// First the closest candidate of each record; the words are written
	// only for it, since a shared key can bring millions of pairs.
	ck := cid
	if !ps.grouped[o] {
		ck = p.pkText(o, other)
	}
	cands := fmt.Sprintf("(SELECT %s AS rid, %s AS ogid, %s AS cid, %s AS nfail, %s AS score, %s AS __kalla_ck", ownRid, ownGid, cid, nfailExpr, p.score(ps, lo, ro), ck)
	if oAmount != "" {
		cands += ", " + oAmount + " AS __kalla_oa"
	}
	if oDate != "" {
		cands += ", " + oDate + " AS __kalla_od"
	}
	cands += fmt.Sprintf(" FROM %s JOIN %s ON %s) c", from, otherFrom, strings.Join(on, " AND "))
	bestQ := firstPer([]string{"rid", "ogid", "cid", "nfail", "score"}, cands,
		fmt.Sprintf("PARTITION BY rid ORDER BY nfail, %s, __kalla_ck, cid", strings.Join(rank(ps, "__kalla_oa", "__kalla_od", "score"), ", ")))

	// Groups are named by their members, for the chosen ones only.
	labels := func(s int, col string) string {
		const shown = 5
		sd := p.side(s)
		return fmt.Sprintf(`(SELECT m.gid, count(*) AS n, %s AS label
FROM %s m JOIN %s v ON v.%s = m.rid WHERE m.gid IN (SELECT %s FROM %s) GROUP BY m.gid)`,
			p.d.Concat(p.d.JoinFirst(p.pkText(s, "v"), "m.rid", shown), fmt.Sprintf("CASE WHEN count(*) > %d THEN %s ELSE '' END", shown, p.d.Concat("' and '", fmt.Sprintf("count(*) - %d", shown), "' more'"))),
			members(s, ps.index), p.d.Ident(sd.View), p.d.Ident(sd.RID), col, best)
	}
	var cand, closest string
	joins := fmt.Sprintf("JOIN %s ON %s = b.rid JOIN %s ON %s = b.cid", from, ownRid, otherFrom, cid)
	if ps.grouped[o] {
		joins += " JOIN " + labels(o, "cid") + " ol ON ol.gid = b.cid"
		closest, cand = "ol.label", p.d.Concat(p.d.Str(oside.Alias+" "), "ol.label")
	} else {
		closest = p.pkText(o, other)
		cand = closest
	}
	suffix := "''"
	if ps.grouped[s] {
		joins += " JOIN " + labels(s, "ogid") + " gl ON gl.gid = b.ogid"
		suffix = p.d.Concat(p.d.Str(" (as the group of "), p.d.Text("gl.n"), "': '", "gl.label", "')'")
	}
	// The record's own key, to tell a partner that shares it (a duplicate).
	joins += fmt.Sprintf(" JOIN %s ok ON ok.%s = b.rid", unmatchedTable(s), p.d.Ident(side.RID))
	near := fmt.Sprintf("SELECT b.rid, b.cid, b.nfail, b.score, %s AS cand, %s AS closest, %s AS fails, %s AS suffix, %s AS ownkey FROM %s b %s",
		cand, closest, failText, suffix, p.pkText(s, "ok"), best, joins)

	// Who took the candidate, if anyone: its first pair's other record.
	partnerPK := make([]string, len(side.PK))
	for i := range side.PK {
		partnerPK[i] = p.d.Text(fmt.Sprintf("x.__kalla_%spk%d", "lr"[s:s+1], i))
	}
	partner := partnerPK[0]
	if len(partnerPK) > 1 {
		partner = "nullif(concat_ws('|', " + strings.Join(partnerPK, ", ") + "), '')"
	}
	partner = fmt.Sprintf("coalesce(%s, %s)", partner, p.d.Concat("'row '", "x."+ridCol(s)+" + 1"))
	var taken string
	if ps.grouped[o] {
		taken = fmt.Sprintf("SELECT m.gid AS id, %s AS partner, min(x.%s) AS prid, %s AS prule FROM %s m JOIN %s x ON x.%s = m.rid WHERE m.gid IN (SELECT cid FROM %s) GROUP BY m.gid",
			p.d.ArgMin(partner, "x."+ridCol(s)), ridCol(s), p.d.ArgMin("x.__kalla_rule", "x."+ridCol(s)), members(o, ps.index), MatchTable, ridCol(o), best)
	} else {
		taken = fmt.Sprintf("SELECT x.%s AS id, %s AS partner, min(x.%s) AS prid, %s AS prule FROM %s x WHERE x.%s IN (SELECT cid FROM %s) GROUP BY x.%s",
			ridCol(o), p.d.ArgMin(partner, "x."+ridCol(s)), ridCol(s), p.d.ArgMin("x.__kalla_rule", "x."+ridCol(s)), MatchTable, ridCol(o), best, ridCol(o))
	}
	// A partner with the record's own key is another record (a duplicate
	// key): "matched to INV-1" would read as the record itself, so the
	// partner is also named by its row.
	partnerText := fmt.Sprintf("CASE WHEN t.partner = n.ownkey THEN %s ELSE t.partner END", p.d.Concat("t.partner", "' (row '", p.d.Text("t.prid + 1"), "')'"))
	rule := p.d.Str(ps.rule.Name)
	meets, was := "' meets rule '", "' but was matched to '"
	if ps.grouped[o] {
		meets, was = "' meet rule '", "' but were matched to '"
	}
	matchWord := " matches "
	if len(eqNames) > 1 {
		matchWord = " match "
	}
	eqLabel := p.d.Str(joinAnd(eqNames) + matchWord)
	minScore := "NULL"
	if ps.rule.MinScore != nil {
		minScore = fmt.Sprint(*ps.rule.MinScore)
	}
	reason := fmt.Sprintf(`CASE WHEN n.nfail > 0 THEN %s
  WHEN t.partner IS NOT NULL THEN %s
  WHEN n.score < %s THEN %s
  ELSE %s END`,
		p.d.Concat(eqLabel, "n.cand", "' but '", "n.fails", "n.suffix"),
		p.d.Concat("n.cand", meets, rule, was, partnerText, "' by rule '", "t.prule", "n.suffix"),
		minScore, p.d.Concat("n.cand", meets, rule, "' but scores '", p.scoreText("n.score"), p.d.Str(" < min_score "+minScore), "n.suffix"),
		p.d.Concat("n.cand", meets, rule, "n.suffix"))
	kind := fmt.Sprintf("CASE WHEN n.nfail > 0 THEN '%s' WHEN t.partner IS NOT NULL THEN '%s' WHEN n.score < %s THEN '%s' ELSE '%s' END",
		KindFailed, KindTaken, minScore, KindLowScore, KindTaken)
	nearQ := fmt.Sprintf("SELECT n.rid, %d AS pass, n.nfail, %s AS reason, n.closest, %s AS kind FROM (%s) n LEFT JOIN (%s) t ON t.id = n.cid",
		ps.index, reason, kind, near, taken)
	// The statements are written only for the key the search uses: a
	// dialect may name each table it makes (Spark).
	build = func() []string {
		return append(p.d.CreateTableAs(best, bestQ), p.d.CreateTableAs(nearTable(s, ps.index), nearQ)...)
	}

	// The estimate counts the pairs the search would compare (a grouped
	// other side has one group per key: never a fan-out, but a count of 0
	// still spares the search).
	// Counting stops past the limit, so a huge fan-out costs no more than
	// the limit to detect.
	estimate = fmt.Sprintf("SELECT count(*) FROM (SELECT 1 FROM %s JOIN %s ON %s LIMIT %d) e", from, otherFrom, strings.Join(on, " AND "), nearLimit+1)
	return estimate, build
}

// onlyOpenShare reports whether no matched record of the other side can
// share key with an unmatched record of side s, so the search may read the
// other side's unmatched table instead of all its records. It holds when
// key compares side s's primary key, checked unique (no NULL, no repeat),
// with an exact eq, and every pass compares the same two columns that way:
// a matched record r of the other side was paired with a record l of side
// s by some pass, so l.pk = r.col; an unmatched record u with u.pk = r.col
// would share l's key, and keys are unique. Exact means the values compare
// as themselves, by one equality that is transitive: text with text,
// integers and decimals with each other, dates with dates (no normalising,
// no truncation, no binary floats, whose -0 equals 0).
//
// At gen's 1M invoices, the open invoices' search for payments sharing
// their invoice_id hashed all 1.05M payments (0.18 s of CPU) to find none.
func (p *Plan) onlyOpenShare(s int, key []*cond) bool {
	side := p.side(s)
	if !side.UniqueKey || len(side.PK) != 1 {
		return false
	}
	for _, c := range key {
		if !c.exact() || c.col[s].Name != side.PK[0] {
			continue
		}
		every := true
		for _, ps := range p.passes {
			if !slices.ContainsFunc(ps.conds, func(d *cond) bool {
				return d.exact() && d.col[0].Name == c.col[0].Name && d.col[1].Name == c.col[1].Name
			}) {
				every = false
				break
			}
		}
		if every {
			return true
		}
	}
	return false
}

// nearKeys lists the keys a rule may search for the closest candidates of
// unmatched records, most useful first: each eq condition alone (so that,
// say, a payment with the right reference but the wrong amount is found
// and the amount reported), then all of them. A grouped rule's groups are
// defined by all its eq conditions, so it has only that key.
func nearKeys(ps *pass) [][]*cond {
	var eqs []*cond
	for _, c := range ps.conds {
		if c.Op == kalla.CondEq {
			eqs = append(eqs, c)
		}
	}
	if len(eqs) == 0 {
		return nil
	}
	if ps.grouped[0] || ps.grouped[1] || len(eqs) == 1 {
		return [][]*cond{eqs}
	}
	var out [][]*cond
	for _, c := range eqs {
		out = append(out, []*cond{c})
	}
	return append(out, eqs)
}

func joinAnd(xs []string) string {
	if len(xs) == 1 {
		return xs[0]
	}
	return strings.Join(xs[:len(xs)-1], ", ") + " and " + xs[len(xs)-1]
}

// explain builds ReasonLeft and ReasonRight: for every unmatched record a
// reason and, where a rule found one, the closest candidate. Every rule
// searches for the record's closest candidate; the one that failed the
// fewest conditions explains the record. Among equals, a candidate that
// met every condition (but was taken, or scored too low) is told by the
// first such rule, the strictest it met; a candidate that failed is told
// by the last, loosest rule, since that is the gap to close: a split
// payment's invoice hears that its payments' sum is off, not that no
// single payment equals it.
//
// Both sides' unmatched tables are built before either side is explained:
// the search by amount reads the other side's (see nearByAmount).
func (p *Plan) explain(ctx context.Context, db DB) error {
	build := func(s int) func(DB) error {
		return func(d DB) error { return execAll(ctx, d, "rules: explain unmatched records", p.unmatchedSQL(s)...) }
	}
	if err := beside(ctx, db, build(0), build(1)); err != nil {
		return err
	}
	pairs, err := p.amountPairs(ctx, db)
	if err != nil {
		return err
	}
	return beside(ctx, db, func(d DB) error { return p.explainSide(ctx, d, 0, pairs) }, func(d DB) error { return p.explainSide(ctx, d, 1, pairs) })
}

// explainSide builds side s's reasons from its unmatched table (see
// explain); amountPairs is what amountPairs counted.
func (p *Plan) explainSide(ctx context.Context, db DB, s int, amountPairs int64) error {
	run := func(what string, qs ...string) error { return execAll(ctx, db, what, qs...) }
	estimates := map[string]int64{} // passes often share a key
	var near []string
	var skipped []string
	keys := map[int][]*cond{}
	built := map[int]bool{} // passes whose near table exists
	own, err := scalar(ctx, db, "SELECT count(*) FROM "+p.unmatched(s, "u"))
	if err != nil {
		return fmt.Errorf("rules: explain: %w", err)
	}
	for _, ps := range p.passes {
		var build func() []string
		options := nearKeys(ps)
		for i, key := range options {
			est, b := p.nearQueries(ps, s, key)
			if b == nil {
				continue
			}
			if est != "" {
				n, ok := estimates[est]
				if !ok && (ps.grouped[0] || ps.grouped[1]) {
					// Groups are made of records and keyed like them: if
					// no record shares this key (an earlier rule
					// counted it), no group does either.
					flat := *ps
					flat.grouped = [2]bool{}
					if fe, _ := p.nearQueries(&flat, s, key); estimates[fe] == 0 {
						_, ok = estimates[fe]
					}
				}
				if !ok {
					var err error
					if n, err = scalar(ctx, db, est); err != nil {
						if ctx.Err() != nil {
							return ctx.Err()
						}
						return kalla.WrapError(kalla.EINVALID, headline{err}, "rules[%d] %q: explain unmatched records", ps.index, ps.rule.Name)
					}
					estimates[est] = n
				}
				if n == 0 {
					// Nothing shares even this key: no candidate, and a
					// longer key cannot find one either.
					keys[ps.index] = key
					break
				}
				if n > nearLimit || (i < len(options)-1 && n > nearFanout*max(own, 1) && !ps.grouped[1-s]) {
					continue
				}
			}
			build, keys[ps.index] = b, key
			built[ps.index] = true
			break
		}
		if build == nil {
			if _, ok := keys[ps.index]; !ok && len(nearKeys(ps)) > 0 {
				skipped = append(skipped, ps.rule.Name)
			}
			continue
		}
		if err := run(fmt.Sprintf("rules[%d] %q: explain unmatched records", ps.index, ps.rule.Name), build()...); err != nil {
			return err
		}
		near = append(near, "SELECT * FROM "+nearTable(s, ps.index))
	}
	byAmount, err := p.nearByAmount(ctx, db, s, own, amountPairs)
	if err != nil {
		return err
	}
	u := "u"
	side := p.side(s)
	fallback := p.fallback(s, u, keys, skipped)
	noKind := p.d.Str(KindNoCandidate)
	reason, bare := "coalesce(n.reason, "+fallback+")", fallback
	var perRule []string
	if len(p.passes) > 1 {
		// Every rule says why it failed, in pass order: the reader sees
		// what each rule needed, not only the rule that came closest.
		reason = p.perRuleReason(s, u, keys, built)
		bare = reason
		for _, ps := range p.passes {
			if built[ps.index] {
				perRule = append(perRule, fmt.Sprintf(" LEFT JOIN %s n%d ON n%d.rid = %s.%s", nearTable(s, ps.index), ps.index, ps.index, u, p.d.Ident(side.RID)))
			}
		}
	}
	q := fmt.Sprintf("SELECT %s.%s AS rid, %s AS reason, %s AS closest, %s AS kind FROM %s%s", u, p.d.Ident(side.RID), bare, p.d.Text("NULL"), noKind, p.unmatched(s, u), strings.Join(perRule, ""))
	if len(near) > 0 {
		best := firstPer([]string{"rid", "pass", "nfail", "reason", "closest", "kind"}, "("+strings.Join(near, " UNION ALL ")+") a",
			"PARTITION BY rid ORDER BY nfail, CASE WHEN nfail = 0 THEN pass ELSE -pass END")
		q = fmt.Sprintf("SELECT %s.%s AS rid, %s AS reason, n.closest, coalesce(n.kind, %s) AS kind FROM %s LEFT JOIN (%s) n ON n.rid = %s.%s%s",
			u, p.d.Ident(side.RID), reason, noKind, p.unmatched(s, u), best, u, p.d.Ident(side.RID), strings.Join(perRule, ""))
	}
	if byAmount {
		// No rule found a candidate sharing a key, but an open record on
		// the other side has the same amount: it is named, with what
		// differs, after the rules' reasons.
		q = fmt.Sprintf("SELECT q.rid, CASE WHEN q.closest IS NULL AND a.closest IS NOT NULL THEN %s ELSE q.reason END AS reason, coalesce(q.closest, a.closest) AS closest, q.kind FROM (%s) q LEFT JOIN %s a ON a.rid = q.rid",
			p.d.Concat("q.reason", "' | closest by amount: '", "a.said"), q, amountTable(s))
	}
	name := []string{ReasonLeft, ReasonRight}[s]
	if len(near) == 0 && !byAmount && p.useSets() {
		// No search found anything to name: each reason is words about
		// the record's own columns, and the reasons are a view of the
		// unmatched table (in no promised order: what reads them sorts or
		// counts, see OwnReason). Writing them into a table sorted by rid
		// held a mostly repeated text per unmatched record: at
		// gen.Standard(50M) under 4GB, 10M records a side, 4.5 s and
		// 3.3 s, spilled, and read back by the unmatched files.
		p.ownReason[s] = bare
		return run("rules: explain unmatched records", p.d.CreateViewAs(name, q)...)
	}
	// A view of the table either way: the name is one kind of object,
	// whichever way an earlier plan on the same database made it.
	rows := name + "_rows"
	return run("rules: explain unmatched records", append(p.d.CreateTableAs(rows, p.d.Ordered(q, "rid")), p.d.CreateViewAs(name, "SELECT * FROM "+p.d.Ident(rows))...)...)
}

// OwnReason returns, once the plan has run, the reason of side s's
// unmatched records as an expression over the record's own columns under
// alias u (the side's view's names), when no search found a candidate to
// name (every reason then says what no rule found, from the record's keys
// alone, and the closest candidate is NULL); ok is false when the reasons
// must be read from the side's reason table. The unmatched file can then
// compute each reason from the record it writes instead of lining the
// records up with a table of reasons.
func (p *Plan) OwnReason(s int) (expr string, ok bool) {
	return p.ownReason[s], p.ownReason[s] != ""
}

// amountTable holds, per unmatched record of side s that has one, an open
// record of the other side with the same amount (see nearByAmount).
func amountTable(s int) string { return "__kalla_amt_" + "lr"[s:s+1] }

// amountCond is the condition that names the amounts: the first
// tolerance condition of any rule, with its rule; nil when there is none
// (Kalla does not guess which column is an amount).
func (p *Plan) amountCond() (*pass, *cond) {
	for _, ps := range p.passes {
		for _, c := range ps.conds {
			if c.Op == kalla.CondTolerance {
				return ps, c
			}
		}
	}
	return nil, nil
}

// amountFrom is the join of side s's unmatched records (u) with the other
// side's (v) on equal amounts, by the condition ac that names them.
func (p *Plan) amountFrom(ac *cond, s int) string {
	o := 1 - s
	// The other side's open records are its unmatched table (built by
	// explain before either side), which holds every column used here
	// (usedCols: the keys and every condition's columns): not the whole
	// side anti-joined with the matches again.
	on := p.num(ac, s, "u") + " = " + p.num(ac, o, "v")
	return fmt.Sprintf("%s JOIN %s ON %s", p.unmatched(s, "u"), p.unmatched(o, "v"), on)
}

// amountPairs counts, up to nearLimit+1, the pairs of unmatched records of
// the two sides with equal amounts, which nearByAmount would compare; -1
// when no rule names the amounts. The join is the same seen from either
// side, so it is counted once for both: at gen.Standard(50M) under 4GB
// each count took 2.4 s (10M open records a side) to exceed the bound.
func (p *Plan) amountPairs(ctx context.Context, db DB) (int64, error) {
	ps, ac := p.amountCond()
	if ac == nil {
		return -1, nil
	}
	n, err := scalar(ctx, db, fmt.Sprintf("SELECT count(*) FROM (SELECT 1 FROM %s LIMIT %d) e", p.amountFrom(ac, 0), nearLimit+1))
	if err != nil {
		if ctx.Err() != nil {
			return 0, ctx.Err()
		}
		return 0, kalla.WrapError(kalla.EINVALID, headline{err}, "rules[%d] %q: explain unmatched records by amount", ps.index, ps.rule.Name)
	}
	return n, nil
}

// nearByAmount builds amountTable(s): for each unmatched record of side s,
// the first (by key) record of the other side that no rule matched and
// whose amount is exactly the record's, and what differs between them (the
// other conditions of the rule that names the amounts). A payment that
// carries no reference but the invoice's amount is the candidate a person
// looks for first; own is the count of side s's unmatched records, n the
// pairs amountPairs counted. It reports false, building nothing, when no
// rule names the amounts or the equal amounts pair too many records (a
// common round amount), where "closest" would mean nothing.
func (p *Plan) nearByAmount(ctx context.Context, db DB, s int, own, n int64) (bool, error) {
	ps, ac := p.amountCond()
	if ac == nil {
		return false, nil
	}
	o := 1 - s
	side, oside := p.side(s), p.side(o)
	aliases := [2]string{"u", "v"}
	if s == 1 {
		aliases = [2]string{"v", "u"}
	}
	lo, ro := operand{alias: aliases[0]}, operand{alias: aliases[1]}
	from := p.amountFrom(ac, s)
	if n <= 0 || n > nearLimit || n > nearFanout*max(own, 1) {
		return false, nil
	}
	var fails []string
	for _, c := range ps.conds {
		if c == ac {
			continue
		}
		holds := "coalesce(" + p.predicate(c, lo, ro) + ", false)"
		fails = append(fails, fmt.Sprintf("CASE WHEN NOT %s THEN %s END", holds, p.failure(c, lo, ro)))
	}
	differs := "''"
	if len(fails) > 0 {
		differs = fmt.Sprintf("CASE WHEN concat_ws('; ', %[1]s) = '' THEN '' ELSE %[2]s END", strings.Join(fails, ", "), p.d.Concat("' but '", "concat_ws('; ', "+strings.Join(fails, ", ")+")"))
	}
	ck := p.pkText(o, "v")
	said := p.d.Concat(p.d.Str(oside.Alias+" "), ck, p.d.Str(" has the same "+ac.col[o].Name+" "), p.d.Text(p.num(ac, s, "u")), differs)
	cands := fmt.Sprintf("(SELECT u.%s AS rid, v.%s AS cid, %s AS closest, %s AS said FROM %s) c", p.d.Ident(side.RID), p.d.Ident(oside.RID), ck, said, from)
	q := firstPer([]string{"rid", "closest", "said"}, cands, "PARTITION BY rid ORDER BY closest, cid")
	if err := execAll(ctx, db, "rules: explain unmatched records by amount", p.d.CreateTableAs(amountTable(s), q)...); err != nil {
		return false, err
	}
	return true, nil
}

// perRuleReason is the reason of an unmatched record of side s (under
// alias) in a recipe of several rules: "rule: why" for every rule, in pass
// order, joined by " | " (rules whose why is the same text share one
// entry, "exact, tolerance: why"). A rule that searched reads its near table
// (nN, joined by the caller where built says so); one whose key no record
// on the other side shares says so, naming an empty key; one that could
// not search says that it did not, never guessing a cause.
func (p *Plan) perRuleReason(s int, alias string, keys map[int][]*cond, built map[int]bool) string {
	o := 1 - s
	var whys []string
	var names [][]string
	for _, ps := range p.passes {
		var why string
		eqs, searched := keys[ps.index]
		switch {
		case searched:
			var whens, names []string
			for _, c := range eqs {
				whens = append(whens, fmt.Sprintf("WHEN %s.%s IS NULL THEN %s", alias, p.d.Ident(c.col[s].Name), p.d.Str(c.col[s].Name+" is empty")))
				names = append(names, c.col[o].Name)
			}
			why = "CASE " + strings.Join(whens, " ") + " ELSE " + p.d.Str(fmt.Sprintf("no %s record matches on %s", p.side(o).Alias, joinAnd(names))) + " END"
			if built[ps.index] {
				why = fmt.Sprintf("coalesce(n%d.reason, %s)", ps.index, why)
			}
		case len(nearKeys(ps)) > 0:
			why = p.d.Str("not searched: too many candidates per record to find the closest")
		default:
			why = p.d.Str("not searched: the rule has no eq condition to find candidates by")
		}
		if i := slices.Index(whys, why); i >= 0 {
			names[i] = append(names[i], ps.rule.Name)
			continue
		}
		whys, names = append(whys, why), append(names, []string{ps.rule.Name})
	}
	// Rules that fail alike (the same key, no candidate) share one entry:
	// "exact, tolerance: no payments record matches on reference".
	var parts []string
	for i, why := range whys {
		if i > 0 {
			parts = append(parts, p.d.Str(" | "))
		}
		parts = append(parts, p.d.Str(strings.Join(names[i], ", ")+": "), why)
	}
	return p.d.Concat(parts...)
}

// fallback is the reason of a record no rule found a candidate for: an
// empty key, or no record on the other side sharing a rule's keys. Every
// searched rule failed alike, so the rule with the fewest keys (the
// weakest claim, first in order among equals) says it best.
func (p *Plan) fallback(s int, alias string, keys map[int][]*cond, skipped []string) string {
	o := 1 - s
	var best *pass
	var bestEqs []*cond
	for _, ps := range p.passes {
		eqs, ok := keys[ps.index]
		if !ok {
			continue
		}
		if best == nil || len(eqs) < len(bestEqs) {
			best, bestEqs = ps, eqs
		}
	}
	if best != nil {
		eqs := bestEqs
		var whens, names []string
		for _, c := range eqs {
			whens = append(whens, fmt.Sprintf("WHEN %s.%s IS NULL THEN %s", alias, p.d.Ident(c.col[s].Name), p.d.Str(c.col[s].Name+" is empty")))
			names = append(names, c.col[o].Name)
		}
		msg := fmt.Sprintf("no %s record matches on %s", p.side(o).Alias, joinAnd(names))
		return "CASE " + strings.Join(whens, " ") + " ELSE " + p.d.Str(msg) + " END"
	}
	if len(skipped) > 0 {
		return p.d.Str(fmt.Sprintf("no candidate found; rule %s has too many candidates per record to search for the closest", joinAnd(skipped)))
	}
	return p.d.Str("no rule found a candidate")
}

func scalar(ctx context.Context, db DB, q string) (int64, error) {
	var n int64
	err := db.Query(ctx, q, func(r Row) error { return r.Scan(&n) })
	return n, err
}
