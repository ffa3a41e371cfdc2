package recon

import (
	"context"

	"github.com/kalla-recon/kalla/internal/connector"
	"github.com/kalla-recon/kalla/internal/kalla"
	"github.com/kalla-recon/kalla/internal/suggest"
)

// Suggest proposes a recipe for the two sources opt names (opt.Left,
// opt.Right, resolved specs), learned from their data. Suggestions are
// computed on DuckDB whatever engines are registered: they read samples
// of the sources' values, which the embedded engine does at once, and
// their result is a recipe that runs on any engine. Errors: a
// *kalla.SourceError for a side that cannot be opened, EINVALID for bad
// options (a key column that does not exist), ErrEngineConfig.
func (s *Service) Suggest(ctx context.Context, opt suggest.Options) (*suggest.Result, error) {
	if s.opts.Sources == nil {
		return nil, kalla.Errorf(kalla.EINTERNAL, "suggest: no source opener configured")
	}
	var srcs [2]connector.Source
	for i, spec := range []kalla.SourceSpec{opt.Left, opt.Right} {
		src, err := s.opts.Sources.Open(ctx, spec, "")
		if err != nil {
			return nil, kalla.AsSourceError(err, [2]string{"left", "right"}[i], "")
		}
		defer src.Close()
		srcs[i] = src
	}
	d := &duckEngine{s: s}
	eng, closeDB, err := d.openDB(ctx, "", nil)
	if err != nil {
		return nil, err
	}
	defer closeDB()
	return suggest.FromSources(ctx, eng, srcs[0], srcs[1], opt)
}
