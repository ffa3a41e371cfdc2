package spark

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/kalla-recon/kalla/internal/engine"
	"github.com/kalla-recon/kalla/internal/kalla"
	"github.com/kalla-recon/kalla/internal/rules"
)

// rulesDB runs a rules plan's statements in the run's session, through the
// run's logging and error shortening. It implements rules.DB.
type rulesDB struct{ r *run }

// Exec runs one statement. Spark Connect's SQL command takes no bound
// parameters, and the Spark dialect binds none.
func (d rulesDB) Exec(ctx context.Context, q string, args ...any) error {
	if len(args) > 0 {
		return fmt.Errorf("spark: statement with %d bound parameters", len(args))
	}
	return d.r.exec(ctx, q)
}

// Query runs a query and calls each for its rows, in order.
func (d rulesDB) Query(ctx context.Context, q string, each func(rules.Row) error) error {
	df, err := d.r.sql(ctx, q)
	if err != nil {
		return err
	}
	rows, err := d.r.collect(ctx, df, "rules")
	if err != nil {
		return err
	}
	for _, row := range rows {
		if err := each(rules.Values(row.Values())); err != nil {
			return err
		}
	}
	return nil
}

// rulesSide is a staged side as the rules compiler sees it: the view
// left_src/right_src with its row id, the columns with Spark's types.
func rulesSide(s *side) rules.Side {
	return rules.Side{Name: s.name, Alias: s.spec.Alias, View: s.view, RID: engine.RowIDColumn(s.view), Cols: s.cols, PK: s.pk, UniqueKey: s.unique}
}

// compileRules compiles the recipe's rules for Spark against the staged
// sides: a rule Spark cannot compute as DuckDB does (fuzzy) is refused here,
// naming the rule and the condition, before any rule runs. scratch is where
// the plan's tables are written (see rules.NewSpark); "" caches them.
func compileRules(rec *kalla.Recipe, left, right *side, scratch string) (*rules.Plan, error) {
	for _, s := range []*side{left, right} {
		if err := engine.ReasonColumnClash(s.spec.Alias, s.cols); err != nil {
			return nil, err
		}
	}
	return rules.Compile(rules.Input{Rules: rec.Rules, Left: rulesSide(left), Right: rulesSide(right)}, rules.NewSpark(scratch))
}

// matchRules runs the recipe's rules over the staged sides, compiled by the
// compiler DuckDB's engine uses through the Spark dialect, into the match
// table (rules.MatchTable: the same name and identity columns as match
// SQL's), the reasons of unmatched records and the breaks. Whatever the plan
// makes is dropped by the run's cleanup, also when it fails or is
// cancelled.
func (r *run) matchRules(ctx context.Context, rec *kalla.Recipe, left, right *side) (*matchResult, error) {
	plan, err := compileRules(rec, left, right, r.scratchBase())
	if err != nil {
		return nil, recipeErr(ctx, err)
	}
	r.plan = plan
	db := rulesDB{r}
	if err := plan.Execute(ctx, db); err != nil {
		// EINVALID: the rules do not fit the data (a text that is not
		// a date), as on DuckDB.
		return nil, recipeErr(ctx, err)
	}
	rep, err := plan.Report(ctx, db)
	if err != nil {
		return nil, err
	}
	m := &matchResult{plan: plan, report: rep}
	// A record is matched by one pass at most and pairs never repeat: the
	// totals are the sums (as on DuckDB).
	for _, st := range rep.Rules {
		m.pairs += st.Pairs
		m.leftRecords += st.LeftRecords
		m.rightRecords += st.RightRecords
	}
	for _, b := range rep.Breaks {
		m.breaks += b.Differing
	}
	noKeys := func(n int) []int {
		at := make([]int, n)
		for i := range at {
			at[i] = -1 // the match table's __kalla_lpk<i>, __kalla_rpk<i>
		}
		return at
	}
	id := engine.MatchIdentity{LeftKeys: noKeys(len(left.pk)), RightKeys: noKeys(len(right.pk))}
	tail := [][2]string{{"m.__kalla_rule", "_rule"}, {"m.__kalla_score", "_score"}, {"m.__kalla_status", "_status"}}
	if m.matchedQuery, err = matchedQuery(plan.ShownColumns(), nil, id, left, right, tail); err != nil {
		return nil, err
	}
	for i, s := range []*side{left, right} {
		cols := make([]string, len(s.cols))
		for j, c := range s.cols {
			cols[j] = "s." + qi(c.Name)
		}
		// The reasons table lists exactly the side's unmatched records.
		m.unmatched[i] = fmt.Sprintf("SELECT %s, x.reason AS _reason, x.closest AS _closest_candidate FROM %s x JOIN %s s ON s.%s = x.rid ORDER BY s.%s",
			strings.Join(cols, ", "), qi([]string{rules.ReasonLeft, rules.ReasonRight}[i]), qi(s.table), ridCol, ridCol)
	}
	return m, nil
}

// checkRules validates a rules recipe against the staged sides' columns
// and types: the rules compile for Spark (a rule Spark cannot compute is a
// problem naming it), and the check lists the compared columns matched
// pairs carry.
func checkRules(chk *kalla.Check, rec *kalla.Recipe, left, right *side) error {
	plan, err := compileRules(rec, left, right, "")
	if err != nil {
		return err
	}
	for _, name := range plan.ShownColumns() {
		for _, s := range []*side{left, right} {
			col, ok := strings.CutPrefix(name, s.name+"_")
			if !ok {
				continue
			}
			if i := kalla.FindColumn(s.cols, col); i >= 0 {
				c := s.cols[i]
				c.Name = name
				chk.OutputColumns = append(chk.OutputColumns, c)
				break
			}
		}
	}
	return nil
}

// scratchName is the folder, under the output location, where a rules run
// writes its tables (see rules.NewSpark): one per session, removed when
// the run ends, whatever its end. It starts with a dot: Spark's readers
// skip it.
func (r *run) scratchName() string { return scratchPrefix + r.s.sessionID() }

// scratchPrefix starts every scratch folder's name. A run removes the
// folders an earlier run to the same location left (killed before its
// cleanup), as it removes stale partial outputs.
const scratchPrefix = ".kalla-scratch-"

// scratchBase is the scratch folder as the cluster writes it; "" for a
// dry run, which has no output location: its tables are cached instead.
func (r *run) scratchBase() string {
	if r.dest == nil {
		return ""
	}
	return r.dest.base + "/" + r.scratchName()
}

// removeScratch removes the scratch folder, if the run made one.
func (r *run) removeScratch() {
	if r.plan == nil || r.dest == nil {
		return
	}
	if r.dest.store == nil {
		if err := os.RemoveAll(filepath.Join(r.dest.dir, r.scratchName())); err != nil {
			r.e.log.Warn("spark remove scratch folder", "err", err)
		}
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), cleanupTimeout)
	defer cancel()
	if err := r.dest.store.RemoveAll(ctx, r.scratchName()+"/"); err != nil {
		r.e.log.Warn("spark remove scratch folder", "err", kalla.RedactError(err))
	}
}
