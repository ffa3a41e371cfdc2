package mysql

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/go-sql-driver/mysql"

	"github.com/kalla-recon/kalla/internal/connector"
	"github.com/kalla-recon/kalla/internal/dbpool"
	"github.com/kalla-recon/kalla/internal/dialect"
	"github.com/kalla-recon/kalla/internal/kalla"
)

// Default statement time limits.
const (
	DefaultPreviewTimeout = 30 * time.Second
	DefaultStageTimeout   = 5 * time.Minute
)

// Options configure a MySQL source.
type Options struct {
	// Pools is the shared pool cache; required. A source takes a lease on
	// its database's pool and releases it in Close.
	Pools *dbpool.Cache
	// PreviewTimeout limits each statement of Columns, Count and Sample.
	PreviewTimeout time.Duration
	// StageTimeout limits Stage's statement, streaming included.
	StageTimeout time.Duration
	// Logger receives warnings. Nil discards.
	Logger *slog.Logger
}

// Source is one MySQL or MariaDB table. It implements connector.Source;
// its methods are safe for concurrent use.
type Source struct {
	name    string // redacted URI
	db      string // real database name
	table   string // real table name
	from    string // quoted db.table
	mariadb bool
	cols    []kalla.Column
	plans   []plan
	pool    *sql.DB
	lease   *dbpool.Lease
	opts    Options
	log     *slog.Logger
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
		return nil, kalla.Errorf(kalla.EINTERNAL, "mysql: no pool cache")
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
	dsn, label, db, table, err := parseURI(uri, s.name)
	if err != nil {
		return nil, err
	}
	s.pool, s.lease, err = opts.Pools.MySQL(dsn, label)
	if err != nil {
		if errors.Is(err, dbpool.ErrClosed) {
			return nil, kalla.WrapError(kalla.EUNAVAILABLE, err, "source %s", s.name)
		}
		return nil, kalla.WrapError(kalla.EINVALID, kalla.RedactError(err), "source %s: invalid connection settings", s.name)
	}
	if err := s.describe(ctx, db, table); err != nil {
		s.lease.Release()
		return nil, err
	}
	return s, nil
}

// Params are the query parameters a mysql:// source URI may carry. The
// driver runs any parameter it does not know as a SET statement on the
// source session (SET password = ..., SET sql_mode = ...), and some it
// knows weaken the connection or read files on the Kalla host
// (allowAllFiles, allowCleartextPasswords, charset, multiStatements,
// parseTime, loc): all of them are refused. tls takes the driver's names
// (true, false, skip-verify, preferred); Kalla registers no custom TLS
// configuration, so client certificates are not supported.
var Params = []string{"table", "tls", "timeout", "readTimeout", "writeTimeout"}

// paramHints explain some refused parameters.
var paramHints = map[string]string{
	"password":      "give the password in the URI's user part (mysql://user:password@host/db)",
	"passwd":        "give the password in the URI's user part (mysql://user:password@host/db)",
	"user":          "give the user in the URI's user part (mysql://user:password@host/db)",
	"allowallfiles": "files on the Kalla server are never read for a source",
}

// CheckURI checks a mysql:// source URI without connecting: its form and
// its parameters. Errors: EINVALID naming what is wrong.
func CheckURI(uri string) error {
	_, _, _, _, err := parseURI(uri, kalla.Redact(uri))
	return err
}

// parseURI turns a mysql:// URI into a go-sql-driver DSN, a label for its
// pool (the redacted URI without the table), the database and table to
// read.
func parseURI(uri, name string) (dsn, label, db, table string, err error) {
	u, perr := url.Parse(uri)
	if perr != nil || (u.Scheme != "mysql" && u.Scheme != "mariadb") || u.Host == "" {
		// url.Parse's error quotes the URI, password included: not shown.
		return "", "", "", "", kalla.Errorf(kalla.EINVALID, "source %s: not a valid mysql://user:password@host:port/db?table=name URI", name)
	}
	q := u.Query()
	if err := connector.CheckParams("mysql", name, q, paramHints, Params...); err != nil {
		return "", "", "", "", err
	}
	if u.Fragment != "" || u.RawFragment != "" {
		return "", "", "", "", kalla.Errorf(kalla.EINVALID, "source %s: a mysql URI has no #fragment", name)
	}
	t := q.Get("table")
	if strings.TrimSpace(t) == "" {
		return "", "", "", "", kalla.Errorf(kalla.EINVALID, "missing ?table= in URI %s", name)
	}
	q.Del("table")
	db, table, err = parseTable(t)
	if err != nil {
		return "", "", "", "", kalla.Errorf(kalla.EINVALID, "source %s: %v", name, err)
	}
	// Parameters go through the driver's own parser, so that every DSN
	// parameter keeps its meaning; user, password, address and database
	// are set as fields, never spliced into the DSN text.
	cfg, perr := mysql.ParseDSN("/?" + q.Encode())
	if perr != nil {
		return "", "", "", "", kalla.Errorf(kalla.EINVALID, "source %s: invalid connection parameters: %v", name, perr)
	}
	cfg.Net = "tcp"
	cfg.Addr = u.Host
	if u.Port() == "" {
		cfg.Addr = u.Host + ":3306"
	}
	cfg.DBName = strings.TrimPrefix(u.Path, "/")
	if u.User != nil {
		cfg.User = u.User.Username()
		if pw, ok := u.User.Password(); ok {
			cfg.Passwd = pw
		}
	}
	if db == "" {
		db = cfg.DBName
	}
	if db == "" {
		return "", "", "", "", kalla.Errorf(kalla.EINVALID, "source %s: name the database in the path (mysql://host/db?table=%s) or the table (?table=db.%s)", name, table, table)
	}
	cfg.ParseTime = false
	cfg.Loc = time.UTC
	cfg.InterpolateParams = true
	cfg.MultiStatements = false
	cfg.AllowAllFiles = false
	if cfg.Params == nil {
		cfg.Params = map[string]string{}
	}
	cfg.Params["time_zone"] = "'+00:00'"
	pool := *u
	pool.Scheme, pool.RawQuery = "mysql", q.Encode()
	return cfg.FormatDSN(), kalla.Redact(pool.String()), db, table, nil
}

// describe finds the table, reads its columns and the server's flavour.
func (s *Source) describe(ctx context.Context, db, table string) error {
	// MariaDB's and MySQL's information_schema compare names with
	// different collations: compare lowered names, and pick the exact
	// match in Go.
	const q = `SELECT @@version, TABLE_SCHEMA, TABLE_NAME, COLUMN_NAME, LOWER(DATA_TYPE), COLUMN_TYPE, IS_NULLABLE = 'YES',
	NUMERIC_PRECISION, NUMERIC_SCALE
FROM information_schema.COLUMNS
WHERE LOWER(TABLE_SCHEMA) = LOWER(?) AND LOWER(TABLE_NAME) = LOWER(?)
ORDER BY TABLE_SCHEMA, TABLE_NAME, ORDINAL_POSITION`
	type found struct {
		db, table string
		metas     []colMeta
	}
	var tables []*found
	var version string
	err := s.withTx(ctx, false, func(tx *sql.Tx) error {
		rows, err := tx.QueryContext(ctx, q, db, table)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var sch, tab string
			var m colMeta
			if err := rows.Scan(&version, &sch, &tab, &m.name, &m.dataType, &m.columnType, &m.nullable, &m.precision, &m.scale); err != nil {
				return err
			}
			if len(tables) == 0 || tables[len(tables)-1].db != sch || tables[len(tables)-1].table != tab {
				tables = append(tables, &found{db: sch, table: tab})
			}
			f := tables[len(tables)-1]
			f.metas = append(f.metas, m)
		}
		return rows.Err()
	})
	if err != nil {
		return s.fail(ctx, err, "read the table's columns")
	}
	var pick *found
	for _, f := range tables {
		if f.db == db && f.table == table {
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
			names[i] = dialect.MySQL.QuoteQualified(f.db, f.table)
		}
		return kalla.Errorf(kalla.EINVALID, "source %s: table %q matches several tables when case is ignored (%s): write its name exactly", s.name, table, strings.Join(names, ", "))
	default:
		return kalla.Errorf(kalla.ENOTFOUND, "source %s: table %s not found in database %s", s.name, table, db)
	}
	s.mariadb = strings.Contains(strings.ToLower(version), "mariadb")
	s.db, s.table = pick.db, pick.table
	s.from = dialect.MySQL.QuoteQualified(pick.db, pick.table)
	s.plans = make([]plan, len(pick.metas))
	s.cols = make([]kalla.Column, len(pick.metas))
	for i, m := range pick.metas {
		p := planFor(m)
		s.plans[i] = p
		s.cols[i] = kalla.Column{Name: m.name, DataType: m.columnType, Nullable: m.nullable, EngineType: p.engineType}
	}
	return nil
}

// limit adds the server's statement time limit to a SELECT.
func (s *Source) limit(q string, timeout time.Duration) string {
	if s.mariadb {
		return fmt.Sprintf("SET STATEMENT max_statement_time=%.3f FOR %s", max(timeout.Seconds(), 0.001), q)
	}
	return fmt.Sprintf("SELECT /*+ MAX_EXECUTION_TIME(%d) */ %s", max(timeout.Milliseconds(), 1), strings.TrimPrefix(q, "SELECT "))
}

// Columns describes the table's columns in ordinal order, as read by Open.
func (s *Source) Columns(ctx context.Context) ([]kalla.Column, error) {
	return append([]kalla.Column(nil), s.cols...), nil
}

// Count returns the number of rows matching the filters. Errors: EINVALID
// for a bad filter, EUNAVAILABLE when the server fails or times out.
func (s *Source) Count(ctx context.Context, filters []kalla.Filter) (int64, error) {
	where, args, err := dialect.MySQL.WhereFor(s.name, filters, s.cols, 1)
	if err != nil {
		return 0, err
	}
	var n int64
	err = s.withTx(ctx, false, func(tx *sql.Tx) error {
		return tx.QueryRowContext(ctx, s.limit("SELECT COUNT(*) FROM "+s.from+where, s.opts.PreviewTimeout), args...).Scan(&n)
	})
	if err != nil {
		return 0, s.fail(ctx, err, "count rows")
	}
	return n, nil
}

// CountUpTo returns min(max, rows matching the filters), reading no more
// than max matching rows, under a statement time limit of budget: a count
// that runs longer is stopped by the server and reported as an error
// wrapping connector.ErrCountBudget. Errors otherwise as Count.
func (s *Source) CountUpTo(ctx context.Context, filters []kalla.Filter, max int64, budget time.Duration) (int64, error) {
	where, args, err := dialect.MySQL.WhereFor(s.name, filters, s.cols, 1)
	if err != nil {
		return 0, err
	}
	// The limit is written as a number: MySQL accepts no placeholder there
	// in an interpolated statement's derived table.
	q := s.limit("SELECT COUNT(*) FROM (SELECT 1 FROM "+s.from+where+" LIMIT "+strconv.FormatInt(max, 10)+") AS bounded", min(budget, s.opts.PreviewTimeout))
	var n int64
	err = s.withTx(ctx, false, func(tx *sql.Tx) error {
		return tx.QueryRowContext(ctx, q, args...).Scan(&n)
	})
	var me *mysql.MySQLError
	if err != nil && ctx.Err() == nil && errors.As(err, &me) && (me.Number == 1969 || me.Number == 3024) {
		return 0, fmt.Errorf("source %s: %w", s.name, connector.ErrCountBudget)
	}
	if err != nil {
		return 0, s.fail(ctx, err, "count rows")
	}
	return n, nil
}

// Sample returns at most limit rows matching the filters, each value in
// the server's text form (nil for NULL).
func (s *Source) Sample(ctx context.Context, filters []kalla.Filter, limit int) ([][]*string, error) {
	where, args, err := dialect.MySQL.WhereFor(s.name, filters, s.cols, 1)
	if err != nil {
		return nil, err
	}
	exprs := make([]string, len(s.plans))
	for i, p := range s.plans {
		exprs[i] = p.expr
	}
	q := s.limit("SELECT "+strings.Join(exprs, ", ")+" FROM "+s.from+where+" LIMIT ?", s.opts.PreviewTimeout)
	args = append(args, int64(max(limit, 0)))
	out := [][]*string{}
	err = s.withTx(ctx, false, func(tx *sql.Tx) error {
		rows, err := tx.QueryContext(ctx, q, args...)
		if err != nil {
			return err
		}
		defer rows.Close()
		raw := make([]sql.RawBytes, len(exprs))
		dest := make([]any, len(raw))
		for i := range raw {
			dest[i] = &raw[i]
		}
		for rows.Next() {
			if err := rows.Scan(dest...); err != nil {
				return err
			}
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

// withTx runs fn in a READ ONLY transaction (REPEATABLE READ when snapshot
// is set, so that several statements see the same data), always rolled
// back: nothing is ever written.
func (s *Source) withTx(ctx context.Context, snapshot bool, fn func(tx *sql.Tx) error) error {
	opts := &sql.TxOptions{ReadOnly: true}
	if snapshot {
		opts.Isolation = sql.LevelRepeatableRead
	}
	tx, err := s.pool.BeginTx(ctx, opts)
	if err != nil {
		return err
	}
	err = fn(tx)
	if rerr := tx.Rollback(); err == nil && rerr != nil && !errors.Is(rerr, sql.ErrTxDone) {
		err = rerr
	}
	return err
}
