// Command plainduck is the baseline of Kalla's engine benchmark: the invoice
// and payment reconciliation of gen.MatchSQL written by hand in plain DuckDB
// SQL, with none of Kalla's checks, type inference, identity columns,
// ordering or checksums. It runs as a subprocess, like bin/kalla, so both
// sides of the comparison pay for process start and DuckDB start-up.
//
// Usage:
//
//	plainduck -invoices invoices.csv -payments payments.csv -out DIR
//
// It writes DIR/matched.parquet, DIR/unmatched_left.parquet and
// DIR/unmatched_right.parquet and prints a JSON Result on stdout.
//
// Choices, stated so the baseline can be judged:
//   - read_csv with header = true and the sniffer left on for everything but
//     the amount column, which is declared DECIMAL(18,2) (types = {...}):
//     exact money, the scale gen writes, and how a DuckDB user would load it.
//   - the tolerance is written as a range, not ABS, so the join stays a hash
//     join (see FACTS.md).
//   - the match is materialised once as a table; both anti-joins read it.
//   - Parquet with DuckDB's default codec (snappy); no ORDER BY; DuckDB's
//     default settings otherwise (all cores, insertion order preserved).
package main

import (
	"context"
	"database/sql"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	_ "github.com/duckdb/duckdb-go/v2"
)

// Result is what plainduck prints: the counts a reconciliation produces and
// the wall time of each statement.
type Result struct {
	Invoices       int64  `json:"invoices"`
	Payments       int64  `json:"payments"`
	MatchedPairs   int64  `json:"matched_pairs"`
	UnmatchedLeft  int64  `json:"unmatched_left"`
	UnmatchedRight int64  `json:"unmatched_right"`
	Steps          []Step `json:"steps"`
	DurationMS     int64  `json:"duration_ms"`
}

// Step is the wall time of one SQL statement.
type Step struct {
	Name       string  `json:"name"`
	DurationMS float64 `json:"duration_ms"`
}

func main() {
	invoices := flag.String("invoices", "", "invoices CSV (gen's layout)")
	payments := flag.String("payments", "", "payments CSV (gen's layout)")
	out := flag.String("out", "", "folder for the Parquet outputs")
	flag.Parse()
	if *invoices == "" || *payments == "" || *out == "" {
		fmt.Fprintln(os.Stderr, "usage: plainduck -invoices FILE -payments FILE -out DIR")
		os.Exit(2)
	}
	res, err := run(context.Background(), *invoices, *payments, *out)
	if err != nil {
		fmt.Fprintln(os.Stderr, "plainduck:", err)
		os.Exit(1)
	}
	enc := json.NewEncoder(os.Stdout)
	enc.SetIndent("", "  ")
	if err := enc.Encode(res); err != nil {
		fmt.Fprintln(os.Stderr, "plainduck:", err)
		os.Exit(1)
	}
}

// lit renders s as a SQL string literal.
func lit(s string) string { return "'" + strings.ReplaceAll(s, "'", "''") + "'" }

func run(ctx context.Context, invoices, payments, out string) (*Result, error) {
	start := time.Now()
	if err := os.MkdirAll(out, 0o755); err != nil {
		return nil, err
	}
	db, err := sql.Open("duckdb", "")
	if err != nil {
		return nil, err
	}
	defer db.Close()
	// One connection: the tables live in one in-memory database either way,
	// and one connection keeps the statements strictly in order.
	conn, err := db.Conn(ctx)
	if err != nil {
		return nil, err
	}
	defer conn.Close()

	res := &Result{}
	// exec runs one statement and returns the rows it wrote: COPY reports
	// them; for CREATE TABLE AS (which reports none) table names the table
	// to count, a cheap metadata read that is timed with the statement.
	exec := func(name, q, table string) (int64, error) {
		t0 := time.Now()
		r, err := conn.ExecContext(ctx, q)
		if err != nil {
			return 0, fmt.Errorf("%s: %w", name, err)
		}
		var n int64
		if table != "" {
			err = conn.QueryRowContext(ctx, "SELECT count(*) FROM "+table).Scan(&n)
		} else {
			n, err = r.RowsAffected()
		}
		if err != nil {
			return 0, fmt.Errorf("%s: count rows: %w", name, err)
		}
		res.Steps = append(res.Steps, Step{Name: name, DurationMS: float64(time.Since(t0).Microseconds()) / 1000})
		return n, nil
	}
	parquet := func(name string) string { return lit(filepath.Join(out, name+".parquet")) }

	steps := []struct {
		name, q, table string
		n              *int64
	}{
		{"load_invoices", `CREATE TABLE invoices AS SELECT * FROM read_csv(` + lit(invoices) + `, header = true, types = {'amount': 'DECIMAL(18,2)'})`, "invoices", &res.Invoices},
		{"load_payments", `CREATE TABLE payments AS SELECT * FROM read_csv(` + lit(payments) + `, header = true, types = {'paid_amount': 'DECIMAL(18,2)'})`, "payments", &res.Payments},
		// gen.MatchSQL with tolerance_match(l.amount, t.paid_total,
		// l.amount * 0.02) written out as a range.
		{"match", `CREATE TABLE matched AS
SELECT l.invoice_id, r.payment_id, l.amount, r.paid_amount, t.paid_total
FROM invoices l
JOIN (SELECT reference_number, sum(paid_amount) AS paid_total
      FROM payments GROUP BY reference_number) t
  ON t.reference_number = l.invoice_id
JOIN payments r ON r.reference_number = l.invoice_id
WHERE l.amount >= t.paid_total - l.amount * 0.02
  AND l.amount <= t.paid_total + l.amount * 0.02`, "matched", &res.MatchedPairs},
		{"write_matched", `COPY matched TO ` + parquet("matched") + ` (FORMAT parquet)`, "", nil},
		{"write_unmatched_left", `COPY (SELECT i.* FROM invoices i ANTI JOIN matched m ON m.invoice_id = i.invoice_id) TO ` + parquet("unmatched_left") + ` (FORMAT parquet)`, "", &res.UnmatchedLeft},
		{"write_unmatched_right", `COPY (SELECT p.* FROM payments p ANTI JOIN matched m ON m.payment_id = p.payment_id) TO ` + parquet("unmatched_right") + ` (FORMAT parquet)`, "", &res.UnmatchedRight},
	}
	for _, s := range steps {
		n, err := exec(s.name, s.q, s.table)
		if err != nil {
			return nil, err
		}
		if s.n != nil {
			*s.n = n
		}
	}
	res.DurationMS = time.Since(start).Milliseconds()
	return res, nil
}
