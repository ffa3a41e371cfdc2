package engine

import (
	"context"
	"slices"
	"strings"

	"github.com/kalla-recon/kalla/internal/kalla"
	"github.com/kalla-recon/kalla/internal/rules"
)

// matchRules compiles the recipe's rules against the staged sides, runs
// them into the match table (the same shape as match SQL produces, plus
// rule, score and status) and counts it like any match.
func (e *Engine) matchRules(ctx context.Context, rec *kalla.Recipe, left, right *side) (*matchResult, error) {
	if !e.sandboxed {
		return nil, errNoSandbox
	}
	for _, sd := range []*side{left, right} {
		if err := ReasonColumnClash(sd.spec.Alias, sd.cols); err != nil {
			return nil, recipeErr(err)
		}
	}
	// Under a memory limit the staged sides are taken not to fit in
	// memory, as rulesDB takes it.
	plan, err := rules.Compile(rules.Input{Rules: rec.Rules, Left: rulesSide(left), Right: rulesSide(right), CopyLast: e.memLimit != ""}, rules.DuckDB)
	if err != nil {
		return nil, recipeErr(err)
	}
	if err := plan.Execute(ctx, e.rulesDB()); err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		if kalla.ErrorCode(err) == kalla.EINVALID && resourceKind(err) == "" {
			return nil, recipeErr(err)
		}
		return nil, err
	}
	m := &matchResult{table: rules.MatchTable, userCols: plan.ShownColumns(), plan: plan}
	// A compared key column is the key: the matched file shows it from
	// there (matchedSelect copies it after its sort, not through it).
	keys := func(s int, side string) []string {
		names := plan.KeyColumns(s)
		for i, n := range names {
			if n == "" {
				names[i] = pkCol(side, i)
			}
		}
		return names
	}
	m.leftKeys, m.rightKeys = keys(0, "l"), keys(1, "r")
	m.same = plan.SameColumns()
	// The counts are what the writes need (rows each file must have);
	// the rest of the report is added by reportDetails.
	if m.report, err = plan.ReportCounts(ctx, loggedDB{e}); err != nil {
		return nil, err
	}
	// A record is matched by one pass at most (later passes only see what
	// earlier ones left), and pairs never repeat: the totals are the sums.
	for _, st := range m.report.Rules {
		m.pairs += st.Pairs
		m.leftRecords += st.LeftRecords
		m.rightRecords += st.RightRecords
	}
	for _, b := range m.report.Breaks {
		m.breaks += b.Differing
	}
	return m, nil
}

// reportDetails completes a rules match's report (the reasons by kind,
// samples, compared pairs and largest differences) on connection w; a
// match of SQL has none. It only reads the tables the writes read, so a
// run does it beside them: about 25 ms of small queries at
// gen.Standard(1M) that kept a core idle between matching and writing.
func (m *matchResult) reportDetails(ctx context.Context, w *Engine) error {
	if m.plan == nil {
		return nil
	}
	return m.plan.ReportDetails(ctx, loggedDB{w}, m.report)
}

// rulesReasonTable is the table holding the reasons of side s's unmatched
// records.
func rulesReasonTable(s *side) string {
	if s.name == "left" {
		return rules.ReasonLeft
	}
	return rules.ReasonRight
}

// reasonColumns are the columns a rules run adds to unmatched rows.
var reasonColumns = []string{"_reason", "_closest_candidate"}

// ReasonColumnClash is the EINVALID error of a source (alias) whose columns
// include one a rules run adds to unmatched rows (_reason,
// _closest_candidate), or nil: every engine refuses such a source alike.
func ReasonColumnClash(alias string, cols []kalla.Column) error {
	for _, c := range cols {
		if slices.ContainsFunc(reasonColumns, func(n string) bool { return strings.EqualFold(n, c.Name) }) {
			return kalla.Errorf(kalla.EINVALID, "source %s: column %q clashes with a column Kalla adds to unmatched records of a rules recipe; rename it in the source", alias, c.Name)
		}
	}
	return nil
}

func rulesSide(s *side) rules.Side {
	return rules.Side{Name: s.name, Alias: s.spec.Alias, View: s.names.view, RID: s.names.rid(), Cols: s.cols, PK: s.pk, UniqueKey: s.uniqueKey, IDs: s.ids}
}

// rulesDB is the connection a plan runs on. Under a memory limit it lends
// no second one, so the rules run one statement at a time, as the writes
// do (see writeOutputs): two statements each size their hash tables and
// sorts to the limit on their own. At gen.Standard(10M) under 800MB the
// reasons of both sides, built at once (a join and a sort each), ran out
// of memory in 4 runs of 8.
func (e *Engine) rulesDB() rules.DB {
	if e.memLimit != "" {
		return serialDB{loggedDB{e}}
	}
	return loggedDB{e}
}

// serialDB is a rules.DB that hides its Fork: the plan then runs the work
// it would run beside the main connection after it instead.
type serialDB struct{ rules.DB }

// loggedDB runs a plan's statements through the engine, so they are logged
// like every other statement of a run.
type loggedDB struct{ e *Engine }

// Fork lends the plan a second connection to the run's database, for the
// work it runs beside the main connection's.
func (d loggedDB) Fork(ctx context.Context) (rules.DB, func(), error) {
	w, release, err := d.e.fork(ctx)
	if err != nil {
		return nil, nil, err
	}
	return loggedDB{w}, release, nil
}

func (d loggedDB) Exec(ctx context.Context, q string, args ...any) error {
	_, err := d.e.exec(ctx, q, args...)
	return err
}

func (d loggedDB) Query(ctx context.Context, q string, each func(rules.Row) error) error {
	done := d.e.clock(ctx)
	err := rules.QuerySQL(ctx, d.e.conn, q, each)
	d.e.log.Debug("duckdb query", append(done(), "sql", q, "err", err)...)
	return err
}

// sideIndex is a rules plan's number for side s: 0 left, 1 right.
func sideIndex(s *side) int {
	if s.name == "left" {
		return 0
	}
	return 1
}
