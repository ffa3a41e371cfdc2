package recon

import (
	"context"
	"database/sql/driver"
	"errors"
	"fmt"
	"strconv"

	"github.com/kalla-recon/kalla/internal/connector"
	"github.com/kalla-recon/kalla/internal/engine"
	"github.com/kalla-recon/kalla/internal/kalla"
)

// duckEngine is the embedded DuckDB engine behind the Engine interface: it
// opens the sources through Kalla's connectors (Options.Sources) and one
// internal/engine database per job, with the sandbox, memory limit, spill
// folder and source watchdog internal/engine applies.
type duckEngine struct {
	s *Service
}

var _ Engine = (*duckEngine)(nil)

// Name returns "duckdb".
func (d *duckEngine) Name() string { return DuckDB }

// Close does nothing: each Run and Check closes its own database.
func (d *duckEngine) Close() error { return nil }

// openDB opens a DuckDB database for one job once admit (if any) lets it;
// a setting DuckDB refuses (the memory limit) is marked as
// ErrEngineConfig. The function returned closes the database (or releases
// it, Options.Release) and then gives the admission back.
func (d *duckEngine) openDB(ctx context.Context, tempDir string, admit func(context.Context) (func(), error)) (*engine.Engine, func(), error) {
	opts := d.s.opts.DuckDB
	if tempDir != "" {
		opts.TempDir = tempDir
	}
	release := func() {}
	if admit != nil {
		r, err := admit(ctx)
		if err != nil {
			return nil, nil, err
		}
		release = r
	}
	eng, err := engine.Open(ctx, opts)
	if err != nil {
		release()
		if kalla.ErrorCode(err) == kalla.EINVALID {
			return nil, nil, ConfigError(err)
		}
		return nil, nil, err
	}
	if d.s.opts.Release {
		return eng, func() { eng.Release(); release() }, nil
	}
	return eng, func() { eng.Close(); release() }, nil
}

func (d *duckEngine) opener() (Opener, error) {
	if d.s.opts.Sources == nil {
		return nil, errors.New("duckdb engine: no source opener configured")
	}
	return d.s.opts.Sources, nil
}

// Run opens both sources, then a DuckDB database, and executes the job.
func (d *duckEngine) Run(ctx context.Context, job Job) (*kalla.Summary, error) {
	open, err := d.opener()
	if err != nil {
		return nil, err
	}
	rec := job.Recipe
	specs := [2]kalla.SourceSpec{rec.Sources.Left, rec.Sources.Right}
	filters := [2][]kalla.Filter{job.LeftFilters, job.RightFilters}
	totals := [2]int64{job.LeftTotal, job.RightTotal}
	preview := job.Sample > 0 || job.Counted != nil
	var srcs [2]connector.Source
	defer func() {
		for _, s := range srcs {
			if s != nil {
				s.Close()
			}
		}
	}()
	for i, spec := range specs {
		side := [2]string{"left", "right"}[i]
		f := filters[i]
		if f == nil {
			f = spec.Filters
		}
		if preview {
			for _, x := range f {
				if err := x.Validate(); err != nil {
					return nil, err
				}
			}
		}
		// The connector layer bounds opening by the idle timeout.
		src, err := open.Open(ctx, spec, job.BaseDir)
		if err != nil {
			return nil, kalla.AsSourceError(err, side, spec.Alias)
		}
		srcs[i] = src
		switch {
		case preview:
			cols, err := src.Columns(ctx)
			if err != nil {
				return nil, kalla.AsSourceError(err, side, spec.Alias)
			}
			if err := kalla.ValidateFilters(spec.Alias, f, cols); err != nil {
				return nil, err
			}
			n, err := src.Count(ctx, f)
			if err != nil {
				return nil, kalla.AsSourceError(err, side, spec.Alias)
			}
			if job.Counted != nil {
				job.Counted(side, n)
			}
		case job.CountTotals && totals[i] == 0:
			// Database sources stage row by row and report progress,
			// so a count gives the fraction a meaning; file sources
			// are loaded by one DuckDB scan, and counting them would
			// read them twice. The count answers in one message: a
			// frozen server is told by the idle timeout.
			if t := spec.SourceType(); t == kalla.SourcePostgres || t == kalla.SourceMySQL {
				err := connector.WithIdle(ctx, d.s.opts.DuckDB.SourceIdleTimeout, func(ctx context.Context) error {
					var err error
					totals[i], err = src.Count(ctx, f)
					return err
				})
				if err != nil {
					return nil, kalla.AsSourceError(err, side, spec.Alias)
				}
			}
		}
	}
	run := engine.Run{
		Recipe:       rec,
		Left:         srcs[0],
		Right:        srcs[1],
		LeftFilters:  job.LeftFilters,
		RightFilters: job.RightFilters,
		LeftTotal:    totals[0],
		RightTotal:   totals[1],
		OutDir:       job.Out,
		Formats:      job.Formats,
		RunID:        job.RunID,
		Progress:     job.Progress,
		DryRun:       job.DryRun,
	}
	if job.Sample > 0 {
		run.Left = &sampleSource{Source: srcs[0], limit: job.Sample}
		run.Right = &sampleSource{Source: srcs[1], limit: job.Sample}
	}
	eng, closeDB, err := d.openDB(ctx, job.TempDir, job.Admit)
	if err != nil {
		return nil, err
	}
	defer closeDB()
	return eng.Execute(ctx, run)
}

// Check opens the sources it may (a side refused or failing to open is
// a problem), then a DuckDB database, and checks the recipe in it.
func (d *duckEngine) Check(ctx context.Context, rec *kalla.Recipe, opt CheckOptions) (*Check, error) {
	open, err := d.opener()
	if err != nil {
		return nil, err
	}
	var srcs [2]connector.Source
	errs := opt.Refused
	for i, spec := range []kalla.SourceSpec{rec.Sources.Left, rec.Sources.Right} {
		if errs[i] != nil {
			continue
		}
		srcs[i], errs[i] = open.Open(ctx, spec, opt.BaseDir)
		if errs[i] != nil {
			// A failed Open may return a typed nil; the check must see none.
			srcs[i] = nil
		} else {
			defer srcs[i].Close()
		}
	}
	eng, closeDB, err := d.openDB(ctx, "", opt.Admit)
	if err != nil {
		return nil, err
	}
	defer closeDB()
	return eng.CheckRecipe(ctx, rec, srcs[0], srcs[1], errs)
}

// errSampleFull stops a source's staging once the sample is complete.
var errSampleFull = errors.New("sample complete")

// sampleSource stages only the first limit rows of a source. Database
// sources are stopped after limit rows (their query is cancelled, so a
// large table is not read to the end); file sources are read by DuckDB in
// one scan and trimmed to their first limit rows, in file order.
type sampleSource struct {
	connector.Source
	limit int64
}

// Stage stages at most s.limit rows matching filters.
func (s *sampleSource) Stage(ctx context.Context, filters []kalla.Filter, sink connector.Sink) (int64, error) {
	ss := &sampleSink{Sink: sink, limit: s.limit}
	n, err := s.Source.Stage(ctx, filters, ss)
	if ss.full {
		// The source failed only because the sample was complete: the
		// appender has flushed the first limit rows.
		return s.limit, nil
	}
	if err != nil {
		return n, err
	}
	if n <= s.limit {
		return n, nil
	}
	t := sink.Table()
	if _, err := sink.ExecContext(ctx, "DELETE FROM "+t+" WHERE rowid NOT IN (SELECT rowid FROM "+t+" ORDER BY rowid LIMIT "+strconv.FormatInt(s.limit, 10)+")"); err != nil {
		return 0, fmt.Errorf("trim sample: %w", err)
	}
	return s.limit, nil
}

// sampleSink passes at most limit appended rows to the engine's sink.
type sampleSink struct {
	connector.Sink
	limit int64
	full  bool
}

// Append appends the first limit rows fill writes, then stops fill.
func (s *sampleSink) Append(ctx context.Context, cols []kalla.Column, fill func(w connector.RowWriter) error) (int64, error) {
	return s.Sink.Append(ctx, cols, func(w connector.RowWriter) error {
		return fill(&sampleWriter{w: w, s: s, left: s.limit})
	})
}

type sampleWriter struct {
	w    connector.RowWriter
	s    *sampleSink
	left int64
}

func (w *sampleWriter) WriteRow(values ...driver.Value) error {
	if w.left <= 0 {
		w.s.full = true
		return errSampleFull
	}
	w.left--
	return w.w.WriteRow(values...)
}
