package spark

import (
	"database/sql"
	"fmt"
	"slices"
	"strings"
	"testing"

	_ "github.com/go-sql-driver/mysql"
	_ "github.com/jackc/pgx/v5/stdlib"

	"github.com/kalla-recon/kalla/internal/kalla"
	"github.com/kalla-recon/kalla/internal/testenv"
)

// TestJDBCQueriesOnDatabases runs the SQL the Spark engine hands Spark's
// JDBC reader on the real databases, without Spark: the hash buckets of a
// text and of a composite key (with NULLs) put every row in exactly one of
// the jdbcParts buckets and spread them over several, and PostgreSQL's
// ctid order is the order a plain SELECT returns rows in after an update
// moved one to the heap's end (the order DuckDB's connector numbers them).
func TestJDBCQueriesOnDatabases(t *testing.T) {
	for _, c := range []struct {
		name, driver, typ string
		uri               func(testing.TB) string
		dsn               func(string) string
	}{
		{"postgres", "pgx", kalla.SourcePostgres, testenv.Postgres, func(u string) string { return u }},
		{"mariadb", "mysql", kalla.SourceMySQL, testenv.MySQL, func(u string) string {
			x := strings.TrimPrefix(u, "mysql://")
			at := strings.LastIndex(x, "@")
			slash := strings.Index(x[at:], "/")
			return x[:at] + "@tcp(" + x[at+1:at+slash] + ")" + x[at+slash:]
		}},
	} {
		t.Run(c.name, func(t *testing.T) {
			uri := c.uri(t)
			db, err := sql.Open(c.driver, c.dsn(uri))
			if err != nil {
				t.Fatal(err)
			}
			defer db.Close()
			ctx := t.Context()
			if _, err := db.ExecContext(ctx, "CREATE TABLE t (k varchar(20), k2 varchar(20), v int)"); err != nil {
				t.Fatal(err)
			}
			const n = 400
			for i := n - 1; i >= 0; i-- {
				var k2 any = fmt.Sprintf("b%d", i%7)
				if i%11 == 0 {
					k2 = nil
				}
				q := "INSERT INTO t VALUES (?, ?, ?)"
				if c.driver == "pgx" {
					q = "INSERT INTO t VALUES ($1, $2, $3)"
				}
				if _, err := db.ExecContext(ctx, q, fmt.Sprintf("INV-%04d", i), k2, i); err != nil {
					t.Fatal(err)
				}
			}
			src, err := parseJDBC(kalla.SourceSpec{Alias: "t", URI: uri + "?table=t"}, c.typ)
			if err != nil {
				t.Fatal(err)
			}
			for _, keys := range [][]string{{"k"}, {"k", "k2"}} {
				rows, err := db.QueryContext(ctx, "SELECT b, count(*) FROM (SELECT "+src.bucket(keys)+" AS b FROM t) x GROUP BY b ORDER BY b")
				if err != nil {
					t.Fatal(err)
				}
				total, used := 0, 0
				for rows.Next() {
					var b, cnt int
					if err := rows.Scan(&b, &cnt); err != nil {
						t.Fatal(err)
					}
					if b < 0 || b >= jdbcParts {
						t.Errorf("keys %v: bucket %d outside [0, %d)", keys, b, jdbcParts)
					}
					total += cnt
					used++
				}
				rows.Close()
				if total != n || used < 3 {
					t.Errorf("keys %v: %d rows in %d buckets, want %d rows over at least 3", keys, total, used, n)
				}
			}
			if c.driver != "pgx" {
				return
			}
			if _, err := db.ExecContext(ctx, "UPDATE t SET v = v WHERE k = 'INV-0200'"); err != nil {
				t.Fatal(err)
			}
			scan := func(q string) []string {
				rows, err := db.QueryContext(ctx, q)
				if err != nil {
					t.Fatal(err)
				}
				defer rows.Close()
				var out []string
				for rows.Next() {
					var k string
					if err := rows.Scan(&k); err != nil {
						t.Fatal(err)
					}
					out = append(out, k)
				}
				return out
			}
			plain := scan("SELECT k FROM t")
			byCtid := scan("SELECT k FROM t ORDER BY (ctid::text::point)[0]::bigint, (ctid::text::point)[1]::bigint")
			if !slices.Equal(plain, byCtid) || plain[len(plain)-1] != "INV-0200" || plain[0] != fmt.Sprintf("INV-%04d", n-1) {
				t.Errorf("plain SELECT order %v...%v differs from ctid order %v...%v", plain[:2], plain[len(plain)-2:], byCtid[:2], byCtid[len(byCtid)-2:])
			}
		})
	}
}
