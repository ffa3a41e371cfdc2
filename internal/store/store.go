// Package store is Kalla's metadata store: registered sources (alias to URI),
// stored recipes and runs (their queue, state, progress and summaries). It
// owns the schema of those tables and its migrations.
//
// One type, Store, has two backends chosen by URL: an embedded SQLite file
// (the default, for a single process) and PostgreSQL (for several processes
// sharing one queue). Both behave the same; one contract test suite runs
// against each.
//
// The store never reads users' source data: a registered source's URI is kept
// here raw, with its credentials, and only handed back to callers, which read
// the data through the connector layer. The store logs nothing and never puts
// a URI into an error.
//
// The store sets every timestamp itself (created_at, updated_at, started_at,
// finished_at), in UTC and truncated to the microsecond, so a record read
// back equals the one a method handed out, on either backend.
package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	"github.com/kalla-recon/kalla/internal/kalla"

	// Drivers: "pgx" for PostgreSQL and "sqlite" for SQLite (pure Go).
	_ "github.com/jackc/pgx/v5/stdlib"
	_ "modernc.org/sqlite"
)

// ErrNotFound is the cause of every error for a source, recipe or run that
// does not exist, and of ClaimRun finding no queued run. It is always wrapped
// in a *kalla.Error with code kalla.ENOTFOUND, so callers can test either
// errors.Is(err, store.ErrNotFound) or kalla.ErrorCode(err).
var ErrNotFound = errors.New("not found")

// Store is Kalla's metadata store, backed by SQLite or PostgreSQL. It is safe
// for concurrent use by many goroutines, and by several processes sharing one
// database (for SQLite, processes on one host).
type Store struct {
	d dialect
	// w takes every write. On SQLite it holds a single connection, so writes
	// queue in Go (honouring ctx) rather than failing with SQLITE_BUSY; r is
	// a separate pool of read-only connections, which WAL lets run beside
	// the writer. On PostgreSQL both are the same pool.
	w, r *sql.DB
	now  func() time.Time
}

// Option changes how Open sets up a Store.
type Option func(*options)

type options struct {
	now       func() time.Time
	noMigrate bool
}

// WithClock makes the store take its timestamps (created_at, started_at, …)
// from now instead of the system clock, so tests and golden files can pin
// them. now must be safe for concurrent use.
func WithClock(now func() time.Time) Option {
	return func(o *options) { o.now = now }
}

// WithoutMigrations makes Open leave the schema alone, so that a `kalla
// migrate` command can call Migrate itself and report what it applied. The
// other methods fail until the schema is up to date.
func WithoutMigrations() Option {
	return func(o *options) { o.noMigrate = true }
}

// Open connects to the metadata store at rawURL and applies pending migrations.
//
// rawURL is one of:
//
//	sqlite:///var/lib/kalla/kalla.db   SQLite file at an absolute path
//	sqlite:kalla.db                    SQLite file at a relative path
//	/var/lib/kalla/kalla.db            a plain path means SQLite too
//	postgres://user:pass@host:5432/db  PostgreSQL (also postgresql://)
//
// A new SQLite file is created readable by its owner only, since it holds
// source URIs with their credentials. A malformed rawURL returns kalla.EINVALID.
func Open(ctx context.Context, rawURL string, opts ...Option) (*Store, error) {
	o := options{now: time.Now}
	for _, opt := range opts {
		opt(&o)
	}
	s := &Store{now: o.now}
	switch {
	case strings.HasPrefix(rawURL, "postgres://"), strings.HasPrefix(rawURL, "postgresql://"):
		if err := s.openPostgres(ctx, rawURL); err != nil {
			return nil, err
		}
	case strings.Contains(rawURL, "://") && !strings.HasPrefix(rawURL, "sqlite://"):
		// Name only the scheme: the rest may hold a password.
		scheme, _, _ := strings.Cut(rawURL, "://")
		return nil, kalla.Errorf(kalla.EINVALID, "metadata store URL: unsupported scheme %q (want sqlite:// or postgres://)", scheme)
	default:
		path, err := sqlitePath(rawURL)
		if err != nil {
			return nil, err
		}
		if err := s.openSQLite(ctx, path); err != nil {
			return nil, err
		}
	}
	if !o.noMigrate {
		if _, err := s.Migrate(ctx); err != nil {
			s.Close()
			return nil, err
		}
	}
	return s, nil
}

// sqlitePath returns the file path a sqlite: URL or plain path names.
func sqlitePath(rawURL string) (string, error) {
	path := rawURL
	if rest, ok := strings.CutPrefix(rawURL, "sqlite:"); ok {
		path = strings.TrimPrefix(rest, "//")
	}
	switch {
	case path == "":
		return "", kalla.Errorf(kalla.EINVALID, "metadata store URL: no SQLite file path")
	case path == ":memory:" || strings.HasPrefix(path, "file:"):
		return "", kalla.Errorf(kalla.EINVALID, "metadata store URL: SQLite needs a file path, got %q", path)
	case strings.ContainsAny(path, "?#"):
		// The driver reads everything after '?' as its own parameters.
		return "", kalla.Errorf(kalla.EINVALID, "metadata store URL: SQLite file path %q may not contain '?' or '#'", path)
	}
	return path, nil
}

// sqlitePragmas are set on every SQLite connection. busy_timeout makes a
// connection wait for another process's write lock instead of failing; WAL
// lets readers run beside the writer.
const sqlitePragmas = "_pragma=busy_timeout(5000)&_pragma=journal_mode(WAL)&_pragma=foreign_keys(1)"

func (s *Store) openSQLite(ctx context.Context, path string) error {
	if dir := filepath.Dir(path); dir != "." {
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return fmt.Errorf("create sqlite store directory: %w", err)
		}
	}
	// SQLite would create the file world-readable; it holds credentials.
	// The -wal and -shm files take the database file's mode.
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return fmt.Errorf("create sqlite store: %w", err)
	}
	f.Close()

	// _txlock=immediate: a transaction takes the write lock at BEGIN, so two
	// processes never both read and then fail to upgrade to writing.
	w, err := sql.Open("sqlite", path+"?"+sqlitePragmas+"&_txlock=immediate")
	if err != nil {
		return fmt.Errorf("open sqlite store: %w", err)
	}
	w.SetMaxOpenConns(1)
	if err := w.PingContext(ctx); err != nil {
		w.Close()
		return fmt.Errorf("open sqlite store: %w", err)
	}
	r, err := sql.Open("sqlite", path+"?"+sqlitePragmas+"&_pragma=query_only(1)")
	if err != nil {
		w.Close()
		return fmt.Errorf("open sqlite store: %w", err)
	}
	n := max(4, runtime.GOMAXPROCS(0))
	r.SetMaxOpenConns(n)
	r.SetMaxIdleConns(n)
	s.d, s.w, s.r = sqliteDialect, w, r
	return nil
}

// postgresMaxConns bounds the pool: the store's queries are short, and an
// unbounded pool could use up the server's max_connections under a burst of
// API requests.
const postgresMaxConns = 10

func (s *Store) openPostgres(ctx context.Context, rawURL string) error {
	db, err := sql.Open("pgx", rawURL)
	if err != nil {
		// pgx's parse errors can quote the URL; keep the cause for errors.Is
		// but not its text.
		return kalla.WrapError(kalla.EINVALID, errRedacted{err}, "metadata store URL: not a valid PostgreSQL URL")
	}
	db.SetMaxOpenConns(postgresMaxConns)
	db.SetMaxIdleConns(postgresMaxConns)
	db.SetConnMaxIdleTime(5 * time.Minute)
	if err := db.PingContext(ctx); err != nil {
		db.Close()
		return fmt.Errorf("connect to postgres store: %w", err)
	}
	s.d, s.w, s.r = postgresDialect, db, db
	return nil
}

// errRedacted hides an error's text (which may quote a URL with its
// password) while keeping it in the chain for errors.Is and errors.As.
type errRedacted struct{ err error }

func (e errRedacted) Error() string { return "details withheld: the URL may hold a password" }
func (e errRedacted) Unwrap() error { return e.err }

// Close closes the store's connections. Calling it more than once is safe.
func (s *Store) Close() error {
	var errs []error
	if s.r != s.w {
		errs = append(errs, s.r.Close())
	}
	errs = append(errs, s.w.Close())
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("close store: %w", err)
	}
	return nil
}

// Ping checks that the store answers queries, for /readyz.
func (s *Store) Ping(ctx context.Context) error {
	var one int
	if err := s.w.QueryRowContext(ctx, "SELECT 1").Scan(&one); err != nil {
		return fmt.Errorf("ping store: %w", err)
	}
	if s.r != s.w {
		if err := s.r.QueryRowContext(ctx, "SELECT 1").Scan(&one); err != nil {
			return fmt.Errorf("ping store: %w", err)
		}
	}
	return nil
}

// Backend names the store's backend: "sqlite" or "postgres".
func (s *Store) Backend() string { return s.d.name }

// timestamp returns the current time as the store keeps it: UTC, truncated
// to the microsecond PostgreSQL can hold, so a value read back equals the
// one written.
func (s *Store) timestamp() time.Time {
	return s.now().UTC().Truncate(time.Microsecond)
}

// notFound returns the ENOTFOUND error for a missing thing.
func notFound(format string, args ...any) error {
	return kalla.WrapError(kalla.ENOTFOUND, ErrNotFound, format, args...)
}
