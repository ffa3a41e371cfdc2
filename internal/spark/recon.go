package spark

import (
	"context"
	"github.com/kalla-recon/kalla/internal/connector"
	"path/filepath"
	"strings"

	"github.com/kalla-recon/kalla/internal/kalla"
	"github.com/kalla-recon/kalla/internal/recon"
)

// Factory returns the recon.Factory of this engine, for
// recon.Service.Register(recon.Spark, ...).
func (e *Engine) Factory() recon.Factory {
	return func(context.Context) (recon.Engine, error) { return reconEngine{e}, nil }
}

// reconEngine adapts Engine to recon.Engine.
type reconEngine struct{ e *Engine }

func (reconEngine) Name() string { return recon.Spark }

func (reconEngine) Close() error { return nil }

// resolve makes local relative paths absolute against base (the cluster
// does not share Kalla's working folder); URIs with a scheme stay.
func resolve(rec *kalla.Recipe, base string) *kalla.Recipe {
	c := *rec
	for _, s := range []*kalla.SourceSpec{&c.Sources.Left, &c.Sources.Right} {
		if s.URI != "" && !strings.Contains(s.URI, "://") && !filepath.IsAbs(s.URI) {
			if base == "" {
				base, _ = filepath.Abs(".")
			}
			s.URI = filepath.Join(base, s.URI)
		}
	}
	return &c
}

// Run implements recon.Engine.
func (r reconEngine) Run(ctx context.Context, job recon.Job) (*kalla.Summary, error) {
	if job.Sample > 0 {
		return nil, kalla.Errorf(kalla.EINVALID, "previews on a sample run on DuckDB; the Spark engine runs whole sources")
	}
	if job.Recipe == nil {
		return nil, kalla.Errorf(kalla.EINVALID, "no recipe")
	}
	orig := job.Recipe
	sum, err := r.e.Execute(ctx, Job{
		Recipe: resolve(job.Recipe, job.BaseDir), LeftFilters: job.LeftFilters, RightFilters: job.RightFilters,
		OutDir: job.Out, Formats: job.Formats, RunID: job.RunID, Progress: job.Progress, DryRun: job.DryRun,
		Records: job.Records,
		uris:    [2]string{orig.Sources.Left.URI, orig.Sources.Right.URI},
	})
	if err != nil || sum == nil {
		return sum, err
	}
	if job.Counted != nil {
		// Spark runs the whole sides: their counts are exact.
		job.Counted("left", sum.LeftCount, connector.TotalExact)
		job.Counted("right", sum.RightCount, connector.TotalExact)
	}
	return sum, nil
}

// Check implements recon.Engine.
func (r reconEngine) Check(ctx context.Context, rec *kalla.Recipe, opt recon.CheckOptions) (*kalla.Check, error) {
	c := &kalla.Check{Problems: []string{}}
	for i, err := range opt.Refused {
		if err != nil {
			c.Problems = append(c.Problems, kalla.ErrorMessage(kalla.AsSourceError(err, [2]string{"left", "right"}[i], []string{rec.Sources.Left.Alias, rec.Sources.Right.Alias}[i])))
		}
	}
	if len(c.Problems) > 0 {
		return c, nil
	}
	return r.e.Check(ctx, resolve(rec, opt.BaseDir))
}
