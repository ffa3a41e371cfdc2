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
// Each matched pair carries both records' row numbers in their files
// (DuckDB's rowid + 1, as Kalla's _left_row and _right_row).
//
// What it does not do, and Kalla does: choose deterministically between
// competing candidates (gen's data has none: every payment names one
// invoice), explain unmatched records, report breaks, order the outputs,
// check types and keys, or checksum the files. The benchmark's ratio is
// the price of those, measured.
package main

import (
	"fmt"
	"path/filepath"

	"github.com/kalla-recon/kalla/internal/bench/plainsql"
	"github.com/kalla-recon/kalla/internal/dialect"
)

func main() { plainsql.Main("plainrules", statements) }

// lit renders s as a SQL string literal.
func lit(s string) string { return dialect.DuckDB.QuoteString(s) }

// statements are the baseline's SQL over the two files, writing into out.
func statements(invoices, payments, out string) []plainsql.Statement {
	parquet := func(name string) string { return lit(filepath.Join(out, name+".parquet")) }
	// 2 % of the invoice, as a range so joins stay hash joins (FACTS.md).
	within := func(x string) string {
		return fmt.Sprintf("%[1]s >= l.amount - 0.02 * abs(l.amount) AND %[1]s <= l.amount + 0.02 * abs(l.amount)", x)
	}
	return []plainsql.Statement{
		{Name: "load_invoices", SQL: `CREATE TABLE invoices AS SELECT * FROM read_csv(` + lit(invoices) + `, header = true, types = {'amount': 'DECIMAL(18,2)'})`, Table: "invoices", Count: "invoices"},
		{Name: "load_payments", SQL: `CREATE TABLE payments AS SELECT * FROM read_csv(` + lit(payments) + `, header = true, types = {'paid_amount': 'DECIMAL(18,2)'})`, Table: "payments", Count: "payments"},
		{Name: "pass_exact", SQL: `CREATE TABLE m1 AS SELECT l.invoice_id, r.payment_id, l.rowid + 1 AS left_row, r.rowid + 1 AS right_row, 'exact' AS rule
FROM invoices l JOIN payments r ON r.reference_number = l.invoice_id AND r.paid_amount = l.amount`},
		{Name: "pass_tolerance", SQL: `CREATE TABLE m2 AS SELECT l.invoice_id, r.payment_id, l.row AS left_row, r.row AS right_row, 'tolerance' AS rule
FROM (SELECT *, invoices.rowid + 1 AS row FROM invoices ANTI JOIN m1 USING (invoice_id)) l
JOIN (SELECT *, payments.rowid + 1 AS row FROM payments ANTI JOIN m1 USING (payment_id)) r ON r.reference_number = l.invoice_id AND ` + within("r.paid_amount")},
		{Name: "pass_split", SQL: `CREATE TABLE m3 AS
WITH li AS (SELECT *, invoices.rowid + 1 AS row FROM invoices ANTI JOIN m1 USING (invoice_id) ANTI JOIN m2 USING (invoice_id)),
     rp AS (SELECT *, payments.rowid + 1 AS row FROM payments ANTI JOIN m1 USING (payment_id) ANTI JOIN m2 USING (payment_id))
SELECT l.invoice_id, r.payment_id, l.row AS left_row, r.row AS right_row, 'split' AS rule
FROM li l JOIN (SELECT reference_number, sum(paid_amount) AS total FROM rp GROUP BY reference_number) g
  ON g.reference_number = l.invoice_id AND ` + within("g.total") + `
JOIN rp r ON r.reference_number = l.invoice_id`},
		{Name: "collect", SQL: `CREATE TABLE matched AS SELECT * FROM m1 UNION ALL SELECT * FROM m2 UNION ALL SELECT * FROM m3`, Table: "matched", Count: "matched_pairs"},
		{Name: "write_matched", SQL: `COPY matched TO ` + parquet("matched") + ` (FORMAT parquet)`},
		{Name: "write_unmatched_left", SQL: `COPY (SELECT i.* FROM invoices i ANTI JOIN matched m ON m.invoice_id = i.invoice_id) TO ` + parquet("unmatched_left") + ` (FORMAT parquet)`, Count: "unmatched_left"},
		{Name: "write_unmatched_right", SQL: `COPY (SELECT p.* FROM payments p ANTI JOIN matched m ON m.payment_id = p.payment_id) TO ` + parquet("unmatched_right") + ` (FORMAT parquet)`, Count: "unmatched_right"},
	}
}
