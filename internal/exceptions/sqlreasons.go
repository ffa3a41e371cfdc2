package exceptions

import (
	"context"
	"database/sql"
	"fmt"
	"math/big"
	"slices"
	"strings"

	"github.com/kalla-recon/kalla/internal/dialect"
	"github.com/kalla-recon/kalla/internal/engine"
	"github.com/kalla-recon/kalla/internal/kalla"
)

// Limits of the closest-candidate search of a SQL recipe, as the rules'
// own search: a key shared by more pairs than this is not searched.
const (
	maxCandidatePairs = 2_000_000
	maxNamed          = 5
)

// sqlSide is one side's unmatched records loaded for the search.
type sqlSide struct {
	name, alias string
	table       string            // the loaded unmatched table
	pk          []string          // primary key, as the table spells it
	cols        map[string]string // lower-case name → the table's spelling
	typ         map[string]string // the table's spelling → DuckDB type
	items       []*kalla.ExceptionItem
	// The side's matched records (matched_left/matched_right, kept by runs
	// that ask for records) with each one's partner key: the table, ""
	// when the run kept none, and its columns as cols and typ are.
	mtable string
	mcols  map[string]string
	mtyp   map[string]string
}

func (s *sqlSide) col(name string) (string, bool) {
	c, ok := s.cols[strings.ToLower(name)]
	return c, ok
}

func (s *sqlSide) mcol(name string) (string, bool) {
	c, ok := s.mcols[strings.ToLower(name)]
	return c, ok
}

// pair is one comparison of the match SQL resolved against both tables:
// col[0] the left column, col[1] the right one.
type pair struct {
	engine.Comparison
	col  [2]string
	link bool // an eq pair that can name a candidate (not a currency)
	idx  int  // its place among the pairs
	tol  *big.Rat
}

func (p pair) words() string {
	if p.Op == engine.CompareTolerance {
		return fmt.Sprintf("tolerance_match(%s, %s, %s)", p.col[0], p.col[1], p.Tolerance)
	}
	return p.col[0] + " = " + p.col[1]
}

// sqlReasons gives each unmatched record of a SQL recipe's run a reason
// and its closest candidate(s) on the other side, searched in DuckDB over
// the run's own output files on the columns the match SQL compares
// (engine.ReadComparisons): equal keys first, then the amount difference.
// Candidates are the other side's unmatched records; of its matched
// records, every compared value when the run kept them whole (runs from
// the server do, and `kalla run --records`), else only the key values
// the pairs file tells (a primary key, or a key equal by the SQL to the
// partner's primary key). Every statement is one Kalla checked: where it
// cannot tell, it says so.
func sqlReasons(ctx context.Context, db *sql.DB, rec *kalla.RunRecord, outDir string, bySide map[string][]*kalla.ExceptionItem) error {
	r := &rec.Recipe
	mc, err := engine.ReadComparisons(ctx, r.MatchSQL, r.Sources.Left.Alias, r.Sources.Right.Alias)
	if err != nil {
		if ctx.Err() != nil {
			return fmt.Errorf("closest candidates: %w", ctx.Err())
		}
		for _, items := range bySide {
			for _, it := range items {
				it.Reason = "Kalla cannot tell why: it could not read the match SQL's conditions"
			}
		}
		return nil
	}
	sides := [2]*sqlSide{}
	for i, name := range []string{"left", "right"} {
		spec := r.Sources.Left
		if i == 1 {
			spec = r.Sources.Right
		}
		s := &sqlSide{name: name, alias: spec.Alias, table: "__kalla_unmatched_" + name, items: bySide[name],
			cols: map[string]string{}, typ: map[string]string{}}
		if s.alias == "" {
			s.alias = name
		}
		paths, format, ok := outputFile(rec.Summary, outDir, "unmatched_"+name)
		if ok {
			if err := loadTable(ctx, db, s.table, paths, format); err != nil {
				return err
			}
		} else if _, err := db.ExecContext(ctx, "CREATE OR REPLACE TEMP TABLE "+s.table+" AS SELECT NULL AS __none WHERE false"); err != nil {
			return fmt.Errorf("closest candidates: %w", err)
		}
		if err := describe(ctx, db, s.table, s.cols, s.typ); err != nil {
			return err
		}
		for _, k := range spec.PrimaryKey {
			c, ok := s.col(k)
			if !ok {
				c = k
			}
			s.pk = append(s.pk, c)
		}
		sides[i] = s
	}
	currency := [2]string{r.Sources.Left.CurrencyColumn, r.Sources.Right.CurrencyColumn}
	var pairs []pair
	unread := mc.Unread
	for _, c := range mc.Pairs {
		p := pair{Comparison: c}
		l, ok1 := sides[0].col(c.Left)
		rc, ok2 := sides[1].col(c.Right)
		if !ok1 || !ok2 {
			unread = append(unread, c.Left+" vs "+c.Right)
			continue
		}
		p.col = [2]string{l, rc}
		if c.Op == engine.CompareTolerance {
			t, ok := decimal(c.Tolerance)
			if !ok {
				unread = append(unread, p.words())
				continue
			}
			p.tol = t
		} else {
			p.link = !(currencyName(l) && currencyName(rc)) && !(strings.EqualFold(l, currency[0]) && strings.EqualFold(rc, currency[1]))
		}
		p.idx = len(pairs)
		pairs = append(pairs, p)
	}
	if err := loadMatchedRecords(ctx, db, rec, outDir, sides, pairs); err != nil {
		return err
	}
	var matched *table
	if paths, format, ok := outputFile(rec.Summary, outDir, kalla.TableMatched); ok {
		if matched, err = readOutput(ctx, db, paths, format); err != nil {
			return err
		}
	}
	for i := range 2 {
		if err := searchSide(ctx, db, sides[i], sides[1-i], i, pairs, unread, matched); err != nil {
			return err
		}
	}
	return nil
}

// loadMatchedRecords loads each side's matched records, when the run kept
// them (matched_left and matched_right beside the pairs), with the key of
// one record each was matched to (the first by row), so that a reason can
// name a matched record sharing any compared value, not only a key the
// pairs file carries. Only the columns the search reads are loaded: the
// row, the primary key and the columns the match SQL compares.
func loadMatchedRecords(ctx context.Context, db *sql.DB, rec *kalla.RunRecord, outDir string, sides [2]*sqlSide, pairs []pair) error {
	q := dialect.DuckDB.QuoteIdent
	var files [2]string
	for i, s := range sides {
		paths, format, ok := outputFile(rec.Summary, outDir, "matched_"+s.name)
		if !ok {
			return nil
		}
		files[i] = fileSource(paths, format)
	}
	paths, format, ok := outputFile(rec.Summary, outDir, kalla.TableMatched)
	if !ok {
		return nil
	}
	pairsFile := fileSource(paths, format)
	rows := [2]string{q(kalla.LeftRowColumn), q(kalla.RightRowColumn)}
	for i, s := range sides {
		o := sides[1-i]
		okey := make([]string, len(o.pk))
		for j, k := range o.pk {
			okey[j] = "CAST(p." + q(k) + " AS VARCHAR)"
		}
		cols := []string{"r." + rows[i]}
		seen := map[string]bool{strings.ToLower(rows[i]): true}
		for _, c := range slices.Concat(s.pk, pairColumns(pairs, i)) {
			if !seen[strings.ToLower(c)] {
				seen[strings.ToLower(c)] = true
				cols = append(cols, "r."+q(c))
			}
		}
		s.mtable = "__kalla_matched_" + s.name
		query := fmt.Sprintf(`CREATE OR REPLACE TEMP TABLE %s AS
SELECT %s, concat_ws('|', %s) AS __kalla_partner
FROM %s r JOIN %s m ON m.%s = r.%s JOIN %s p ON p.%s = m.%s
QUALIFY row_number() OVER (PARTITION BY r.%s ORDER BY p.%s) = 1`,
			s.mtable, strings.Join(cols, ", "), strings.Join(okey, ", "), files[i], pairsFile, rows[i], rows[i], files[1-i], rows[1-i], rows[1-i], rows[i], rows[1-i])
		if _, err := db.ExecContext(ctx, query); err != nil {
			return fmt.Errorf("closest candidates: load the matched %s records: %w", s.name, err)
		}
		s.mcols, s.mtyp = map[string]string{}, map[string]string{}
		if err := describe(ctx, db, s.mtable, s.mcols, s.mtyp); err != nil {
			return err
		}
	}
	return nil
}

// pairColumns lists side i's column of each comparison.
func pairColumns(pairs []pair, i int) []string {
	out := make([]string, len(pairs))
	for j, p := range pairs {
		out[j] = p.col[i]
	}
	return out
}

func loadTable(ctx context.Context, db *sql.DB, name string, paths []string, format string) error {
	if _, err := db.ExecContext(ctx, "CREATE OR REPLACE TEMP TABLE "+name+" AS SELECT * FROM "+fileSource(paths, format)); err != nil {
		return fmt.Errorf("closest candidates: load %s: %w", name, err)
	}
	return nil
}

func describe(ctx context.Context, db *sql.DB, table string, cols, typ map[string]string) error {
	rows, err := db.QueryContext(ctx, "SELECT column_name, data_type FROM duckdb_columns() WHERE table_name = ? ORDER BY column_index", table)
	if err != nil {
		return fmt.Errorf("closest candidates: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var n, t string
		if err := rows.Scan(&n, &t); err != nil {
			return fmt.Errorf("closest candidates: %w", err)
		}
		cols[strings.ToLower(n)] = n
		typ[n] = t
	}
	return rows.Err()
}

// candidate is one record of the other side near a record.
type candidate struct {
	key     string
	eq      []sql.NullBool // per pair: the eq pair holds (NULL: a value is NULL)
	vals    [][2]sql.NullString
	partner string // for a matched record: the key it was matched to
}

// searchSide gives the records of side s (index si) their reasons.
func searchSide(ctx context.Context, db *sql.DB, s, o *sqlSide, si int, pairs []pair, unread []string, matched *table) error {
	if len(s.items) == 0 {
		return nil
	}
	q := dialect.DuckDB.QuoteIdent
	// own and other give a pair's column of s and of o.
	own := func(p pair) string { return p.col[si] }
	other := func(p pair) string { return p.col[1-si] }
	eqExpr := func(p pair) string {
		a, b := "s."+q(own(p)), "o."+q(other(p))
		if s.typ[own(p)] != o.typ[other(p)] {
			a, b = "CAST("+a+" AS VARCHAR)", "CAST("+b+" AS VARCHAR)"
		}
		return a + " = " + b
	}
	num := func(x string) string { return "TRY_CAST(" + x + " AS DECIMAL(38,10))" }
	okey := make([]string, len(o.pk))
	for i, k := range o.pk {
		if _, has := o.col(k); !has {
			return nil // the output lacks the key: nothing to name
		}
		okey[i] = "CAST(o." + q(k) + " AS VARCHAR)"
	}
	keyExpr := "concat_ws('|', " + strings.Join(okey, ", ") + ")"
	var links []pair
	var amount *pair
	for i, p := range pairs {
		if p.link {
			links = append(links, p)
		}
		if p.Op == engine.CompareTolerance && amount == nil {
			amount = &pairs[i]
		}
	}
	var sel []string
	for _, p := range pairs {
		sel = append(sel, "CAST(s."+q(own(p))+" AS VARCHAR)", "CAST(o."+q(other(p))+" AS VARCHAR)")
		if p.Op == engine.CompareEq {
			sel = append(sel, "("+eqExpr(p)+")")
		} else {
			sel = append(sel, "NULL::BOOLEAN")
		}
	}
	diff := "NULL"
	if amount != nil {
		diff = "abs(" + num("s."+q(own(*amount))) + " - " + num("o."+q(other(*amount))) + ")"
	}
	var eqCount []string
	for _, p := range pairs {
		if p.Op == engine.CompareEq {
			eqCount = append(eqCount, "coalesce(("+eqExpr(p)+")::INT, 0)")
		}
	}
	if len(eqCount) == 0 {
		eqCount = []string{"0"}
	}
	// scan reads candidate rows: s row id, key, then per pair own value,
	// other value, eq.
	// At most maxRead candidates of a record are read; the last scan's
	// total counts all.
	const maxRead = 50
	var total map[int64]int
	scan := func(query string) (map[int64][]candidate, error) {
		total = map[int64]int{}
		rows, err := db.QueryContext(ctx, query)
		if err != nil {
			return nil, fmt.Errorf("closest candidates: %w", err)
		}
		defer rows.Close()
		out := map[int64][]candidate{}
		for rows.Next() {
			var row int64
			c := candidate{eq: make([]sql.NullBool, len(pairs)), vals: make([][2]sql.NullString, len(pairs))}
			ptrs := []any{&row, &c.key}
			for i := range pairs {
				ptrs = append(ptrs, &c.vals[i][0], &c.vals[i][1], &c.eq[i])
			}
			if err := rows.Scan(ptrs...); err != nil {
				return nil, fmt.Errorf("closest candidates: %w", err)
			}
			total[row]++
			if len(out[row]) < maxRead {
				out[row] = append(out[row], c)
			}
		}
		return out, rows.Err()
	}
	body := func(on string) string {
		return fmt.Sprintf("SELECT s.rowid AS srow, o.rowid AS orow FROM %s s JOIN %s o ON %s", s.table, o.table, on)
	}
	// The searchable links: those a record shares with at most
	// maxCandidatePairs pairs in all.
	var searched, broad []pair
	for _, p := range links {
		var n int64
		if err := db.QueryRowContext(ctx, "SELECT count(*) FROM ("+body(eqExpr(p))+")").Scan(&n); err != nil {
			return fmt.Errorf("closest candidates: %w", err)
		}
		if n > maxCandidatePairs {
			broad = append(broad, p)
			continue
		}
		searched = append(searched, p)
	}
	byKey := map[int64][]candidate{}
	if len(searched) > 0 {
		var parts []string
		for _, p := range searched {
			parts = append(parts, body(eqExpr(p)))
		}
		query := fmt.Sprintf(`WITH c AS (%s)
SELECT s.rowid, %s, %s FROM c JOIN %s s ON s.rowid = c.srow JOIN %s o ON o.rowid = c.orow
QUALIFY rank() OVER (PARTITION BY s.rowid ORDER BY %s DESC, %s ASC NULLS LAST) = 1
ORDER BY s.rowid, %s, o.rowid`, strings.Join(parts, " UNION "), keyExpr, strings.Join(sel, ", "), s.table, o.table,
			strings.Join(eqCount, " + "), diff, keyExpr)
		var err error
		if byKey, err = scan(query); err != nil {
			return err
		}
	}
	keyTotal := total
	// Each record's own values of the compared columns.
	ownVals := make([][]sql.NullString, len(s.items))
	{
		cols := []string{"rowid"}
		for _, p := range pairs {
			cols = append(cols, "CAST("+q(own(p))+" AS VARCHAR)")
		}
		rows, err := db.QueryContext(ctx, "SELECT "+strings.Join(cols, ", ")+" FROM "+s.table+" ORDER BY rowid")
		if err != nil {
			return fmt.Errorf("closest candidates: %w", err)
		}
		for rows.Next() {
			var row int64
			v := make([]sql.NullString, len(pairs))
			ptrs := []any{&row}
			for i := range v {
				ptrs = append(ptrs, &v[i])
			}
			if err := rows.Scan(ptrs...); err != nil {
				rows.Close()
				return fmt.Errorf("closest candidates: %w", err)
			}
			if row >= 0 && int(row) < len(ownVals) {
				ownVals[row] = v
			}
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return fmt.Errorf("closest candidates: %w", err)
		}
	}
	// Records of the other side that were matched: their keys, and the
	// value of each searched link the outputs tell.
	var mcount int
	mknown := map[int]map[string]mrec{} // searched link index → value → first matched record
	if matched != nil {
		seen := map[string]bool{}
		okeyCols := make([]string, len(o.pk))
		skeyCols := make([]string, len(s.pk))
		for i, k := range o.pk {
			okeyCols[i] = matchedCol(matched, "_"+o.name+"_"+k)
		}
		for i, k := range s.pk {
			skeyCols[i] = matchedCol(matched, "_"+s.name+"_"+k)
		}
		keyOf := func(row []sql.NullString, cols []string) string {
			parts := make([]string, len(cols))
			for i, c := range cols {
				parts[i] = matched.get(row, c)
			}
			return strings.Join(parts, "|")
		}
		for li, p := range searched {
			src := ""
			for i, k := range o.pk {
				if strings.EqualFold(k, other(p)) {
					src = okeyCols[i]
				}
			}
			for i, k := range s.pk {
				if src == "" && strings.EqualFold(k, own(p)) {
					src = skeyCols[i]
				}
			}
			if src == "" {
				continue
			}
			m := map[string]mrec{}
			for _, row := range matched.rows {
				if v := matched.get(row, src); v != "" {
					if _, dup := m[v]; !dup {
						m[v] = mrec{key: keyOf(row, okeyCols), partner: keyOf(row, skeyCols)}
					}
				}
			}
			mknown[li] = m
		}
		for _, row := range matched.rows {
			k := keyOf(row, okeyCols)
			if !seen[k] {
				seen[k] = true
				mcount++
			}
		}
	}
	// The other side's matched records, when the run kept them whole:
	// every searched link can be looked up, not only keys.
	if o.mtable != "" {
		if err := db.QueryRowContext(ctx, "SELECT count(*) FROM "+o.mtable).Scan(&mcount); err != nil {
			return fmt.Errorf("closest candidates: %w", err)
		}
		mkey := make([]string, len(o.pk))
		for i, k := range o.pk {
			c, ok := o.mcol(k)
			if !ok {
				mkey = nil
				break
			}
			mkey[i] = "CAST(o." + q(c) + " AS VARCHAR)"
		}
		for li, p := range searched {
			oc, ok := o.mcol(other(p))
			if _, known := mknown[li]; known || !ok || mkey == nil {
				continue
			}
			a, b := "s.v", "o."+q(oc)
			if s.typ[own(p)] != o.mtyp[oc] {
				a, b = "CAST("+a+" AS VARCHAR)", "CAST("+b+" AS VARCHAR)"
			}
			query := fmt.Sprintf(`SELECT CAST(s.v AS VARCHAR), concat_ws('|', %s), o.__kalla_partner
FROM (SELECT DISTINCT %s AS v FROM %s) s JOIN %s o ON %s = %s
QUALIFY row_number() OVER (PARTITION BY s.v ORDER BY o.%s) = 1`,
				strings.Join(mkey, ", "), q(own(p)), s.table, o.mtable, a, b, q([]string{kalla.LeftRowColumn, kalla.RightRowColumn}[1-si]))
			rows, err := db.QueryContext(ctx, query)
			if err != nil {
				return fmt.Errorf("closest candidates: %w", err)
			}
			m := map[string]mrec{}
			for rows.Next() {
				var v, key, partner sql.NullString
				if err := rows.Scan(&v, &key, &partner); err != nil {
					rows.Close()
					return fmt.Errorf("closest candidates: %w", err)
				}
				m[v.String] = mrec{key: key.String, partner: partner.String}
			}
			rows.Close()
			if err := rows.Err(); err != nil {
				return fmt.Errorf("closest candidates: %w", err)
			}
			mknown[li] = m
		}
	}
	// Records with no candidate sharing a key: the other side's unmatched
	// records with an equal amount, first by key.
	byAmount := map[int64][]candidate{}
	if amount != nil {
		on := num("s."+q(own(*amount))) + " = " + num("o."+q(other(*amount)))
		var n int64
		if err := db.QueryRowContext(ctx, "SELECT count(*) FROM ("+body(on)+")").Scan(&n); err != nil {
			return fmt.Errorf("closest candidates: %w", err)
		}
		if n <= maxCandidatePairs && n <= 16*int64(len(s.items)) {
			query := fmt.Sprintf(`SELECT s.rowid, %s, %s FROM %s s JOIN %s o ON %s
QUALIFY row_number() OVER (PARTITION BY s.rowid ORDER BY %s, o.rowid) = 1
ORDER BY s.rowid`, keyExpr, strings.Join(sel, ", "), s.table, o.table, on, keyExpr)
			var err error
			if byAmount, err = scan(query); err != nil {
				return err
			}
		}
	}
	w := words{s: s, o: o, si: si, pairs: pairs, unread: unread}
	for row, it := range s.items {
		vals := ownVals[row]
		var reason string
		var closest []string
		if cands := byKey[int64(row)]; len(cands) > 0 {
			reason, closest = w.named(cands, keyTotal[int64(row)])
		} else {
			reason, closest = w.none(vals, links, searched, broad, mknown, mcount)
			if amount != nil && len(closest) == 0 {
				if c := byAmount[int64(row)]; len(c) > 0 {
					reason += " | closest by amount: " + w.byAmount(c[0], *amount)
					closest = []string{c[0].key}
				}
			}
		}
		it.Reason = reason
		it.Closest = strings.Join(closest, ", ")
	}
	return nil
}

// mrec is a matched record of the other side: its key and its partner's.
type mrec struct{ key, partner string }

// matchedCol finds a column of the matched file by name, any case.
func matchedCol(t *table, name string) string {
	for _, c := range t.cols {
		if strings.EqualFold(c, name) {
			return c
		}
	}
	return name
}

// words writes the reasons of one side's records.
type words struct {
	s, o   *sqlSide
	si     int
	pairs  []pair
	unread []string
}

// lr orders a record's own value and its candidate's as left, right.
func (w words) lr(own, other sql.NullString) [2]sql.NullString {
	if w.si == 1 {
		return [2]sql.NullString{other, own}
	}
	return [2]sql.NullString{own, other}
}

// check says of one candidate which pairs it shares with the record and
// which it fails, in words.
func (w words) check(c candidate) (shared, fails []string) {
	for i, p := range w.pairs {
		v := w.lr(c.vals[i][0], c.vals[i][1])
		switch {
		case !v[0].Valid || !v[1].Valid:
			for k := range 2 {
				if !v[k].Valid {
					fails = append(fails, p.col[k]+" is empty")
					break
				}
			}
		case p.Op == engine.CompareEq:
			if c.eq[i].Valid && c.eq[i].Bool {
				shared = append(shared, fmt.Sprintf("%s = %s '%s'", p.col[0], p.col[1], v[0].String))
			} else {
				fails = append(fails, fmt.Sprintf("%s '%s' vs %s '%s' differ", p.col[0], v[0].String, p.col[1], v[1].String))
			}
		default:
			a, ok1 := decimal(v[0].String)
			b, ok2 := decimal(v[1].String)
			if !ok1 || !ok2 {
				fails = append(fails, fmt.Sprintf("%s '%s' vs %s '%s' are not both numbers", p.col[0], v[0].String, p.col[1], v[1].String))
				continue
			}
			d := new(big.Rat).Sub(a, b)
			d.Abs(d)
			if d.Cmp(p.tol) <= 0 {
				shared = append(shared, fmt.Sprintf("%s %s vs %s %s within %s", p.col[0], v[0].String, p.col[1], v[1].String, p.Tolerance))
			} else {
				fails = append(fails, fmt.Sprintf("%s %s vs %s %s differ by %s > %s", p.col[0], v[0].String, p.col[1], v[1].String, format(d), p.Tolerance))
			}
		}
	}
	return shared, fails
}

// named is the reason of a record with candidates sharing a key: the
// closest (tied candidates whose differences read the same are named
// together, up to maxNamed); total counts every candidate as close.
func (w words) named(cands []candidate, total int) (string, []string) {
	type group struct {
		text string
		keys []string
	}
	var groups []*group
	for _, c := range cands {
		shared, fails := w.check(c)
		var text string
		switch {
		case len(fails) > 0:
			text = "%s " + strings.Join(shared, " and ") + " but " + strings.Join(fails, "; ")
			text = strings.Replace(text, "%s ", "%s share ", 1)
		case len(w.unread) > 0:
			text = "%s meet every condition Kalla read (" + strings.Join(shared, "; ") + "); Kalla cannot tell which of the match SQL's other conditions failed: " + strings.Join(w.unread, "; ")
		default:
			text = "%s meet every condition Kalla read in the match SQL (" + strings.Join(shared, "; ") + "); Kalla cannot tell why the SQL did not pair them"
		}
		found := false
		for _, g := range groups {
			if g.text == text {
				g.keys = append(g.keys, c.key)
				found = true
			}
		}
		if !found {
			groups = append(groups, &group{text: text, keys: []string{c.key}})
		}
	}
	g := groups[0]
	keys := g.keys
	if len(keys) > maxNamed {
		keys = keys[:maxNamed]
	}
	more := ""
	if total > len(keys) {
		more = fmt.Sprintf(" (and %d more as close)", total-len(keys))
	}
	subject := w.o.alias + " " + strings.Join(keys, ", ") + more
	text := g.text
	if len(g.keys) == 1 {
		text = strings.Replace(strings.Replace(text, "%s share ", "%s shares ", 1), "%s meet ", "%s meets ", 1)
	}
	return fmt.Sprintf(text, subject), keys
}

// none is the reason of a record no unmatched record shares a key with:
// a matched record that does, or a plain statement of what Kalla checked
// ("no candidate shares a key" only when it checked every record).
func (w words) none(vals []sql.NullString, links, searched, broad []pair, mknown map[int]map[string]mrec, mcount int) (string, []string) {
	s, o := w.s, w.o
	if len(links) == 0 {
		r := fmt.Sprintf("Kalla cannot tell: it reads no equality between a column of %s and one of %s in the match SQL to find candidates by", s.alias, o.alias)
		if len(w.unread) > 0 {
			r += " (conditions it cannot read: " + strings.Join(w.unread, "; ") + ")"
		}
		return r, nil
	}
	var empty []string
	for _, p := range links {
		if !vals[p.idx].Valid {
			empty = append(empty, p.col[w.si]+" is empty")
		}
	}
	if len(empty) == len(links) {
		return strings.Join(empty, "; "), nil
	}
	for li, p := range searched {
		v := vals[p.idx]
		if m, ok := mknown[li]; ok && v.Valid {
			if r, ok := m[v.String]; ok {
				return fmt.Sprintf("%s %s shares %s = %s '%s' but was matched to %s %s by the match SQL", o.alias, r.key, p.col[0], p.col[1], v.String, s.alias, r.partner), []string{r.key}
			}
		}
	}
	var desc, unknown []string
	for li, p := range searched {
		if v := vals[p.idx]; v.Valid {
			desc = append(desc, fmt.Sprintf("%s = %s '%s'", p.col[0], p.col[1], v.String))
		}
		if _, ok := mknown[li]; !ok {
			unknown = append(unknown, p.col[1-w.si])
		}
	}
	var text string
	switch {
	case len(desc) == 0:
	case len(broad) == 0 && (mcount == 0 || len(unknown) == 0):
		text = "no candidate shares a key: no " + o.alias + " record shares " + strings.Join(desc, " or ")
	case mcount == 0 || len(unknown) == 0:
		text = "no " + o.alias + " record shares " + strings.Join(desc, " or ")
	default:
		text = fmt.Sprintf("no unmatched %s record shares %s; Kalla cannot tell for the %d matched %s records: the run's outputs do not carry their %s",
			o.alias, strings.Join(desc, " or "), mcount, o.alias, strings.Join(unknown, ", "))
	}
	if len(empty) > 0 {
		text = strings.TrimPrefix(text+"; "+strings.Join(empty, "; "), "; ")
	}
	if len(broad) > 0 {
		var b []string
		for _, p := range broad {
			b = append(b, p.words())
		}
		text = strings.TrimPrefix(text+"; not searched (too many records share them): "+strings.Join(b, ", "), "; ")
	}
	return text, nil
}

// byAmount describes a candidate whose amount equals the record's.
func (w words) byAmount(c candidate, amount pair) string {
	_, fails := w.check(c)
	text := fmt.Sprintf("%s %s has the same %s %s", w.o.alias, c.key, amount.col[1-w.si], c.vals[amount.idx][1].String)
	if len(fails) > 0 {
		text += " but " + strings.Join(fails, "; ")
	}
	return text
}
