package dialect_test

import (
	"context"
	"database/sql"
	"net/url"
	"os"
	"strings"
	"testing"

	_ "github.com/duckdb/duckdb-go/v2" // registers "duckdb"
	"github.com/go-sql-driver/mysql"
	"github.com/jackc/pgx/v5"

	"github.com/kalla-recon/kalla/internal/dialect"
	"github.com/kalla-recon/kalla/internal/kalla"
	"github.com/kalla-recon/kalla/internal/testenv"
)

// querier runs one statement on a real server and returns its single int
// column. Each dialect's test connects the way a Kalla connector does: pgx
// natively for Postgres, go-sql-driver for MySQL, database/sql for DuckDB.
type querier interface {
	ints(ctx context.Context, query string, args ...any) ([]int64, error)
	exec(ctx context.Context, query string, args ...any) error
}

type pgQuerier struct{ conn *pgx.Conn }

func (q pgQuerier) ints(ctx context.Context, query string, args ...any) ([]int64, error) {
	rows, err := q.conn.Query(ctx, query, args...)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, pgx.RowTo[int64])
}

func (q pgQuerier) exec(ctx context.Context, query string, args ...any) error {
	_, err := q.conn.Exec(ctx, query, args...)
	return err
}

type sqlQuerier struct{ db sqlDB }

// sqlDB is what the tests use of *sql.DB and *sql.Conn.
type sqlDB interface {
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
}

func (q sqlQuerier) ints(ctx context.Context, query string, args ...any) ([]int64, error) {
	rows, err := q.db.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []int64
	for rows.Next() {
		var n int64
		if err := rows.Scan(&n); err != nil {
			return nil, err
		}
		out = append(out, n)
	}
	return out, rows.Err()
}

func (q sqlQuerier) exec(ctx context.Context, query string, args ...any) error {
	_, err := q.db.ExecContext(ctx, query, args...)
	return err
}

// pgConnect connects to uri with pgx in the given execution mode.
func pgConnect(t testing.TB, uri string, mode pgx.QueryExecMode) *pgx.Conn {
	t.Helper()
	cfg, err := pgx.ParseConfig(uri)
	if err != nil {
		t.Fatalf("parse %s: %v", kalla.Redact(uri), err)
	}
	cfg.DefaultQueryExecMode = mode
	conn, err := pgx.ConnectConfig(context.Background(), cfg)
	if err != nil {
		t.Fatalf("connect %s: %v", kalla.Redact(uri), err)
	}
	t.Cleanup(func() { conn.Close(context.Background()) })
	return conn
}

// mysqlDSN turns testenv's mysql://user:pass@host:port/db URI into a
// go-sql-driver DSN (user:pass@tcp(host:port)/db?parseTime=true).
func mysqlDSN(t testing.TB, uri string, interpolate bool, sqlModes ...string) string {
	t.Helper()
	u, err := url.Parse(uri)
	if err != nil || u.Scheme != "mysql" {
		t.Fatalf("not a mysql:// URI: %s", kalla.Redact(uri))
	}
	cfg := mysql.NewConfig()
	cfg.Net, cfg.Addr = "tcp", u.Host
	if u.Port() == "" {
		cfg.Addr += ":3306"
	}
	if u.User != nil {
		cfg.User = u.User.Username()
		cfg.Passwd, _ = u.User.Password()
	}
	cfg.DBName = strings.TrimPrefix(u.Path, "/")
	cfg.ParseTime = true
	cfg.InterpolateParams = interpolate
	if len(sqlModes) > 0 {
		// Sent as SET sql_mode=... on each new connection.
		cfg.Params = map[string]string{"sql_mode": "CONCAT(@@sql_mode, '," + strings.Join(sqlModes, ",") + "')"}
	}
	return cfg.FormatDSN()
}

// openSQL opens a database/sql pool for driver and dsn, closed at cleanup.
func openSQL(t testing.TB, driver, dsn string) *sql.DB {
	t.Helper()
	db, err := sql.Open(driver, dsn)
	if err != nil {
		t.Fatalf("open %s: %v", driver, err)
	}
	t.Cleanup(func() { db.Close() })
	if err := db.Ping(); err != nil {
		t.Fatalf("ping %s: %v", driver, err)
	}
	return db
}

// readColumns reads a table's columns from the server's own metadata, as a
// connector would: format_type for Postgres, COLUMN_TYPE for MySQL, the
// DuckDB type as EngineType for DuckDB.
func readColumns(t testing.TB, ctx context.Context, d dialect.Dialect, q querier, table string) []kalla.Column {
	t.Helper()
	var query string
	var args []any
	switch d {
	case dialect.Postgres:
		query = `SELECT attname, format_type(atttypid, atttypmod), NOT attnotnull FROM pg_attribute
			WHERE attrelid = to_regclass($1) AND attnum > 0 AND NOT attisdropped ORDER BY attnum`
		args = []any{d.QuoteIdent(table)}
	case dialect.MySQL:
		query = `SELECT COLUMN_NAME, COLUMN_TYPE, IS_NULLABLE = 'YES' FROM information_schema.COLUMNS
			WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = ? ORDER BY ORDINAL_POSITION`
		args = []any{table}
	case dialect.DuckDB:
		query = `SELECT column_name, data_type, is_nullable = 'YES' FROM information_schema.columns
			WHERE table_name = ? ORDER BY ordinal_position`
		args = []any{table}
	}
	var cols []kalla.Column
	scan := func(name, typ string, nullable bool) {
		c := kalla.Column{Name: name, DataType: typ, Nullable: nullable}
		if d == dialect.DuckDB {
			c.EngineType = typ
		}
		cols = append(cols, c)
	}
	switch q := q.(type) {
	case pgQuerier:
		rows, err := q.conn.Query(ctx, query, args...)
		if err != nil {
			t.Fatalf("columns of %s: %v", table, err)
		}
		defer rows.Close()
		for rows.Next() {
			var name, typ string
			var nullable bool
			if err := rows.Scan(&name, &typ, &nullable); err != nil {
				t.Fatalf("columns of %s: %v", table, err)
			}
			scan(name, typ, nullable)
		}
		if err := rows.Err(); err != nil {
			t.Fatalf("columns of %s: %v", table, err)
		}
	case sqlQuerier:
		rows, err := q.db.QueryContext(ctx, query, args...)
		if err != nil {
			t.Fatalf("columns of %s: %v", table, err)
		}
		defer rows.Close()
		for rows.Next() {
			var name, typ string
			var nullable bool
			if err := rows.Scan(&name, &typ, &nullable); err != nil {
				t.Fatalf("columns of %s: %v", table, err)
			}
			scan(name, typ, nullable)
		}
		if err := rows.Err(); err != nil {
			t.Fatalf("columns of %s: %v", table, err)
		}
	}
	return cols
}

// server is one connection to a real server in one binding mode.
type server struct {
	name string
	d    dialect.Dialect
	q    querier
}

// servers returns every available server and binding mode: DuckDB in
// memory always; Postgres with pgx's default (prepared, described) and
// simple protocols; MariaDB with server-side prepared statements and with
// the driver's client-side interpolation, each also under sql_mode
// NO_BACKSLASH_ESCAPES (and ANSI_QUOTES). Each gets a fresh database.
func servers(t testing.TB) []server {
	t.Helper()
	out := []server{{name: "duckdb", d: dialect.DuckDB, q: sqlQuerier{duckDB(t)}}}
	if pg := optional(t, testenv.EnvPostgresURL, testenv.Postgres); pg != "" {
		out = append(out,
			server{name: "postgres/prepared", d: dialect.Postgres, q: pgQuerier{pgConnect(t, pg, pgx.QueryExecModeCacheStatement)}},
			server{name: "postgres/simple", d: dialect.Postgres, q: pgQuerier{pgConnect(t, testenv.Postgres(t), pgx.QueryExecModeSimpleProtocol)}},
		)
	}
	if my := optional(t, testenv.EnvMySQLURL, testenv.MySQL); my != "" {
		out = append(out,
			server{name: "mysql/prepared", d: dialect.MySQL, q: sqlQuerier{openSQL(t, "mysql", mysqlDSN(t, my, false))}},
			server{name: "mysql/interpolated", d: dialect.MySQL, q: sqlQuerier{openSQL(t, "mysql", mysqlDSN(t, testenv.MySQL(t), true))}},
			// NO_BACKSLASH_ESCAPES changes what \ means in string literals
			// and LIKE's default escape; Where's clauses must not care.
			server{name: "mysql/prepared_no_backslash_escapes", d: dialect.MySQL,
				q: sqlQuerier{openSQL(t, "mysql", mysqlDSN(t, testenv.MySQL(t), false, "NO_BACKSLASH_ESCAPES"))}},
			server{name: "mysql/interpolated_no_backslash_escapes", d: dialect.MySQL,
				q: sqlQuerier{openSQL(t, "mysql", mysqlDSN(t, testenv.MySQL(t), true, "NO_BACKSLASH_ESCAPES", "ANSI_QUOTES"))}},
		)
	}
	return out
}

// duckDB opens a private in-memory DuckDB database on one connection (each
// connection to "" would be a different database).
func duckDB(t testing.TB) *sql.DB {
	t.Helper()
	db := openSQL(t, "duckdb", "")
	db.SetMaxOpenConns(1)
	return db
}

// optional returns get(t), or "" without touching t when the server's
// variable is unset and services are not required: the other servers still
// run. Otherwise testenv decides (it fails t when the variable is required
// or the server cannot be reached).
func optional(t testing.TB, env string, get func(testing.TB) string) string {
	t.Helper()
	if os.Getenv(env) == "" && !testenv.Required() {
		t.Logf("%s not set: skipping that server", env)
		return ""
	}
	return get(t)
}
