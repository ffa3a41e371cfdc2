package spark

import (
	"context"
	"crypto/rand"
	"fmt"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"time"

	sparksql "github.com/apache/spark-connect-go/spark/sql"
	"github.com/apache/spark-connect-go/spark/sql/types"

	"github.com/kalla-recon/kalla/internal/engine"
	"github.com/kalla-recon/kalla/internal/kalla"
	"github.com/kalla-recon/kalla/internal/objstore"
	"github.com/kalla-recon/kalla/internal/rules"
	"github.com/kalla-recon/kalla/internal/version"
)

// TokenEnv is the environment variable holding the bearer token sent to
// Spark Connect; a token is never taken from the command line.
const TokenEnv = "KALLA_SPARK_TOKEN"

// Options configure an Engine.
type Options struct {
	// Remote is the Spark Connect endpoint, sc://host:port.
	Remote string
	// Token is sent as a bearer token (over TLS); read it from TokenEnv.
	Token string
	// Logger receives debug lines (SQL as sent, timings). Nil discards.
	Logger *slog.Logger
	// S3 reaches an s3:// output location from Kalla, which writes its
	// summary.json there (the cluster writes the tables with its own
	// s3a credentials); nil reads objstore.S3ConfigFromEnv when needed.
	S3 *objstore.S3Config
}

// OptionsFromEnv returns Options for remote with the token from TokenEnv.
func OptionsFromEnv(remote string, log *slog.Logger) Options {
	return Options{Remote: remote, Token: os.Getenv(TokenEnv), Logger: log}
}

// Engine runs match-SQL recipes on a Spark cluster through Spark Connect.
// Each run gets a Spark session of its own (its temp views and settings),
// released at the end of the run, so runs never see each other's tables
// and a cancelled run leaves nothing behind on the cluster. Cached data is
// the server's, not the session's: each run marks what it caches as its
// own (see run.mark).
type Engine struct {
	opts Options
	log  *slog.Logger
}

// New checks the options and returns an engine; it does not connect.
func New(opts Options) (*Engine, error) {
	if _, err := remoteWithToken(opts.Remote, ""); err != nil {
		return nil, kalla.Errorf(kalla.EINVALID, "%s", err.Error())
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Engine{opts: opts, log: log}, nil
}

// Job is one reconciliation for Spark: the recipe with its sources'
// resolved URIs (local paths the cluster shares, s3:// or database URLs
// with their credentials; Spark's executors read them, never Kalla).
type Job struct {
	Recipe *kalla.Recipe
	// LeftFilters and RightFilters scope the sides; nil means the recipe's.
	LeftFilters, RightFilters []kalla.Filter
	// OutDir receives the outputs: a local folder the cluster shares or
	// an s3://bucket/prefix the cluster can write as s3a://.
	OutDir string
	// Formats lists "parquet" and/or "csv" (a folder of part files per
	// table and format); empty means parquet.
	Formats []string
	RunID   string
	// Progress, when set, receives an event at the start and end of each
	// stage (Spark Connect reports no row counts while a query runs).
	Progress func(engine.Event)
	// DryRun computes the counts but writes nothing.
	DryRun bool
	// Records also writes matched_left and matched_right (engine.Run's
	// Records): each side's records that some pair uses, whole.
	Records bool
	// uris are the sources' URIs as the recipe gave them, for the
	// summary (redacted); empty means Recipe's.
	uris [2]string
}

// run is the state of one Execute.
type run struct {
	e    *Engine
	s    *session
	job  Job
	emit func(engine.Event)
	// dest is where the outputs go; nil for a dry run or a check.
	dest *dest
	// created lists the temp views and cached tables to drop.
	created []string
	// plan is a rules recipe's compiled rules, whose tables cleanup drops.
	plan *rules.Plan
	// id is the run's mark (see mark); empty until first asked for.
	id string
}

// mark is a literal unique to the run, which every source's staged rows
// carry as a column so that no other run's plan is ever the same.
//
// Spark's cache belongs to the server, is shared by every session, and
// finds cached data by plan: two runs reading the same file made the same
// plan. A run that started while another held the file cached used that
// run's rows, read before the file changed (the file as it was, silently:
// TestConcurrentRunsOwnTheirData failed so), and the first run's cleanup
// (UNCACHE) dropped rows the second was still using, which it then read
// again from the changed file.
func (r *run) mark() string {
	if r.id == "" {
		r.id = rand.Text() // base32: letters and digits only
	}
	return r.id
}

// smallRun is the most records (both sides) a run may have for its match,
// explanations and outputs to run without adaptive execution (see
// execute).
const smallRun = 1_000_000

// cleanupTimeout bounds removing a failed run's outputs and the session's
// views, which run after the run's context may have ended.
const cleanupTimeout = 30 * time.Second

// viewCleanupTimeout bounds dropping the session's views. A rules run
// makes a few dozen, two statements each; on a loaded cluster (load 30 on
// 2 cores) each took 0.3-2.5 s and 30 s ran out (Dec 3), leaving cached
// tables in the server's cache manager, which releasing the session does
// not empty: their plans stayed on the driver's heap.
const viewCleanupTimeout = 3 * time.Minute

// Execute runs the job and returns its summary, also written to
// OutDir/summary.json last. A failed or cancelled run writes no summary and
// removes its partial outputs. Errors: EINVALID for recipe or data
// problems, EUNAVAILABLE when the cluster cannot be reached, the context's
// error when cancelled. Error texts are redacted.
func (e *Engine) Execute(ctx context.Context, job Job) (sum *kalla.Summary, err error) {
	defer func() {
		if err != nil {
			err = kalla.RedactError(err)
		}
	}()
	rec := job.Recipe
	if rec == nil {
		return nil, kalla.Errorf(kalla.EINVALID, "no recipe")
	}
	start := time.Now()
	// The match SQL is checked before the cluster is touched: a refused
	// statement costs no Spark work and reaches no source.
	if err := precheck(ctx, rec); err != nil {
		return nil, err
	}
	for _, f := range job.Formats {
		if f != kalla.FormatParquet && f != kalla.FormatCSV {
			return nil, kalla.Errorf(kalla.EINVALID, "unknown output format %q (use parquet, csv or parquet,csv)", f)
		}
	}
	var d *dest
	if !job.DryRun {
		if d, err = e.openDest(ctx, job.OutDir); err != nil {
			return nil, err
		}
	}
	s, err := connect(ctx, e.opts.Remote, e.opts.Token)
	if err != nil {
		return nil, kalla.WrapError(kalla.EUNAVAILABLE, err, "spark")
	}
	defer s.conn.Close()
	r := &run{e: e, s: s, job: job, dest: d}
	r.emit = func(ev engine.Event) {
		if job.Progress != nil {
			job.Progress(ev)
		}
	}
	if err := r.configure(ctx); err != nil {
		return nil, err
	}
	// A cancelled context stops the Spark operations of this session and
	// the session itself is released either way: its temp views and
	// cached data go with it.
	stop := context.AfterFunc(ctx, func() {
		if err := s.interruptAll(s.sessionID()); err != nil {
			e.log.Warn("spark interrupt", "err", kalla.RedactError(err))
		}
	})
	defer func() {
		stop()
		r.cleanup()
		r.removeScratch()
		if err := s.release(s.sessionID()); err != nil {
			e.log.Warn("spark release session", "err", kalla.RedactError(err))
		}
	}()
	sum, err = r.execute(ctx, start)
	if err != nil && ctx.Err() != nil {
		return nil, ctx.Err()
	}
	return sum, err
}

// precheck parses the match SQL and carries it over to Spark SQL with the
// recipe's key names as written (staging resolves their case later). Rules
// are compiled once the sides' columns are known.
func precheck(ctx context.Context, rec *kalla.Recipe) error {
	for _, sp := range []kalla.SourceSpec{rec.Sources.Left, rec.Sources.Right} {
		if err := sparkSourceOptions(sp); err != nil {
			return recipeErr(ctx, err)
		}
	}
	if len(rec.Rules) > 0 {
		return nil
	}
	if strings.TrimSpace(rec.MatchSQL) == "" {
		return kalla.Errorf(kalla.EINVALID, "match_sql is empty")
	}
	l := &side{spec: rec.Sources.Left, pk: rec.Sources.Left.PrimaryKey}
	r := &side{spec: rec.Sources.Right, pk: rec.Sources.Right.PrimaryKey}
	_, err := userSQL(ctx, rec.MatchSQL, l, r)
	return recipeErr(ctx, err)
}

// sparkSourceOptions refuses the source settings the Spark engine does not
// carry out yet: read without them, the same file would give other values
// than on DuckDB (dates read in another order, a decimal-comma column left
// as text, a Parquet column not converted to its declared type), so the
// recipe is refused before the cluster is touched.
func sparkSourceOptions(sp kalla.SourceSpec) error {
	c := sp.CSV
	switch {
	case len(sp.Schema) > 0 && sp.SourceType() == kalla.SourceParquet:
		// DuckDB converts a Parquet column to the declared type; the
		// Spark engine reads Parquet as it is.
		return kalla.Errorf(kalla.EINVALID, "source %s: schema overrides of Parquet sources are not supported on Spark yet; run this recipe with --engine duckdb", sp.Alias)
	case len(sp.Schema) > 0 && sp.SourceType() != kalla.SourceCSV:
		// As on DuckDB (internal/sources).
		return kalla.Errorf(kalla.EINVALID, "source %s: schema overrides apply to file sources; a %s table's types come from its catalog", sp.Alias, sp.SourceType())
	case c == nil:
	case c.DateFormat != "" || c.TimestampFormat != "":
		return kalla.Errorf(kalla.EINVALID, "source %s: date_format and timestamp_format are not supported on Spark yet; run this recipe with --engine duckdb", sp.Alias)
	case c.DecimalSeparator == ",":
		return kalla.Errorf(kalla.EINVALID, "source %s: decimal_separator \",\" is not supported on Spark yet; run this recipe with --engine duckdb", sp.Alias)
	}
	return nil
}

// recipeErr marks an EINVALID error of the recipe's SQL, keys or rules as
// the recipe's fault (the CLI exits 2, as for DuckDB's); a cancelled run's
// error stays as it is.
func recipeErr(ctx context.Context, err error) error {
	if err == nil || ctx.Err() != nil || kalla.ErrorCode(err) != kalla.EINVALID {
		return err
	}
	return engine.RecipeError(err)
}

// Check validates a recipe for the Spark engine without running it: the
// match SQL is checked and carried over to Spark SQL (see Execute), then
// the sources are read on the cluster and Spark analyses the SQL over their
// real columns, so a DuckDB-only construct or an unknown column is
// reported with Spark's reason. Problems (empty when the recipe can run)
// are in the Check; the error is for failures to check at all (an
// unreachable cluster, a cancelled context).
func (e *Engine) Check(ctx context.Context, rec *kalla.Recipe) (chk *kalla.Check, err error) {
	defer func() {
		if err != nil {
			err = kalla.RedactError(err)
		}
	}()
	chk = &kalla.Check{Problems: []string{}}
	problem := func(err error) (*kalla.Check, error) {
		chk.Problems = append(chk.Problems, kalla.ErrorMessage(kalla.RedactError(err)))
		return chk, nil
	}
	if err := precheck(ctx, rec); err != nil {
		return problem(err)
	}
	s, err := connect(ctx, e.opts.Remote, e.opts.Token)
	if err != nil {
		return nil, kalla.WrapError(kalla.EUNAVAILABLE, err, "spark")
	}
	defer s.conn.Close()
	r := &run{e: e, s: s}
	if err := r.configure(ctx); err != nil {
		return nil, err
	}
	defer func() {
		r.cleanup()
		if err := s.release(s.sessionID()); err != nil {
			e.log.Warn("spark release session", "err", kalla.RedactError(err))
		}
	}()
	left := &side{name: "left", view: "left_src", spec: rec.Sources.Left, filters: rec.Sources.Left.Filters}
	right := &side{name: "right", view: "right_src", spec: rec.Sources.Right, filters: rec.Sources.Right.Filters}
	for _, sd := range []*side{left, right} {
		if err := r.stage(ctx, sd); err != nil {
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			return problem(err)
		}
	}
	chk.LeftColumns, chk.RightColumns = left.cols, right.cols
	if len(rec.Rules) > 0 {
		if err := checkRules(chk, rec, left, right); err != nil {
			return problem(err)
		}
		return chk, nil
	}
	id, err := userSQL(ctx, rec.MatchSQL, left, right)
	if err != nil {
		return problem(err)
	}
	df, err := r.sql(ctx, id.SQL)
	if err != nil {
		return problem(matchError(err))
	}
	st, err := df.Schema(ctx)
	if err != nil {
		return problem(matchError(sparkError(err)))
	}
	for _, f := range st.Fields {
		if !strings.HasPrefix(f.Name, "__kalla_") {
			chk.OutputColumns = append(chk.OutputColumns, kalla.Column{Name: f.Name, DataType: duckTypeName(f.DataType.TypeName()), EngineType: f.DataType.TypeName(), Nullable: f.Nullable})
		}
	}
	return chk, nil
}

// configure sets the session's settings: files cannot be read from SQL,
// double-quoted identifiers (as Kalla quotes them), exact decimals.
func (r *run) configure(ctx context.Context) error {
	conf := r.s.sql.Config()
	settings := [][2]string{
		{"spark.sql.runSQLOnFiles", "false"},
		{"spark.sql.ansi.enabled", "true"},
		{"spark.sql.ansi.doubleQuotedIdentifiers", "true"},
		{"spark.sql.caseSensitive", "false"},
		{"spark.sql.session.timeZone", "UTC"},
		{"spark.sql.parquet.outputTimestampType", "TIMESTAMP_MICROS"},
		{"spark.sql.decimalOperations.allowPrecisionLoss", "false"},
		// Temporary views keep their analyzed plan instead of their SQL
		// text: a rules run stacks views on views (each table version
		// reads the previous ones), and a view kept as text is parsed and
		// analysed again, with every view under it, each time a statement
		// names it.
		{"spark.sql.legacy.storeAnalyzedPlanForView", "true"},
		// Every statement's plan is written out as text for the
		// server's SQL status store, which keeps the last 1000 (a
		// server setting), across sessions. A cached table's scan
		// prints the plan it caches, so a rules run's stacked tables
		// made texts of over 1 MB by the middle of a run (event log of
		// rules_cross_month, Dec 3), and the Connect driver ran out of
		// its 1 GiB heap. Kalla never reads these texts: 64 KiB keeps
		// the top of each plan for whoever looks at the server's UI.
		{"spark.sql.maxPlanStringLength", "64k"},
		{"spark.sql.ui.explainMode", "simple"},
		// Caching a query clones the session (its settings, catalog and
		// analyzer) to run the query with this setting off, and the
		// cached table keeps the clone until it is dropped: 2243 live
		// sessions on a 1 GiB driver during two rules runs (Dec 3).
		// Kalla reads no bucketed tables; off, no clone is made.
		{"spark.sql.sources.bucketing.autoBucketedScan.enabled", "false"},
		// Outputs: no _SUCCESS marker (summary.json is Kalla's, and every
		// file written must be checksummed), and parts small enough for
		// the executors to hash one whole on S3.
		{"mapreduce.fileoutputcommitter.marksuccessfuljobs", "false"},
		{"spark.sql.files.maxRecordsPerFile", "1000000"},
	}
	for _, kv := range settings {
		if err := conf.Set(ctx, kv[0], kv[1]); err != nil {
			return kalla.WrapError(kalla.EUNAVAILABLE, err, "spark: set %s", kv[0])
		}
	}
	// The sandbox depends on this one: read it back.
	v, err := conf.Get(ctx, "spark.sql.runSQLOnFiles")
	if err != nil {
		return kalla.WrapError(kalla.EUNAVAILABLE, err, "spark: read spark.sql.runSQLOnFiles")
	}
	if v != "false" {
		return fmt.Errorf("spark: spark.sql.runSQLOnFiles is %q after setting it to false; refusing to run user SQL", v)
	}
	if r.s.sessionID() == "" {
		return fmt.Errorf("spark: the session id was not seen")
	}
	r.e.log.Debug("spark session", "id", r.s.sessionID())
	return nil
}

// sql runs one statement Kalla wrote.
func (r *run) sql(ctx context.Context, q string) (sparksql.DataFrame, error) {
	t0 := time.Now()
	df, err := r.s.sql.Sql(ctx, q)
	r.e.log.Debug("spark sql", "sql", q, "ms", time.Since(t0).Milliseconds())
	if err != nil {
		// spark-connect-go quotes the whole statement (which may span
		// lines); Spark's own message follows it. A command that ran a
		// job (a rules table written as Parquet) fails as an execution
		// error with the same text after its own prefix.
		m := strings.TrimPrefix(err.Error(), "execution error: ")
		if strings.HasPrefix(m, "failed to execute sql: "+q+": ") {
			return nil, &sparkErr{msg: firstLine(strings.TrimPrefix(m, "failed to execute sql: "+q+": ")), err: err}
		}
		return nil, sparkError(err)
	}
	return df, nil
}

// collect reads a DataFrame's rows, logging how long the query took (a
// query's Spark jobs run here, not in sql).
func (r *run) collect(ctx context.Context, df sparksql.DataFrame, what string) ([]types.Row, error) {
	t0 := time.Now()
	rows, err := df.Collect(ctx)
	r.e.log.Debug("spark collect", "what", what, "rows", len(rows), "ms", time.Since(t0).Milliseconds())
	if err != nil {
		return nil, sparkError(err)
	}
	return rows, nil
}

// exec runs a command (CACHE TABLE, CREATE VIEW) to completion.
func (r *run) exec(ctx context.Context, q string) error {
	_, err := r.sql(ctx, q)
	return err
}

// one returns the single row of a query.
func (r *run) one(ctx context.Context, q string) ([]any, error) {
	df, err := r.sql(ctx, q)
	if err != nil {
		return nil, err
	}
	rows, err := r.collect(ctx, df, "one")
	if err != nil {
		return nil, err
	}
	if len(rows) != 1 {
		return nil, fmt.Errorf("spark: expected one row, got %d", len(rows))
	}
	return rows[0].Values(), nil
}

// cleanup drops what the run created; releasing the session drops it too,
// this is for servers that keep released sessions' state a while.
func (r *run) cleanup() {
	ctx, cancel := context.WithTimeout(context.Background(), viewCleanupTimeout)
	defer cancel()
	if r.plan != nil {
		// Made after the staged views, dropped before them.
		for _, q := range r.plan.Cleanup() {
			if _, err := r.s.sql.Sql(ctx, q); err != nil {
				r.e.log.Debug("spark rules cleanup", "sql", q, "err", kalla.RedactError(err))
			}
		}
	}
	for i := len(r.created) - 1; i >= 0; i-- {
		// UNCACHE first: DROP VIEW alone leaves the cached data (see
		// rules' Cleanup).
		name := r.created[i]
		if _, err := r.s.sql.Sql(ctx, "UNCACHE TABLE IF EXISTS "+qi(name)); err != nil {
			r.e.log.Debug("spark uncache", "table", name, "err", kalla.RedactError(err))
		}
		if _, err := r.s.sql.Sql(ctx, "DROP VIEW IF EXISTS "+qi(name)); err != nil {
			r.e.log.Debug("spark drop view", "view", name, "err", kalla.RedactError(err))
		}
	}
	// What the session still shows: nothing of the run's may be left.
	left, err := r.tempViews(ctx)
	if err != nil {
		r.e.log.Debug("spark list views", "err", kalla.RedactError(err))
		return
	}
	if len(left) > 0 {
		r.e.log.Warn("spark views left after cleanup", "views", left)
	}
	r.e.log.Debug("spark cleanup", "views_left", len(left))
}

// tempViews lists the session's temporary views.
func (r *run) tempViews(ctx context.Context) ([]string, error) {
	df, err := r.s.sql.Sql(ctx, "SHOW VIEWS")
	if err != nil {
		return nil, err
	}
	rows, err := df.Collect(ctx)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, row := range rows {
		v := row.Values()
		if len(v) >= 3 && v[2] == true {
			out = append(out, fmt.Sprint(v[1]))
		}
	}
	return out, nil
}

// sparkError shortens Spark's error to its first line: the rest is a JVM
// stack. Spark repeats the statement in its errors, which is why no
// statement Kalla sends holds a credential.
func sparkError(err error) error {
	return &sparkErr{msg: firstLine(err.Error()), err: err}
}

func firstLine(msg string) string {
	if i := strings.Index(msg, "\n"); i > 0 {
		msg = msg[:i]
	}
	return strings.TrimSpace(msg)
}

type sparkErr struct {
	msg string
	err error
}

func (e *sparkErr) Error() string { return e.msg }
func (e *sparkErr) Unwrap() error { return e.err }

func (r *run) execute(ctx context.Context, start time.Time) (*kalla.Summary, error) {
	rec := r.job.Recipe
	sum := &kalla.Summary{
		RecipeID:      rec.RecipeID,
		RunID:         r.job.RunID,
		KallaVersion:  version.Version,
		Engine:        kalla.EngineSpark,
		EngineVersion: "spark",
		StartedAt:     start.UTC(),
		Warnings:      []kalla.Warning{},
	}
	if df, err := r.sql(ctx, "SELECT version()"); err == nil {
		if rows, err := r.collect(ctx, df, "version"); err == nil && len(rows) == 1 {
			sum.EngineVersion = "spark " + fmt.Sprint(rows[0].At(0))
		}
	}
	timed := func(name string, f func() error) error {
		t0 := time.Now()
		err := f()
		sum.Stages = append(sum.Stages, kalla.StageTiming{Name: name, DurationMS: time.Since(t0).Milliseconds()})
		return err
	}
	lf, rf := r.job.LeftFilters, r.job.RightFilters
	if lf == nil {
		lf = rec.Sources.Left.Filters
	}
	if rf == nil {
		rf = rec.Sources.Right.Filters
	}
	left := &side{name: "left", view: "left_src", spec: rec.Sources.Left, filters: lf, stage: engine.StageLeft, frac: [2]float64{0, 0.35}}
	right := &side{name: "right", view: "right_src", spec: rec.Sources.Right, filters: rf, stage: engine.StageRight, frac: [2]float64{0.35, 0.70}}
	for _, sd := range []*side{left, right} {
		if err := timed(sd.stage, func() error {
			r.emit(engine.Event{Stage: sd.stage, Fraction: sd.frac[0]})
			if err := r.stage(ctx, sd); err != nil {
				return err
			}
			ws, err := r.keyWarnings(ctx, sd)
			if err != nil {
				return err
			}
			sum.Warnings = append(sum.Warnings, ws...)
			r.emit(engine.Event{Stage: sd.stage, Rows: sd.count, Total: sd.count, Done: true, Fraction: sd.frac[1]})
			return nil
		}); err != nil {
			return nil, err
		}
	}
	sum.LeftCount, sum.RightCount = left.count, right.count
	if left.count+right.count <= smallRun {
		// Adaptive execution makes every stage it plans a Spark job of
		// its own (each cached table's first read, each shuffle), and so
		// does a broadcast join; a sort-merge join runs inside its
		// query's job. Without both, a rules scenario of a dozen rows
		// made 35 jobs instead of 69. Their gains (coalescing partitions,
		// splitting skewed keys, not shuffling a small side) are for
		// large sides; the answers do not depend on them. No shuffle is
		// coalesced then: each has the partitions set here, one per
		// 250,000 records (the cluster's default, often 200, would be as
		// many tasks per shuffle of a few rows).
		parts := strconv.FormatInt(min(4, 1+(left.count+right.count)/250_000), 10)
		for _, kv := range [][2]string{{"spark.sql.adaptive.enabled", "false"}, {"spark.sql.autoBroadcastJoinThreshold", "-1"}, {"spark.sql.shuffle.partitions", parts}} {
			if err := r.s.sql.Config().Set(ctx, kv[0], kv[1]); err != nil {
				return nil, kalla.WrapError(kalla.EUNAVAILABLE, err, "spark: set %s", kv[0])
			}
		}
	}
	sum.Sources.Left = left.summary()
	sum.Sources.Right = right.summary()
	if u := r.job.uris; u[0] != "" {
		sum.Sources.Left.URI, sum.Sources.Right.URI = kalla.Redact(u[0]), kalla.Redact(u[1])
	}

	var m *matchResult
	if err := timed(engine.StageMatch, func() error {
		r.emit(engine.Event{Stage: engine.StageMatch, Fraction: 0.70})
		var err error
		if len(rec.Rules) > 0 {
			m, err = r.matchRules(ctx, rec, left, right)
		} else {
			m, err = r.match(ctx, rec.MatchSQL, left, right)
		}
		return err
	}); err != nil {
		return nil, err
	}
	sum.Rules = m.report
	r.emit(engine.Event{Stage: engine.StageMatch, Done: true, Fraction: 0.85})
	counts(sum, m, left, right)
	if r.job.DryRun {
		sum.Status = "dry_run"
		sum.Outputs = []kalla.OutputFile{}
		sum.FinishedAt = time.Now().UTC()
		sum.DurationMS = time.Since(start).Milliseconds()
		return sum, nil
	}
	if err := timed(engine.StageWrite, func() error {
		r.emit(engine.Event{Stage: engine.StageWrite, Fraction: 0.85})
		outs, err := r.write(ctx, r.dest, m, left, right)
		sum.Outputs = outs
		return err
	}); err != nil {
		return nil, err
	}
	amounts, err := r.amounts(ctx, rec, left, right)
	if err != nil {
		return nil, err
	}
	sum.Amounts = amounts
	sum.Status = "completed"
	sum.FinishedAt = time.Now().UTC()
	sum.DurationMS = time.Since(start).Milliseconds()
	if err := r.dest.writeSummary(ctx, sum); err != nil {
		return nil, err
	}
	r.emit(engine.Event{Stage: engine.StageWrite, Done: true, Fraction: 1})
	return sum, nil
}

// counts fills the summary's counts and the match's warnings
// (kalla.Summary.SetMatchCounts, shared by every engine).
func counts(sum *kalla.Summary, m *matchResult, left, right *side) {
	sum.SetMatchCounts(kalla.MatchCounts{Pairs: m.pairs, Repeats: m.repeats, OuterRows: m.outerRows,
		LeftRecords: m.leftRecords, RightRecords: m.rightRecords, LeftCount: left.count, RightCount: right.count})
}
