// Package sources opens a connector.Source for a source URI: it picks the
// connector by scheme and type, and owns what connectors share across
// requests (the bounded, idle-evicted connection pools of source databases,
// the S3 client settings, whether https:// may be fetched). It is the
// connector layer's front door; Kalla's metadata store never reads user data.
package sources

import (
	"context"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/kalla-recon/kalla/internal/connector"
	"github.com/kalla-recon/kalla/internal/dbpool"
	"github.com/kalla-recon/kalla/internal/file"
	"github.com/kalla-recon/kalla/internal/kalla"
	"github.com/kalla-recon/kalla/internal/mysql"
	"github.com/kalla-recon/kalla/internal/objstore"
	"github.com/kalla-recon/kalla/internal/postgres"
)

// Config configures the connector layer.
type Config struct {
	// Logger receives connector logs; URIs are always redacted. Nil discards.
	Logger *slog.Logger
	// Remote says how s3:// and https:// file sources are fetched: the S3
	// server and keys, the hosts https:// may reach (none by default), the
	// temporary folder and size limit.
	Remote objstore.FetcherConfig
	// Pools bounds the connection pools of database sources (Postgres,
	// MySQL): connections per database, idle time before a pool is
	// closed, time to set up a connection. Zero fields take dbpool's
	// defaults (4, 5 minutes, 10 seconds).
	Pools dbpool.Options
	// PreviewTimeout is the statement timeout of database sources'
	// columns, counts and samples; zero means 30 seconds.
	PreviewTimeout time.Duration
	// StageTimeout is the statement timeout of staging a database source
	// for a run, streaming included; zero means 5 minutes.
	StageTimeout time.Duration
	// IdleTimeout stops opening a database source (its catalog queries)
	// and fetching a remote file when the server sends nothing for this
	// long; zero means connector.DefaultIdleTimeout. It is also
	// Remote.IdleTimeout when that is zero. Staging rows is watched by the
	// engine (engine.Options.SourceIdleTimeout).
	IdleTimeout time.Duration
}

// Manager opens sources. It is safe for concurrent use; Close releases the
// pools it caches.
type Manager struct {
	cfg     Config
	log     *slog.Logger
	fetcher *objstore.Fetcher // one per manager, so fetches share HTTP connections

	poolsMu sync.Mutex
	pools   *dbpool.Cache // created on the first database source
	closed  bool
}

// New returns a Manager.
func New(cfg Config) *Manager {
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if cfg.Remote.IdleTimeout == 0 {
		cfg.Remote.IdleTimeout = cfg.IdleTimeout
	}
	return &Manager{cfg: cfg, log: log, fetcher: objstore.NewFetcher(cfg.Remote)}
}

// Close closes the cached connection pools of database sources and stops
// their janitor; call it after running work has stopped, since closing a
// Postgres pool waits for its connections in use to be returned. A
// database source opened after Close fails with EUNAVAILABLE. It is
// idempotent.
func (m *Manager) Close() error {
	m.poolsMu.Lock()
	defer m.poolsMu.Unlock()
	m.closed = true
	if m.pools == nil {
		return nil
	}
	return m.pools.Close()
}

// dbPools returns the pool cache, creating it (and its janitor goroutine)
// on first use, so that a Manager that only ever reads files starts none.
func (m *Manager) dbPools() (*dbpool.Cache, error) {
	m.poolsMu.Lock()
	defer m.poolsMu.Unlock()
	if m.closed {
		return nil, dbpool.ErrClosed
	}
	if m.pools == nil {
		opts := m.cfg.Pools
		if opts.Logger == nil {
			opts.Logger = m.log
		}
		m.pools = dbpool.New(opts)
	}
	return m.pools, nil
}

// PoolStats describes the open connection pools of database sources, for
// metrics: connections open now and the most ever open at once per source
// database, against the cap.
func (m *Manager) PoolStats() []dbpool.Stat {
	m.poolsMu.Lock()
	p := m.pools
	m.poolsMu.Unlock()
	if p == nil {
		return nil
	}
	return p.Stats()
}

// openDB opens a Postgres or MySQL source through the shared pools.
func (m *Manager) openDB(ctx context.Context, typ string, spec kalla.SourceSpec) (connector.Source, error) {
	if len(spec.Schema) > 0 {
		return nil, kalla.Errorf(kalla.EINVALID, "source %s: schema overrides apply to file sources; a %s table's types come from its catalog", kalla.Excerpt(kalla.Redact(spec.URI)), typ)
	}
	if spec.CSV != nil {
		return nil, kalla.Errorf(kalla.EINVALID, "source %s: csv settings apply to CSV files, not to a %s table", kalla.Excerpt(kalla.Redact(spec.URI)), typ)
	}
	pools, err := m.dbPools()
	if err != nil {
		return nil, kalla.WrapError(kalla.EUNAVAILABLE, err, "source %s", kalla.Excerpt(kalla.Redact(spec.URI)))
	}
	// The catalog queries answer in one message each: a frozen server
	// is told by the idle timeout, not waited for.
	var src connector.Source
	err = connector.WithIdle(ctx, m.cfg.IdleTimeout, func(ctx context.Context) error {
		if typ == kalla.SourcePostgres {
			src, err = plain(postgres.Open(ctx, spec.URI, postgres.Options{Pools: pools, PreviewTimeout: m.cfg.PreviewTimeout, StageTimeout: m.cfg.StageTimeout, Logger: m.log}))
		} else {
			src, err = plain(mysql.Open(ctx, spec.URI, mysql.Options{Pools: pools, PreviewTimeout: m.cfg.PreviewTimeout, StageTimeout: m.cfg.StageTimeout, Logger: m.log}))
		}
		return err
	})
	if err != nil {
		return nil, err
	}
	return src, nil
}

// Open opens the source a recipe side describes. Relative file paths are
// resolved against baseDir (the recipe's folder). On failure the source is
// a plain nil (never a typed nil inside the interface) and the error a
// *kalla.SourceError naming spec's alias, whose Err is a *kalla.Error that
// never carries credentials; a cancelled ctx gives the context's error.
func (m *Manager) Open(ctx context.Context, spec kalla.SourceSpec, baseDir string) (connector.Source, error) {
	src, err := m.open(ctx, spec, baseDir)
	if err != nil {
		return nil, kalla.AsSourceError(err, "", spec.Alias)
	}
	return src, nil
}

// open picks the connector. Each connector's Open returns its own pointer
// type, so a failure is returned through plain, which keeps a typed nil out
// of the interface.
func (m *Manager) open(ctx context.Context, spec kalla.SourceSpec, baseDir string) (connector.Source, error) {
	switch t := spec.SourceType(); t {
	case kalla.SourceCSV, kalla.SourceParquet:
		return plain(file.Open(ctx, spec.URI, file.Options{Type: t, Schema: spec.Schema, CSV: spec.CSV, BaseDir: baseDir, Fetcher: m.fetcher}))
	case kalla.SourcePostgres, kalla.SourceMySQL:
		return m.openDB(ctx, t, spec)
	case "":
		return nil, kalla.Errorf(kalla.EINVALID, "source %s: cannot tell its type from the URI: give a type (csv, parquet, postgres, mysql)", kalla.Excerpt(kalla.Redact(spec.URI)))
	default:
		return nil, kalla.Errorf(kalla.EINVALID, "source %s: type %q is not supported", kalla.Excerpt(kalla.Redact(spec.URI)), t)
	}
}

// CheckURI checks a source's URI as its connector would before connecting,
// without any I/O: its form and its query parameters, each connector
// allowing only the parameters it documents (postgres.Params,
// mysql.Params; none for s3:// and file://). Registration, recipes and
// runs call it so that a URI reaching the Kalla host's files or changing
// the source's session is refused with the parameter named. Errors:
// EINVALID.
func CheckURI(spec kalla.SourceSpec) error {
	switch t := spec.SourceType(); t {
	case kalla.SourcePostgres:
		return postgres.CheckURI(spec.URI)
	case kalla.SourceMySQL:
		return mysql.CheckURI(spec.URI)
	case kalla.SourceCSV, kalla.SourceParquet:
		lower := strings.ToLower(spec.URI)
		if strings.HasPrefix(lower, "s3://") || strings.HasPrefix(lower, "https://") || strings.HasPrefix(lower, "http://") {
			return objstore.CheckURI(spec.URI)
		}
		return file.CheckURI(spec.URI)
	}
	return nil
}

// plain returns a connector's source as the interface, or a plain nil with
// the error: a nil *file.Source inside a connector.Source is not == nil,
// and a caller that checks the source (to close it, to report it could not
// be opened) would call a method on nil.
func plain[S connector.Source](src S, err error) (connector.Source, error) {
	if err != nil {
		return nil, err
	}
	return src, nil
}

// OpenURI opens a source from a bare URI, inferring its type.
func (m *Manager) OpenURI(ctx context.Context, uri string) (connector.Source, error) {
	return m.Open(ctx, kalla.SourceSpec{URI: uri}, "")
}
