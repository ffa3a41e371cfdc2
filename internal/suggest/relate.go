package suggest

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math"
	"regexp"
	"sort"
	"strings"

	"github.com/kalla-recon/kalla/internal/engine"
	"github.com/kalla-recon/kalla/internal/kalla"
)

// examples are the confirmed pairs found in the staged sides, in table
// __kalla_ex (lrid, rrid, comp): comp numbers the connected groups of
// records the examples tie together (a pair; an invoice and its parts; a
// batch).
type examples struct {
	n       int64  // example pairs found on both sides
	groups  int64  // connected groups
	pattern string // 1:1, 1:N, N:1 or N:M
	maxL    int64  // most right records paired with one left record
	maxR    int64  // most left records paired with one right record
	notes   []string
}

const exTable = "__kalla_ex"

// loadExamples finds the example pairs' records by key and works out the
// pattern they show.
func loadExamples(ctx context.Context, in *engine.Inspection, l, r *side, pairs [][2]string) (*examples, error) {
	if _, err := in.ExecContext(ctx, "CREATE OR REPLACE TABLE __kalla_examples (lk VARCHAR, rk VARCHAR)"); err != nil {
		return nil, fmt.Errorf("load examples: %w", err)
	}
	const batch = 500
	for i := 0; i < len(pairs); i += batch {
		part := pairs[i:min(i+batch, len(pairs))]
		var vals []string
		var args []any
		for j, p := range part {
			vals = append(vals, fmt.Sprintf("($%d, $%d)", 2*j+1, 2*j+2))
			args = append(args, p[0], p[1])
		}
		if _, err := in.ExecContext(ctx, "INSERT INTO __kalla_examples VALUES "+strings.Join(vals, ", "), args...); err != nil {
			return nil, fmt.Errorf("load examples: %w", err)
		}
	}
	q := fmt.Sprintf(`CREATE OR REPLACE TABLE %s AS SELECT DISTINCT l.__kalla_left_rid AS lrid, r.__kalla_right_rid AS rrid, 0 AS comp
FROM __kalla_examples e JOIN %s l ON CAST(l.%s AS VARCHAR) = e.lk JOIN %s r ON CAST(r.%s AS VARCHAR) = e.rk`, exTable, qi(l.view), qi(l.key), qi(r.view), qi(r.key))
	if _, err := in.ExecContext(ctx, q); err != nil {
		return nil, fmt.Errorf("find examples: %w", err)
	}
	ex := &examples{}
	var missing int64
	err := scalarRow(ctx, in, fmt.Sprintf(`SELECT (SELECT count(*) FROM %[1]s),
  (SELECT count(*) FROM __kalla_examples e WHERE NOT EXISTS (SELECT 1 FROM %[2]s l WHERE CAST(l.%[3]s AS VARCHAR) = e.lk) OR NOT EXISTS (SELECT 1 FROM %[4]s r WHERE CAST(r.%[5]s AS VARCHAR) = e.rk)),
  (SELECT coalesce(max(n), 0) FROM (SELECT count(*) AS n FROM %[1]s GROUP BY lrid)),
  (SELECT coalesce(max(n), 0) FROM (SELECT count(*) AS n FROM %[1]s GROUP BY rrid))`, exTable, qi(l.view), qi(l.key), qi(r.view), qi(r.key)),
		&ex.n, &missing, &ex.maxL, &ex.maxR)
	if err != nil {
		return nil, fmt.Errorf("count examples: %w", err)
	}
	if missing > 0 {
		ex.notes = append(ex.notes, fmt.Sprintf("%d of %d example pairs name a key that is not in %s or %s; they were ignored", missing, len(pairs), l.spec.Alias, r.spec.Alias))
	}
	if ex.n == 0 {
		return nil, kalla.Errorf(kalla.EINVALID, "none of the %d example pairs was found: the pairs file needs %s values of %s and %s values of %s", len(pairs), l.key, l.spec.Alias, r.key, r.spec.Alias)
	}
	if err := ex.connect(ctx, in); err != nil {
		return nil, err
	}
	switch {
	case ex.maxL > 1 && ex.maxR > 1:
		ex.pattern = kalla.PatternNtoM
	case ex.maxL > 1:
		ex.pattern = kalla.Pattern1toN
	case ex.maxR > 1:
		ex.pattern = kalla.PatternNto1
	default:
		ex.pattern = kalla.Pattern1to1
	}
	ex.notes = append(ex.notes, fmt.Sprintf("%d example pairs in %d groups: pattern %s (at most %d %s records per %s record, %d %s per %s)",
		ex.n, ex.groups, ex.pattern, ex.maxL, r.spec.Alias, l.spec.Alias, ex.maxR, l.spec.Alias, r.spec.Alias))
	return ex, nil
}

// connect numbers the connected groups of the example pairs (union-find;
// examples are few).
func (ex *examples) connect(ctx context.Context, in *engine.Inspection) error {
	rows, err := in.QueryContext(ctx, "SELECT lrid, rrid FROM "+exTable+" ORDER BY lrid, rrid")
	if err != nil {
		return fmt.Errorf("read examples: %w", err)
	}
	parent := map[string]string{}
	var find func(string) string
	find = func(x string) string {
		if p, ok := parent[x]; ok && p != x {
			parent[x] = find(p)
			return parent[x]
		}
		parent[x] = x
		return x
	}
	var edges [][2]int64
	for rows.Next() {
		var a, b int64
		if err := rows.Scan(&a, &b); err != nil {
			rows.Close()
			return err
		}
		edges = append(edges, [2]int64{a, b})
		ra, rb := find(fmt.Sprint("l", a)), find(fmt.Sprint("r", b))
		if ra != rb {
			parent[rb] = ra
		}
	}
	if err := errors.Join(rows.Err(), rows.Close()); err != nil {
		return fmt.Errorf("read examples: %w", err)
	}
	ids := map[string]int{}
	var vals []string
	for _, e := range edges {
		root := find(fmt.Sprint("l", e[0]))
		if _, ok := ids[root]; !ok {
			ids[root] = len(ids)
		}
		vals = append(vals, fmt.Sprintf("(%d, %d, %d)", e[0], e[1], ids[root]))
	}
	ex.groups = int64(len(ids))
	q := fmt.Sprintf("CREATE OR REPLACE TABLE %s AS SELECT * FROM (VALUES %s) t(lrid, rrid, comp)", exTable, strings.Join(vals, ", "))
	if _, err := in.ExecContext(ctx, q); err != nil {
		return fmt.Errorf("group examples: %w", err)
	}
	return nil
}

// relation is what a left and a right column have in common.
type relation struct {
	l, r  kalla.Column
	li    int
	kind  string // text, number, date
	names float64
	score float64
	// text
	eq       bool // equal after norm/strip in every example (or in shared values)
	norm     []string
	strip    [2]string // strip_left, strip_right
	fuzzy    float64   // lowest similarity of the examples, when not equal
	shared   float64   // share of values found on the other side (no examples)
	keyLike  float64   // distinct share of the more distinct column
	contains bool
	// back is the share of the right column's distinct values found in
	// the left column (no examples); pk is set when one column is its
	// side's unique key and the other column's values are mostly found
	// among that key's values: a reference to the other side's records,
	// the strongest link there is.
	back float64
	pk   bool
	// category is set when both columns hold few distinct values for
	// their rows (a currency, a customer): such a pair may narrow a rule
	// but never links records on its own.
	category bool
	// number
	exact         bool
	maxAbs, share float64 // largest |diff| and |diff| / |left| (groups: sums)
	// date
	minDays, maxDays float64
	evidence         string
}

func (x *relation) pairing() Pairing {
	return Pairing{Left: x.l.Name, Right: x.r.Name, Kind: x.kind, Score: math.Round(x.score*100) / 100, Evidence: x.evidence,
		Key: x.pk, Category: x.category}
}

// how says briefly how the columns relate.
func (x *relation) how() string {
	switch x.kind {
	case "text":
		switch {
		case x.eq && x.strip != [2]string{}:
			return "equal after stripping"
		case x.eq && len(x.norm) > 0:
			return "equal after " + strings.Join(x.norm, ", ")
		case x.eq:
			return "equal"
		case x.contains:
			return "contained"
		case x.fuzzy > 0:
			return "similar"
		}
		return "shared values"
	case "number":
		if x.exact {
			return "equal amounts"
		}
		return "amounts"
	}
	return "dates"
}

func isInt(t string) bool {
	switch strings.ToUpper(t) {
	case "TINYINT", "SMALLINT", "INTEGER", "BIGINT", "HUGEINT", "UTINYINT", "USMALLINT", "UINTEGER", "UBIGINT":
		return true
	}
	return false
}

// relate measures every plausible column pair and keeps those that relate.
func relate(ctx context.Context, in *engine.Inspection, l, r *side, ex *examples) ([]*relation, error) {
	var out []*relation
	for i, lc := range l.cols {
		for j, rc := range r.cols {
			kind := ""
			switch lk, rk := l.kind[i], r.kind[j]; {
			case lk == "text" && (rk == "text" || isInt(rc.EngineType)), rk == "text" && isInt(lc.EngineType), isInt(lc.EngineType) && isInt(rc.EngineType):
				kind = "text"
			case lk == "number" && rk == "number":
				kind = "number"
			case lk == "date" && rk == "date":
				kind = "date"
			default:
				continue
			}
			// Key-like: one side's values mostly distinct (the other side of
			// a split or a batch repeats them).
			keyLike := math.Max(float64(l.dist[i])/math.Max(1, float64(l.rows)), float64(r.dist[j])/math.Max(1, float64(r.rows)))
			x := &relation{l: lc, r: rc, li: i, kind: kind, names: nameSimilarity(lc.Name, rc.Name), keyLike: keyLike}
			// A category: few distinct values for the rows that have one,
			// on both sides (3 currencies in 15 rows, 5 customers).
			lr, rr := l.distinctShare(i), r.distinctShare(j)
			x.category = kind == "text" && lr < categoryShare && rr < categoryShare
			var err error
			var ok bool
			switch {
			case ex != nil:
				ok, err = x.fromExamples(ctx, in, l, r, ex)
			default:
				ok, err = x.fromData(ctx, in, l, r)
			}
			if err != nil {
				return nil, fmt.Errorf("compare %s with %s: %w", lc.Name, rc.Name, err)
			}
			if ok {
				if x.category {
					x.score -= 1
					x.evidence += fmt.Sprintf("; few distinct values (%d in %d %s rows, %d in %d %s rows): a category, never a link on its own",
						l.dist[i], l.rows-l.nulls[i], l.spec.Alias, r.dist[j], r.rows-r.nulls[j], r.spec.Alias)
				}
				out = append(out, x)
			}
		}
	}
	sort.SliceStable(out, func(a, b int) bool {
		if out[a].li != out[b].li {
			return out[a].li < out[b].li
		}
		return out[a].score > out[b].score
	})
	return out, nil
}

// exJoin is the example pairs joined to both records.
func exJoin(l, r *side) string {
	return fmt.Sprintf("%s e JOIN %s l ON l.__kalla_left_rid = e.lrid JOIN %s r ON r.__kalla_right_rid = e.rrid", exTable, qi(l.view), qi(r.view))
}

// shapeRegexp turns the text around a contained value ("-PART3", "BATCH-")
// into a pattern that removes it: digits become [0-9]+.
func shapeRegexp(prefix, suffix string) string {
	re := func(s string) string { return strings.ReplaceAll(regexp.QuoteMeta(s), "#", "[0-9]+") }
	var parts []string
	if prefix != "" {
		parts = append(parts, "^"+re(prefix))
	}
	if suffix != "" {
		parts = append(parts, re(suffix)+"$")
	}
	return strings.Join(parts, "|")
}

// fromExamples measures a column pair over the example pairs.
func (x *relation) fromExamples(ctx context.Context, in *engine.Inspection, l, r *side, ex *examples) (bool, error) {
	lv, rv := "l."+qi(x.l.Name), "r."+qi(x.r.Name)
	switch x.kind {
	case "text":
		a, b := "CAST("+lv+" AS VARCHAR)", "CAST("+rv+" AS VARCHAR)"
		fold := func(s string) string { return "lower(trim(" + s + "))" }
		an := func(s string) string { return `regexp_replace(lower(` + s + `), '[^\p{L}\p{N}]', '', 'g')` }
		shape := func(s string) string { return "regexp_replace(" + s + ", '[0-9]+', '#', 'g')" }
		around := func(hay, needle string) string {
			return fmt.Sprintf("%s || '\x1f' || %s", shape(fmt.Sprintf("substr(%s, 1, strpos(%s, %s) - 1)", hay, hay, needle)), shape(fmt.Sprintf("substr(%s, strpos(%s, %s) + length(%s))", hay, hay, needle, needle)))
		}
		var n, raw, folded, alnum, inR, inL int64
		var shapesR, shapesL sql.NullString
		var jw sql.NullFloat64
		q := fmt.Sprintf(`SELECT count(*), count(*) FILTER (WHERE %[1]s = %[2]s), count(*) FILTER (WHERE %[3]s = %[4]s), count(*) FILTER (WHERE %[5]s = %[6]s AND %[5]s <> ''),
  count(*) FILTER (WHERE strpos(%[2]s, %[1]s) > 0 AND %[1]s <> ''), count(*) FILTER (WHERE strpos(%[1]s, %[2]s) > 0 AND %[2]s <> ''),
  string_agg(DISTINCT %[7]s, '\x1e') FILTER (WHERE strpos(%[2]s, %[1]s) > 0 AND %[1]s <> '' AND %[1]s <> %[2]s),
  string_agg(DISTINCT %[8]s, '\x1e') FILTER (WHERE strpos(%[1]s, %[2]s) > 0 AND %[2]s <> '' AND %[1]s <> %[2]s),
  min(jaro_winkler_similarity(%[3]s, %[4]s))
FROM %[9]s`, a, b, fold(a), fold(b), an(a), an(b), around(b, a), around(a, b), exJoin(l, r))
		if err := scalarRow(ctx, in, q, &n, &raw, &folded, &alnum, &inR, &inL, &shapesR, &shapesL, &jw); err != nil {
			return false, err
		}
		all := func(k int64) bool { return n > 0 && k == n }
		one := func(s sql.NullString) (string, string, bool) {
			if !s.Valid || strings.Contains(s.String, "\x1e") {
				return "", "", false
			}
			p, q, _ := strings.Cut(s.String, "\x1f")
			return p, q, true
		}
		switch {
		case all(raw):
			x.eq, x.evidence = true, fmt.Sprintf("%s equals %s in all %d example pairs", x.r.Name, x.l.Name, n)
		case all(folded):
			x.eq, x.norm = true, []string{kalla.NormTrim, kalla.NormCaseFold}
			x.evidence = fmt.Sprintf("%s equals %s ignoring case and blanks in all %d example pairs (%d exactly)", x.r.Name, x.l.Name, n, raw)
		case all(alnum):
			x.eq, x.norm = true, []string{kalla.NormTrim, kalla.NormCaseFold, kalla.NormAlnum}
			x.evidence = fmt.Sprintf("%s equals %s on letters and digits in all %d example pairs (%d exactly)", x.r.Name, x.l.Name, n, raw)
		case all(inR):
			if p, s, ok := one(shapesR); ok {
				x.eq, x.strip[1] = true, shapeRegexp(p, s)
				x.evidence = fmt.Sprintf("%s is %s with %q removed in all %d example pairs (%d exactly equal)", x.l.Name, x.r.Name, x.strip[1], n, raw)
			} else {
				x.contains = true
				x.evidence = fmt.Sprintf("%s contains %s in all %d example pairs", x.r.Name, x.l.Name, n)
			}
		case all(inL):
			if p, s, ok := one(shapesL); ok {
				x.eq, x.strip[0] = true, shapeRegexp(p, s)
				x.evidence = fmt.Sprintf("%s is %s with %q removed in all %d example pairs (%d exactly equal)", x.r.Name, x.l.Name, x.strip[0], n, raw)
			} else {
				x.contains = true
				x.evidence = fmt.Sprintf("%s contains %s in all %d example pairs", x.l.Name, x.r.Name, n)
			}
		case jw.Valid && jw.Float64 >= 0.8:
			x.fuzzy = jw.Float64
			x.evidence = fmt.Sprintf("%s and %s are similar (Jaro-Winkler ≥ %.2f, case folded) in all %d example pairs", x.l.Name, x.r.Name, jw.Float64, n)
		default:
			return false, nil
		}
		x.score = 1 + x.names + x.keyLike
		if !x.eq {
			x.score -= 0.5
		}
		return true, nil
	case "number":
		// Per connected group: the sum of its distinct left records against
		// the sum of its distinct right records (a pair is a group of two).
		var n, exact int64
		var maxAbs, share sql.NullFloat64
		q := fmt.Sprintf(`WITH ls AS (SELECT comp, sum(v) AS v FROM (SELECT DISTINCT e.comp, e.lrid, CAST(%[1]s AS DECIMAL(38,10)) AS v FROM %[3]s) GROUP BY comp),
  rs AS (SELECT comp, sum(v) AS v FROM (SELECT DISTINCT e.comp, e.rrid, CAST(%[2]s AS DECIMAL(38,10)) AS v FROM %[3]s) GROUP BY comp)
SELECT count(*), count(*) FILTER (WHERE ls.v = rs.v), max(abs(CAST(ls.v - rs.v AS DOUBLE))), max(abs(CAST(ls.v - rs.v AS DOUBLE)) / nullif(abs(CAST(ls.v AS DOUBLE)), 0))
FROM ls JOIN rs USING (comp)`, lv, rv, exJoin(l, r))
		if err := scalarRow(ctx, in, q, &n, &exact, &maxAbs, &share); err != nil {
			return false, err
		}
		if n == 0 || !share.Valid || share.Float64 > 0.2 {
			return false, nil // not the same amount, or not comparable
		}
		x.maxAbs, x.share, x.exact = maxAbs.Float64, share.Float64, exact == n
		unit := "example pairs"
		if ex.pattern != kalla.Pattern1to1 {
			unit = "example groups (sums)"
		}
		if x.exact {
			x.evidence = fmt.Sprintf("%s equals %s in all %d %s", x.r.Name, x.l.Name, n, unit)
		} else {
			x.evidence = fmt.Sprintf("%s differs from %s by at most %.2f (%.2f %%) in %d %s, %d exactly equal", x.r.Name, x.l.Name, x.maxAbs, 100*x.share, n, unit, exact)
		}
		x.score = 1 + x.names - x.share
		return true, nil
	default:
		var n int64
		var lo, hi sql.NullFloat64
		q := fmt.Sprintf("SELECT count(*), min(d), max(d) FROM (SELECT (epoch(CAST(%s AS TIMESTAMP)) - epoch(CAST(%s AS TIMESTAMP))) / 86400.0 AS d FROM %s)", rv, lv, exJoin(l, r))
		if err := scalarRow(ctx, in, q, &n, &lo, &hi); err != nil {
			return false, err
		}
		if !lo.Valid || math.Max(math.Abs(lo.Float64), math.Abs(hi.Float64)) > 366 {
			return false, nil
		}
		x.minDays, x.maxDays = lo.Float64, hi.Float64
		x.evidence = fmt.Sprintf("%s is %s to %s days after %s in %d example pairs", x.r.Name, days(lo.Float64), days(hi.Float64), x.l.Name, n)
		x.score = 1 + x.names - math.Max(math.Abs(lo.Float64), math.Abs(hi.Float64))/366
		return true, nil
	}
}

func days(d float64) string {
	if d == math.Trunc(d) {
		return fmt.Sprint(int64(d))
	}
	return fmt.Sprintf("%.1f", d)
}

// fromData measures a column pair without examples: how many of the left
// column's values appear on the right.
func (x *relation) fromData(ctx context.Context, in *engine.Inspection, l, r *side) (bool, error) {
	switch x.kind {
	case "date":
		if x.names < 0.5 {
			return false, nil
		}
		x.score = x.names
		x.evidence = fmt.Sprintf("both are dates with similar names (%.2f)", x.names)
		return true, nil
	}
	norm := func(c string) string { return "lower(trim(CAST(" + qi(c) + " AS VARCHAR)))" }
	if x.kind == "number" {
		norm = func(c string) string { return "CAST(" + qi(c) + " AS DECIMAL(38,10))" }
	}
	const sample = 20000
	var n, found int64
	q := fmt.Sprintf(`SELECT count(*), count(b.v) FROM (SELECT DISTINCT %s AS v FROM %s WHERE %s IS NOT NULL ORDER BY v LIMIT %d) a
LEFT JOIN (SELECT DISTINCT %s AS v FROM %s) b ON a.v = b.v`, norm(x.l.Name), qi(l.view), qi(x.l.Name), sample, norm(x.r.Name), qi(r.view))
	if err := scalarRow(ctx, in, q, &n, &found); err != nil {
		return false, err
	}
	if n == 0 {
		return false, nil
	}
	x.shared = float64(found) / float64(n)
	switch x.kind {
	case "text":
		// The other way round: how many of the right column's values are
		// left values. A reference to the other side's key may cover few
		// of its records (300 ledger lines against 2,000 invoices) and
		// still be the link.
		var rn, rfound int64
		q := fmt.Sprintf(`SELECT count(*), count(b.v) FROM (SELECT DISTINCT %s AS v FROM %s WHERE %s IS NOT NULL ORDER BY v LIMIT %d) a
LEFT JOIN (SELECT DISTINCT %s AS v FROM %s) b ON a.v = b.v`, norm(x.r.Name), qi(r.view), qi(x.r.Name), sample, norm(x.l.Name), qi(l.view))
		if err := scalarRow(ctx, in, q, &rn, &rfound); err != nil {
			return false, err
		}
		if rn > 0 {
			x.back = float64(rfound) / float64(rn)
		}
		pkL := x.l.Name == l.key && l.unique(x.l.Name) && x.back >= 0.5
		pkR := x.r.Name == r.key && r.unique(x.r.Name) && x.shared >= 0.5
		if x.shared < 0.2 && !pkL && !pkR {
			// Perhaps one side adds a prefix or suffix (INV-1-PART2, BATCH-B001).
			for s := range 2 {
				ok, err := x.affixed(ctx, in, l, r, s)
				if err != nil || ok {
					return ok, err
				}
			}
			return false, nil
		}
		x.eq, x.norm = true, []string{kalla.NormTrim, kalla.NormCaseFold}
		x.evidence = fmt.Sprintf("%.0f %% of the %d sampled %s values (ignoring case and blanks) are %s values", 100*x.shared, n, x.l.Name, x.r.Name)
		x.score = x.shared + x.names + x.keyLike
		switch {
		case pkL:
			x.pk = true
			x.evidence = fmt.Sprintf("%.0f %% of the %d %s values are values of %s, the key of %s: a reference to its records", 100*x.back, rn, x.r.Name, x.l.Name, l.spec.Alias)
		case pkR:
			x.pk = true
			x.evidence = fmt.Sprintf("%.0f %% of the %d %s values are values of %s, the key of %s: a reference to its records", 100*x.shared, n, x.l.Name, x.r.Name, r.spec.Alias)
		}
		if x.pk {
			x.score += 2
		}
	case "number":
		if x.shared < 0.2 && x.names < 0.6 {
			return false, nil
		}
		x.evidence = fmt.Sprintf("%.0f %% of the %d sampled %s amounts appear as %s", 100*x.shared, n, x.l.Name, x.r.Name)
		x.score = x.shared + x.names
	}
	return true, nil
}

// categoryShare is the distinct share below which a column holds a
// category: fewer distinct values than half its rows.
const categoryShare = 0.5

// distinctShare is column i's distinct values per row that has one.
func (s *side) distinctShare(i int) float64 {
	return float64(s.dist[i]) / math.Max(1, float64(s.rows-s.nulls[i]))
}

// unique reports whether a column is unique and never empty on the side.
func (s *side) unique(name string) bool {
	i := kalla.FindColumn(s.cols, name)
	return i >= 0 && s.dist[i] == s.rows && s.nulls[i] == 0
}

// synonyms group column-name words that mean the same in reconciliation.
var synonyms = [][]string{
	{"amount", "amt", "total", "paid", "value", "sum", "gross", "net", "price"},
	{"date", "dt", "on", "at", "issued", "booked", "posted", "paid", "value", "due", "day"},
	{"ref", "reference", "invoice", "inv", "number", "no", "nr", "num", "id", "memo", "document", "doc"},
	{"customer", "client", "payer", "payee", "party", "name", "company", "vendor", "supplier", "account"},
	{"currency", "ccy", "cur"},
}

var wordSplit = regexp.MustCompile(`[^a-z0-9]+`)

func words(name string) []string {
	var out []string
	for _, w := range wordSplit.Split(strings.ToLower(name), -1) {
		if w != "" {
			out = append(out, w)
		}
	}
	return out
}

// nameSimilarity scores two column names in [0, 1]: 1 for the same name,
// high for shared or synonymous words.
func nameSimilarity(a, b string) float64 {
	if strings.EqualFold(a, b) {
		return 1
	}
	wa, wb := words(a), words(b)
	best := 0.0
	for _, x := range wa {
		for _, y := range wb {
			s := 0.0
			if x == y {
				s = 0.9
			} else {
				for _, g := range synonyms {
					if containsStr(g, x) && containsStr(g, y) {
						s = 0.7
					}
				}
			}
			best = math.Max(best, s)
		}
	}
	return best
}

func containsStr(xs []string, x string) bool {
	for _, y := range xs {
		if y == x {
			return true
		}
	}
	return false
}

// affixes are the shapes of prefixes and suffixes that references carry:
// "-PART2", "/3", " #12" at the end; "BATCH-", "REF " at the start.
const (
	suffixShape = `([-_/ .#]*[A-Za-z]*[0-9]+)$`
	prefixShape = `^([A-Za-z]+[-_/ .#]*)`
)

// affixed checks whether side s's values (0 left, 1 right) are the other
// side's values with a prefix or suffix of one consistent shape, and if so
// makes the relation an eq that strips it. Without examples this is how a
// split payment's "INV-1-PART2" is tied to "INV-1".
func (x *relation) affixed(ctx context.Context, in *engine.Inspection, l, r *side, s int) (bool, error) {
	hay, needle := r, l
	hc, nc := x.r.Name, x.l.Name
	if s == 0 {
		hay, needle, hc, nc = l, r, x.l.Name, x.r.Name
	}
	const sample = 20000
	for _, a := range []struct{ re, kind string }{{suffixShape, "suffix"}, {prefixShape, "prefix"}} {
		stem := "left(v, length(v) - length(regexp_extract(v, '" + a.re + "', 1)))"
		if a.kind == "prefix" {
			stem = "substr(v, length(regexp_extract(v, '" + a.re + "', 1)) + 1)"
		}
		var shape sql.NullString
		var n, found int64
		q := fmt.Sprintf(`WITH h AS (SELECT DISTINCT CAST(%s AS VARCHAR) AS v FROM %s WHERE %s IS NOT NULL ORDER BY v LIMIT %d),
  s AS (SELECT regexp_replace(regexp_extract(v, '%s', 1), '[0-9]+', '#', 'g') AS shape, %s AS stem FROM h WHERE regexp_matches(v, '%s'))
SELECT (SELECT count(*) FROM h), (SELECT shape FROM s SEMI JOIN (SELECT DISTINCT CAST(%s AS VARCHAR) AS stem FROM %s) USING (stem) GROUP BY shape ORDER BY count(*) DESC, shape LIMIT 1),
  (SELECT count(*) FROM s SEMI JOIN (SELECT DISTINCT CAST(%s AS VARCHAR) AS stem FROM %s) USING (stem))`,
			qi(hc), qi(hay.view), qi(hc), sample, a.re, stem, a.re, qi(nc), qi(needle.view), qi(nc), qi(needle.view))
		if err := scalarRow(ctx, in, q, &n, &shape, &found); err != nil {
			return false, err
		}
		if n == 0 || !shape.Valid || float64(found)/float64(n) < 0.2 {
			continue
		}
		x.shared = float64(found) / float64(n)
		x.eq = true
		if a.kind == "suffix" {
			x.strip[s] = shapeRegexp("", shape.String)
		} else {
			x.strip[s] = shapeRegexp(shape.String, "")
		}
		x.evidence = fmt.Sprintf("%.0f %% of the %d sampled %s values are %s values with a %s %q (removed by %q)", 100*x.shared, n, hc, nc, a.kind, shape.String, x.strip[s])
		x.score = x.shared + x.names + x.keyLike
		return true, nil
	}
	return false, nil
}
