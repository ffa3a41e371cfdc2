package cli

import (
	"os"
	"strings"

	"github.com/kalla-recon/kalla/internal/objstore"
	"github.com/kalla-recon/kalla/internal/recon"
	"github.com/kalla-recon/kalla/internal/sources"
)

// sourcesConfig reads the connector layer's settings from the environment,
// once per command: S3 (S3_ENDPOINT, S3_ACCESS_KEY, S3_SECRET_KEY,
// S3_REGION, S3_PATH_STYLE) and the hosts https:// sources may be fetched
// from (KALLA_HTTP_ALLOW, comma separated; none by default, so a recipe
// cannot make Kalla fetch an arbitrary URL).
func (e *env) sourcesConfig() (sources.Config, error) {
	s3, err := objstore.S3ConfigFromEnv()
	if err != nil {
		return sources.Config{}, usageError{err}
	}
	var allow []string
	for _, h := range strings.Split(os.Getenv("KALLA_HTTP_ALLOW"), ",") {
		if h = strings.TrimSpace(h); h != "" {
			allow = append(allow, h)
		}
	}
	return sources.Config{
		Logger: e.log,
		Remote: objstore.FetcherConfig{S3: s3, AllowHTTP: allow},
	}, nil
}

// newRecon builds the reconciliation service of one command over the
// connector layer mgr: DuckDB with opts, released rather than closed when
// the process exits right after the command.
func (e *env) newRecon(mgr *sources.Manager, opts recon.DuckDBOptions) *recon.Service {
	if opts.Logger == nil {
		opts.Logger = e.log
	}
	return recon.New(recon.Options{DuckDB: opts, Sources: mgr, Release: e.exiting, Logger: e.log})
}

// newSources builds the connector layer for one command.
func (e *env) newSources() (*sources.Manager, error) {
	cfg, err := e.sourcesConfig()
	if err != nil {
		return nil, err
	}
	return sources.New(cfg), nil
}
