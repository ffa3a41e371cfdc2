package engine

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/kalla-recon/kalla/internal/connector"
	"github.com/kalla-recon/kalla/internal/dialect"
	"github.com/kalla-recon/kalla/internal/kalla"
	"github.com/kalla-recon/kalla/internal/rules"
	"github.com/kalla-recon/kalla/internal/version"
)

// Stage names, in the order a run passes them (kalla's, shared by every
// engine).
const (
	StageLeft  = kalla.StageLeft
	StageRight = kalla.StageRight
	StageMatch = kalla.StageMatch
	StageWrite = kalla.StageWrite
)

// Event reports a run's progress (kalla.Event, shared by every engine).
type Event = kalla.Event

// stage weights in the overall fraction: staging (both sides at once)
// dominates a run.
const stagingSpan = 0.70

var stageSpan = map[string][2]float64{
	StageMatch: {stagingSpan, 0.85},
	StageWrite: {0.85, 1},
}

// Formats an output can be written in.
const (
	FormatParquet = kalla.FormatParquet
	FormatCSV     = kalla.FormatCSV
)

// Run is one reconciliation to execute.
type Run struct {
	Recipe *kalla.Recipe
	// Left and Right are the opened sources of the recipe's two sides.
	Left, Right connector.Source
	// LeftFilters and RightFilters scope the sides; nil means the recipe's.
	LeftFilters, RightFilters []kalla.Filter
	// LeftTotal and RightTotal are the sides' expected row counts for
	// progress, 0 when unknown.
	LeftTotal, RightTotal int64
	// OutDir receives the outputs; Formats lists "parquet" and/or "csv".
	OutDir  string
	Formats []string
	RunID   string
	// Progress, when set, receives events as the run advances.
	Progress func(Event)
	// DryRun computes everything (matches, reasons, breaks, the summary)
	// but writes nothing: OutDir is not touched and Outputs stays empty.
	DryRun bool
	// Sample, when positive, stages only the first Sample rows of each
	// side under its filters, in the source's order (a recipe preview).
	Sample int64
	// Records also writes matched_left and matched_right: each side's
	// records that some pair uses, whole, for a results page that shows a
	// pair as its two records. Off by default: encoding 95 % of every
	// record costs about +20 % of a large run (see DESIGN.md).
	Records bool
}

// Output tables (kalla's, shared by every engine).
const (
	TableMatched        = kalla.TableMatched
	TableUnmatchedLeft  = kalla.TableUnmatchedLeft
	TableUnmatchedRight = kalla.TableUnmatchedRight
	TableBreaks         = kalla.TableBreaks
	TableMatchedLeft    = kalla.TableMatchedLeft
	TableMatchedRight   = kalla.TableMatchedRight
)

// SummaryFile is the name of the summary, written last: its presence marks a
// complete set of outputs.
const SummaryFile = kalla.SummaryFile

// side is one staged source.
type side struct {
	name  string // "left" or "right"
	names sideNames
	spec  kalla.SourceSpec
	table string // staging table, unquoted
	cols  []kalla.Column
	pk    []string // real column names of the primary key
	// uniqueKey is set once keyWarnings found no NULL and no repeated key.
	uniqueKey bool
	// distinct names a column the source proved to hold no value twice
	// while it staged it (connector.DistinctNoter), or is empty.
	distinct string
	count    int64 // records staged
	// ids bounds the staged row ids, which lie in [0, ids): more than
	// count when filters deleted rows in place.
	ids   int64
	stage string
	// out lists, per column, the expression that yields the column as the
	// source has it (renamed back where Kalla had to rename it).
	out []string
}

// ErrRecipe marks errors that are the recipe's fault (its SQL, its keys)
// rather than the data's or the system's; the CLI exits 2 for them.
var ErrRecipe = kalla.ErrRecipe

// recipeErr marks err as the recipe's fault, for errors.Is(err, ErrRecipe),
// without changing its text: callers show the message as it is.
func recipeErr(err error) error {
	if err == nil {
		return nil
	}
	return recipeError{err}
}

// recipeError is an error that is the recipe's fault.
type recipeError struct{ err error }

func (r recipeError) Error() string        { return r.err.Error() }
func (r recipeError) Unwrap() error        { return r.err }
func (r recipeError) Is(target error) bool { return target == ErrRecipe }

// Execute stages both sources, matches them and writes the outputs. The
// returned summary is also written to OutDir/summary.json. Errors: EINVALID
// for recipe or data problems (naming the source, column or SQL position at
// fault), EUNAVAILABLE for unreachable sources, context errors when
// cancelled.
//
// Running out of memory or of spill space is kalla.ERESOURCE in any stage
// (never a recipe error): its message names the stage and what to change
// (--memory-limit, --temp-dir, the free space needed, measured from the
// spill folder).
//
// Without a memory limit a CSV source is staged on what its first rows
// show and proven while the run matches and writes (connector.Prover);
// when its data disproves them, the run is made again in a new database,
// every source proving first, and its progress events start again from
// staging (a runner keeps the largest fraction it was told).
func (e *Engine) Execute(ctx context.Context, r Run) (*kalla.Summary, error) {
	e.spill = watchSpill(e.tempDir)
	defer func() { e.spill.close(); e.spill = nil }()
	stage := StageLeft + "/" + StageRight
	if e.memLimit == "" {
		// Sources may stage on what their first rows show and prove the
		// rest on idle cores (connector.Prover). Not under a memory
		// limit: there DuckDB spills, and a thread idle for the CPU is
		// not idle for the disk. At 50M under 4GB, one pair each, the
		// rules recipe took 252.9 s against 201.1 s proving first (its
		// match stage 132.6 s against 87.7 s), the SQL recipe 141.3 s
		// against 165.3 s: the hand-written SQL's own time moves more
		// than that, the rules' loss does not. With the scan's reads in
		// the idle I/O class as well (tried, not kept), 50M staged 6-10 s
		// sooner, but the rules recipe at 100M under 8GB took 950 s, 518 s
		// of it after its last stage (engine/DESIGN.md).
		e.proofs = &proofList{}
	}
	sum, err := e.execute(ctx, r, &stage)
	if perr := e.proofs.settle(ctx, err); perr != nil {
		// A source's data disproved what its first rows showed (a
		// rare file: its types or key order change past them); the
		// database, sandboxed, reads no more files. The run is made
		// again in a new one, every source proving before it stages.
		e.log.Info("staging again, proving each source first", "run_id", r.RunID, "reason", perr)
		e.proofs = nil
		if err := e.renew(ctx); err != nil {
			return nil, err
		}
		stage = StageLeft + "/" + StageRight
		sum, err = e.execute(ctx, r, &stage)
	}
	e.proofs = nil
	if err != nil && ctx.Err() != nil {
		// A statement cut short by the cancellation fails with DuckDB's
		// "Interrupted", which a step may take for the recipe's fault
		// (parsing the match SQL, say): the cancellation is the cause.
		return nil, ctx.Err()
	}
	if err != nil {
		var se *kalla.SourceError
		if errors.As(err, &se) && se.Side != "" {
			stage = "stage_" + se.Side
		}
		if rerr := e.resourceFailure(stage, r.OutDir, err); rerr != nil {
			return nil, rerr
		}
	}
	return sum, err
}

// execute is Execute; stage is kept at the stage that runs.
func (e *Engine) execute(ctx context.Context, r Run, stage *string) (*kalla.Summary, error) {
	start := time.Now()
	rec := r.Recipe
	if r.Sample > 0 {
		r.Left = &sampleSource{Source: r.Left, limit: r.Sample}
		r.Right = &sampleSource{Source: r.Right, limit: r.Sample}
	}
	if len(r.Formats) == 0 {
		r.Formats = []string{FormatParquet}
	}
	for _, f := range r.Formats {
		if f != FormatParquet && f != FormatCSV {
			return nil, kalla.Errorf(kalla.EINVALID, "unknown output format %q (use parquet, csv or parquet,csv)", f)
		}
	}
	if !r.DryRun {
		if err := os.MkdirAll(r.OutDir, 0o755); err != nil {
			return nil, kalla.WrapError(kalla.EINVALID, err, "cannot create output folder %s", r.OutDir)
		}
		// A summary from an earlier run must not vouch for this run's files.
		if err := os.Remove(filepath.Join(r.OutDir, SummaryFile)); err != nil && !errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("remove old summary: %w", err)
		}
	}
	// Both sides stage at once, so events arrive from two goroutines; the
	// staging part of the fraction is the mean of the sides' own.
	var emitMu sync.Mutex
	var stagedFrac [2]float64
	emit := func(ev Event) {
		if r.Progress == nil {
			return
		}
		emitMu.Lock()
		defer emitMu.Unlock()
		frac := 0.0
		switch {
		case ev.Done:
			frac = 1
		case ev.Total > 0:
			frac = min(1, float64(ev.Rows)/float64(ev.Total))
		}
		switch ev.Stage {
		case StageLeft, StageRight:
			i := 0
			if ev.Stage == StageRight {
				i = 1
			}
			stagedFrac[i] = max(stagedFrac[i], frac)
			ev.Fraction = stagingSpan * (stagedFrac[0] + stagedFrac[1]) / 2
		default:
			span := stageSpan[ev.Stage]
			ev.Fraction = span[0] + frac*(span[1]-span[0])
		}
		r.Progress(ev)
	}
	sum := &kalla.Summary{
		RecipeID:     rec.RecipeID,
		RunID:        r.RunID,
		KallaVersion: version.Version,
		Engine:       kalla.EngineDuckDB,
		StartedAt:    start.UTC(),
		Warnings:     []kalla.Warning{},
	}
	sum.EngineVersion = e.Version(ctx)
	timed := func(name string, f func() error) error {
		t0 := time.Now()
		*stage = name
		e.spill.enter(name)
		err := f()
		sum.Stages = append(sum.Stages, kalla.StageTiming{Name: name, DurationMS: time.Since(t0).Milliseconds(), SpillBytes: e.spill.peakOf(name)})
		return err
	}

	lf, rf := r.LeftFilters, r.RightFilters
	if lf == nil {
		lf = rec.Sources.Left.Filters
	}
	if rf == nil {
		rf = rec.Sources.Right.Filters
	}
	left := &side{name: "left", names: sideNames{view: "left_src", alias: rec.Sources.Left.Alias}, spec: rec.Sources.Left, table: "__kalla_left", stage: StageLeft}
	right := &side{name: "right", names: sideNames{view: "right_src", alias: rec.Sources.Right.Alias}, spec: rec.Sources.Right, table: "__kalla_right", stage: StageRight}
	jobs := []stageJob{{left, r.Left, lf, r.LeftTotal, 0, nil}, {right, r.Right, rf, r.RightTotal, 0, nil}}
	e.spill.enter(*stage)
	if err := e.stageBoth(ctx, jobs, emit); err != nil {
		return nil, err
	}
	// What DuckDB moved to disk beyond its memory limit, sampled at the
	// end of each stage (the staged tables stay spilled), for the log,
	// with the limit it went beyond: without one given, DuckDB's default.
	spilled := e.Spilled(ctx)
	defer func() {
		if spilled > 0 {
			limit := e.memLimit
			if limit == "" {
				limit = "none given (" + defaultLimit + ")"
			}
			e.log.Info("run spilled to disk beyond its memory limit", "run_id", r.RunID, "spilled_bytes", spilled, "memory_limit", limit)
		}
	}()
	// The sides stage at once: they share one spill figure.
	staged := e.spill.peakOf(*stage)
	for _, j := range jobs {
		sum.Stages = append(sum.Stages, kalla.StageTiming{Name: j.sd.stage, DurationMS: j.took.Milliseconds(), SpillBytes: staged})
		sum.Warnings = append(sum.Warnings, j.warnings...)
	}
	// Both sides are in: from here on the database sees nothing else.
	var writes []string
	if !r.DryRun {
		writes = outputPaths(r)
	}
	if len(rec.Rules) == 0 {
		// Before the sandbox locks the settings. Compressed
		// materialization packs short strings and narrow integers before
		// a sort or a hash table and unpacks them after: for match SQL's
		// sorted match table it cost more CPU than it saved
		// (gen.Standard(1M), 12 alternating runs: 1.632 s against 1.685 s;
		// at 50M under --memory-limit 4GB 130 s against 139 s, the same
		// peak RSS, the files byte-identical). A rules recipe's many joins
		// and groups gained nothing from it either way (2.385 s against
		// 2.387 s), so they keep DuckDB's default.
		if _, err := e.exec(ctx, "SET disabled_optimizers = 'compressed_materialization'"); err != nil {
			return nil, fmt.Errorf("configure duckdb: %w", err)
		}
	}
	if err := e.sandbox(ctx, writes); err != nil {
		return nil, err
	}
	// A recipe's amount or currency column that the source lacks is
	// refused before the match, not after the files are written.
	if spec, ok := kalla.AmountColumns(rec); ok {
		for i, s := range []*side{left, right} {
			if err := kalla.CheckNamedColumns(spec, i, s.cols); err != nil {
				return nil, recipeErr(err)
			}
		}
	}
	sum.LeftCount, sum.RightCount = left.count, right.count
	sum.Sources.Left = sideSummary(left, lf)
	sum.Sources.Right = sideSummary(right, rf)

	var m *matchResult
	if err := timed(StageMatch, func() error {
		emit(Event{Stage: StageMatch})
		var err error
		if len(rec.Rules) > 0 {
			m, err = e.matchRules(ctx, rec, left, right)
		} else {
			// A run that writes learns the matched records from the
			// unmatched rows it writes (see writeOutputs).
			m, err = e.match(ctx, rec.MatchSQL, left, right, !r.DryRun)
		}
		return err
	}); err != nil {
		return nil, err
	}
	emit(Event{Stage: StageMatch, Done: true})
	spilled = max(spilled, e.Spilled(ctx))
	sum.Rules = m.report

	if r.DryRun {
		if err := m.reportDetails(ctx, e); err != nil {
			return nil, err
		}
		if err := e.proofs.prove(ctx); err != nil {
			return nil, err
		}
		matchCounts(sum, m, left, right)
		sum.Status = "dry_run"
		sum.Outputs = []kalla.OutputFile{}
		sum.FinishedAt = time.Now().UTC()
		sum.DurationMS = time.Since(start).Milliseconds()
		return sum, nil
	}
	// A rules recipe's money totals read the staging tables and the
	// reasons, which the writes only read: they are summed on a connection
	// of their own while the files are written (at gen.Standard(1M) about
	// 40 ms that came after the last file), and the rest of its report is
	// made there too. A SQL recipe's totals read the paired row ids the
	// writes leave in this connection, and come after them; so do both
	// under a memory limit, where one statement runs at a time.
	var amounts *kalla.Amounts
	var amountsErr error
	var summing sync.WaitGroup
	finish := func(w *Engine) (*kalla.Amounts, error) {
		if err := m.reportDetails(ctx, w); err != nil {
			return nil, err
		}
		return w.amounts(ctx, rec, m, left, right)
	}
	aside := m.plan != nil && e.memLimit == ""
	if aside {
		w, release, err := e.fork(ctx)
		if err != nil {
			return nil, err
		}
		summing.Go(func() {
			defer release()
			amounts, amountsErr = finish(w)
		})
	}
	err := timed(StageWrite, func() error {
		emit(Event{Stage: StageWrite})
		outs, err := e.writeOutputs(ctx, r, m, left, right)
		sum.Outputs = outs
		return err
	})
	summing.Wait()
	if err != nil {
		return nil, err
	}
	matchCounts(sum, m, left, right)
	if !aside {
		amounts, amountsErr = finish(e)
	}
	if amountsErr != nil {
		return nil, amountsErr
	}
	sum.Amounts = amounts
	// What was staged on the sources' first rows is proven by now, or
	// the run is made again (see Execute).
	if err := e.proofs.prove(ctx); err != nil {
		return nil, err
	}
	sum.Status = "completed"
	sum.FinishedAt = time.Now().UTC()
	sum.DurationMS = time.Since(start).Milliseconds()
	if err := kalla.WriteJSONAtomic(filepath.Join(r.OutDir, SummaryFile), sum); err != nil {
		return nil, err
	}
	emit(Event{Stage: StageWrite, Done: true})
	return sum, nil
}

// matchCounts fills the summary's counts and the match's warnings
// (kalla.Summary.SetMatchCounts, shared by every engine).
func matchCounts(sum *kalla.Summary, m *matchResult, left, right *side) {
	sum.SetMatchCounts(kalla.MatchCounts{Pairs: m.pairs, Repeats: m.repeats, OuterRows: m.outerRows,
		LeftRecords: m.leftRecords, RightRecords: m.rightRecords, LeftCount: left.count, RightCount: right.count})
}

func sideSummary(s *side, filters []kalla.Filter) kalla.SummarySource {
	return kalla.SummarySource{
		Alias: s.spec.Alias, Type: s.spec.SourceType(), URI: kalla.Redact(s.spec.URI),
		PrimaryKey: s.pk, Filters: filters, Columns: s.cols,
	}
}

// stageJob is one side to stage, and what staging it found.
type stageJob struct {
	sd    *side
	src   connector.Source
	flt   []kalla.Filter
	total int64
	// took and warnings are set by stageBoth.
	took     time.Duration
	warnings []kalla.Warning
}

// stageBoth stages the sides at once, each on its own connection to the
// run's database, and checks their keys. Reading one source (a database
// over the network, a CSV's single-threaded sniffing and checks) leaves
// cores idle that the other side's load can use.
//
// A failure of the left side cancels the right one and is reported. A
// failure of the right side waits for the left to finish (as it did when
// the sides staged one after the other), so that when both sources are
// broken the run always reports the left's own error, never one caused by
// cancelling it.
func (e *Engine) stageBoth(ctx context.Context, jobs []stageJob, emit func(Event)) error {
	sctx, cancel := context.WithCancel(ctx)
	defer cancel()
	errs := make([]error, len(jobs))
	var wg sync.WaitGroup
	for i := range jobs {
		wg.Go(func() {
			if errs[i] = e.stageJob(sctx, i, &jobs[i], emit); errs[i] != nil && i == 0 {
				cancel()
			}
		})
	}
	wg.Wait()
	if ctx.Err() != nil {
		return ctx.Err()
	}
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

// stageJob stages side i of a run; side 0 uses the engine's connection,
// side 1 one of its own.
func (e *Engine) stageJob(ctx context.Context, i int, j *stageJob, emit func(Event)) error {
	t0 := time.Now()
	w := e
	if i > 0 {
		f, release, err := e.fork(ctx)
		if err != nil {
			return err
		}
		defer release()
		w = f
	}
	emit(Event{Stage: j.sd.stage, Total: j.total})
	if err := w.stageSide(ctx, j.sd, j.src, j.flt, func(n int64) { emit(Event{Stage: j.sd.stage, Rows: n, Total: j.total}) }); err != nil {
		return err
	}
	ws, err := w.keyWarnings(ctx, j.sd)
	if err != nil {
		return err
	}
	j.took, j.warnings = time.Since(t0), ws
	emit(Event{Stage: j.sd.stage, Rows: j.sd.count, Total: j.sd.count, Done: true})
	return nil
}

// stageSide loads one source and defines its views: left_src/right_src with
// the hidden row id, and the recipe's alias.
func (e *Engine) stageSide(ctx context.Context, s *side, src connector.Source, filters []kalla.Filter, progress func(int64)) error {
	var n int64
	sk := &sink{e: e, table: s.table, progress: progress}
	err := connector.WithIdle(ctx, e.idle, func(ctx context.Context) error {
		sk.wd = connector.WatchdogOf(ctx)
		var err error
		n, err = src.Stage(ctx, filters, sk)
		return err
	})
	if err != nil {
		return kalla.AsSourceError(err, s.name, s.spec.Alias)
	}
	s.count, s.distinct = n, sk.distinct
	// Filters delete rows in place, so row ids are file positions with
	// gaps: sets of row ids are sized by the largest.
	if err := e.queryRow(ctx, "SELECT coalesce(max(rowid) + 1, 0) FROM "+qi(s.table)).Scan(&s.ids); err != nil {
		return fmt.Errorf("stage %s source %s: %w", s.name, s.spec.Alias, err)
	}
	if s.cols, err = e.describe(ctx, s.table); err != nil {
		return err
	}
	return e.defineViews(ctx, s)
}

// defineViews checks the primary key against the staged columns and creates
// the side's views: left_src/right_src with the hidden row id, and the
// recipe's alias. Two things in a source would otherwise break identity or
// binding: a column named rowid hides DuckDB's row id, so it is renamed in
// the staging table and named back in the view; and a text column with no
// value at all (a header-only CSV) has no real type, so the view exposes it
// as an untyped NULL, which binds in any expression, instead of as VARCHAR.
func (e *Engine) defineViews(ctx context.Context, s *side) error {
	for _, c := range s.cols {
		if strings.HasPrefix(strings.ToLower(c.Name), "__kalla_") {
			return kalla.Errorf(kalla.EINVALID, "source %s: column %q uses the prefix __kalla_, which Kalla reserves", s.spec.Alias, c.Name)
		}
	}
	s.pk = s.pk[:0]
	for _, k := range s.spec.PrimaryKey {
		i := kalla.FindColumn(s.cols, k)
		if i < 0 {
			return recipeErr(kalla.Errorf(kalla.EINVALID, "sources.%s.primary_key: source %s has no column %q (columns: %s)", s.name, s.spec.Alias, k, kalla.ColumnNames(s.cols)))
		}
		s.pk = append(s.pk, s.cols[i].Name)
	}
	s.names.pk = s.pk
	var text []string
	for _, c := range s.cols {
		if c.EngineType == "VARCHAR" {
			text = append(text, c.Name)
		}
	}
	empty := map[string]bool{}
	if len(text) > 0 {
		// Each probe stops at the column's first value, so a filled
		// column costs one chunk, not a scan.
		probes := make([]string, len(text))
		for i, c := range text {
			probes[i] = fmt.Sprintf("(SELECT count(*) FROM (SELECT 1 FROM %s WHERE %s IS NOT NULL LIMIT 1))", qi(s.table), qi(c))
		}
		n := make([]int64, len(text))
		ptrs := make([]any, len(text))
		for i := range n {
			ptrs[i] = &n[i]
		}
		if err := e.queryRow(ctx, "SELECT "+strings.Join(probes, ", ")).Scan(ptrs...); err != nil {
			return fmt.Errorf("find empty columns of %s: %w", s.name, err)
		}
		for i, c := range text {
			empty[c] = n[i] == 0
		}
	}
	view := make([]string, len(s.cols))
	s.out = make([]string, len(s.cols))
	for i, c := range s.cols {
		phys := c.Name
		if strings.EqualFold(c.Name, "rowid") {
			phys = "__kalla_col_" + c.Name
			if _, err := e.exec(ctx, fmt.Sprintf("ALTER TABLE %s RENAME %s TO %s", qi(s.table), qi(c.Name), qi(phys))); err != nil {
				return fmt.Errorf("rename rowid column of %s: %w", s.name, err)
			}
		}
		s.out[i] = qi(phys) + " AS " + qi(c.Name)
		view[i] = s.out[i]
		if empty[c.Name] {
			view[i] = "NULL AS " + qi(c.Name)
		}
	}
	stmts := []string{
		fmt.Sprintf("CREATE OR REPLACE VIEW %s AS SELECT %s, rowid AS %s FROM %s", qi(s.names.view), strings.Join(view, ", "), s.names.rid(), qi(s.table)),
		fmt.Sprintf("CREATE OR REPLACE VIEW %s AS SELECT * FROM %s", qi(s.names.alias), qi(s.names.view)),
	}
	for _, q := range stmts {
		if _, err := e.exec(ctx, q); err != nil {
			return fmt.Errorf("define views of %s: %w", s.name, err)
		}
	}
	return nil
}

func (e *Engine) describe(ctx context.Context, table string) ([]kalla.Column, error) {
	rows, err := e.conn.QueryContext(ctx, "SELECT column_name, column_type, \"null\" FROM (DESCRIBE "+qi(table)+")")
	if err != nil {
		return nil, fmt.Errorf("describe %s: %w", table, err)
	}
	defer rows.Close()
	var cols []kalla.Column
	for rows.Next() {
		var c kalla.Column
		var null string
		if err := rows.Scan(&c.Name, &c.DataType, &null); err != nil {
			return nil, fmt.Errorf("describe %s: %w", table, err)
		}
		c.EngineType, c.Nullable = c.DataType, null != "NO"
		cols = append(cols, c)
	}
	return cols, rows.Err()
}

// keyWarnings reports duplicate and NULL primary keys. Records are never
// merged: each row stays its own record, identified by its row id.
func (e *Engine) keyWarnings(ctx context.Context, s *side) ([]kalla.Warning, error) {
	keys := make([]string, len(s.pk))
	nulls := make([]string, len(s.pk))
	for i, k := range s.pk {
		keys[i] = qi(k)
		nulls[i] = qi(k) + " IS NULL"
	}
	list := strings.Join(keys, ", ")
	anyNull := strings.Join(nulls, " OR ")
	var nullRows int64
	if err := e.queryRow(ctx, fmt.Sprintf("SELECT count(*) FROM %s WHERE %s", qi(s.table), anyNull)).Scan(&nullRows); err != nil {
		return nil, fmt.Errorf("check null keys of %s: %w", s.name, err)
	}
	// A key the source proved distinct while it read it needs no search
	// for repeats; NULLs are counted either way.
	unique := len(s.pk) == 1 && s.pk[0] == s.distinct
	if !unique {
		var err error
		if unique, err = e.keysOrdered(ctx, s, list, anyNull); err != nil {
			return nil, err
		}
	}
	var groups, rows int64
	if !unique {
		q := fmt.Sprintf(`SELECT count(*), coalesce(sum(n), 0) FROM (SELECT count(*) AS n FROM %s WHERE NOT (%s) GROUP BY %s HAVING count(*) > 1)`,
			qi(s.table), anyNull, list)
		if err := e.queryRow(ctx, q).Scan(&groups, &rows); err != nil {
			return nil, fmt.Errorf("check duplicate keys of %s: %w", s.name, err)
		}
	}
	s.uniqueKey = groups == 0 && nullRows == 0
	var w []kalla.Warning
	if groups > 0 {
		w = append(w, kalla.Warning{Code: kalla.WarnDuplicateKeys, Side: s.name, Count: rows,
			Message: fmt.Sprintf("%s: %d rows share %d primary key values (%s); each row is kept as its own record", s.spec.Alias, rows, groups, strings.Join(s.pk, ", "))})
	}
	if nullRows > 0 {
		w = append(w, kalla.Warning{Code: kalla.WarnNullKeys, Side: s.name, Count: nullRows,
			Message: fmt.Sprintf("%s: %d rows have a NULL in the primary key (%s); each is kept as its own record", s.spec.Alias, nullRows, strings.Join(s.pk, ", "))})
	}
	return w, nil
}

// keysOrdered reports whether the side's non-NULL keys, in the order DuckDB
// scans them, are strictly increasing or strictly decreasing: then no two
// are equal, which a streaming comparison of neighbours proves in about
// half the time of grouping (extracts are usually sorted by their key).
// Any order is sound: a sequence holding every key once that strictly
// rises has no repeated value. A text key is also compared by length
// first (in bytes, then byte by byte), the order of numbers written
// without leading zeros (INV-9 before INV-10), as the CSV scan compares
// it. False means "not proven", and the caller groups.
func (e *Engine) keysOrdered(ctx context.Context, s *side, list, anyNull string) (bool, error) {
	k := list
	if len(s.pk) > 1 {
		k = "row(" + list + ")"
	}
	// Breaks of each order: byte by byte (or as the type compares),
	// rising and falling; then by length first, for a text key only (a
	// constant 1 otherwise: not proven).
	counts := "count(*) FILTER (WHERE k <= p), count(*) FILTER (WHERE k >= p), "
	if textKey(s) {
		counts += `count(*) FILTER (WHERE strlen(k) < strlen(p) OR (strlen(k) = strlen(p) AND k <= p)),
  count(*) FILTER (WHERE strlen(k) > strlen(p) OR (strlen(k) = strlen(p) AND k >= p))`
	} else {
		counts += "1, 1"
	}
	var up, down, lenUp, lenDown int64
	// A comparison of neighbours streams on one thread, so the rows are
	// compared as two halves by row id at once, each in order, and the
	// last key of the first half with the first key of the second. The
	// last side's check runs alone at the end of staging: 2.0 s against
	// 3.1-4.1 s at 50M payments, 37 ms against 95 ms at 1M.
	q := fmt.Sprintf(`SELECT %[5]s FROM (
SELECT %[1]s AS k, lag(%[1]s) OVER () AS p FROM %[2]s WHERE rowid < %[4]d AND NOT (%[3]s)
UNION ALL SELECT %[1]s AS k, lag(%[1]s) OVER () AS p FROM %[2]s WHERE rowid >= %[4]d AND NOT (%[3]s)
UNION ALL SELECT (SELECT %[1]s FROM %[2]s WHERE rowid >= %[4]d AND NOT (%[3]s) ORDER BY rowid LIMIT 1) AS k,
  (SELECT %[1]s FROM %[2]s WHERE rowid < %[4]d AND NOT (%[3]s) ORDER BY rowid DESC LIMIT 1) AS p)`,
		k, qi(s.table), anyNull, s.ids/2, counts)
	if err := e.queryRow(ctx, q).Scan(&up, &down, &lenUp, &lenDown); err != nil {
		return false, fmt.Errorf("check key order of %s: %w", s.name, err)
	}
	return up == 0 || down == 0 || lenUp == 0 || lenDown == 0, nil
}

// textKey reports whether the side's key is one text column.
func textKey(s *side) bool {
	if len(s.pk) != 1 {
		return false
	}
	i := kalla.FindColumn(s.cols, s.pk[0])
	return i >= 0 && s.cols[i].EngineType == "VARCHAR"
}

// matchResult is the match output held in the engine.
type matchResult struct {
	table    string
	userCols []string // columns the match SQL produced
	// leftKeys and rightKeys name the match-table columns holding each
	// record's primary key: a column of the SQL's own when it selects the
	// key as is, else an added pkCol. Nil means pkCol throughout.
	leftKeys, rightKeys []string
	// same names, per user column, another user column holding the same
	// value in every row, or "" (see rules.Plan.SameColumns); nil: none.
	same []string
	rows int64 // output rows naming both records: pairs plus repeats
	// pairs, leftRecords and rightRecords are -1 while unknown: a writing
	// run learns the records from the unmatched rows it writes, then the
	// pairs (see settlePairs).
	pairs                     int64
	repeats                   int64 // output rows that repeated a pair
	leftRecords, rightRecords int64
	outerRows                 int64
	// plan is the compiled rules of a rules recipe, nil for match SQL;
	// report and breaks are what it found beyond the pairs.
	plan   *rules.Plan
	report *kalla.RulesReport
	breaks int64
}

// keyCol is the match-table column holding key column i of a side.
func (m *matchResult) keyCol(side string, i int) string {
	keys := m.leftKeys
	if side == "r" {
		keys = m.rightKeys
	}
	if keys == nil {
		return pkCol(side, i)
	}
	return keys[i]
}

// match runs the match SQL with identity columns into a table, sorted by
// record so the matched file is written in a stable order without another
// sort, and counts its rows. Unless deferCounts, it also counts the matched
// records and pairs; a writing run defers them to writeOutputs, which
// learns the records from the unmatched rows it writes anyway.
func (e *Engine) match(ctx context.Context, matchSQL string, left, right *side, deferCounts bool) (*matchResult, error) {
	if !e.sandboxed {
		return nil, errNoSandbox
	}
	id, err := e.withIdentity(ctx, matchSQL, left.names, right.names)
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, recipeErr(err)
	}
	m := &matchResult{table: "__kalla_match"}
	// The SQL is wrapped whole, so its own ORDER BY or LIMIT keeps its
	// meaning.
	q := fmt.Sprintf("CREATE OR REPLACE TABLE %s AS SELECT * FROM (%s) ORDER BY %s, %s", qi(m.table), id.sql, leftRid, rightRid)
	if _, err := e.exec(ctx, q); err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		if resourceKind(err) != "" {
			// The machine's fault, not the SQL's (see resourceFailure).
			return nil, fmt.Errorf("match_sql: %w", err)
		}
		return nil, recipeErr(sqlError(err, matchSQL, [2][]kalla.Column{left.cols, right.cols}))
	}
	cols, err := e.describe(ctx, m.table)
	if err != nil {
		return nil, err
	}
	for _, c := range cols {
		if !strings.HasPrefix(strings.ToLower(c.Name), "__kalla_") {
			m.userCols = append(m.userCols, c.Name)
		}
	}
	// Output columns follow the select list, so an item's position names
	// its column (DuckDB may have renamed a repeated name).
	keys := func(at []int, side string) []string {
		names := make([]string, len(at))
		for i, j := range at {
			names[i] = pkCol(side, i)
			if j >= 0 {
				names[i] = cols[j].Name
			}
		}
		return names
	}
	m.leftKeys, m.rightKeys = keys(id.left, "l"), keys(id.right, "r")
	q = fmt.Sprintf(`SELECT count(*) FILTER (WHERE %[1]s IS NOT NULL AND %[2]s IS NOT NULL),
		count(*) FILTER (WHERE %[1]s IS NULL OR %[2]s IS NULL) FROM %[3]s`, leftRid, rightRid, qi(m.table))
	if err := e.queryRow(ctx, q).Scan(&m.rows, &m.outerRows); err != nil {
		return nil, fmt.Errorf("count matches: %w", err)
	}
	m.pairs, m.leftRecords, m.rightRecords = -1, -1, -1
	if deferCounts {
		return m, nil
	}
	q = fmt.Sprintf(`SELECT %s, %s FROM %s`, matchedRecords(left, leftRid, rightRid), matchedRecords(right, rightRid, leftRid), qi(m.table))
	if err := e.queryRow(ctx, q).Scan(&m.leftRecords, &m.rightRecords); err != nil {
		return nil, fmt.Errorf("count matched records: %w", err)
	}
	return m, e.settlePairs(ctx, m)
}

// matchedRecords is the aggregate counting side s's distinct records (row
// ids in column rid) among the match rows that also name the other side's.
func matchedRecords(s *side, rid, other string) string {
	return rules.DuckDB.CountIDs(fmt.Sprintf("CASE WHEN %s IS NOT NULL THEN %s END", other, rid), s.ids)
}

// settlePairs counts the distinct pairs of a match table whose matched
// records are known, and keeps one row of each pair.
func (e *Engine) settlePairs(ctx context.Context, m *matchResult) error {
	m.pairs = m.rows
	// When either side's records are all different, so are the pairs;
	// only otherwise (a many-to-many join) are pairs counted one by one.
	if m.leftRecords < m.rows && m.rightRecords < m.rows {
		q := fmt.Sprintf(`SELECT count(DISTINCT CAST(%[1]s AS HUGEINT) * 18446744073709551616 + %[2]s) FROM %[3]s`, leftRid, rightRid, qi(m.table))
		if err := e.queryRow(ctx, q).Scan(&m.pairs); err != nil {
			return fmt.Errorf("count matched pairs: %w", err)
		}
	}
	if m.repeats = m.rows - m.pairs; m.repeats > 0 {
		// The SQL produced some pairs more than once (a join fanning out
		// through a non-unique subquery): a pair is one pair, so keep the
		// first of each by a total order, which makes the choice stable
		// and leaves the table sorted by record.
		order := []string{leftRid, rightRid}
		for _, c := range m.userCols {
			order = append(order, qi(c))
		}
		q := fmt.Sprintf("CREATE OR REPLACE TABLE %[1]s AS SELECT DISTINCT ON (%[2]s, %[3]s) * FROM %[1]s ORDER BY %[4]s",
			qi(m.table), leftRid, rightRid, strings.Join(order, ", "))
		if _, err := e.exec(ctx, q); err != nil {
			return fmt.Errorf("remove repeated pairs: %w", err)
		}
	}
	return nil
}

var internalName = regexp.MustCompile(`"?[A-Za-z_]*\.?__kalla_[a-z_0-9]+"?`)

// sqlError turns a DuckDB error from the match SQL into a user error with the
// SQL position when DuckDB gives one.
func sqlError(err error, matchSQL string, cols [2][]kalla.Column) error {
	msg := err.Error()
	lines := strings.Split(msg, "\n")
	head := strings.TrimSpace(lines[0])
	if m := unknownColumn(msg, matchSQL, cols); m != "" {
		return kalla.Errorf(kalla.EINVALID, "match_sql: %s", m)
	}
	if strings.Contains(msg, "__kalla_") {
		head = internalName.ReplaceAllString(head, "the record id")
		return kalla.Errorf(kalla.EINVALID, "match_sql: Kalla cannot tell which records each output row pairs (%s): select plain rows from left_src and right_src without aggregating them", head)
	}
	return kalla.Errorf(kalla.EINVALID, "match_sql: %s", settingAdvice.ReplaceAllString(head, ""))
}

// settingAdvice is the way out DuckDB offers in some messages ("Use
// TRY(...) to return NULL for this expression, or SET
// error_on_division_by_zero=false to return NULL for all divisions by
// zero."): the sandbox locks every setting, so only the advice to change the
// SQL stays.
var settingAdvice = regexp.MustCompile(`,? or SET [a-z_]+ ?= ?'?[A-Za-z_0-9]+'? to [^.]*`)

var (
	refColumn   = regexp.MustCompile(`Referenced column "([^"]+)" not found`)
	tableColumn = regexp.MustCompile(`(?:Table|Values list) "([^"]+)" does not have a column named "([^"]+)"`)
	quoted      = regexp.MustCompile(`"([^"]+)"`)
)

// sideAlias finds the names a match SQL gives left_src and right_src
// ("left_src l", "right_src AS r"); the views' own names count too.
var sideAlias = regexp.MustCompile(`(?i)\b(left_src|right_src)(?:\s+(?:AS\s+)?([A-Za-z_][A-Za-z0-9_]*))?`)

// unknownColumn turns DuckDB's binder error for a column that does not
// exist into the user's terms: the column as written and the nearest real
// column of the side it names (by the alias the match SQL gives the side),
// and, when the other side has a column of that name, says so. "" when the
// error is something else.
func unknownColumn(msg, matchSQL string, cols [2][]kalla.Column) string {
	var name, qual, bare string
	if m := tableColumn.FindStringSubmatch(msg); m != nil {
		name, qual, bare = m[1]+"."+m[2], m[1], m[2]
	} else if m := refColumn.FindStringSubmatch(msg); m != nil {
		name, bare = m[1], m[1]
		if q, b, ok := strings.Cut(m[1], "."); ok {
			qual, bare = q, b
		}
	} else {
		return ""
	}
	side := -1 // the side the qualifier names, when it names one
	if qual != "" {
		for _, m := range sideAlias.FindAllStringSubmatch(matchSQL, -1) {
			i := 0
			if strings.EqualFold(m[1], "right_src") {
				i = 1
			}
			if strings.EqualFold(qual, m[1]) || strings.EqualFold(qual, m[2]) {
				side = i
			}
		}
	}
	own := append(slices.Clone(cols[0]), cols[1]...)
	var elsewhere string
	if side >= 0 {
		own = cols[side]
		for _, c := range cols[1-side] {
			if strings.EqualFold(c.Name, bare) {
				elsewhere = c.Name
			}
		}
	}
	best, guess := -1, ""
	for _, c := range own {
		if strings.HasPrefix(strings.ToLower(c.Name), "__kalla_") {
			continue
		}
		d := editDistance(strings.ToLower(bare), strings.ToLower(c.Name))
		if d <= max(2, len(bare)/2) && (best < 0 || d < best) {
			best, guess = d, c.Name
		}
	}
	if guess == "" && len(bare) >= 3 {
		// A prefixed or suffixed name: amount for paid_amount.
		for _, c := range own {
			if strings.Contains(strings.ToLower(c.Name), strings.ToLower(bare)) && !strings.HasPrefix(strings.ToLower(c.Name), "__kalla_") {
				guess = c.Name
				break
			}
		}
	}
	out := fmt.Sprintf("unknown column `%s`", name)
	if guess != "" {
		out += fmt.Sprintf("; did you mean `%s`?", guess)
	}
	if elsewhere != "" {
		out += fmt.Sprintf(" (`%s` is a column of %s)", elsewhere, [2]string{"right_src", "left_src"}[side])
	}
	return out
}

// editDistance is the Levenshtein distance between two strings.
func editDistance(a, b string) int {
	ra, rb := []rune(a), []rune(b)
	prev := make([]int, len(rb)+1)
	cur := make([]int, len(rb)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(ra); i++ {
		cur[0] = i
		for j := 1; j <= len(rb); j++ {
			cost := 1
			if ra[i-1] == rb[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(rb)]
}

// writeOutputs streams the three tables from DuckDB to files under temporary
// names and renames them once all are complete.
func (e *Engine) writeOutputs(ctx context.Context, r Run, m *matchResult, left, right *side) ([]kalla.OutputFile, error) {
	// A side's unmatched rows are exactly its records no pair uses, so an
	// unmatched file tells that side's matched records when the match left
	// them uncounted. The right's comes first: when every pair has its own
	// right record, that alone settles the pairs before the matched file
	// is written. The left's comes last, so the big matched file is
	// checksummed while DuckDB writes it (a rules recipe's goes beside the
	// matched file instead, below).
	type output struct {
		table string
		pos   int                             // place in the summary's list: matched first
		query func(w *Engine) (string, error) // on the connection that writes it
		rows  *int64                          // rows the file must have; nil when the file tells them
		learn func(n int64)
	}
	records := func(s *side, matched *int64) output {
		o := output{table: TableUnmatchedLeft, pos: 1, query: func(w *Engine) (string, error) { return w.unmatchedQuery(ctx, s, m) }}
		if s == right {
			o.table, o.pos = TableUnmatchedRight, 2
		}
		if *matched >= 0 {
			n := s.count - *matched
			o.rows = &n
		} else {
			o.learn = func(n int64) { *matched = s.count - n }
		}
		return o
	}
	matched := output{table: TableMatched, pos: 0, query: func(w *Engine) (string, error) {
		if m.pairs < 0 {
			if m.leftRecords < 0 && m.rightRecords < m.rows {
				q := fmt.Sprintf(`SELECT %s FROM %s`, matchedRecords(left, leftRid, rightRid), qi(m.table))
				if err := w.queryRow(ctx, q).Scan(&m.leftRecords); err != nil {
					return "", fmt.Errorf("count matched records: %w", err)
				}
			}
			if err := w.settlePairs(ctx, m); err != nil {
				return "", err
			}
		}
		return matchedSelect(m, left, right)
	}, rows: &m.pairs}
	queries := []output{records(right, &m.rightRecords), matched, records(left, &m.leftRecords)}
	pos := 3
	if m.plan != nil {
		pos = 4 // after the breaks
	}
	if r.Records {
		// After the unmatched files, which settle each side's matched
		// record count the files must hold.
		for i, s := range []*side{left, right} {
			n := []*int64{&m.leftRecords, &m.rightRecords}[i]
			queries = append(queries, output{table: []string{TableMatchedLeft, TableMatchedRight}[i], pos: pos + i,
				query: func(*Engine) (string, error) { return matchedRecordsQuery(s, m) }, rows: n})
		}
	}
	// The break report needs nothing the others learn, and its COPY keeps
	// little more than one core busy (a few row groups, sorted): it is
	// written on a connection of its own meanwhile.
	var aside []output
	if m.plan != nil {
		aside = append(aside, output{table: TableBreaks, pos: 3, query: func(*Engine) (string, error) { return m.plan.BreaksQuery(), nil }, rows: &m.breaks})
		if m.leftRecords >= 0 {
			// A rules recipe's unmatched left file, whose row count the
			// rules' report gives, follows it there, beside the matched
			// file: its POSITIONAL JOIN reads on one thread, and as the
			// last statement it left a core idle (gen.Standard(1M) rules:
			// the write stage 0.715 s against 0.770 s).
			aside = append(aside, queries[2])
			queries = slices.Delete(queries, 2, 3)
		}
	}
	var mu sync.Mutex    // guards done
	var done [][2]string // partial, final
	var digests sync.WaitGroup
	defer func() {
		digests.Wait() // before removing what they read
		for _, d := range done {
			os.Remove(d[0]) // no-op once renamed
		}
	}()
	outs := make([]kalla.OutputFile, (len(queries)+len(aside))*len(r.Formats))
	digestErrs := make([]error, len(outs))
	write := func(w *Engine, q output) error {
		sel, err := q.query(w)
		if err != nil {
			return err
		}
		for fi, f := range r.Formats {
			name := q.table + "." + f
			final := filepath.Join(r.OutDir, name)
			partial := kalla.PartialPath(final)
			mu.Lock()
			done = append(done, [2]string{partial, final})
			mu.Unlock()
			// Snappy (the default) writes about 35% faster than zstd here.
			// A small dictionary limit gives up early on columns of
			// distinct values (keys, references), whose dictionary DuckDB
			// would build and then discard: the matched file of the
			// benchmark is byte-identical and written about 20% faster,
			// and columns of few values (currencies) keep their dictionary.
			opts := "FORMAT parquet, DICTIONARY_SIZE_LIMIT 1024"
			if f == FormatCSV {
				opts = "FORMAT csv, HEADER true"
			}
			res, err := w.exec(ctx, fmt.Sprintf("COPY (%s) TO %s (%s)", sel, dialect.DuckDB.QuoteString(partial), opts))
			if err != nil {
				return fmt.Errorf("write %s: %w", name, err)
			}
			n, err := res.RowsAffected()
			if err != nil {
				return fmt.Errorf("write %s: count rows: %w", name, err)
			}
			if q.rows == nil {
				q.learn(n)
				q.rows = &n
			}
			if n != *q.rows {
				return fmt.Errorf("write %s: wrote %d rows, expected %d", name, n, *q.rows)
			}
			// The file is checksummed while DuckDB writes the next one.
			i := q.pos*len(r.Formats) + fi
			outs[i] = kalla.OutputFile{Name: name, Table: q.table, Format: f, Rows: n}
			digests.Go(func() {
				outs[i].Bytes, outs[i].SHA256, digestErrs[i] = kalla.FileDigest(partial)
			})
		}
		return nil
	}
	if e.memLimit != "" {
		// Under a memory limit one statement at a time: two statements
		// each size their hash tables and sorts to the limit on their
		// own. At gen.Standard(5M) under 512MB the rules' unmatched right
		// file ran out of memory beside the break report's sort, and
		// passed (peak RSS 544 MB) with the report written after it.
		queries, aside = append(queries, aside...), nil
	}
	// A rules recipe's two unmatched files are each a positional join of
	// the staging table and the reason table, which DuckDB runs on one
	// thread and streams (no hash table, no sort sized to the limit):
	// under a limit they are written side by side, on a core each, before
	// the rest. gen.Standard(10M) under 800MB wrote them one after the
	// other in 2.3 s and 3.7 s, each on one core.
	if e.memLimit != "" && m.plan != nil && linedUp(left, m.plan) && linedUp(right, m.plan) {
		ul := slices.IndexFunc(queries, func(q output) bool { return q.table == TableUnmatchedLeft })
		ur := slices.IndexFunc(queries, func(q output) bool { return q.table == TableUnmatchedRight })
		if ul >= 0 && ur >= 0 && queries[ul].rows != nil && queries[ur].rows != nil {
			l, r := queries[ul], queries[ur]
			queries = slices.DeleteFunc(queries, func(q output) bool { return q.table == l.table || q.table == r.table })
			w, release, err := e.fork(ctx)
			if err != nil {
				return nil, err
			}
			var lerr error
			var wg sync.WaitGroup
			wg.Go(func() {
				defer release()
				lerr = write(w, l)
			})
			rerr := write(e, r)
			wg.Wait()
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			if err := errors.Join(lerr, rerr); err != nil {
				return nil, err
			}
		}
	}
	var asideErr error
	var asideDone sync.WaitGroup
	if len(aside) > 0 {
		w, release, err := e.fork(ctx)
		if err != nil {
			return nil, err
		}
		asideDone.Go(func() {
			defer release()
			for _, q := range aside {
				if asideErr = write(w, q); asideErr != nil {
					return
				}
			}
		})
	}
	var err error
	for _, q := range queries {
		if err = write(e, q); err != nil {
			break
		}
	}
	asideDone.Wait()
	if ctx.Err() != nil {
		return nil, ctx.Err()
	}
	if err := errors.Join(err, asideErr); err != nil {
		return nil, err
	}
	digests.Wait()
	if err := errors.Join(digestErrs...); err != nil {
		return nil, err
	}
	for _, d := range done {
		if err := os.Rename(d[0], d[1]); err != nil {
			return nil, fmt.Errorf("finish %s: %w", filepath.Base(d[1]), err)
		}
	}
	return outs, nil
}

// matchedSelect builds the query for matched pairs: the match's own columns,
// then each record's primary key and row number, the rule and the score.
func matchedSelect(m *matchResult, left, right *side) (string, error) {
	// post marks an expression over the sorted rows (alias x), computed
	// after the sort instead of carried through it.
	type item struct {
		expr, name string
		post       bool
	}
	sel := make([]item, 0, len(m.userCols)+2*len(left.pk)+6)
	for i, c := range m.userCols {
		expr := "m." + qi(c)
		if i < len(m.same) && m.same[i] != "" {
			expr = "m." + qi(m.same[i])
		}
		sel = append(sel, item{expr: expr, name: c})
	}
	taken := map[string]bool{}
	for _, c := range m.userCols {
		taken[strings.ToLower(c)] = true
	}
	add := func(expr, name string, post bool) error {
		if taken[strings.ToLower(name)] {
			return recipeErr(kalla.Errorf(kalla.EINVALID, "match_sql: output column %q clashes with a column Kalla adds to matched pairs; rename it with AS", name))
		}
		taken[strings.ToLower(name)] = true
		sel = append(sel, item{expr, name, post})
		return nil
	}
	for i, k := range left.pk {
		if err := add("m."+qi(m.keyCol("l", i)), "_left_"+k, false); err != nil {
			return "", err
		}
	}
	for i, k := range right.pk {
		if err := add("m."+qi(m.keyCol("r", i)), "_right_"+k, false); err != nil {
			return "", err
		}
	}
	tail := []item{
		{"m." + leftRid + " + 1", "_left_row", false},
		{"m." + rightRid + " + 1", "_right_row", false},
		{enumOf("'match_sql'", "match_sql"), "_rule", false},
		{"CAST(1.0 AS DOUBLE)", "_score", false},
	}
	if m.plan != nil {
		// Computed above the sort from the columns it carries (below).
		tail = []item{
			{"x." + leftRid + " + 1", "_left_row", true},
			{"x." + rightRid + " + 1", "_right_row", true},
			{enumOf(m.plan.RuleOf("x.__kalla_pass"), m.plan.RuleNames()...), "_rule", true},
			{"x.__kalla_score", "_score", true},
			{enumOf(m.plan.StatusOf("x.__kalla_pass", "x.__kalla_score"), rules.StatusConfirmed, rules.StatusSuggested), "_status", true}}
	}
	for _, x := range tail {
		if err := add(x.expr, x.name, x.post); err != nil {
			return "", err
		}
	}
	where := fmt.Sprintf("FROM %s m WHERE m.%s IS NOT NULL AND m.%s IS NOT NULL", qi(m.table), leftRid, rightRid)
	if m.plan == nil {
		// Match SQL's table is stored in this order already (see match).
		cols := make([]string, len(sel))
		for i, c := range sel {
			cols[i] = c.expr
			if c.expr != "m."+qi(c.name) {
				cols[i] += " AS " + qi(c.name)
			}
		}
		return fmt.Sprintf("SELECT %s %s", strings.Join(cols, ", "), where), nil
	}
	// A rules match is a view over the passes' pairs, sorted here. The
	// sort carries as little as it can, since at 50M pairs it spills all
	// it carries: a column shown twice (a compared key column, again as
	// _left_<key>; a right column every rule equals to a left one) is
	// copied after the sort, and the row numbers, rule and status are
	// computed after it from the row ids, pass number and score. In
	// isolation, 42.5M pairs under 4GB, that made the sorted COPY about
	// 3 s faster, the file byte for byte the same (DESIGN.md).
	inner := []string{"m." + leftRid + " AS " + leftRid, "m." + rightRid + " AS " + rightRid,
		"m.__kalla_pass AS __kalla_pass", "m.__kalla_score AS __kalla_score"}
	var outer []string
	first := map[string]string{}
	for _, c := range sel {
		if c.post {
			outer = append(outer, c.expr+" AS "+qi(c.name))
			continue
		}
		if f, ok := first[c.expr]; ok {
			outer = append(outer, "x."+qi(f)+" AS "+qi(c.name))
			continue
		}
		first[c.expr] = c.name
		inner = append(inner, c.expr+" AS "+qi(c.name))
		outer = append(outer, "x."+qi(c.name))
	}
	return fmt.Sprintf("SELECT %s FROM (SELECT %s %s ORDER BY %s, %s) x",
		strings.Join(outer, ", "), strings.Join(inner, ", "), where, leftRid, rightRid), nil
}

// enumOf casts expr, a text column of a few known labels, to a DuckDB ENUM
// of them. Parquet stores it exactly as text (BYTE_ARRAY, UTF8, read back as
// VARCHAR) and CSV prints the label, but DuckDB writes it from the enum's
// dictionary instead of hashing every value: the constant _rule column cost
// about 20 ms per million pairs as text.
func enumOf(expr string, labels ...string) string {
	quoted := make([]string, len(labels))
	for i, l := range labels {
		quoted[i] = dialect.DuckDB.QuoteString(l)
	}
	return fmt.Sprintf("CAST(%s AS ENUM(%s))", expr, strings.Join(quoted, ", "))
}

// matchedRecordsQuery selects the full original rows of a side's records
// that some pair uses, each with its row number (_left_row or _right_row,
// row id + 1, as in matched), in source order: the unmatched query's
// complement, from the staging table itself.
func matchedRecordsQuery(s *side, m *matchResult) (string, error) {
	rid, row := leftRid, kalla.LeftRowColumn
	if s.name == "right" {
		rid, row = rightRid, kalla.RightRowColumn
	}
	if i := kalla.FindColumn(s.cols, row); i >= 0 {
		return "", kalla.Errorf(kalla.EINVALID, "source %s: column %q is the name Kalla gives the row number of a matched record; rename it to write the matched records", s.spec.Alias, s.cols[i].Name)
	}
	return fmt.Sprintf(`SELECT %s, s.rowid + 1 AS %s FROM %s s SEMI JOIN (SELECT %s FROM %s WHERE %s IS NOT NULL AND %s IS NOT NULL) m ON s.rowid = m.%s ORDER BY s.rowid`,
		strings.Join(s.out, ", "), qi(row), qi(s.table), rid, qi(m.table), leftRid, rightRid, rid), nil
}

// unmatchedQuery selects the full original rows of a side's records that no
// match used, in source order, from the staging table itself (the view may
// show an empty column as untyped NULL).
//
// For a rules recipe each row also carries _reason and _closest_candidate,
// from the rules' explanation of the side's unmatched records.
func (e *Engine) unmatchedQuery(ctx context.Context, s *side, m *matchResult) (string, error) {
	ridOfSide := leftRid
	if s.name == "right" {
		ridOfSide = rightRid
	}
	if m.plan != nil {
		return e.unmatchedWithReasons(ctx, s, m.plan)
	}
	paired := fmt.Sprintf("FROM %s WHERE %s IS NOT NULL AND %s IS NOT NULL", qi(m.table), leftRid, rightRid)
	if fitsRowSet(s) {
		// The side's row ids in pairs as a set (rowSet) made on this
		// connection: the scan tests each row's bit instead of an anti
		// join hashing the side (about 35 ms less per file at 1M), and
		// the file is byte for byte the same.
		ps, err := e.makeRowSet(ctx, s, pairedSet(s).name, "SELECT "+ridOfSide+" "+paired)
		if err != nil {
			return "", fmt.Errorf("collect matched %s records: %w", s.name, err)
		}
		return fmt.Sprintf(`SELECT %s FROM %s s%s WHERE %s ORDER BY s.rowid`,
			strings.Join(s.out, ", "), qi(s.table), ps.join("s"), ps.notIn("s")), nil
	}
	return fmt.Sprintf(`SELECT %s FROM %s s ANTI JOIN (SELECT %s %s) m ON s.rowid = m.%s ORDER BY s.rowid`,
		strings.Join(s.out, ", "), qi(s.table), ridOfSide, paired, ridOfSide), nil
}

// linedUp reports whether a rules recipe's unmatched file of side s is a
// positional join of its records and reasons (see unmatchedWithReasons):
// a pipeline that streams on one thread. A file whose reasons come from
// the records themselves sorts them instead, on every core, with a sort
// sized to the memory limit.
func linedUp(s *side, plan *rules.Plan) bool {
	_, own := plan.OwnReason(sideIndex(s))
	return positional(s) && !own
}

// positional reports whether unmatchedWithReasons lines side s's records
// up with their reasons by a positional join (the side's row ids fit a
// bitstring) rather than joining them.
func positional(s *side) bool { return fitsRowSet(s) }

// unmatchedWithReasons selects a rules recipe's unmatched records of a side
// with their _reason and _closest_candidate, in source order. The rules'
// reason table lists exactly the side's unmatched records, one row each,
// in row-id order (rules.Dialect.Ordered).
//
// It lines up the records and the reasons instead of joining them: the
// records, picked from the staging table by a bitstring of the reason
// table's row ids (as the SQL recipe's unmatched files are), and the reason
// table, side by side with a POSITIONAL JOIN. DuckDB runs a pipeline holding
// a positional join on one thread (the operator is not parallel), so the
// records come in staging order, which is row-id order, and the reasons in
// theirs; the reasons are collected first (spillable, no hash table). The
// plain form, reasons JOIN staging ON rowid ORDER BY rowid, held a hash
// table of every reason while it sorted the joined rows: at
// gen.Standard(5M) under --memory-limit 512MB it ran out of memory beside
// the break report's sort (DESIGN.md, "Scale findings"). Copying the
// records into a table first, to read both with a POSITIONAL_SCAN, wrote
// the same bytes for about 0.1 s more CPU a side at gen.Standard(1M).
//
// When the reasons read nothing but each record's own columns (no search
// found a candidate: rules.Plan.OwnReason), the file computes them from the
// records it writes, which it picks and sorts as an unmatched file of a SQL
// recipe: there is nothing to line up, so the scan and the file's encoding
// run on every core. At gen.Standard(50M) under --memory-limit 4GB (10M
// unmatched records a side) the positional form took 31 s and 35 s, side
// by side, each on one core. Its sort is sized to the memory limit, so
// under one it is written alone, not beside the other side's (linedUp).
func (e *Engine) unmatchedWithReasons(ctx context.Context, s *side, plan *rules.Plan) (string, error) {
	reasons := qi(rulesReasonTable(s))
	if own, ok := plan.OwnReason(sideIndex(s)); ok && fitsRowSet(s) {
		open, err := e.makeRowSet(ctx, s, "__kalla_unmatched_"+s.name, "SELECT rid FROM "+reasons)
		if err != nil {
			return "", fmt.Errorf("collect unmatched %s records: %w", s.name, err)
		}
		// Sorted by row id as the SQL recipe's unmatched files are: the
		// scan is in that order already (not through a set in pieces),
		// and the sort makes the Parquet row groups the same on any
		// number of threads (DESIGN.md). The reason is computed above
		// the sort, not carried through it: in isolation, 10M records
		// under 4GB, its text carried made the file take 1.3-5.7 s
		// longer, byte for byte the same.
		return fmt.Sprintf(`SELECT u.* EXCLUDE (__kalla_rowid), %s AS _reason, CAST(NULL AS VARCHAR) AS _closest_candidate FROM (SELECT %s, s.rowid AS __kalla_rowid FROM %s s%s WHERE %s ORDER BY s.rowid) u`,
			own, strings.Join(s.out, ", "), qi(s.table), open.join("s"), open.in("s")), nil
	}
	if !positional(s) {
		// More row ids than a bitstring takes: the join.
		return fmt.Sprintf(`SELECT %s, x.reason AS _reason, x.closest AS _closest_candidate FROM %s x JOIN %s s ON s.rowid = x.rid ORDER BY s.rowid`,
			strings.Join(s.out, ", "), reasons, qi(s.table)), nil
	}
	// A variable, never pieces: the positional join needs the records in
	// row-id order, which a join to pieces does not keep.
	ids := "__kalla_unmatched_" + s.name
	if _, err := e.exec(ctx, rules.DuckDB.SetVariable(ids, "SELECT "+rules.DuckDB.IDSet("rid", s.ids)+" FROM "+reasons)); err != nil {
		return "", fmt.Errorf("collect unmatched %s records: %w", s.name, err)
	}
	return fmt.Sprintf(`SELECT u.*, x.reason AS _reason, x.closest AS _closest_candidate FROM (SELECT %s FROM %s s WHERE NOT (%s)) u POSITIONAL JOIN %s x`,
		strings.Join(s.out, ", "), qi(s.table), rules.DuckDB.IDNotIn(rules.DuckDB.Variable(ids), "s.rowid"), reasons), nil
}
