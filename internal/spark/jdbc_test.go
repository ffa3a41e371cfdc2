package spark_test

import (
	"context"
	"database/sql"
	"encoding/csv"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	_ "github.com/go-sql-driver/mysql" // loads the MariaDB table
	_ "github.com/jackc/pgx/v5/stdlib" // loads the PostgreSQL table

	"github.com/kalla-recon/kalla/internal/kalla"
	"github.com/kalla-recon/kalla/internal/spark"
	"github.com/kalla-recon/kalla/internal/testenv"
)

// TestDatabaseSourcesBothEngines loads exact_1to1's invoices into a
// PostgreSQL table and a MariaDB table in reverse key order and
// reconciles each against the payments CSV on both engines: the same rows,
// counts and record identities (_left_row), though the tables' storage
// order differs from the recipe key's order: on PostgreSQL one row is also
// updated, which moves it to the end of the heap; on MariaDB the table's
// own primary key is an AUTO_INCREMENT column, not the recipe's key. The
// key is text, so Spark reads each table in hash buckets. One filter is
// pushed down, with a quote and a backslash in its value.
func TestDatabaseSourcesBothEngines(t *testing.T) {
	e := newEngine(t)
	src := filepath.Join(scenarios, "exact_1to1")
	f, err := os.Open(filepath.Join(src, "left.csv"))
	if err != nil {
		t.Fatal(err)
	}
	rows, err := csv.NewReader(f).ReadAll()
	f.Close()
	if err != nil {
		t.Fatal(err)
	}
	db, err := sql.Open("duckdb", "")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	right, err := filepath.Abs(filepath.Join(src, "right.csv"))
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name, driver, ddl, insert string
		uri                       func(testing.TB) string
		dsn                       func(string) string
	}{
		{"postgres", "pgx", `CREATE TABLE invoices (invoice_id text PRIMARY KEY, customer text, amount numeric(18,2), currency text, issued_on date)`,
			`INSERT INTO invoices (invoice_id, customer, amount, currency, issued_on) VALUES ($1, $2, $3, $4, $5)`, testenv.Postgres, func(u string) string { return u }},
		{"mariadb", "mysql", "CREATE TABLE invoices (seq int AUTO_INCREMENT PRIMARY KEY, invoice_id varchar(20) UNIQUE, customer varchar(100), amount decimal(18,2), currency varchar(3), issued_on date)",
			`INSERT INTO invoices (invoice_id, customer, amount, currency, issued_on) VALUES (?, ?, ?, ?, ?)`, testenv.MySQL, mysqlDSN},
	} {
		t.Run(c.name, func(t *testing.T) {
			uri := c.uri(t)
			conn, err := sql.Open(c.driver, c.dsn(uri))
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			ctx := context.Background()
			if _, err := conn.ExecContext(ctx, c.ddl); err != nil {
				t.Fatal(err)
			}
			for i := len(rows) - 1; i >= 1; i-- {
				r := rows[i]
				if _, err := conn.ExecContext(ctx, c.insert, r[0], r[1], r[2], r[3], r[4]); err != nil {
					t.Fatal(err)
				}
			}
			if c.name == "postgres" {
				// A new row version goes to the heap's end.
				if _, err := conn.ExecContext(ctx, "UPDATE invoices SET customer = customer WHERE invoice_id = $1", rows[len(rows)-1][0]); err != nil {
					t.Fatal(err)
				}
			}
			dir := t.TempDir()
			recipe := map[string]any{
				"recipe_id": "db-" + c.name,
				"match_sql": "SELECT l.invoice_id, r.payment_id FROM left_src l JOIN right_src r ON r.reference = l.invoice_id AND r.amount = l.amount",
				"sources": map[string]any{
					"left": map[string]any{"alias": "invoices", "uri": uri + "?table=invoices", "primary_key": []string{"invoice_id"},
						"filters": []map[string]any{{"column": "customer", "op": "neq", "value": `O'Brien \\' OR 1=1 --`}}},
					"right": map[string]any{"alias": "payments", "uri": right, "primary_key": []string{"payment_id"}},
				},
			}
			b, err := json.Marshal(recipe)
			if err != nil {
				t.Fatal(err)
			}
			path := filepath.Join(dir, "recipe.json")
			if err := os.WriteFile(path, b, 0o600); err != nil {
				t.Fatal(err)
			}
			rec, err := kalla.ParseRecipe(b)
			if err != nil {
				t.Fatal(err)
			}
			compareEngines(t, e, db, path, rec)
		})
	}
}

// TestS3SourceOnSpark puts the payments CSV in a bucket of the local S3
// server and runs exact_1to1 on Spark reading it as s3a://, against DuckDB
// reading the same bytes from the local file: same outputs.
func TestS3SourceOnSpark(t *testing.T) {
	e := newEngine(t)
	s3 := testenv.S3(t)
	dir := filepath.Join(scenarios, "exact_1to1")
	b, err := os.ReadFile(filepath.Join(dir, "right.csv"))
	if err != nil {
		t.Fatal(err)
	}
	s3.Put(t, "in/right.csv", b)
	rec := loadRecipe(t, dir)
	rec.Sources.Right.URI = s3.URI("in/right.csv")
	db, err := sql.Open("duckdb", "")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	compareEngines(t, e, db, filepath.Join(dir, "recipe.json"), rec)
}

// TestDatabaseTimestampsBothEngines reads a PostgreSQL table (timestamp,
// timestamptz) and a MariaDB table (DATETIME, TIMESTAMP) with fractions of
// a second, none, and NULLs, on both engines, and compares the outputs in
// Parquet and CSV and the summaries' column types. Spark's JDBC reader
// made a timestamp without a time zone an instant (TIMESTAMP WITH TIME
// ZONE in the summary, "+00" in the CSV) until it was told to keep it.
func TestDatabaseTimestampsBothEngines(t *testing.T) {
	e := newEngine(t)
	db, err := sql.Open("duckdb", "")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	right := filepath.Join(t.TempDir(), "right.csv")
	if err := os.WriteFile(right, []byte("line_id,entry_ref\nB1,1\nB9,9\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	values := [][3]any{
		{1, "2026-01-01 00:00:00.1", "2026-01-01 10:00:00.25"},
		{2, "2026-01-01 10:20:30", nil},
		{3, nil, "2026-03-01 00:00:00"},
		{4, "2026-12-31 23:59:59.999999", "2026-06-30 12:00:00.000001"},
	}
	for _, c := range []struct {
		name, driver, ddl, insert string
		uri                       func(testing.TB) string
		dsn                       func(string) string
	}{
		{"postgres", "pgx", `CREATE TABLE entries (id int PRIMARY KEY, at_local timestamp, at_instant timestamptz)`,
			`INSERT INTO entries VALUES ($1, $2::timestamp, $3::timestamptz)`, testenv.Postgres, func(u string) string { return u }},
		{"mariadb", "mysql", `CREATE TABLE entries (id int PRIMARY KEY, at_local datetime(6), at_instant timestamp(6) NULL)`,
			`INSERT INTO entries VALUES (?, ?, ?)`, testenv.MySQL, func(u string) string { return mysqlDSN(u) + "?time_zone=%27%2B00%3A00%27" }},
	} {
		t.Run(c.name, func(t *testing.T) {
			uri := c.uri(t)
			conn, err := sql.Open(c.driver, c.dsn(uri))
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			if _, err := conn.ExecContext(t.Context(), c.ddl); err != nil {
				t.Fatal(err)
			}
			for _, v := range values {
				if _, err := conn.ExecContext(t.Context(), c.insert, v[0], v[1], v[2]); err != nil {
					t.Fatal(err)
				}
			}
			b, err := json.Marshal(map[string]any{
				"recipe_id": "db-timestamps-" + c.name,
				"match_sql": "SELECT l.id, r.line_id, l.at_local, l.at_instant FROM left_src l JOIN right_src r ON CAST(r.entry_ref AS BIGINT) = l.id",
				"sources": map[string]any{
					"left":  map[string]any{"alias": "entries", "uri": uri + "?table=entries", "primary_key": []string{"id"}},
					"right": map[string]any{"alias": "lines", "uri": right, "primary_key": []string{"line_id"}},
				},
			})
			if err != nil {
				t.Fatal(err)
			}
			path := filepath.Join(t.TempDir(), "recipe.json")
			if err := os.WriteFile(path, b, 0o600); err != nil {
				t.Fatal(err)
			}
			rec, err := kalla.ParseRecipe(b)
			if err != nil {
				t.Fatal(err)
			}
			formats := []string{kalla.FormatParquet, kalla.FormatCSV}
			duckOut, duckSum := duckRun(t, path, "parquet,csv")
			out := t.TempDir()
			if _, err := e.Execute(t.Context(), spark.Job{Recipe: rec, OutDir: out, Formats: formats, RunID: "t"}); err != nil {
				t.Fatalf("spark run: %v", err)
			}
			var sum kalla.Summary
			readJSON(t, filepath.Join(out, "summary.json"), &sum)
			compareOutputs(t, db, duckOut, duckSum, out, &sum, formats)
			for i, cols := range [][]kalla.Column{duckSum.Sources.Left.Columns, sum.Sources.Left.Columns} {
				var types []string
				for _, col := range cols {
					types = append(types, col.Name+" "+col.DataType)
				}
				if want := "id INTEGER, at_local TIMESTAMP, at_instant TIMESTAMP WITH TIME ZONE"; strings.Join(types, ", ") != want {
					t.Errorf("%s: left columns %s, want %s", []string{"duckdb", "spark"}[i], strings.Join(types, ", "), want)
				}
			}
		})
	}
}

// mysqlDSN turns a mysql:// URL (as Kalla's sources write it) into the Go
// driver's DSN, user:pass@tcp(host:port)/db, for a test to load its table.
func mysqlDSN(u string) string {
	x := strings.TrimPrefix(u, "mysql://")
	at := strings.LastIndex(x, "@")
	slash := strings.Index(x[at:], "/")
	return x[:at] + "@tcp(" + x[at+1:at+slash] + ")" + x[at+slash:]
}
