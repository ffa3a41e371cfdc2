package rules

import (
	"context"
	"database/sql"
	"fmt"
	"slices"
	"strings"

	"github.com/kalla-recon/kalla/internal/kalla"
)

// breakSamples is how many differing pairs of each column the summary
// shows; unmatchedSamples how many unmatched records of each side.
const (
	breakSamples     = 5
	unmatchedSamples = 5
)

// breakCol is a column pair the rules compare, reported in the breaks.
type breakCol struct {
	index int
	col   [2]column
	name  [2]string // the match table's columns for the two values
	// sums lists the grouped passes that compare these columns as amounts:
	// there the break is between the groups' sums, once per group pair.
	sums []int
	// equal lists the passes whose pairs are equal on these columns by
	// construction (a plain eq condition joined them): nothing to compare.
	equal []int
}

// kind says how a column pair is compared: as numbers, as dates, or as text.
func (b *breakCol) kind() string {
	switch {
	case b.col[0].class.numeric() && b.col[1].class.numeric():
		return "number"
	case (b.col[0].class == classDate || b.col[0].class == classTimestamp) && (b.col[1].class == classDate || b.col[1].class == classTimestamp):
		return "date"
	}
	return "text"
}

// breakCols lists the column pairs of all rules' conditions, each once, in
// the order they first appear.
func (p *Plan) breakCols() []*breakCol {
	var out []*breakCol
	find := func(l, r string) *breakCol {
		for _, b := range out {
			if b.col[0].Name == l && b.col[1].Name == r {
				return b
			}
		}
		return nil
	}
	for _, ps := range p.passes {
		for _, c := range ps.conds {
			b := find(c.col[0].Name, c.col[1].Name)
			if b == nil {
				b = &breakCol{index: len(out), col: c.col, name: [2]string{p.shownName(0, c.col[0].Name), p.shownName(1, c.col[1].Name)}}
				out = append(out, b)
			}
			if c.Op == kalla.CondTolerance && (ps.grouped[0] || ps.grouped[1]) && b.kind() == "number" && !slices.Contains(b.sums, ps.index) {
				b.sums = append(b.sums, ps.index)
			}
			if c.Op == kalla.CondEq && !c.texty() && c.Truncate == "" && c.col[0].class == c.col[1].class && !slices.Contains(b.equal, ps.index) {
				b.equal = append(b.equal, ps.index)
			}
		}
	}
	return out
}

func (p *Plan) shownName(s int, col string) string {
	for _, c := range p.shown {
		if c.side == s && c.col.Name == col {
			return c.name
		}
	}
	return ""
}

// breakValue is the SQL of a compared value as the breaks compare it: exact
// numbers, dates (as timestamps beside a timestamp), or text.
func (p *Plan) breakValue(b *breakCol, s int, x string) string {
	switch b.kind() {
	case "number":
		if b.col[s].class == classFloat || b.col[s].class == classText {
			return p.d.Decimal(x, 10)
		}
	case "date":
		if b.col[0].class != b.col[1].class {
			return p.d.Timestamp(x)
		}
	default:
		if b.col[s].class != classText {
			return p.d.Text(x)
		}
	}
	return x
}

// breakDiff is right − left: a number, days for dates, NULL for text.
func (p *Plan) breakDiff(b *breakCol, l, r string) string {
	switch b.kind() {
	case "number":
		return fmt.Sprintf("CAST(%s - %s AS DOUBLE)", r, l)
	case "date":
		return "CAST(" + p.d.DaysBetween(l, r, b.col[0].class == classTimestamp || b.col[1].class == classTimestamp) + " AS DOUBLE)"
	}
	return "CAST(NULL AS DOUBLE)"
}

// matchKey renders side s's key columns of the match table as text.
func (p *Plan) matchKey(s int, alias string) string {
	side := p.side(s)
	parts := make([]string, len(side.PK))
	for i := range side.PK {
		parts[i] = p.d.Text(fmt.Sprintf("%s.__kalla_%spk%d", alias, "lr"[s:s+1], i))
	}
	key := parts[0]
	if len(parts) > 1 {
		key = "nullif(concat_ws('|', " + strings.Join(parts, ", ") + "), '')"
	}
	return fmt.Sprintf("coalesce(%s, %s)", key, p.d.Concat("'row '", alias+"."+ridCol(s)+" + 1"))
}

// breaksSQL builds BreaksTable: one row per compared column and matched
// pair (or, for amounts of a grouped rule, group pair) whose values differ.
func (p *Plan) breaksSQL() []string {
	var parts []string
	cols := p.breakCols()
	for i, b := range cols {
		lv, rv := p.breakValue(b, 0, "m."+p.d.Ident(b.name[0])), p.breakValue(b, 1, "m."+p.d.Ident(b.name[1]))
		notSums := ""
		skip := slices.Concat(b.sums, b.equal)
		if len(skip) > 0 {
			notSums = fmt.Sprintf(" AND m.__kalla_pass NOT IN (%s)", intList(skip))
		}
		// A column every pass compares with eq (a key) or sums has no
		// pair to list: its branch would scan every pair for nothing.
		// One branch stays, so that the table exists with its columns.
		slices.Sort(skip)
		if len(slices.Compact(skip)) < len(p.passes) || (i == len(cols)-1 && len(parts) == 0) {
			parts = append(parts, fmt.Sprintf(`SELECT %d AS __kalla_col, %s AS left_column, %s AS right_column, m.__kalla_rule AS _rule, %s AS _left_key, %s AS _right_key,
  %s AS left_value, %s AS right_value, %s AS difference, m.__kalla_lrid + 1 AS _left_row, m.__kalla_rrid + 1 AS _right_row, m.__kalla_lrid AS __kalla_o1, m.__kalla_rrid AS __kalla_o2
FROM %s m WHERE %s IS DISTINCT FROM %s%s`,
				b.index, p.d.Str(b.col[0].Name), p.d.Str(b.col[1].Name), p.matchKey(0, "m"), p.matchKey(1, "m"),
				p.d.Text("m."+p.d.Ident(b.name[0])), p.d.Text("m."+p.d.Ident(b.name[1])), p.breakDiff(b, lv, rv), MatchTable, lv, rv, notSums))
		}
		var sums []int
		for _, k := range b.sums {
			if p.sumsMayDiffer(b, k) {
				sums = append(sums, k)
			}
		}
		if len(sums) == 0 {
			continue
		}
		// Grouped: the sums of the distinct records on each side of a group
		// pair; the groups' members are listed only for the pairs that differ.
		total := func(s int) string {
			v := p.breakValue(b, s, "m."+p.d.Ident(b.name[s]))
			// A unit pair belongs to one pass (its records to no other).
			return fmt.Sprintf(`SELECT ua, ub, any_value(pass) AS pass, CASE WHEN count(v) = count(*) THEN sum(v) END AS total
FROM (SELECT DISTINCT m.__kalla_ua AS ua, m.__kalla_ub AS ub, m.__kalla_pass AS pass, m.%s AS rid, %s AS v FROM %s m WHERE m.__kalla_pass IN (%s)) x GROUP BY ua, ub`,
				ridCol(s), v, MatchTable, intList(sums))
		}
		keys := func(s int) string {
			return fmt.Sprintf(`SELECT ua, ub, min(rid) AS lo, %s AS keys
FROM (SELECT DISTINCT m.__kalla_ua AS ua, m.__kalla_ub AS ub, m.%s AS rid, %s AS k FROM %s m %s d ON m.__kalla_ua = d.ua AND m.__kalla_ub = d.ub WHERE m.__kalla_pass IN (%s)) x GROUP BY ua, ub`,
				p.d.Concat(p.d.JoinFirst("k", "rid", breakSamples), fmt.Sprintf("CASE WHEN count(*) > %d THEN %s ELSE '' END", breakSamples, p.d.Concat("' and '", fmt.Sprintf("count(*) - %d", breakSamples), "' more'"))),
				ridCol(s), p.matchKey(s, "m"), MatchTable, p.d.SemiJoin(), intList(sums))
		}
		rule := "CASE d.pass"
		for _, k := range sums {
			rule += fmt.Sprintf(" WHEN %d THEN %s", k, p.d.Str(p.passes[k].rule.Name))
		}
		rule += " END"
		parts = append(parts, fmt.Sprintf(`SELECT * FROM (WITH d AS (SELECT l.ua, l.ub, l.total AS lt, r.total AS rt, l.pass
  FROM (%[6]s) l JOIN (%[7]s) r USING (ua, ub) WHERE l.total IS DISTINCT FROM r.total)
SELECT %[1]d AS __kalla_col, %[2]s AS left_column, %[3]s AS right_column, %[4]s AS _rule, kl.keys AS _left_key, kr.keys AS _right_key,
  %[5]s AS left_value, %[8]s AS right_value, %[9]s AS difference, CAST(NULL AS BIGINT) AS _left_row, CAST(NULL AS BIGINT) AS _right_row, kl.lo AS __kalla_o1, kr.lo AS __kalla_o2
FROM d JOIN (%[10]s) kl USING (ua, ub) JOIN (%[11]s) kr USING (ua, ub)) s`,
			b.index, p.d.Str(b.col[0].Name), p.d.Str(b.col[1].Name), rule, p.d.Text("d.lt"), total(0), total(1),
			p.d.Text("d.rt"), p.breakDiff(b, "d.lt", "d.rt"), keys(0), keys(1)))
	}
	if len(parts) == 0 {
		return nil
	}
	return p.d.CreateTableAs(BreaksTable, strings.Join(parts, "\nUNION ALL\n"))
}

// sumsMayDiffer reports whether a group pair of grouped pass k can show a
// break on b's columns. When those columns are the pass's tolerance and
// every pair it chose had a zero difference (Execute checks o_amount, the
// difference of the very sums compared here, exact for integers and
// decimals), none can, and the sums need not be computed again.
func (p *Plan) sumsMayDiffer(b *breakCol, k int) bool {
	tol := p.passes[k].tol
	if !p.sumsEqual[k] || tol == nil || tol.col[0].Name != b.col[0].Name || tol.col[1].Name != b.col[1].Name {
		return true
	}
	for s := range 2 {
		if c := b.col[s].class; c != classInt && c != classDecimal {
			return true
		}
	}
	return false
}

func intList(xs []int) string {
	s := make([]string, len(xs))
	for i, x := range xs {
		s[i] = fmt.Sprint(x)
	}
	return strings.Join(s, ", ")
}

// BreaksQuery selects the breaks as written to breaks.parquet: ordered by
// column, then left and right record.
func (p *Plan) BreaksQuery() string {
	return fmt.Sprintf("SELECT left_column, right_column, _rule, _left_key, _right_key, left_value, right_value, difference, _left_row, _right_row FROM %s ORDER BY __kalla_col, __kalla_o1, __kalla_o2", BreaksTable)
}

// Report counts what each rule matched, how unmatched records were
// explained, and the breaks per compared column with samples:
// ReportCounts, then ReportDetails.
func (p *Plan) Report(ctx context.Context, db DB) (*kalla.RulesReport, error) {
	rep, err := p.ReportCounts(ctx, db)
	if err != nil {
		return nil, err
	}
	if err := p.ReportDetails(ctx, db, rep); err != nil {
		return nil, err
	}
	return rep, nil
}

// ReportCounts is the part of the report that writing the files needs:
// the pairs and records of each rule, and the differing values of each
// compared column (the rows of the break file). ReportDetails adds the
// rest; the engine runs it beside the writes, which only read what it
// reads.
func (p *Plan) ReportCounts(ctx context.Context, db DB) (*kalla.RulesReport, error) {
	rep := &kalla.RulesReport{Rules: []kalla.RuleStats{}, Breaks: []kalla.BreakColumn{}, Reasons: map[string]map[string]int64{}}
	for _, ps := range p.passes {
		rep.Rules = append(rep.Rules, kalla.RuleStats{Name: ps.rule.Name, Pattern: ps.pattern})
	}
	// From the narrow pairs table: the same rows as the match table. The
	// records each pass matched were counted as it ran.
	err := db.Query(ctx, fmt.Sprintf(`SELECT pass, count(*),
  count(*) FILTER (WHERE %[1]s = '%[2]s'), count(*) FILTER (WHERE %[1]s = '%[3]s') FROM %[4]s p GROUP BY pass`, p.status("p"), StatusConfirmed, StatusSuggested, pairsTable),
		func(r Row) error {
			var k int
			var st kalla.RuleStats
			if err := r.Scan(&k, &st.Pairs, &st.Confirmed, &st.Suggested); err != nil {
				return err
			}
			if k >= len(p.records) {
				return fmt.Errorf("pass %d has pairs but no record counts: Execute did not run", k)
			}
			st.Name, st.Pattern = rep.Rules[k].Name, rep.Rules[k].Pattern
			st.LeftRecords, st.RightRecords = p.records[k][0], p.records[k][1]
			rep.Rules[k] = st
			return nil
		})
	if err != nil {
		return nil, fmt.Errorf("rules: count matches per rule: %w", err)
	}
	for _, b := range p.breakCols() {
		rep.Breaks = append(rep.Breaks, kalla.BreakColumn{LeftColumn: b.col[0].Name, RightColumn: b.col[1].Name, Samples: []kalla.BreakSample{}})
	}
	if len(rep.Breaks) == 0 {
		return rep, nil
	}
	// The total is summed exactly: each difference (a DOUBLE, exact to
	// its 15 digits) rounded to 10 decimals first. A sum of DOUBLEs
	// depends on the order the engine adds them in (9.81 on DuckDB,
	// 9.809999999999999 on Spark reading Parquet parts, rules_tolerance).
	err = db.Query(ctx, fmt.Sprintf("SELECT __kalla_col, count(*), max(abs(difference)), CAST(sum(CAST(abs(difference) AS DECIMAL(38,10))) AS DOUBLE) FROM %s GROUP BY __kalla_col", BreaksTable), func(r Row) error {
		var k int
		var n int64
		var mx, tot sql.NullFloat64
		if err := r.Scan(&k, &n, &mx, &tot); err != nil {
			return err
		}
		b := &rep.Breaks[k]
		b.Differing = n
		if mx.Valid {
			b.MaxDifference, b.TotalDifference = &mx.Float64, &tot.Float64
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("rules: summarise breaks: %w", err)
	}
	return rep, nil
}

// ReportDetails completes a report ReportCounts made: the reasons of the
// unmatched records by kind, a few of them, how many pairs each column
// compared, and its largest differences.
func (p *Plan) ReportDetails(ctx context.Context, db DB, rep *kalla.RulesReport) error {
	// Both sides in one query each (kinds, samples): each query is a
	// round trip, and on Spark a job.
	sides := []string{"left", "right"}
	err := db.Query(ctx, fmt.Sprintf("SELECT 0 AS s, kind, count(*) FROM %s GROUP BY kind UNION ALL SELECT 1 AS s, kind, count(*) FROM %s GROUP BY kind", ReasonLeft, ReasonRight), func(r Row) error {
		var s int
		var k string
		var n int64
		if err := r.Scan(&s, &k, &n); err != nil {
			return err
		}
		if rep.Reasons[sides[s]] == nil {
			rep.Reasons[sides[s]] = map[string]int64{}
		}
		rep.Reasons[sides[s]][k] = n
		return nil
	})
	if err != nil {
		return fmt.Errorf("rules: count reasons: %w", err)
	}
	rep.UnmatchedSamples = map[string][]kalla.UnmatchedSample{}
	var samples []string
	for s, t := range []string{ReasonLeft, ReasonRight} {
		side := p.side(s)
		// The first records are chosen before the join, which then looks
		// up a handful of rows instead of every unmatched one.
		samples = append(samples, fmt.Sprintf("SELECT %d AS s, x.rid + 1 AS r, %s AS k, x.reason, coalesce(x.closest, '') AS c FROM (SELECT * FROM %s ORDER BY rid LIMIT %d) x JOIN %s v ON v.%s = x.rid",
			s, p.pkText(s, "v"), t, unmatchedSamples, p.d.Ident(side.View), p.d.Ident(side.RID)))
	}
	err = db.Query(ctx, strings.Join(samples, " UNION ALL ")+" ORDER BY s, r", func(r Row) error {
		var s int
		var u kalla.UnmatchedSample
		if err := r.Scan(&s, &u.Row, &u.Key, &u.Reason, &u.ClosestCandidate); err != nil {
			return err
		}
		rep.UnmatchedSamples[sides[s]] = append(rep.UnmatchedSamples[sides[s]], u)
		return nil
	})
	if err != nil {
		return fmt.Errorf("rules: sample unmatched records: %w", err)
	}
	cols := p.breakCols()
	if len(cols) == 0 {
		return nil
	}
	// A column is compared once per pair of the passes that compare
	// records, counted per pass above (the match table has a row per
	// pair), and once per group pair of the grouped passes that compare
	// sums, which only a query over those passes' pairs counts. Columns
	// compared the same way (most) share that query: each is a round
	// trip, and on Spark a job. (Counting every pass's pairs again took
	// 1.7 s at 50M under a memory limit, the pairs spilled by then.)
	counted := map[string]int64{}
	for i, b := range cols {
		var n int64
		for k, st := range rep.Rules {
			if !slices.Contains(b.sums, k) {
				n += st.Pairs
			}
		}
		if len(b.sums) > 0 {
			q := fmt.Sprintf("SELECT count(*) FROM (SELECT DISTINCT __kalla_ua, __kalla_ub FROM %s WHERE __kalla_pass IN (%s)) x", MatchTable, intList(b.sums))
			units, ok := counted[q]
			if !ok {
				var err error
				if units, err = scalar(ctx, db, q); err != nil {
					return fmt.Errorf("rules: count compared pairs: %w", err)
				}
				counted[q] = units
			}
			n += units
		}
		rep.Breaks[i].Compared = n
	}
	// The largest differences of each column: a top-N per column, which
	// keeps a few rows instead of ordering every break.
	const order = "abs(difference) DESC NULLS LAST, __kalla_o1, __kalla_o2"
	tops := make([]string, len(cols))
	for i := range cols {
		tops[i] = fmt.Sprintf("(SELECT __kalla_col, _rule, _left_key, _right_key, left_value, right_value, difference, __kalla_o1, __kalla_o2 FROM %s WHERE __kalla_col = %d ORDER BY %s LIMIT %d)",
			BreaksTable, i, order, breakSamples)
	}
	err = db.Query(ctx, fmt.Sprintf(`SELECT __kalla_col, _rule, _left_key, _right_key, left_value, right_value, difference FROM (%s)
ORDER BY __kalla_col, %s`, strings.Join(tops, "\nUNION ALL\n"), order), func(r Row) error {
		var k int
		var s kalla.BreakSample
		var lk, rk sql.NullString
		var lv, rv sql.NullString
		var d sql.NullFloat64
		if err := r.Scan(&k, &s.Rule, &lk, &rk, &lv, &rv, &d); err != nil {
			return err
		}
		s.LeftKey, s.RightKey = lk.String, rk.String
		if lv.Valid {
			s.LeftValue = &lv.String
		}
		if rv.Valid {
			s.RightValue = &rv.String
		}
		if d.Valid {
			s.Difference = &d.Float64
		}
		rep.Breaks[k].Samples = append(rep.Breaks[k].Samples, s)
		return nil
	})
	if err != nil {
		return fmt.Errorf("rules: sample breaks: %w", err)
	}
	return nil
}
