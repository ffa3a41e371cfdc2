-- How left.parquet was made (DuckDB 1.5.6), from left.parquet.csv in this folder:
COPY (
  SELECT CAST(invoice_id AS VARCHAR)      AS invoice_id,
         CAST(amount     AS DECIMAL(18,2)) AS amount,
         CAST(issued_on  AS DATE)          AS issued_on,
         CAST(fx_rate    AS DOUBLE)        AS fx_rate,
         CAST(lines      AS INTEGER)       AS lines
  FROM read_csv('left.parquet.csv', header = true, all_varchar = true)
) TO 'left.parquet' (FORMAT parquet);
