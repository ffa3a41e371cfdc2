// Package suggest proposes a recipe from two sources and, optionally, a few
// confirmed example pairs, without any language model: it measures. Keys
// are the columns whose values are unique; columns are paired by name,
// type and shared values; and the examples show which pairs are equal
// (after which normalisation), how far amounts and dates drift, and whether
// one record pairs with several (1:N, N:1). The rules it writes go from
// strict to loose, each with its evidence, and are tried on the data before
// they are proposed, so the recipe runs as printed. `kalla recipe suggest`
// and the UI's recipe builder both call Suggest.
package suggest

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"github.com/kalla-recon/kalla/internal/connector"
	"github.com/kalla-recon/kalla/internal/dialect"
	"github.com/kalla-recon/kalla/internal/engine"
	"github.com/kalla-recon/kalla/internal/kalla"
	"github.com/kalla-recon/kalla/internal/rules"
)

// Options are what the user knows.
type Options struct {
	// Left and Right describe the sides (alias, URI, type, CSV settings);
	// their primary keys are used when given.
	Left, Right kalla.SourceSpec
	// LeftKey and RightKey name each side's key column; detected when empty.
	LeftKey, RightKey string
	// Pairs are confirmed example pairs (left key, right key). A left key
	// in several pairs shows a split (1:N); a right key in several, a
	// batch (N:1).
	Pairs [][2]string
}

// Result is a proposed recipe and how it was found.
type Result struct {
	Recipe *kalla.Recipe `json:"recipe"`
	// Pairings are the column pairs found, best first per left column.
	Pairings []Pairing `json:"pairings"`
	// Notes are findings that are not rules: detected keys, examples that
	// could not be found, what the rules matched when tried.
	Notes []string `json:"notes"`
}

// Pairing is a left and a right column that seem to hold the same thing.
type Pairing struct {
	Left     string  `json:"left"`
	Right    string  `json:"right"`
	Kind     string  `json:"kind"` // text, number, date
	Score    float64 `json:"score"`
	Evidence string  `json:"evidence"`
	// Key is set when one column is its side's key and the other column
	// refers to it: the strongest link.
	Key bool `json:"key,omitempty"`
	// Category is set when both columns hold few distinct values: never a
	// link on its own.
	Category bool `json:"category,omitempty"`
	// Used is set when the proposed rules compare the pair.
	Used bool `json:"used,omitempty"`
}

// FromSources stages both sources in eng and suggests a recipe for them.
func FromSources(ctx context.Context, eng *engine.Engine, left, right connector.Source, opt Options) (*Result, error) {
	in, err := eng.Inspect(ctx, opt.Left, opt.Right, left, right)
	if err != nil {
		return nil, err
	}
	return Suggest(ctx, in, opt)
}

// side is one staged side with its column statistics.
type side struct {
	i     int
	spec  kalla.SourceSpec
	view  string
	rows  int64
	cols  []kalla.Column
	kind  []string
	dist  []int64 // distinct values per column
	nulls []int64
	key   string
}

// Suggest proposes a recipe for two staged sources.
func Suggest(ctx context.Context, in *engine.Inspection, opt Options) (*Result, error) {
	res := &Result{Pairings: []Pairing{}, Notes: []string{}}
	var sides [2]*side
	for i, spec := range []kalla.SourceSpec{opt.Left, opt.Right} {
		s := &side{i: i, spec: spec, view: in.View(i), rows: in.Rows(i), cols: in.Columns(i)}
		if err := s.stats(ctx, in); err != nil {
			return nil, err
		}
		given := []string{opt.LeftKey, opt.RightKey}[i]
		if given == "" && len(spec.PrimaryKey) == 1 {
			given = spec.PrimaryKey[0]
		}
		if given != "" {
			j := kalla.FindColumn(s.cols, given)
			if j < 0 {
				return nil, kalla.Errorf(kalla.EINVALID, "%s has no column %q (columns: %s)", spec.Alias, given, kalla.ColumnNames(s.cols))
			}
			s.key = s.cols[j].Name
			res.Notes = append(res.Notes, fmt.Sprintf("%s key: %s (given; %d distinct values in %d rows)", spec.Alias, s.key, s.dist[j], s.rows))
		} else {
			k, note := s.detectKey()
			s.key = k
			res.Notes = append(res.Notes, note)
		}
		if err := in.SetKey(i, []string{s.key}); err != nil {
			return nil, err
		}
		sides[i] = s
	}
	l, r := sides[0], sides[1]

	var ex *examples
	if len(opt.Pairs) > 0 {
		var err error
		if ex, err = loadExamples(ctx, in, l, r, opt.Pairs); err != nil {
			return nil, err
		}
		res.Notes = append(res.Notes, ex.notes...)
	}
	rels, err := relate(ctx, in, l, r, ex)
	if err != nil {
		return nil, err
	}
	for _, x := range rels {
		res.Pairings = append(res.Pairings, x.pairing())
	}
	var shape *dataPattern
	link := pickLink(rels)
	if ex == nil && link != nil {
		if link, shape, err = chooseLink(ctx, in, l, r, rels, res); err != nil {
			return nil, err
		}
	}
	rs, notes := buildRules(l, r, rels, link, ex, shape)
	res.Notes = append(res.Notes, notes...)
	rec := &kalla.Recipe{
		RecipeID:    "suggested-" + slug(l.spec.Alias) + "-" + slug(r.spec.Alias),
		Name:        fmt.Sprintf("%s against %s (suggested)", l.spec.Alias, r.spec.Alias),
		Description: describePairings(rels),
		Sources:     kalla.Sources{Left: l.spec, Right: r.spec},
		Rules:       rs,
	}
	rec.Sources.Left.PrimaryKey = []string{l.key}
	rec.Sources.Right.PrimaryKey = []string{r.key}
	if len(rs) == 0 && ex != nil {
		return nil, kalla.Errorf(kalla.EINVALID, "no column of %s equals a column of %s in every one of the %d example pairs, even after trimming, ignoring case and punctuation or removing a common prefix: there is nothing to join the sides on (check the pairs, or give more of the same kind)", l.spec.Alias, r.spec.Alias, len(opt.Pairs))
	}
	if len(rs) == 0 {
		return nil, kalla.Errorf(kalla.EINVALID, "no column of %s pairs with a column of %s (by name, type and values): give a few example pairs you know (--pairs, or “Pairs you know” in the recipe builder)", l.spec.Alias, r.spec.Alias)
	}
	if err := rec.Validate(); err != nil {
		return nil, fmt.Errorf("suggested recipe is invalid (a bug): %w", err)
	}
	// Try the rules on the data: the recipe must run, and what it matches
	// is the best evidence of all.
	trial, err := in.TryRules(ctx, rs)
	if err != nil {
		return nil, fmt.Errorf("suggested rules do not run (a bug): %w", err)
	}
	// A rule that matches nothing here while others match is noise (a 1:1
	// rule before batch payments): leave it out, and try again.
	var kept []kalla.Rule
	for i, st := range trial.Report.Rules {
		if st.Pairs > 0 {
			kept = append(kept, rs[i])
		} else if trial.Pairs > 0 {
			res.Notes = append(res.Notes, fmt.Sprintf("rule %s was left out: it matches nothing on these sources", rs[i].Name))
		}
	}
	if len(kept) > 0 && len(kept) < len(rs) {
		rs, rec.Rules = kept, kept
		if trial, err = in.TryRules(ctx, rs); err != nil {
			return nil, fmt.Errorf("suggested rules do not run (a bug): %w", err)
		}
	}
	for i, st := range trial.Report.Rules {
		rs[i].Evidence = append(rs[i].Evidence, fmt.Sprintf("on these sources it matches %d pairs (%d %s, %d %s records)", st.Pairs, st.LeftRecords, l.spec.Alias, st.RightRecords, r.spec.Alias))
	}
	res.Notes = append(res.Notes, fmt.Sprintf("tried on the data: %d pairs; %d of %d %s and %d of %d %s records matched",
		trial.Pairs, trial.LeftRecords, l.rows, l.spec.Alias, trial.RightRecords, r.rows, r.spec.Alias))
	res.Recipe = rec
	for i, p := range res.Pairings {
		for _, rule := range rs {
			for _, c := range rule.Conditions {
				if c.Left == p.Left && c.Right == p.Right {
					res.Pairings[i].Used = true
				}
			}
		}
	}
	return res, nil
}

// chooseLink takes the best link whose data does not contradict it: a
// link pairing records many to many (N:M) when each side's key is unique
// is suspect (a customer pays many invoices: customer_id ~ payer_id pairs
// every invoice of a customer with every payment of that customer), and is
// said so in a note. The next candidate that is not suspect is taken; when
// every candidate is, the best one is kept with its note.
func chooseLink(ctx context.Context, in *engine.Inspection, l, r *side, rels []*relation, res *Result) (*relation, *dataPattern, error) {
	var cands []*relation
	for _, x := range rels {
		if isLink(x) {
			cands = append(cands, x)
		}
	}
	sort.SliceStable(cands, func(a, b int) bool { return cands[a].score > cands[b].score })
	var first *relation
	var firstShape *dataPattern
	for _, x := range cands {
		shape, err := sharedKeys(ctx, in, l, r, x)
		if err != nil {
			return nil, nil, err
		}
		if first == nil {
			first, firstShape = x, shape
		}
		if shape != nil && shape.pattern == kalla.PatternNtoM && l.unique(l.key) && r.unique(r.key) {
			res.Notes = append(res.Notes, fmt.Sprintf("link %s ~ %s is suspect: it pairs one record with many on both sides (%s), while each side's key is unique (one to one)",
				x.l.Name, x.r.Name, shape.evidence))
			continue
		}
		return x, shape, nil
	}
	return first, firstShape, nil
}

// stats counts distinct and NULL values of every column.
func (s *side) stats(ctx context.Context, in *engine.Inspection) error {
	s.kind = make([]string, len(s.cols))
	s.dist = make([]int64, len(s.cols))
	s.nulls = make([]int64, len(s.cols))
	if len(s.cols) == 0 {
		return nil
	}
	var sel []string
	for i, c := range s.cols {
		s.kind[i] = rules.Kind(c.EngineType)
		q := qi(c.Name)
		sel = append(sel, "count(DISTINCT "+q+")", "count(*) - count("+q+")")
	}
	ptrs := make([]any, 0, 2*len(s.cols))
	for i := range s.cols {
		ptrs = append(ptrs, &s.dist[i], &s.nulls[i])
	}
	rows, err := in.QueryContext(ctx, "SELECT "+strings.Join(sel, ", ")+" FROM "+qi(s.view))
	if err != nil {
		return fmt.Errorf("column statistics of %s: %w", s.spec.Alias, err)
	}
	defer rows.Close()
	if rows.Next() {
		if err := rows.Scan(ptrs...); err != nil {
			return fmt.Errorf("column statistics of %s: %w", s.spec.Alias, err)
		}
	}
	return rows.Err()
}

var keyWords = regexp.MustCompile(`(?i)(^|_|\b)(id|key|no|nr|num|number|ref|reference|code)($|_|\b)|id$`)

// detectKey picks the column that identifies a record: unique and never
// empty, preferring names that say so (id, number, ref) and text or integer
// types, earlier columns first.
func (s *side) detectKey() (string, string) {
	best, bestScore := -1, -1.0
	for i, c := range s.cols {
		if s.kind[i] != "text" && s.kind[i] != "number" {
			continue
		}
		if strings.HasPrefix(strings.ToUpper(c.EngineType), "DECIMAL") || strings.EqualFold(c.EngineType, "DOUBLE") {
			continue // amounts are not keys, however unique
		}
		unique := float64(s.dist[i]) / math.Max(1, float64(s.rows))
		score := unique
		if s.nulls[i] == 0 && s.dist[i] == s.rows {
			score += 1
		}
		if keyWords.MatchString(c.Name) {
			score += 0.5
		}
		score -= float64(i) * 0.01
		if score > bestScore {
			best, bestScore = i, score
		}
	}
	if best < 0 {
		best = 0
	}
	c := s.cols[best]
	if s.dist[best] == s.rows && s.nulls[best] == 0 {
		return c.Name, fmt.Sprintf("%s key: %s (detected: %d distinct values in %d rows, none empty)", s.spec.Alias, c.Name, s.dist[best], s.rows)
	}
	return c.Name, fmt.Sprintf("%s key: %s (detected, but not unique: %d distinct values in %d rows; give --%s-key)", s.spec.Alias, c.Name, s.dist[best], s.rows, []string{"left", "right"}[s.i])
}

func qi(name string) string { return dialect.DuckDB.QuoteIdent(name) }

func lit(s string) string { return dialect.DuckDB.QuoteString(s) }

var nonSlug = regexp.MustCompile(`[^a-z0-9]+`)

func slug(s string) string {
	return strings.Trim(nonSlug.ReplaceAllString(strings.ToLower(s), "-"), "-")
}

// scalarRow scans one row of q into dest.
func scalarRow(ctx context.Context, in *engine.Inspection, q string, dest ...any) error {
	rows, err := in.QueryContext(ctx, q)
	if err != nil {
		return err
	}
	defer rows.Close()
	if !rows.Next() {
		return errors.Join(rows.Err(), sql.ErrNoRows)
	}
	if err := rows.Scan(dest...); err != nil {
		return err
	}
	return rows.Err()
}

// niceUp rounds a share up to a tolerance a person would write: 0.1 %,
// 0.5 %, 1 %, 2 %, 5 %, 10 %, 20 %, 50 %.
func niceUp(share float64) string {
	for _, s := range []string{"0.001", "0.005", "0.01", "0.02", "0.05", "0.1", "0.2", "0.5"} {
		f, _ := strconv.ParseFloat(s, 64)
		if share <= f+1e-12 {
			return s
		}
	}
	return "0.9"
}

// niceDays rounds a window of days up to a round number.
func niceDays(d float64) int {
	for _, n := range []int{0, 1, 2, 3, 5, 7, 10, 14, 15, 30, 45, 60, 90, 120, 180, 365} {
		if d <= float64(n) {
			return n
		}
	}
	return int(math.Ceil(d))
}

func describePairings(rels []*relation) string {
	var parts []string
	for _, x := range rels {
		how := x.how()
		if x.category {
			// Saved as the recipe's description: a reader must not take
			// currency ~ currency for what the recipe matches on.
			how = "a category, never a link on its own"
		}
		parts = append(parts, fmt.Sprintf("%s ~ %s (%s)", x.l.Name, x.r.Name, how))
	}
	sort.Strings(parts)
	return "Column pairings found: " + strings.Join(parts, "; ")
}

// sharedKeys tells, without examples, whether records pair one to many: the
// share of linked keys that several records of a side carry (5 % or more
// counts).
func sharedKeys(ctx context.Context, in *engine.Inspection, l, r *side, link *relation) (*dataPattern, error) {
	var multi [2]int64
	var total [2]int64
	for s, sd := range []*side{l, r} {
		o := []*side{l, r}[1-s]
		q := fmt.Sprintf(`SELECT count(*) FILTER (WHERE n > 1), count(*) FROM (SELECT k, count(*) AS n FROM (SELECT %s AS k FROM %s) a
SEMI JOIN (SELECT %s AS k FROM %s) b USING (k) GROUP BY k)`, linkKey(link, s), qi(sd.view), linkKey(link, 1-s), qi(o.view))
		if err := scalarRow(ctx, in, q, &multi[s], &total[s]); err != nil {
			return nil, fmt.Errorf("count shared keys: %w", err)
		}
	}
	share := func(s int) float64 { return float64(multi[s]) / math.Max(1, float64(total[s])) }
	grouped := [2]bool{share(0) >= 0.05, share(1) >= 0.05}
	p := &dataPattern{pattern: kalla.Pattern1to1}
	switch {
	case grouped[0] && grouped[1]:
		p.pattern = kalla.PatternNtoM
	case grouped[1]:
		p.pattern = kalla.Pattern1toN
	case grouped[0]:
		p.pattern = kalla.PatternNto1
	default:
		return nil, nil
	}
	p.evidence = fmt.Sprintf("pattern %s: of the linked keys, %.0f %% are shared by several %s records and %.0f %% by several %s records",
		p.pattern, 100*share(0), l.spec.Alias, 100*share(1), r.spec.Alias)
	return p, nil
}
