package store

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// dialect holds what differs between the backends. Queries are written once
// with '?' placeholders and rebound for PostgreSQL.
type dialect struct {
	name string
	// dollar makes rebind turn '?' into $1, $2, ….
	dollar bool
	// timeText stores timestamps as fixed-width UTC text (SQLite has no
	// timestamp type); otherwise they are passed as time.Time.
	timeText bool
	// skipLocked is appended to the subquery that picks a run to claim.
	skipLocked string
	// greatest is the SQL function returning the larger of two values.
	greatest string
	// noLimit is the LIMIT clause for "no limit" when an OFFSET follows.
	noLimit string
	// createMigrations creates the schema_migrations table.
	createMigrations string
	// lockMigrations, when set, runs first in every migration transaction,
	// so processes starting together apply each migration once.
	lockMigrations string
}

var sqliteDialect = dialect{
	name:     "sqlite",
	timeText: true,
	greatest: "max",
	noLimit:  "LIMIT -1",
	createMigrations: `CREATE TABLE IF NOT EXISTS schema_migrations (
	version    TEXT PRIMARY KEY,
	applied_at TEXT NOT NULL
) STRICT`,
}

var postgresDialect = dialect{
	name:       "postgres",
	dollar:     true,
	greatest:   "GREATEST",
	skipLocked: " FOR UPDATE SKIP LOCKED",
	createMigrations: `CREATE TABLE IF NOT EXISTS schema_migrations (
	version    TEXT PRIMARY KEY,
	applied_at TIMESTAMPTZ NOT NULL
)`,
	// A transaction-scoped advisory lock: released at commit or rollback.
	// The key is arbitrary but fixed: "kalla" in ASCII, 0x6b616c6c61.
	lockMigrations: "SELECT pg_advisory_xact_lock(461195996257)",
}

// rebind rewrites '?' placeholders for the dialect. The store's queries
// have no '?' inside string literals.
func (d dialect) rebind(query string) string {
	if !d.dollar {
		return query
	}
	var b strings.Builder
	n := 0
	for i := 0; i < len(query); i++ {
		if query[i] == '?' {
			n++
			b.WriteByte('$')
			b.WriteString(strconv.Itoa(n))
			continue
		}
		b.WriteByte(query[i])
	}
	return b.String()
}

// timeLayout is how SQLite keeps timestamps: UTC, microseconds, fixed width
// so that text order is time order.
const timeLayout = "2006-01-02T15:04:05.000000Z"

// time returns t as a query argument for the dialect.
func (d dialect) time(t time.Time) any {
	if d.timeText {
		return t.UTC().Format(timeLayout)
	}
	return t.UTC()
}

// timeScan scans a timestamp column of either backend (time.Time from
// PostgreSQL, text from SQLite) into a UTC time.
type timeScan struct {
	t     time.Time
	valid bool
}

// Scan implements sql.Scanner.
func (ts *timeScan) Scan(src any) error {
	switch v := src.(type) {
	case nil:
		ts.t, ts.valid = time.Time{}, false
		return nil
	case time.Time:
		ts.t, ts.valid = v.UTC(), true
		return nil
	case string:
		return ts.parse(v)
	case []byte:
		return ts.parse(string(v))
	default:
		return fmt.Errorf("scan timestamp: unexpected %T", src)
	}
}

func (ts *timeScan) parse(s string) error {
	t, err := time.Parse(timeLayout, s)
	if err != nil {
		return fmt.Errorf("scan timestamp: %w", err)
	}
	ts.t, ts.valid = t, true
	return nil
}

// ptr returns the time, or nil for NULL.
func (ts timeScan) ptr() *time.Time {
	if !ts.valid {
		return nil
	}
	t := ts.t
	return &t
}
