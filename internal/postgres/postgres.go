package postgres

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/kalla-recon/kalla/internal/connector"
	"github.com/kalla-recon/kalla/internal/dbpool"
	"github.com/kalla-recon/kalla/internal/dialect"
	"github.com/kalla-recon/kalla/internal/kalla"
)

// Default statement timeouts.
const (
	DefaultPreviewTimeout = 30 * time.Second
	DefaultStageTimeout   = 5 * time.Minute
)

// Options configure a Postgres source.
type Options struct {
	// Pools is the shared pool cache; required. A source takes a lease on
	// its database's pool and releases it in Close.
	Pools *dbpool.Cache
	// PreviewTimeout is the statement timeout of Columns, Count and Sample.
	PreviewTimeout time.Duration
	// StageTimeout is the statement timeout of Stage: a stage that streams
	// for longer is cancelled by the server.
	StageTimeout time.Duration
	// Logger receives warnings (a numeric column staged as text). Nil
	// discards.
	Logger *slog.Logger
}

// Source is one Postgres table. It implements connector.Source; its
// methods are safe for concurrent use.
type Source struct {
	name   string // redacted URI
	schema string // real schema name
	table  string // real table name
	from   string // quoted schema.table
	cols   []kalla.Column
	plans  []plan
	pool   *pgxpool.Pool
	lease  *dbpool.Lease
	opts   Options
	log    *slog.Logger
}

var (
	_ connector.Source         = (*Source)(nil)
	_ connector.BoundedCounter = (*Source)(nil)
)

// Open opens the table uri names and reads its columns, so that a missing
// table or an unreachable server is reported here. Errors: EINVALID for a
// malformed URI or a missing ?table=, ENOTFOUND for a missing table or
// database, EUNAVAILABLE when the server cannot be reached or refuses the
// login.
func Open(ctx context.Context, uri string, opts Options) (*Source, error) {
	if opts.Pools == nil {
		return nil, kalla.Errorf(kalla.EINTERNAL, "postgres: no pool cache")
	}
	if opts.PreviewTimeout <= 0 {
		opts.PreviewTimeout = DefaultPreviewTimeout
	}
	if opts.StageTimeout <= 0 {
		opts.StageTimeout = DefaultStageTimeout
	}
	s := &Source{name: kalla.Excerpt(kalla.Redact(uri)), opts: opts, log: opts.Logger}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	dsn, schema, table, err := parseURI(uri, s.name)
	if err != nil {
		return nil, err
	}
	s.pool, s.lease, err = opts.Pools.Postgres(dsn, kalla.Redact(dsn))
	if err != nil {
		if errors.Is(err, dbpool.ErrClosed) {
			return nil, kalla.WrapError(kalla.EUNAVAILABLE, err, "source %s", s.name)
		}
		return nil, kalla.WrapError(kalla.EINVALID, kalla.RedactError(err), "source %s: invalid connection settings", s.name)
	}
	if err := s.describe(ctx, schema, table); err != nil {
		s.lease.Release()
		return nil, err
	}
	return s, nil
}

// Params are the query parameters a postgres:// source URI may carry.
// Everything else pgx understands is refused: some read files on the Kalla
// host (passfile, sslcert, sslkey, sslrootcert, service, servicefile), some
// change the source session (options, search_path and any unknown name,
// which pgx sends as a run-time parameter), some the pool (pool_max_conns).
// Client certificates are not supported at all.
var Params = []string{"table", "sslmode", "connect_timeout", "application_name", "target_session_attrs", "channel_binding"}

// paramHints explain some refused parameters.
var paramHints = map[string]string{
	"password": "give the password in the URI's user part (postgres://user:password@host/db)",
	"user":     "give the user in the URI's user part (postgres://user:password@host/db)",
	"host":     "give the host in the URI (postgres://user:password@host:port/db)",
	"port":     "give the port in the URI (postgres://user:password@host:port/db)",
	"dbname":   "give the database in the URI's path (postgres://host/db)",
	"ssl":      "use sslmode=require",
	"sslcert":  "client certificates are not supported",
	"sslkey":   "client certificates are not supported",
	"passfile": "files on the Kalla server are never read for a source",
}

// CheckURI checks a postgres:// source URI without connecting: its form,
// its host and its parameters. Errors: EINVALID naming what is wrong.
func CheckURI(uri string) error {
	_, _, _, err := parseURI(uri, kalla.Redact(uri))
	return err
}

// parseURI splits a postgres:// URI into the driver's connection string
// (without the table parameter) and the schema and table.
func parseURI(uri, name string) (dsn, schema, table string, err error) {
	u, perr := url.Parse(uri)
	if perr != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") {
		// url.Parse's error quotes the URI, password included: not shown.
		return "", "", "", kalla.Errorf(kalla.EINVALID, "source %s: not a valid postgres://user:password@host:port/db?table=name URI", name)
	}
	q := u.Query()
	if err := connector.CheckParams("postgres", name, q, paramHints, Params...); err != nil {
		return "", "", "", err
	}
	// Without a host pgx would use PGHOST or a Unix socket on the Kalla
	// host, where the source's user might be let in as Kalla's own.
	if h := u.Hostname(); h == "" || strings.ContainsAny(h, "/\\@,") || strings.Contains(u.Host, "%") {
		return "", "", "", kalla.Errorf(kalla.EINVALID, "source %s: name one database server by host (postgres://user:password@host:port/db); Unix sockets on the Kalla server and host lists are not allowed", name)
	}
	if u.Fragment != "" || u.RawFragment != "" {
		return "", "", "", kalla.Errorf(kalla.EINVALID, "source %s: a postgres URI has no #fragment", name)
	}
	hasPW := false
	if u.User != nil {
		if pw, ok := u.User.Password(); ok && pw != "" {
			hasPW = true
		}
	}
	t := q.Get("table")
	if strings.TrimSpace(t) == "" {
		return "", "", "", kalla.Errorf(kalla.EINVALID, "missing ?table= in URI %s", name)
	}
	schema, table, err = parseTable(t)
	if err != nil {
		return "", "", "", kalla.Errorf(kalla.EINVALID, "source %s: %v", name, err)
	}
	q.Del("table")
	// pgx fills what a URI leaves out from the Kalla host's environment and
	// home folder (~/.pgpass, ~/.postgresql/postgresql.crt and .key): set
	// empty, they are not read, and the source's server never sees the
	// Kalla user's password or client certificate.
	q.Set("passfile", "")
	q.Set("sslcert", "")
	q.Set("sslkey", "")
	if !hasPW {
		q.Set("password", "")
	}
	u.RawQuery = q.Encode()
	// postgres:// and postgresql:// name the same database: one pool.
	u.Scheme = "postgres"
	return u.String(), schema, table, nil
}

// describe finds the table and reads its columns.
func (s *Source) describe(ctx context.Context, schema, table string) error {
	const q = `SELECT table_schema, table_name, column_name, data_type, udt_name, is_nullable = 'YES',
	numeric_precision, numeric_scale
FROM information_schema.columns
WHERE %s
ORDER BY table_schema, table_name, ordinal_position`
	type found struct {
		schema, table string
		metas         []colMeta
	}
	var tables []*found
	read := func(conn *pgx.Conn, cond string, args ...any) error {
		rows, err := conn.Query(ctx, fmt.Sprintf(q, cond), args...)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var sch, tab string
			var m colMeta
			if err := rows.Scan(&sch, &tab, &m.name, &m.dataType, &m.udtName, &m.nullable, &m.precision, &m.scale); err != nil {
				return err
			}
			if len(tables) == 0 || tables[len(tables)-1].schema != sch || tables[len(tables)-1].table != tab {
				tables = append(tables, &found{schema: sch, table: tab})
			}
			f := tables[len(tables)-1]
			f.metas = append(f.metas, m)
		}
		return rows.Err()
	}
	schemaCond := "table_schema = $1"
	schemaArg := schema
	if schema == "" {
		schemaArg = "public"
	}
	err := s.withTx(ctx, s.opts.PreviewTimeout, false, true, func(conn *pgx.Conn) error {
		if err := read(conn, schemaCond+" AND table_name = $2", schemaArg, table); err != nil || len(tables) > 0 {
			return err
		}
		// Postgres folds unquoted names to lower case; accept a name
		// written in another case when it names one table only.
		return read(conn, "lower(table_schema) = lower($1) AND lower(table_name) = lower($2)", schemaArg, table)
	})
	if err != nil {
		return s.fail(ctx, err, "read the table's columns")
	}
	var pick *found
	for _, f := range tables {
		if f.schema == schemaArg && f.table == table {
			pick = f
		}
	}
	switch {
	case pick != nil:
	case len(tables) == 1:
		pick = tables[0]
	case len(tables) > 1:
		names := make([]string, len(tables))
		for i, f := range tables {
			names[i] = dialect.Postgres.QuoteQualified(f.schema, f.table)
		}
		return kalla.Errorf(kalla.EINVALID, "source %s: table %q matches several tables when case is ignored (%s): write its name exactly, in double quotes", s.name, table, strings.Join(names, ", "))
	default:
		return kalla.Errorf(kalla.ENOTFOUND, "source %s: table %s not found in schema %s", s.name, table, schemaArg)
	}
	s.schema, s.table = pick.schema, pick.table
	s.from = dialect.Postgres.QuoteQualified(pick.schema, pick.table)
	s.plans = make([]plan, len(pick.metas))
	s.cols = make([]kalla.Column, len(pick.metas))
	for i, m := range pick.metas {
		p := planFor(m)
		s.plans[i] = p
		s.cols[i] = kalla.Column{Name: m.name, DataType: p.dataType, Nullable: m.nullable, EngineType: p.engineType}
	}
	return nil
}

// Columns describes the table's columns in ordinal order, as read by Open.
func (s *Source) Columns(ctx context.Context) ([]kalla.Column, error) {
	return append([]kalla.Column(nil), s.cols...), nil
}

// Count returns the number of rows matching the filters. Errors: EINVALID
// for a bad filter, EUNAVAILABLE when the server fails or times out.
func (s *Source) Count(ctx context.Context, filters []kalla.Filter) (int64, error) {
	where, args, err := dialect.Postgres.WhereFor(s.name, filters, s.cols, 1)
	if err != nil {
		return 0, err
	}
	var n int64
	err = s.withTx(ctx, s.opts.PreviewTimeout, false, false, func(conn *pgx.Conn) error {
		return conn.QueryRow(ctx, "SELECT count(*) FROM "+s.from+where, args...).Scan(&n)
	})
	if err != nil {
		return 0, s.fail(ctx, err, "count rows")
	}
	return n, nil
}

// CountUpTo returns min(max, rows matching the filters), reading no more
// than max matching rows, under a statement timeout of budget: a count
// that runs longer is stopped by the server and reported as an error
// wrapping connector.ErrCountBudget, and the connection is kept. Errors
// otherwise as Count.
func (s *Source) CountUpTo(ctx context.Context, filters []kalla.Filter, max int64, budget time.Duration) (int64, error) {
	where, args, err := dialect.Postgres.WhereFor(s.name, filters, s.cols, 1)
	if err != nil {
		return 0, err
	}
	q := "SELECT count(*) FROM (SELECT 1 FROM " + s.from + where + " LIMIT " + dialect.Postgres.Placeholder(len(args)+1) + ") AS bounded"
	args = append(args, max)
	var n int64
	err = s.withTx(ctx, min(budget, s.opts.PreviewTimeout), false, true, func(conn *pgx.Conn) error {
		return conn.QueryRow(ctx, q, args...).Scan(&n)
	})
	var pe *pgconn.PgError
	if err != nil && ctx.Err() == nil && errors.As(err, &pe) && pe.Code == "57014" {
		return 0, fmt.Errorf("source %s: %w", s.name, connector.ErrCountBudget)
	}
	if err != nil {
		return 0, s.fail(ctx, err, "count rows")
	}
	return n, nil
}

// Sample returns at most limit rows matching the filters, each value in
// Postgres's text form (nil for NULL), in the order the server reads them.
func (s *Source) Sample(ctx context.Context, filters []kalla.Filter, limit int) ([][]*string, error) {
	if limit < 0 {
		limit = 0
	}
	where, args, err := dialect.Postgres.WhereFor(s.name, filters, s.cols, 1)
	if err != nil {
		return nil, err
	}
	exprs := make([]string, len(s.plans))
	for i, p := range s.plans {
		exprs[i] = p.textExpr()
	}
	q := "SELECT " + strings.Join(exprs, ", ") + " FROM " + s.from + where + " LIMIT " + dialect.Postgres.Placeholder(len(args)+1)
	args = append(args, int64(limit))
	out := [][]*string{}
	err = s.withTx(ctx, s.opts.PreviewTimeout, false, true, func(conn *pgx.Conn) error {
		rows, err := conn.Query(ctx, q, args...)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			raw := rows.RawValues()
			row := make([]*string, len(raw))
			for i, b := range raw {
				if b != nil {
					v := string(b)
					row[i] = &v
				}
			}
			out = append(out, row)
		}
		return rows.Err()
	})
	if err != nil {
		return nil, s.fail(ctx, err, "read sample")
	}
	return out, nil
}

// Close releases the source's lease on its pool; the pool stays cached.
func (s *Source) Close() error {
	s.lease.Release()
	return nil
}

// withTx runs fn on a pooled connection inside a READ ONLY transaction
// (REPEATABLE READ when snapshot is set, so that several statements see the
// same data) whose statements time out after timeout. The session is set
// to UTC and ISO dates so that text renderings do not depend on the
// server's or the role's settings. A quick transaction (a preview's
// describe, sample or bounded count: small reads under LIMIT) runs without
// parallel workers, whose start-up costs more than such a read and which
// are further processes on the source's server, beyond the pool's cap. The
// transaction is always rolled back: nothing is ever written.
func (s *Source) withTx(ctx context.Context, timeout time.Duration, snapshot, quick bool, fn func(conn *pgx.Conn) error) error {
	conn, err := s.pool.Acquire(ctx)
	if err != nil {
		return err
	}
	// A connection released inside a transaction (when fn failed on a
	// broken connection, or ctx was cancelled) is destroyed by the pool.
	defer conn.Release()
	iso := "READ COMMITTED"
	if snapshot {
		iso = "REPEATABLE READ"
	}
	// One round trip: without arguments pgx sends this with the simple
	// protocol, which runs the statements in order.
	begin := fmt.Sprintf("BEGIN ISOLATION LEVEL %s READ ONLY; SET LOCAL statement_timeout = %d; SET LOCAL TimeZone = 'UTC'; SET LOCAL DateStyle = 'ISO, YMD'; SET LOCAL IntervalStyle = 'postgres'",
		iso, max(timeout.Milliseconds(), 1))
	if quick {
		begin += "; SET LOCAL max_parallel_workers_per_gather = 0"
	}
	if _, err := conn.Exec(ctx, begin); err != nil {
		return err
	}
	err = fn(conn.Conn())
	if _, rerr := conn.Exec(ctx, "ROLLBACK"); err == nil && rerr != nil {
		err = rerr
	}
	return err
}
