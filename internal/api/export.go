package api

import (
	"database/sql"
	"encoding/csv"
	"fmt"
	"net/http"
	"strconv"
	"strings"

	"github.com/xuri/excelize/v2"

	"github.com/kalla-recon/kalla/internal/dialect"
	"github.com/kalla-recon/kalla/internal/kalla"
)

// xlsxMaxRows is the most data rows a worksheet holds (Excel's 1,048,576
// rows less the header).
const xlsxMaxRows = 1_048_575

// runExport downloads one output table of a completed run as CSV or XLSX
// (GET /api/runs/{id}/export/{file}, file being table.csv or table.xlsx),
// converted from its Parquet file as it is streamed: rows are read one by
// one from DuckDB, so memory stays bounded whatever the table's size
// (excelize's stream writer keeps what it has written in a temporary file).
// Values are the text DuckDB gives, so decimals keep every digit; XLSX
// stores a number as a number only when Excel reads it back exactly, and
// as text otherwise. Errors: 400 a format or table that is not one of
// them, or a table too long for a worksheet; 404 unknown run or table;
// 409 run not completed.
func (h *Handler) runExport(w http.ResponseWriter, r *http.Request) (any, error) {
	id, file := r.PathValue("id"), r.PathValue("file")
	table, format, ok := strings.Cut(file, ".")
	if !ok || (format != "csv" && format != "xlsx") {
		return nil, kalla.Errorf(kalla.EINVALID, "download %q: name a table and a format, such as matched.csv or matched.xlsx", file)
	}
	if err := checkTable(table); err != nil {
		return nil, err
	}
	_, path, err := h.resultsFile(r, id, table)
	if err != nil {
		return nil, err
	}
	db, err := h.results()
	if err != nil {
		return nil, err
	}
	ctx := r.Context()
	src := "read_parquet(" + dialect.DuckDB.QuoteString(path) + ")"
	cols, err := describeResults(ctx, db, src)
	if err != nil {
		return nil, err
	}
	if format == "xlsx" {
		var n int64
		if err := db.QueryRowContext(ctx, "SELECT count(*) FROM "+src).Scan(&n); err != nil {
			return nil, fmt.Errorf("count results: %w", err)
		}
		if n > xlsxMaxRows {
			return nil, kalla.Errorf(kalla.EINVALID, "the %s table has %d rows, more than an Excel worksheet holds (%d): download it as CSV or Parquet", table, n, xlsxMaxRows)
		}
	}
	sel := make([]string, len(cols))
	for i, c := range cols {
		sel[i] = "CAST(" + dialect.DuckDB.QuoteIdent(c.Name) + " AS VARCHAR)"
	}
	if len(sel) == 0 {
		sel = []string{"NULL"}
	}
	rows, err := db.QueryContext(ctx, "SELECT "+strings.Join(sel, ", ")+" FROM "+src)
	if err != nil {
		return nil, fmt.Errorf("read results: %w", err)
	}
	defer rows.Close()
	name := table + "." + format
	hdr := w.Header()
	hdr.Set("Content-Disposition", fmt.Sprintf(`attachment; filename="%s"`, name))
	if format == "csv" {
		hdr.Set("Content-Type", "text/csv; charset=utf-8")
		err = writeCSV(w, cols, rows)
	} else {
		hdr.Set("Content-Type", "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet")
		err = writeXLSX(w, table, cols, rows)
	}
	if err != nil {
		// Part of the file may have been sent: the client sees a cut
		// download; the reason is logged.
		h.log.Error("export results", "run", id, "file", name, "err", kalla.Redact(err.Error()))
	}
	return written{}, nil
}

// scanText reads one row of n text columns; NULL is nil.
func scanText(rows *sql.Rows, n int) ([]*string, error) {
	vals := make([]*string, n)
	ptrs := make([]any, n)
	for i := range vals {
		ptrs[i] = &vals[i]
	}
	if err := rows.Scan(ptrs...); err != nil {
		return nil, err
	}
	return vals, nil
}

// writeCSV streams rows as CSV with a header; NULL is an empty field.
func writeCSV(w http.ResponseWriter, cols []kalla.Column, rows *sql.Rows) error {
	cw := csv.NewWriter(w)
	head := make([]string, len(cols))
	for i, c := range cols {
		head[i] = c.Name
	}
	if err := cw.Write(head); err != nil {
		return err
	}
	rec := make([]string, len(cols))
	for rows.Next() {
		vals, err := scanText(rows, max(len(cols), 1))
		if err != nil {
			return fmt.Errorf("read results: %w", err)
		}
		for i := range rec {
			rec[i] = ""
			if vals[i] != nil {
				rec[i] = *vals[i]
			}
		}
		if err := cw.Write(rec); err != nil {
			return err
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("read results: %w", err)
	}
	cw.Flush()
	return cw.Error()
}

// writeXLSX streams rows into one worksheet named after the table.
func writeXLSX(w http.ResponseWriter, table string, cols []kalla.Column, rows *sql.Rows) error {
	f := excelize.NewFile()
	defer f.Close()
	if err := f.SetSheetName("Sheet1", table); err != nil {
		return fmt.Errorf("xlsx: %w", err)
	}
	sw, err := f.NewStreamWriter(table)
	if err != nil {
		return fmt.Errorf("xlsx: %w", err)
	}
	numeric := make([]bool, len(cols))
	head := make([]any, len(cols))
	for i, c := range cols {
		head[i] = excelize.Cell{Value: c.Name}
		numeric[i] = numericType(c.DataType)
	}
	if err := sw.SetRow("A1", head); err != nil {
		return fmt.Errorf("xlsx: %w", err)
	}
	line := 2
	cells := make([]any, len(cols))
	for rows.Next() {
		vals, err := scanText(rows, max(len(cols), 1))
		if err != nil {
			return fmt.Errorf("read results: %w", err)
		}
		for i := range cells {
			cells[i] = xlsxValue(vals[i], numeric[i])
		}
		cell, err := excelize.CoordinatesToCellName(1, line)
		if err != nil {
			return fmt.Errorf("xlsx: %w", err)
		}
		if err := sw.SetRow(cell, cells); err != nil {
			return fmt.Errorf("xlsx: %w", err)
		}
		line++
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("read results: %w", err)
	}
	if err := sw.Flush(); err != nil {
		return fmt.Errorf("xlsx: %w", err)
	}
	if _, err := f.WriteTo(w); err != nil {
		return fmt.Errorf("xlsx: %w", err)
	}
	return nil
}

// numericType reports whether a DuckDB type holds numbers.
func numericType(t string) bool {
	t = strings.ToUpper(t)
	for _, p := range []string{"DECIMAL", "NUMERIC", "INTEGER", "BIGINT", "SMALLINT", "TINYINT", "HUGEINT", "UBIGINT", "UINTEGER", "USMALLINT", "UTINYINT", "DOUBLE", "FLOAT", "REAL"} {
		if strings.HasPrefix(t, p) {
			return true
		}
	}
	return false
}

// xlsxValue is a cell's value: nil for NULL (an empty cell), a number
// when the text is one that a spreadsheet's double holds exactly as
// written, the text otherwise, so that no digit is lost.
func xlsxValue(v *string, numeric bool) any {
	if v == nil {
		return nil
	}
	if numeric {
		if f, err := strconv.ParseFloat(*v, 64); err == nil && strconv.FormatFloat(f, 'f', -1, 64) == trimDecimal(*v) && countDigits(*v) <= 15 {
			return f
		}
	}
	return *v
}

// trimDecimal drops the trailing zeros of a decimal's fraction, and its
// point when nothing follows it: 12.50 → 12.5, 3.00 → 3.
func trimDecimal(s string) string {
	if !strings.Contains(s, ".") {
		return s
	}
	s = strings.TrimRight(s, "0")
	s = strings.TrimSuffix(s, ".")
	if s == "" || s == "-" {
		return "0"
	}
	return s
}

// countDigits counts the digits of a number's text.
func countDigits(s string) int {
	n := 0
	for _, c := range s {
		if c >= '0' && c <= '9' {
			n++
		}
	}
	return n
}
