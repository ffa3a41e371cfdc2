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
//   - each matched pair carries both records' row numbers in their files
//     (DuckDB's rowid + 1, as Kalla's _left_row and _right_row), so both
//     sides identify records the same way.
//   - Parquet with DuckDB's default codec (snappy); no ORDER BY; DuckDB's
//     default settings otherwise (all cores, insertion order preserved).
package main

import (
	"path/filepath"

	"github.com/kalla-recon/kalla/internal/bench/plainsql"
	"github.com/kalla-recon/kalla/internal/dialect"
)

func main() { plainsql.Main("plainduck", statements) }

// lit renders s as a SQL string literal.
func lit(s string) string { return dialect.DuckDB.QuoteString(s) }

// statements are the baseline's SQL over the two files, writing into out.
func statements(invoices, payments, out string) []plainsql.Statement {
	parquet := func(name string) string { return lit(filepath.Join(out, name+".parquet")) }
	return []plainsql.Statement{
		{Name: "load_invoices", SQL: `CREATE TABLE invoices AS SELECT * FROM read_csv(` + lit(invoices) + `, header = true, types = {'amount': 'DECIMAL(18,2)'})`, Table: "invoices", Count: "invoices"},
		{Name: "load_payments", SQL: `CREATE TABLE payments AS SELECT * FROM read_csv(` + lit(payments) + `, header = true, types = {'paid_amount': 'DECIMAL(18,2)'})`, Table: "payments", Count: "payments"},
		// gen.MatchSQL with tolerance_match(l.amount, t.paid_total,
		// l.amount * 0.02) written out as a range.
		{Name: "match", SQL: `CREATE TABLE matched AS
SELECT l.invoice_id, r.payment_id, l.amount, r.paid_amount, t.paid_total,
       l.rowid + 1 AS left_row, r.rowid + 1 AS right_row
FROM invoices l
JOIN (SELECT reference_number, sum(paid_amount) AS paid_total
      FROM payments GROUP BY reference_number) t
  ON t.reference_number = l.invoice_id
JOIN payments r ON r.reference_number = l.invoice_id
WHERE l.amount >= t.paid_total - l.amount * 0.02
  AND l.amount <= t.paid_total + l.amount * 0.02`, Table: "matched", Count: "matched_pairs"},
		{Name: "write_matched", SQL: `COPY matched TO ` + parquet("matched") + ` (FORMAT parquet)`},
		{Name: "write_unmatched_left", SQL: `COPY (SELECT i.* FROM invoices i ANTI JOIN matched m ON m.invoice_id = i.invoice_id) TO ` + parquet("unmatched_left") + ` (FORMAT parquet)`, Count: "unmatched_left"},
		{Name: "write_unmatched_right", SQL: `COPY (SELECT p.* FROM payments p ANTI JOIN matched m ON m.payment_id = p.payment_id) TO ` + parquet("unmatched_right") + ` (FORMAT parquet)`, Count: "unmatched_right"},
	}
}
