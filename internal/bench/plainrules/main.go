// Command plainrules is the baseline of the rules benchmark: the three
// passes of a structured-rules recipe (exact, then within 2 %, then split
// payments summed within 2 %) written by hand in plain DuckDB SQL, the way
// a DuckDB user would for gen's data. Like plainduck it runs as a
// subprocess and writes the three Parquet outputs, so both sides pay for
// process start, loading and writing.
//
// Usage:
//
//	plainrules -invoices invoices.csv -payments payments.csv -out DIR
//
// It prints the same JSON Result as plainduck.
//
// What it does not do, and Kalla does: choose deterministically between
// competing candidates (gen's data has none: every payment names one
// invoice), explain unmatched records, report breaks, order the outputs,
// check types and keys, or checksum the files. The benchmark's ratio is
// the price of those, measured.
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

// Result matches plainduck's.
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
		fmt.Fprintln(os.Stderr, "usage: plainrules -invoices FILE -payments FILE -out DIR")
		os.Exit(2)
	}
	res, err := run(context.Background(), *invoices, *payments, *out)
	if err != nil {
		fmt.Fprintln(os.Stderr, "plainrules:", err)
		os.Exit(1)
	}
	enc := json.NewEncoder(os.Stdout)
	enc.SetIndent("", "  ")
	if err := enc.Encode(res); err != nil {
		fmt.Fprintln(os.Stderr, "plainrules:", err)
		os.Exit(1)
	}
}

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
	conn, err := db.Conn(ctx)
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	res := &Result{}
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
	// 2 % of the invoice, as a range so joins stay hash joins (FACTS.md).
	within := func(x string) string {
		return fmt.Sprintf("%[1]s >= l.amount - 0.02 * abs(l.amount) AND %[1]s <= l.amount + 0.02 * abs(l.amount)", x)
	}
	steps := []struct {
		name, q, table string
		n              *int64
	}{
		{"load_invoices", `CREATE TABLE invoices AS SELECT * FROM read_csv(` + lit(invoices) + `, header = true, types = {'amount': 'DECIMAL(18,2)'})`, "invoices", &res.Invoices},
		{"load_payments", `CREATE TABLE payments AS SELECT * FROM read_csv(` + lit(payments) + `, header = true, types = {'paid_amount': 'DECIMAL(18,2)'})`, "payments", &res.Payments},
		{"pass_exact", `CREATE TABLE m1 AS SELECT l.invoice_id, r.payment_id, 'exact' AS rule
FROM invoices l JOIN payments r ON r.reference_number = l.invoice_id AND r.paid_amount = l.amount`, "", nil},
		{"pass_tolerance", `CREATE TABLE m2 AS SELECT l.invoice_id, r.payment_id, 'tolerance' AS rule
FROM (SELECT * FROM invoices ANTI JOIN m1 USING (invoice_id)) l
JOIN (SELECT * FROM payments ANTI JOIN m1 USING (payment_id)) r ON r.reference_number = l.invoice_id AND ` + within("r.paid_amount"), "", nil},
		{"pass_split", `CREATE TABLE m3 AS
WITH li AS (SELECT * FROM invoices ANTI JOIN m1 USING (invoice_id) ANTI JOIN m2 USING (invoice_id)),
     rp AS (SELECT * FROM payments ANTI JOIN m1 USING (payment_id) ANTI JOIN m2 USING (payment_id))
SELECT l.invoice_id, r.payment_id, 'split' AS rule
FROM li l JOIN (SELECT reference_number, sum(paid_amount) AS total FROM rp GROUP BY reference_number) g
  ON g.reference_number = l.invoice_id AND ` + within("g.total") + `
JOIN rp r ON r.reference_number = l.invoice_id`, "", nil},
		{"collect", `CREATE TABLE matched AS SELECT * FROM m1 UNION ALL SELECT * FROM m2 UNION ALL SELECT * FROM m3`, "matched", &res.MatchedPairs},
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
