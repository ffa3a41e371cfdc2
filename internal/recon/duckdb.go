package recon

import (
	"context"
	"errors"

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
	var srcs, staged [2]connector.Source
	defer func() {
		// A prefix source (staged) belongs to its source and closes
		// with it.
		for _, s := range srcs {
			if s != nil {
				s.Close()
			}
		}
	}()
	var scoped [2][]kalla.Filter
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
		scoped[i] = f
		switch {
		case preview:
			cols, err := src.Columns(ctx)
			if err != nil {
				return nil, kalla.AsSourceError(err, side, spec.Alias)
			}
			if err := kalla.ValidateFilters(spec.Alias, f, cols); err != nil {
				return nil, err
			}
			// A file is staged from what its preview reads (its start),
			// not fetched whole.
			if pf, ok := src.(connector.Prefix); ok && job.Sample > 0 {
				prefix, err := pf.PrefixSource(ctx)
				if err != nil {
					return nil, kalla.AsSourceError(err, side, spec.Alias)
				}
				staged[i] = prefix
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
	stage := srcs
	for i := range staged {
		if staged[i] != nil {
			stage[i] = staged[i]
		}
	}
	run := engine.Run{
		Recipe:       rec,
		Left:         stage[0],
		Right:        stage[1],
		LeftFilters:  job.LeftFilters,
		RightFilters: job.RightFilters,
		LeftTotal:    totals[0],
		RightTotal:   totals[1],
		OutDir:       job.Out,
		Formats:      job.Formats,
		RunID:        job.RunID,
		Progress:     job.Progress,
		DryRun:       job.DryRun,
		Sample:       job.Sample,
		Records:      job.Records,
	}
	eng, closeDB, err := d.openDB(ctx, job.TempDir, job.Admit)
	if err != nil {
		return nil, err
	}
	defer closeDB()
	sum, err := eng.Execute(ctx, run)
	if err != nil || job.Counted == nil {
		return sum, err
	}
	// Each side's total as a source preview gives it: exact when the
	// sample held every matching row or counting is cheap, else a lower
	// bound.
	for i, n := range []int64{sum.LeftCount, sum.RightCount} {
		side := [2]string{"left", "right"}[i]
		limit := job.Sample
		if limit <= 0 {
			limit = n + 1
		}
		total, kind, err := connector.Total(ctx, srcs[i], scoped[i], n, limit, connector.LoadOptions{ExactTotal: job.ExactTotal})
		if err != nil {
			return nil, kalla.AsSourceError(err, side, specs[i].Alias)
		}
		job.Counted(side, total, kind)
	}
	return sum, nil
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
