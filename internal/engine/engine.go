package engine

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"fmt"
	"log/slog"
	"strings"
	"syscall"
	"time"

	"github.com/duckdb/duckdb-go/v2"

	"github.com/kalla-recon/kalla/internal/connector"
	"github.com/kalla-recon/kalla/internal/dialect"
	"github.com/kalla-recon/kalla/internal/duck"
	"github.com/kalla-recon/kalla/internal/kalla"
	"github.com/kalla-recon/kalla/internal/scratch"
)

// Options configure the DuckDB database of a run.
type Options struct {
	// MemoryLimit caps DuckDB's memory (for example "4GB"); beyond it DuckDB
	// spills to TempDir. Empty keeps DuckDB's default (80% of RAM).
	MemoryLimit string
	// TempDir is where DuckDB spills: in a folder of its own made inside
	// it (the system temporary directory when empty) and removed on Close.
	// The sandbox lets the match SQL see the spill folder (DuckDB allows
	// it by itself), so it must hold nothing but this database's blocks.
	TempDir string
	// Threads limits DuckDB's worker threads; 0 means one per core.
	Threads int
	// SourceIdleTimeout stops staging a source that sends no row for this
	// long, failing the run with a SourceStalled error; zero means
	// connector.DefaultIdleTimeout. A file DuckDB scans itself is not
	// timed: its reading is DuckDB's, not the source's.
	SourceIdleTimeout time.Duration
	// Logger receives debug lines (SQL as run, timings). Nil discards.
	Logger *slog.Logger
}

// Engine is one DuckDB database, used for one run or one recipe check.
type Engine struct {
	db       *sql.DB
	conn     *sql.Conn
	log      *slog.Logger
	tempDir  string
	spillDir *scratch.Dir
	// sandboxed is set once the database is closed to the outside (see
	// sandbox); no match runs before.
	sandboxed bool
	idle      time.Duration // Options.SourceIdleTimeout
	// memLimit and spillBase are Options.MemoryLimit and TempDir as
	// given, for the advice of a resource failure.
	memLimit, spillBase string
	// spill samples the spill folder while Execute runs; nil otherwise.
	spill *spillWatch
	// opts are the options the database was opened with, for renew.
	opts Options
	// proofs, while Execute stages on proofs, collects them from the
	// sources (connector.Prover); nil when the sources must prove before
	// they stage.
	proofs *proofList
}

// toleranceMacro defines tolerance_match(a, b, t): true when |a - b| <= t.
// Every argument is brought to DECIMAL(38,18) so that money compares exactly
// at its scale and integer, decimal and numeric-text columns all work, up to
// 18 decimals. Binary floats have no scale of their own: they are rounded to
// 10 decimals first, so a DOUBLE 0.29 is 0.29 (compared in DOUBLE,
// 0.30 - 0.29 <= 0.01 is false). It is written as a range rather than
// ABS(...) so DuckDB can keep hash and range joins.
const toleranceMacro = `CREATE OR REPLACE MACRO __kalla_exact(x) AS CAST(
    CASE WHEN typeof(x) IN ('DOUBLE', 'FLOAT') THEN CAST(CAST(x AS DECIMAL(38,10)) AS DECIMAL(38,18))
         ELSE CAST(x AS DECIMAL(38,18)) END AS DECIMAL(38,18));
CREATE OR REPLACE MACRO tolerance_match(a, b, t) AS
  __kalla_exact(a) >= __kalla_exact(b) - __kalla_exact(t)
  AND __kalla_exact(a) <= __kalla_exact(b) + __kalla_exact(t)`

// SpillPrefix begins the name of each engine's spill folder.
const SpillPrefix = "kalla-duckdb-"

// Open starts a fresh in-memory DuckDB database with the given limits.
func Open(ctx context.Context, opts Options) (*Engine, error) {
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	e := &Engine{log: log, idle: opts.SourceIdleTimeout, memLimit: opts.MemoryLimit, spillBase: opts.TempDir}
	// Always a folder of its own, even inside a given one: DuckDB lets
	// sandboxed SQL read the spill folder (see sandbox). It is locked
	// while this process lives, so the spill folder of a killed process
	// (the out-of-memory killer's SIGKILL included) is removed by the
	// next engine opened on the same folder (package scratch).
	d, removed, err := scratch.Make(opts.TempDir, SpillPrefix)
	for _, r := range removed {
		log.Warn("removed the spill folder of a process that is gone", "path", r.Path, "bytes", r.Bytes)
	}
	if err != nil {
		return nil, fmt.Errorf("create temp dir: %w", err)
	}
	e.tempDir, e.spillDir = d.Path(), d
	e.opts = opts
	if err := e.connect(ctx); err != nil {
		e.Close()
		return nil, err
	}
	return e, nil
}

// connect opens the database and configures it as e.opts say.
func (e *Engine) connect(ctx context.Context) error {
	opts := e.opts
	db, err := duck.Open(ctx)
	if err != nil {
		return err
	}
	e.db = db
	conn, err := db.Conn(ctx)
	if err != nil {
		return fmt.Errorf("connect duckdb: %w", err)
	}
	e.conn = conn
	settings := []string{
		"SET temp_directory = " + dialect.DuckDB.QuoteString(e.tempDir),
		"SET preserve_insertion_order = true",
		// A run's database is thrown away at the end; DuckDB would
		// otherwise checkpoint it (compressing every table) each time
		// about 16 MB of changes piled up, which cost one rules run a
		// whole second in the middle of a 50 ms statement.
		"SET checkpoint_threshold = '1TB'",
		toleranceMacro,
	}
	if opts.MemoryLimit != "" {
		settings = append(settings, "SET memory_limit = "+dialect.DuckDB.QuoteString(opts.MemoryLimit))
	}
	if opts.Threads > 0 {
		settings = append(settings, fmt.Sprintf("SET threads = %d", opts.Threads))
	}
	for _, q := range settings {
		if _, err := conn.ExecContext(ctx, q); err != nil {
			if strings.HasPrefix(q, "SET memory_limit") {
				return kalla.WrapError(kalla.EINVALID, err, "invalid memory limit %q (use a size such as 4GB or 512MB)", opts.MemoryLimit)
			}
			return fmt.Errorf("configure duckdb: %w", err)
		}
	}
	if opts.MemoryLimit != "" {
		return e.leaveRoomOutsideBuffers(ctx)
	}
	return nil
}

// renew replaces the database with a new one, configured alike, for a run
// that must stage again: once sandboxed, a database reads no more files.
// The spill folder stays.
func (e *Engine) renew(ctx context.Context) error {
	err := e.closeDB()
	e.sandboxed = false
	if err != nil {
		return fmt.Errorf("close duckdb: %w", err)
	}
	return e.connect(ctx)
}

// allocatorSettings make DuckDB's allocator (jemalloc, linked into the
// binary) hand freed memory back to the system soon, for a run under a
// memory limit of limit bytes. By default each thread keeps up to 128 MiB
// it freed in its cache before flushing, a bulk free below 512 MiB is not
// flushed, and freed pages are returned only on the next allocation:
// memory memory_limit no longer counts but the process still holds.
// Measured at gen.Standard(5M) with --memory-limit 512MB (DESIGN.md,
// "Scale findings"): peak RSS 597 MB (1.17x the limit) with the defaults,
// 505 MB (0.99x) with 8 MB and 32 MB, on 3 Dec (on the code of 6 Dec,
// 1.11-1.29x with the same thresholds). The thresholds scale with the limit
// (a thread keeps up to 1/64 of it, a bulk free of 1/32 of it is flushed;
// never below those 8 MB and 32 MB, never above the defaults): at 50M
// under 4GB the fixed 8 MB and 32 MB made the two CSV loads, which free
// and take 32 MB buffers all the time, give pages back and fault them in
// again, and staging took 51-53 s against 37-38 s with 64 MB and 128 MB,
// at the same peak RSS. Runs without a limit keep the defaults: nothing
// bounds them.
func allocatorSettings(limit int64) []string {
	size := func(n, floor, ceil int64) string { return fmt.Sprintf("'%dKiB'", min(max(n, floor), ceil)>>10) }
	return []string{
		"SET allocator_flush_threshold = " + size(limit/64, 8e6, 128<<20),
		"SET allocator_bulk_deallocation_flush_threshold = " + size(limit/32, 32e6, 512<<20),
		"SET allocator_background_threads = true",
	}
}

// Memory a run uses beyond DuckDB's buffer manager, measured (see
// DESIGN.md, "Scale findings"): about outsideFixed plus outsideShare of
// memory_limit, for the binary's code and data mapped from its file
// (about 80 MiB resident), table metadata, per-thread vectors and string
// heaps, the Parquet writer's pages and the Go side. outsideFixed was
// 160 MiB until the rules recipe at 5M under 512MB peaked at 1.22-1.36x
// in six runs (10M under 800MB: 1.13 and 1.26x); at 230 MiB the same runs
// peaked at 1.04-1.15x (1.05 and 1.07x), in the same time. At 4GB it gives
// DuckDB 1.7 % less.
const (
	outsideFixed = 230 << 20
	outsideShare = 0.25
	// rssSlack is how far above the limit the process may go: the
	// memory limit is a budget for the process, within 15 %.
	rssSlack = 1.15
	// smallLimit is the memory_limit below which the limit is used as
	// given: staging pins about 120 MB of CSV buffers whatever the limit.
	smallLimit = 256 << 20
)

// leaveRoomOutsideBuffers sets the allocator's flushing for the limit the
// user gave (allocatorSettings) and lowers DuckDB's memory_limit, which
// bounds its buffer manager only, so that the whole process stays within
// about rssSlack of that limit: memory_limit = (rssSlack x limit -
// outsideFixed) / (1 + outsideShare), never below the smaller of the
// limit and smallLimit.
func (e *Engine) leaveRoomOutsideBuffers(ctx context.Context) error {
	// DuckDB parsed the limit as the user wrote it (4GB, 80%, ...); its
	// setting reads back in its own units.
	var text string
	if err := e.conn.QueryRowContext(ctx, "SELECT current_setting('memory_limit')").Scan(&text); err != nil {
		return fmt.Errorf("read memory limit: %w", err)
	}
	limit := parseDuckSize(text)
	// A form this does not read (0) flushes as the smallest limits do.
	for _, q := range allocatorSettings(limit) {
		if _, err := e.conn.ExecContext(ctx, q); err != nil {
			return fmt.Errorf("configure duckdb allocator: %w", err)
		}
	}
	if limit <= 0 {
		// The limit stays as given.
		e.log.Debug("duckdb memory_limit kept as given", "setting", text)
		return nil
	}
	duck := int64((rssSlack*float64(limit) - outsideFixed) / (1 + outsideShare))
	duck = max(duck, min(limit, smallLimit))
	if duck >= limit {
		return nil
	}
	if _, err := e.conn.ExecContext(ctx, fmt.Sprintf("SET memory_limit = '%dKiB'", duck>>10)); err != nil {
		return fmt.Errorf("configure duckdb: %w", err)
	}
	e.log.Debug("duckdb memory_limit lowered to leave room outside its buffers", "limit", e.memLimit, "memory_limit_bytes", duck)
	return nil
}

// parseDuckSize reads a size setting as DuckDB prints it (duck.ParseSize);
// 0 when it cannot.
func parseDuckSize(s string) int64 {
	n, _ := duck.ParseSize(s)
	return n
}

// fork returns the engine working through a new connection to the same
// database, for work that runs beside the main connection's (staging the
// other side, a rules plan's side work, the break report), and the
// function that closes that connection. It shares everything else.
func (e *Engine) fork(ctx context.Context) (*Engine, func(), error) {
	c, err := e.db.Conn(ctx)
	if err != nil {
		return nil, nil, fmt.Errorf("connect duckdb: %w", err)
	}
	w := *e
	w.conn, w.spillDir = c, nil
	return &w, func() { c.Close() }, nil
}

// Close closes the database and removes its spill folder if Open made it.
func (e *Engine) Close() error {
	err := e.closeDB()
	e.removeTemp()
	return err
}

// closeDB closes the connection and the database, if open.
func (e *Engine) closeDB() error {
	var err error
	if e.conn != nil {
		err = e.conn.Close()
	}
	if e.db != nil {
		if cerr := e.db.Close(); err == nil {
			err = cerr
		}
	}
	e.conn, e.db = nil, nil
	return err
}

// Release ends the engine of a process that exits right after: it removes
// the spill folder Open made and leaves the database to the operating
// system, which reclaims the memory at exit faster than DuckDB frees its
// tables one block at a time. Nothing must use the engine afterwards;
// anything that lives on must Close it instead.
func (e *Engine) Release() {
	e.removeTemp()
}

func (e *Engine) removeTemp() {
	if e.spillDir != nil {
		e.spillDir.Remove()
	}
}

// Spilled returns how many bytes of the database are in its spill folder
// now (DuckDB's duckdb_temporary_files()): the blocks it moved to disk
// because its memory limit was reached, staged tables included, which
// stay there while the run lasts. 0 when it cannot tell.
func (e *Engine) Spilled(ctx context.Context) int64 {
	var n int64
	if err := e.conn.QueryRowContext(ctx, "SELECT coalesce(sum(size), 0) FROM duckdb_temporary_files()").Scan(&n); err != nil {
		e.log.Debug("duckdb temporary files", "err", err)
		return 0
	}
	return n
}

// Version returns DuckDB's version.
func (e *Engine) Version(ctx context.Context) string {
	var v string
	if err := e.conn.QueryRowContext(ctx, "SELECT version()").Scan(&v); err != nil {
		return "unknown"
	}
	return "duckdb " + v
}

func (e *Engine) exec(ctx context.Context, q string, args ...any) (sql.Result, error) {
	done := e.clock(ctx)
	res, err := e.conn.ExecContext(ctx, q, args...)
	e.log.Debug("duckdb exec", append(done(), "sql", q, "err", err)...)
	return res, err
}

// clock starts timing a statement for the debug log; the function it
// returns gives the wall time and the process's CPU time (user + system)
// since. The CPU is the whole process's: it is the statement's own only
// while nothing else runs, but unlike the wall time it does not grow when
// other programs load the machine, which is what a profile needs there.
func (e *Engine) clock(ctx context.Context) func() []any {
	if !e.log.Enabled(ctx, slog.LevelDebug) {
		return func() []any { return nil }
	}
	t0, c0 := time.Now(), processCPU()
	return func() []any { return []any{"took", time.Since(t0), "cpu", processCPU() - c0} }
}

// processCPU is the CPU time the process has used, user and system.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// queryRow runs a query expected to return one row, logged like exec. The
// time logged is the query's: DuckDB computes the row before returning.
func (e *Engine) queryRow(ctx context.Context, q string, args ...any) *sql.Row {
	done := e.clock(ctx)
	row := e.conn.QueryRowContext(ctx, q, args...)
	e.log.Debug("duckdb query", append(done(), "sql", q, "err", row.Err())...)
	return row
}

func qi(name string) string { return dialect.DuckDB.QuoteIdent(name) }

// sink stages one source into one table of the engine.
type sink struct {
	e        *Engine
	table    string // unquoted
	progress func(rows int64)
	wd       *connector.Watchdog // told of every row; nil when not watched
	distinct string              // a column the source proved distinct
}

var (
	_ connector.Sink          = (*sink)(nil)
	_ connector.DistinctNoter = (*sink)(nil)
	_ connector.Prover        = (*sink)(nil)
)

// Proves reports whether the run stages on proofs (Engine.proofs).
func (s *sink) Proves() bool { return s.e.proofs != nil }

// Prove keeps the proof for the end of the run (see proofList).
func (s *sink) Prove(prove func(ctx context.Context) error) { s.e.proofs.add(prove) }

// NoteDistinct keeps the column for the key checks (side.distinct).
func (s *sink) NoteDistinct(column string) { s.distinct = column }

func (s *sink) Table() string { return qi(s.table) }

// ExecContext and QueryRowContext pause the watchdog: the time is DuckDB's
// (scanning a local file), not the source's.
func (s *sink) ExecContext(ctx context.Context, q string, args ...any) (sql.Result, error) {
	defer s.wd.Pause()()
	return s.e.exec(ctx, q, args...)
}

func (s *sink) QueryRowContext(ctx context.Context, q string, args ...any) *sql.Row {
	defer s.wd.Pause()()
	return s.e.queryRow(ctx, q, args...)
}

// progressEvery is how many appended rows pass between progress reports.
const progressEvery = 65536

// Append creates the table and appends rows through DuckDB's appender, the
// fastest path from Go (about 3M rows/s here).
func (s *sink) Append(ctx context.Context, cols []kalla.Column, fill func(w connector.RowWriter) error) (int64, error) {
	defs := make([]string, len(cols))
	for i, c := range cols {
		if c.EngineType == "" {
			return 0, fmt.Errorf("column %q has no engine type", c.Name)
		}
		defs[i] = qi(c.Name) + " " + c.EngineType
	}
	if _, err := s.e.exec(ctx, "CREATE TABLE "+s.Table()+" ("+strings.Join(defs, ", ")+")"); err != nil {
		return 0, fmt.Errorf("create staging table: %w", err)
	}
	var n int64
	err := s.e.conn.Raw(func(dc any) error {
		app, err := duckdb.NewAppenderFromConn(dc.(driver.Conn), "", s.table)
		if err != nil {
			return fmt.Errorf("open appender: %w", err)
		}
		w := &rowWriter{ctx: ctx, app: app, n: &n, progress: s.progress, wd: s.wd}
		ferr := fill(w)
		cerr := app.Close()
		if ferr != nil {
			return ferr
		}
		if cerr != nil {
			return fmt.Errorf("flush appender: %w", cerr)
		}
		return nil
	})
	if err != nil {
		return n, err
	}
	if s.progress != nil {
		s.progress(n)
	}
	return n, nil
}

type rowWriter struct {
	ctx      context.Context
	app      *duckdb.Appender
	n        *int64
	progress func(int64)
	wd       *connector.Watchdog
}

func (w *rowWriter) WriteRow(values ...driver.Value) error {
	w.wd.Beat()
	if err := w.app.AppendRow(values...); err != nil {
		return fmt.Errorf("append row %d: %w", *w.n+1, err)
	}
	*w.n++
	if *w.n%progressEvery == 0 {
		if err := w.ctx.Err(); err != nil {
			return err
		}
		if w.progress != nil {
			w.progress(*w.n)
		}
	}
	return nil
}
