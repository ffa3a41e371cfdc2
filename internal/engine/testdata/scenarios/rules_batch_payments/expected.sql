-- The expected answer of rules_batch_payments, written by hand in plain DuckDB SQL,
-- independently of Kalla's rule compiler. Run from this folder: duckdb < expected.sql
-- Files are read as text, so unmatched rows come out exactly as written.
CREATE TABLE inv AS SELECT *, row_number() OVER () AS lrow FROM read_csv('left.csv', all_varchar = true, header = true);
CREATE TABLE pay AS SELECT *, row_number() OVER () AS rrow FROM read_csv('right.csv', all_varchar = true, header = true);
-- A batch: the invoices sharing a batch id, with their total and their date span.
CREATE TABLE batches AS
  SELECT batch_id, sum(CAST(amount AS DECIMAL(18,2))) AS total,
         min(CAST(issued_on AS DATE)) AS first_issued, max(CAST(issued_on AS DATE)) AS last_issued
  FROM inv WHERE batch_id IS NOT NULL GROUP BY batch_id;
-- A payment settles a batch when its reference, without "BATCH-", is the batch id, it is
-- within 1 % of the batch total, and it is dated 0 to 60 days after every invoice of the batch.
-- Each payment names one batch, so only a batch with several such payments needs a choice:
-- the smallest difference, then the payment id.
CREATE TABLE settled AS
  SELECT b.batch_id, p.payment_id, p.rrow FROM batches b
  JOIN pay p ON substr(p.reference, 7) = b.batch_id AND starts_with(p.reference, 'BATCH-')
  WHERE abs(b.total - CAST(p.amount AS DECIMAL(18,2))) <= 0.01 * abs(b.total)
    AND CAST(p.paid_on AS DATE) >= b.last_issued AND CAST(p.paid_on AS DATE) <= b.first_issued + 60
  QUALIFY row_number() OVER (PARTITION BY b.batch_id ORDER BY abs(b.total - CAST(p.amount AS DECIMAL(18,2))), p.payment_id) = 1;
COPY (SELECT i.invoice_id AS _left_invoice_id, s.payment_id AS _right_payment_id, i.lrow AS _left_row, s.rrow AS _right_row,
             'batch' AS _rule, 'confirmed' AS _status
      FROM inv i JOIN settled s USING (batch_id) ORDER BY i.lrow, s.rrow) TO 'expected/matched.csv' (HEADER true);
-- Reasons. A batch's members, as Kalla lists them: the first five invoice ids in file order,
-- then "and N more".
CREATE TABLE labels AS
  SELECT batch_id, count(*) AS n,
         array_to_string(list(invoice_id ORDER BY lrow)[1:5], ', ') || CASE WHEN count(*) > 5 THEN ' and ' || (count(*) - 5) || ' more' ELSE '' END AS label
  FROM inv WHERE batch_id IS NOT NULL GROUP BY batch_id;
-- The payments naming a batch that no payment settled, and how far their amount is from the
-- batch total, as a percentage of the total (the tolerance is 1 % of the invoices' side).
CREATE TABLE short AS
  SELECT b.batch_id, p.payment_id, printf('%.1f', 100.0 * CAST(abs(b.total - CAST(p.amount AS DECIMAL(18,2))) AS DOUBLE) / CAST(abs(b.total) AS DOUBLE)) AS pct
  FROM batches b JOIN pay p ON substr(p.reference, 7) = b.batch_id AND starts_with(p.reference, 'BATCH-')
  WHERE b.batch_id NOT IN (SELECT batch_id FROM settled);
COPY (SELECT i.invoice_id, i.customer, i.batch_id, i.amount, i.issued_on,
             CASE WHEN i.batch_id IS NULL THEN 'batch_id is empty'
                  WHEN s.payment_id IS NULL THEN 'no payments record matches on reference'
                  ELSE 'reference matches ' || s.payment_id || ' but sum of amount differs by ' || s.pct || ' % > 1 % (as the group of ' || l.n || ': ' || l.label || ')' END AS _reason,
             s.payment_id AS _closest_candidate
      FROM inv i LEFT JOIN short s USING (batch_id) LEFT JOIN labels l USING (batch_id)
      WHERE i.batch_id IS NULL OR i.batch_id NOT IN (SELECT batch_id FROM settled) ORDER BY i.lrow) TO 'expected/unmatched_left.csv' (HEADER true);
COPY (SELECT p.payment_id, p.reference, p.amount, p.paid_on,
             CASE WHEN l.batch_id IS NULL THEN 'no invoices record matches on batch_id'
                  WHEN s.payment_id IS NOT NULL THEN 'batch_id matches invoices ' || l.label || ' but sum of amount differs by ' || s.pct || ' % > 1 %'
                  ELSE 'invoices ' || l.label || ' meet rule batch but were matched to ' || w.payment_id || ' by rule batch' END AS _reason,
             l.label AS _closest_candidate
      FROM pay p LEFT JOIN labels l ON l.batch_id = substr(p.reference, 7) LEFT JOIN short s ON s.payment_id = p.payment_id
           LEFT JOIN settled w ON w.batch_id = l.batch_id
      WHERE p.payment_id NOT IN (SELECT payment_id FROM settled) ORDER BY p.rrow) TO 'expected/unmatched_right.csv' (HEADER true);
SELECT (SELECT count(*) FROM inv) AS left_count, (SELECT count(*) FROM pay) AS right_count,
       (SELECT count(*) FROM inv JOIN settled USING (batch_id)) AS matched_count,
       (SELECT count(*) FROM settled) AS matched_batches;
