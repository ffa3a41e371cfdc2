// Package dbpool caches the connection pools of users' source databases
// (PostgreSQL through pgxpool, MySQL and MariaDB through database/sql), one
// small bounded pool per connection string, shared by every request that
// reads the same database.
//
// Opening a pool per request would make a burst of previews open a burst of
// connections to a database Kalla does not own, and pay a TCP and TLS
// handshake and an authentication round trip each time. A pool per
// connection string with a hard cap (MaxConns, 4 by default) bounds what
// Kalla can ever do to a source: 32 concurrent previews of one table queue
// for 4 connections instead of opening 32. Pools nobody has used for
// IdleTimeout are closed by a background janitor, so a source read once does
// not keep connections open for the life of the server.
//
// Connection strings are the cache keys and hold passwords: they are never
// logged or returned. Pools are named in Stats by the label their caller
// gives (a redacted URI).
package dbpool

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sort"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/go-sql-driver/mysql"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/kalla-recon/kalla/internal/kalla"
)

// Defaults for Options fields left zero.
const (
	DefaultMaxConns       = 4
	DefaultIdleTimeout    = 5 * time.Minute
	DefaultConnectTimeout = 10 * time.Second
)

// ErrClosed is returned when a pool is asked of a Cache that was closed.
var ErrClosed = errors.New("connection pool cache is closed")

// Options configure a Cache. Zero fields take the defaults above.
type Options struct {
	// MaxConns caps the open connections of each pool: the most Kalla
	// ever holds open to one source database at once.
	MaxConns int
	// IdleTimeout is how long a pool may go unused (no lease held, no
	// lease taken) before the janitor closes it. Idle connections inside
	// a pool in use are closed after the same time.
	IdleTimeout time.Duration
	// ConnectTimeout bounds setting up one connection: dialling, TLS and
	// authentication. An unreachable host fails after at most this long.
	ConnectTimeout time.Duration
	// JanitorInterval is how often idle pools are looked for; zero means
	// a quarter of IdleTimeout, between one second and one minute.
	JanitorInterval time.Duration
	// Logger receives pool lifecycle lines (never connection strings).
	// Nil discards.
	Logger *slog.Logger
	// Now is the clock idle times are measured with; nil means time.Now.
	// Tests set it (with EvictIdle) to age pools without waiting.
	Now func() time.Time
}

// Cache holds the pools. It is safe for concurrent use; Close closes every
// pool and stops the janitor.
type Cache struct {
	opts    Options
	log     *slog.Logger
	mu      sync.Mutex
	entries map[string]*entry // by kind + "\x00" + DSN
	closed  bool
	stop    chan struct{}
	done    chan struct{}
}

// entry is one cached pool.
type entry struct {
	kind     string // "postgres" or "mysql"
	label    string // redacted, for Stats and logs
	pg       *pgxpool.Pool
	db       *sql.DB
	leases   int       // guarded by Cache.mu
	lastUsed time.Time // guarded by Cache.mu
	open     atomic.Int64
	maxOpen  atomic.Int64
}

func (e *entry) connOpened() {
	n := e.open.Add(1)
	for {
		m := e.maxOpen.Load()
		if n <= m || e.maxOpen.CompareAndSwap(m, n) {
			return
		}
	}
}

func (e *entry) connClosed() { e.open.Add(-1) }

func (e *entry) close() {
	if e.pg != nil {
		e.pg.Close()
	}
	if e.db != nil {
		e.db.Close()
	}
}

// New returns a Cache and starts its janitor.
func New(opts Options) *Cache {
	if opts.MaxConns <= 0 {
		opts.MaxConns = DefaultMaxConns
	}
	if opts.IdleTimeout <= 0 {
		opts.IdleTimeout = DefaultIdleTimeout
	}
	if opts.ConnectTimeout <= 0 {
		opts.ConnectTimeout = DefaultConnectTimeout
	}
	if opts.JanitorInterval <= 0 {
		opts.JanitorInterval = min(max(opts.IdleTimeout/4, time.Second), time.Minute)
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	c := &Cache{
		opts:    opts,
		log:     log,
		entries: map[string]*entry{},
		stop:    make(chan struct{}),
		done:    make(chan struct{}),
	}
	go c.janitor()
	return c
}

// Options returns the options in effect, defaults filled in.
func (c *Cache) Options() Options { return c.opts }

// Lease is one holder's use of a cached pool: the janitor never closes a
// pool while a lease on it is held. Release it when done (a Source does so
// in Close); releasing twice is harmless.
type Lease struct {
	c    *Cache
	e    *entry
	once sync.Once
}

// Release ends the lease and starts the pool's idle clock.
func (l *Lease) Release() {
	if l == nil {
		return
	}
	l.once.Do(func() {
		l.c.mu.Lock()
		l.e.leases--
		l.e.lastUsed = l.c.opts.Now()
		l.c.mu.Unlock()
	})
}

// Postgres returns the pool for the pgx connection string dsn (a URL or
// key=value string), creating it on first use, and a lease on it. label
// names the pool in Stats and logs and must not hold secrets. Creating a
// pool does not connect: connection errors surface on first use. The
// error is a parse error of dsn, whose text pgx redacts, or ErrClosed.
func (c *Cache) Postgres(dsn, label string) (*pgxpool.Pool, *Lease, error) {
	l, err := c.get("postgres", dsn, label, func(e *entry) error {
		cfg, err := pgxpool.ParseConfig(dsn)
		if err != nil {
			return fmt.Errorf("parse connection string: %w", err)
		}
		cfg.MaxConns = int32(c.opts.MaxConns)
		cfg.MinConns, cfg.MinIdleConns = 0, 0
		cfg.MaxConnIdleTime = c.opts.IdleTimeout
		cfg.HealthCheckPeriod = min(c.opts.IdleTimeout/2, time.Minute)
		if cfg.ConnConfig.ConnectTimeout <= 0 || cfg.ConnConfig.ConnectTimeout > c.opts.ConnectTimeout {
			cfg.ConnConfig.ConnectTimeout = c.opts.ConnectTimeout
		}
		cfg.AfterConnect = func(context.Context, *pgx.Conn) error {
			e.connOpened()
			return nil
		}
		cfg.BeforeClose = func(*pgx.Conn) { e.connClosed() }
		p, err := pgxpool.NewWithConfig(context.Background(), cfg)
		if err != nil {
			return fmt.Errorf("create pool: %w", err)
		}
		e.pg = p
		return nil
	})
	if err != nil {
		return nil, nil, err
	}
	return l.e.pg, l, nil
}

// MySQL returns the pool for the go-sql-driver DSN dsn
// (user:password@tcp(host:port)/db?params), creating it on first use, and
// a lease on it; see Postgres. The pool's connections are dialled with
// ConnectTimeout and their whole setup (dial, TLS, authentication) is
// bounded by it.
func (c *Cache) MySQL(dsn, label string) (*sql.DB, *Lease, error) {
	l, err := c.get("mysql", dsn, label, func(e *entry) error {
		cfg, err := mysql.ParseDSN(dsn)
		if err != nil {
			return fmt.Errorf("parse connection string: %w", kalla.RedactError(err))
		}
		if cfg.Timeout <= 0 || cfg.Timeout > c.opts.ConnectTimeout {
			cfg.Timeout = c.opts.ConnectTimeout
		}
		// A server may answer any query with a request for a local file
		// (LOAD DATA LOCAL INFILE); a source database must never read
		// Kalla's files, whatever its URI says.
		cfg.AllowAllFiles = false
		// The driver logs connection trouble to stderr by default.
		cfg.Logger = mysqlLogger{c.log}
		dial := cfg.DialFunc
		cfg.DialFunc = func(ctx context.Context, network, addr string) (net.Conn, error) {
			var nc net.Conn
			var err error
			if dial != nil {
				nc, err = dial(ctx, network, addr)
			} else {
				d := net.Dialer{KeepAlive: 30 * time.Second}
				nc, err = d.DialContext(ctx, network, addr)
			}
			if err != nil {
				return nil, err
			}
			e.connOpened()
			return &countedConn{Conn: nc, closed: e.connClosed}, nil
		}
		conn, err := mysql.NewConnector(cfg)
		if err != nil {
			return fmt.Errorf("create pool: %w", err)
		}
		db := sql.OpenDB(boundedConnector{Connector: conn, timeout: c.opts.ConnectTimeout})
		db.SetMaxOpenConns(c.opts.MaxConns)
		db.SetMaxIdleConns(c.opts.MaxConns)
		db.SetConnMaxIdleTime(c.opts.IdleTimeout)
		db.SetConnMaxLifetime(time.Hour)
		e.db = db
		return nil
	})
	if err != nil {
		return nil, nil, err
	}
	return l.e.db, l, nil
}

// get returns a lease on the entry for kind and dsn, creating the entry
// with create when there is none.
func (c *Cache) get(kind, dsn, label string, create func(*entry) error) (*Lease, error) {
	key := kind + "\x00" + dsn
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return nil, ErrClosed
	}
	e := c.entries[key]
	if e == nil {
		e = &entry{kind: kind, label: label}
		// Creating a pool does no I/O (pgxpool and database/sql both
		// connect lazily), so it is done under the lock: two callers
		// never race to create the same pool.
		if err := create(e); err != nil {
			return nil, err
		}
		c.entries[key] = e
		c.log.Debug("source pool opened", "kind", kind, "source", label, "max_conns", c.opts.MaxConns)
	}
	e.leases++
	e.lastUsed = c.opts.Now()
	return &Lease{c: c, e: e}, nil
}

// janitor closes pools that have been idle for IdleTimeout.
func (c *Cache) janitor() {
	defer close(c.done)
	t := time.NewTicker(c.opts.JanitorInterval)
	defer t.Stop()
	for {
		select {
		case <-c.stop:
			return
		case <-t.C:
			c.EvictIdle()
		}
	}
}

// EvictIdle closes now the pools with no lease whose last use is at least
// IdleTimeout old by the Options.Now clock. The janitor calls it every
// JanitorInterval; tests call it to evict at a moment they choose.
func (c *Cache) EvictIdle() {
	now := c.opts.Now()
	var idle []*entry
	c.mu.Lock()
	for k, e := range c.entries {
		if e.leases == 0 && now.Sub(e.lastUsed) >= c.opts.IdleTimeout {
			delete(c.entries, k)
			idle = append(idle, e)
		}
	}
	c.mu.Unlock()
	for _, e := range idle {
		c.log.Debug("source pool closed after idling", "kind", e.kind, "source", e.label)
		e.close()
	}
}

// Close closes every pool, waiting for connections in use to be returned
// (pgxpool) or closing them as they are (database/sql), and stops the
// janitor. It is idempotent.
func (c *Cache) Close() error {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return nil
	}
	c.closed = true
	entries := c.entries
	c.entries = map[string]*entry{}
	c.mu.Unlock()
	close(c.stop)
	<-c.done
	for _, e := range entries {
		e.close()
	}
	return nil
}

// Stat describes one cached pool, for metrics and benchmarks.
type Stat struct {
	// Kind is "postgres" or "mysql".
	Kind string
	// Source is the caller's label for the pool (a redacted URI).
	Source string
	// Open is the number of connections open now.
	Open int
	// MaxOpen is the most connections the pool has had open at once.
	MaxOpen int
	// Cap is the pool's limit (Options.MaxConns).
	Cap int
	// Leases is the number of leases held now.
	Leases int
}

// Stats describes every cached pool, sorted by kind and label.
func (c *Cache) Stats() []Stat {
	c.mu.Lock()
	out := make([]Stat, 0, len(c.entries))
	for _, e := range c.entries {
		out = append(out, Stat{
			Kind: e.kind, Source: e.label, Open: int(e.open.Load()), MaxOpen: int(e.maxOpen.Load()),
			Cap: c.opts.MaxConns, Leases: e.leases,
		})
	}
	c.mu.Unlock()
	sort.Slice(out, func(i, j int) bool {
		if out[i].Kind != out[j].Kind {
			return out[i].Kind < out[j].Kind
		}
		return out[i].Source < out[j].Source
	})
	return out
}

// OpenConns returns the number of connections open to source databases
// across all pools: a gauge for /metrics.
func (c *Cache) OpenConns() int {
	n := 0
	for _, s := range c.Stats() {
		n += s.Open
	}
	return n
}

// countedConn is a MySQL network connection that reports its closing, so
// that the cache counts connections exactly (database/sql has no close
// hook).
type countedConn struct {
	net.Conn
	once   sync.Once
	closed func()
}

func (c *countedConn) Close() error {
	c.once.Do(c.closed)
	return c.Conn.Close()
}

// SyscallConn exposes the socket so that the driver's liveness check of
// pooled connections (CheckConnLiveness) keeps working through the wrapper.
func (c *countedConn) SyscallConn() (syscall.RawConn, error) {
	if sc, ok := c.Conn.(syscall.Conn); ok {
		return sc.SyscallConn()
	}
	return nil, errors.ErrUnsupported
}

// mysqlLogger sends the MySQL driver's log lines to the cache's logger.
type mysqlLogger struct{ log *slog.Logger }

func (l mysqlLogger) Print(v ...any) { l.log.Debug("mysql driver: " + fmt.Sprint(v...)) }

// boundedConnector bounds each new MySQL connection's whole setup by a
// timeout. The driver's own Timeout covers only the dial, and database/sql
// opens connections for waiting callers in the background, where no
// caller's context applies.
type boundedConnector struct {
	driver.Connector
	timeout time.Duration
}

func (b boundedConnector) Connect(ctx context.Context) (driver.Conn, error) {
	ctx, cancel := context.WithTimeout(ctx, b.timeout)
	defer cancel()
	return b.Connector.Connect(ctx)
}
