package api

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"unicode/utf8"

	"github.com/kalla-recon/kalla/internal/dialect"
	"github.com/kalla-recon/kalla/internal/duck"
	"github.com/kalla-recon/kalla/internal/file"
	"github.com/kalla-recon/kalla/internal/kalla"
	"github.com/kalla-recon/kalla/internal/recon"
	"github.com/kalla-recon/kalla/internal/runner"
)

// Paging bounds of GET /api/runs/{id}/results/{table}.
const (
	defaultResultRows = 100
	maxResultRows     = 1000
	maxSearchChars    = 200
)

// resultsMemory caps the DuckDB that reads run outputs: paging reads a few
// row groups of a Parquet file, never a whole table, so a little suffices
// and the runs keep the memory.
const resultsMemory = "512MB"

// resultsPage is one page of a run's output table. Values are text, as the
// original Kalla returned them (so decimals keep their digits), null for
// NULL.
type resultsPage struct {
	RunID     string         `json:"run_id"`
	Table     string         `json:"table"`
	Columns   []kalla.Column `json:"columns"`
	Rows      [][]*string    `json:"rows"`
	TotalRows int64          `json:"total_rows"`
	Offset    int            `json:"offset"`
	Limit     int            `json:"limit"`
	// Query is the search text the rows were narrowed by, if any;
	// TotalRows then counts the rows that contain it.
	Query string `json:"q,omitempty"`
	// Records holds, for matched pairs of a run that kept them, each
	// pair's two whole records, aligned with Rows; a search then looks in
	// them too. RecordsNote says why a matched page has none (an older
	// run, a CLI run without --records).
	Records     *pairRecords `json:"records,omitempty"`
	RecordsNote string       `json:"records_note,omitempty"`
}

// pairRecords are the left and right records of a page of matched pairs.
type pairRecords struct {
	Left  recordSet `json:"left"`
	Right recordSet `json:"right"`
}

// recordSet is one side's records of a page of pairs, row i for pair i;
// a column is sortable as "left.<name>" or "right.<name>".
type recordSet struct {
	Columns []kalla.Column `json:"columns"`
	Rows    [][]*string    `json:"rows"`
}

// noRecordsNote is the records_note of a matched page without records.
const noRecordsNote = "This run did not keep the pairs' whole records (a run from before they were kept, or a CLI run without --records): each pair shows the match's columns only, and the search looks in those."

// runResults pages through one output table of a completed run, read from
// its Parquet file by DuckDB, in the order the run wrote it. With q, only
// rows where some column's text contains q (ignoring case) are paged, so a
// user can find one record among many. Errors: 400 bad table or paging,
// 404 unknown run, 409 run not completed.
func (h *Handler) runResults(w http.ResponseWriter, r *http.Request) (any, error) {
	id, table := r.PathValue("id"), r.PathValue("table")
	if err := checkTable(table); err != nil {
		return nil, err
	}
	offset, err := queryInt(r, "offset", 0, 0, math.MaxInt)
	if err != nil {
		return nil, err
	}
	limit, err := queryInt(r, "limit", defaultResultRows, 1, maxResultRows)
	if err != nil {
		return nil, err
	}
	q := r.URL.Query().Get("q")
	if utf8.RuneCountInString(q) > maxSearchChars {
		return nil, kalla.Errorf(kalla.EINVALID, "query parameter q is longer than %d characters", maxSearchChars)
	}
	query := r.URL.Query()
	// Given but empty is a mistake (a form left blank), not "the default".
	for _, p := range []string{"sort", "order"} {
		if query.Has(p) && query.Get(p) == "" {
			return nil, kalla.Errorf(kalla.EINVALID, "query parameter %s is empty: leave it out, or give a value", p)
		}
	}
	order := pageOrder{column: query.Get("sort")}
	switch query.Get("order") {
	case "", "asc":
	case "desc":
		order.desc = true
	default:
		return nil, kalla.Errorf(kalla.EINVALID, "query parameter order must be asc or desc")
	}
	rec, path, err := h.resultsFile(r, id, table)
	if err != nil {
		return nil, err
	}
	db, err := h.results()
	if err != nil {
		return nil, err
	}
	var page *resultsPage
	switch sides, kept := recordsFiles(rec); {
	case table != recon.TableMatched:
		page, err = readPage(r.Context(), db, path, offset, limit, q, order)
	case kept:
		var paths [2]string
		for i, t := range sides {
			if paths[i], err = h.tablePath(rec, t); err != nil {
				return nil, err
			}
		}
		page, err = readPairs(r.Context(), db, path, paths, offset, limit, q, order)
	default:
		if page, err = readPage(r.Context(), db, path, offset, limit, q, order); err == nil {
			page.RecordsNote = noRecordsNote
		}
	}
	if err != nil {
		return nil, err
	}
	page.RunID, page.Table = rec.ID, table
	return page, nil
}

// recordsFiles names the tables holding a run's matched records, and
// whether the run wrote both as Parquet (Run.Records).
func recordsFiles(rec *kalla.RunRecord) ([2]string, bool) {
	sides := [2]string{recon.TableMatchedLeft, recon.TableMatchedRight}
	var has [2]bool
	for _, o := range rec.Summary.Outputs {
		for i, t := range sides {
			has[i] = has[i] || (o.Table == t && o.Format == recon.FormatParquet)
		}
	}
	return sides, has[0] && has[1]
}

// checkTable checks the name of a run's output table. Errors: EINVALID.
func checkTable(table string) error {
	switch table {
	case recon.TableMatched, recon.TableUnmatchedLeft, recon.TableUnmatchedRight, recon.TableBreaks:
		return nil
	}
	return kalla.Errorf(kalla.EINVALID, "results table %q is not one of matched, unmatched_left, unmatched_right, breaks", table)
}

// resultsFile finds the Parquet file of one output table of a completed
// run. Errors: ENOTFOUND for an unknown run, a table the run did not
// write (breaks come from structured rules only) or a file no longer
// there; ECONFLICT for a run that has not completed.
func (h *Handler) resultsFile(r *http.Request, id, table string) (*kalla.RunRecord, string, error) {
	rec, err := h.lookupRun(r, id)
	if err != nil {
		return nil, "", err
	}
	if rec.Status != kalla.RunCompleted || rec.Summary == nil {
		return nil, "", kalla.Errorf(kalla.ECONFLICT, "run %s is %s: results are available once it has completed", id, rec.Status)
	}
	if table == recon.TableBreaks {
		wrote := false
		for _, o := range rec.Summary.Outputs {
			wrote = wrote || o.Table == table
		}
		if !wrote {
			return nil, "", kalla.Errorf(kalla.ENOTFOUND, "run %s has no breaks: they are reported for recipes with structured rules", id)
		}
	}
	path, err := h.tablePath(rec, table)
	return rec, path, err
}

// tablePath is the Parquet file (or, from Spark, the part files) of one
// output table of a run. Errors: ENOTFOUND for a file no longer there.
func (h *Handler) tablePath(rec *kalla.RunRecord, table string) (string, error) {
	path := filepath.Join(runner.OutDir(h.cfg.DataDir, rec.ID), table+"."+recon.FormatParquet)
	st, err := os.Stat(path)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return "", kalla.Errorf(kalla.ENOTFOUND, "the %s results of run %s are no longer in the data folder", table, rec.ID)
		}
		return "", fmt.Errorf("stat results: %w", err)
	}
	if st.IsDir() {
		// Spark writes a table as a folder of part files, named in the
		// order of the rows.
		path = filepath.Join(path, "*."+recon.FormatParquet)
	}
	return path, nil
}

// pageOrder is the order a page is read in: a column, ascending unless
// desc, with ties (and no column) in the order the run wrote the rows.
type pageOrder struct {
	column string
	desc   bool
}

// results returns the shared DuckDB that reads run outputs, opening it on
// first use.
func (h *Handler) results() (*sql.DB, error) {
	h.resultsMu.Lock()
	defer h.resultsMu.Unlock()
	if h.resultsDB != nil {
		return h.resultsDB, nil
	}
	db, err := duck.Open(context.Background())
	if err != nil {
		return nil, fmt.Errorf("open results database: %w", err)
	}
	db.SetMaxOpenConns(4)
	for _, q := range []string{"SET memory_limit = '" + resultsMemory + "'", "SET threads = 2"} {
		if _, err := db.Exec(q); err != nil {
			db.Close()
			return nil, fmt.Errorf("configure results database: %w", err)
		}
	}
	h.resultsDB = db
	return db, nil
}

// readPage reads rows [offset, offset+limit) of a Parquet file as text,
// of the rows containing q when q is not empty.
func readPage(ctx context.Context, db *sql.DB, path string, offset, limit int, q string, order pageOrder) (*resultsPage, error) {
	src := "read_parquet(" + dialect.DuckDB.QuoteString(path) + ")"
	page := &resultsPage{Offset: offset, Limit: limit, Query: q}
	var err error
	if page.Columns, err = describeResults(ctx, db, src); err != nil {
		return nil, err
	}
	orderBy := ""
	if order.column != "" {
		found := false
		for _, c := range page.Columns {
			found = found || c.Name == order.column
		}
		if !found {
			return nil, kalla.Errorf(kalla.EINVALID, "query parameter sort: the table has no column %q", order.column)
		}
		// file_row_number keeps ties in the order the run wrote them.
		src = "read_parquet(" + dialect.DuckDB.QuoteString(path) + ", file_row_number = true)"
		dir := " ASC"
		if order.desc {
			dir = " DESC"
		}
		orderBy = " ORDER BY " + dialect.DuckDB.QuoteIdent(order.column) + dir + " NULLS LAST, file_row_number"
	}
	sel := make([]string, len(page.Columns))
	for i, c := range page.Columns {
		sel[i] = "CAST(" + dialect.DuckDB.QuoteIdent(c.Name) + " AS VARCHAR)"
	}
	// Without q the row count is in the Parquet footer: no scan. The
	// search is a bound parameter, matched as plain text (no wildcards).
	where, args := "", []any{}
	if q != "" && len(sel) > 0 {
		conds := make([]string, len(sel))
		for i, s := range sel {
			conds[i] = "contains(lower(coalesce(" + s + ", '')), ?)"
			args = append(args, strings.ToLower(q))
		}
		where = " WHERE " + strings.Join(conds, " OR ")
	}
	if err := db.QueryRowContext(ctx, "SELECT count(*) FROM "+src+where, args...).Scan(&page.TotalRows); err != nil {
		return nil, fmt.Errorf("count results: %w", err)
	}
	if len(sel) == 0 {
		page.Rows = [][]*string{}
		return page, nil
	}
	data, err := db.QueryContext(ctx, "SELECT "+strings.Join(sel, ", ")+" FROM "+src+where+orderBy+" LIMIT ? OFFSET ?", append(args, limit, offset)...)
	if err != nil {
		return nil, fmt.Errorf("read results: %w", err)
	}
	defer data.Close()
	if page.Rows, err = file.ScanStrings(data, len(sel)); err != nil {
		return nil, fmt.Errorf("read results: %w", err)
	}
	return page, nil
}

// describeResults lists the columns of a run's output file, src being its
// read_parquet(...) expression.
func describeResults(ctx context.Context, db *sql.DB, src string) ([]kalla.Column, error) {
	rows, err := db.QueryContext(ctx, `SELECT column_name, column_type, "null" FROM (DESCRIBE SELECT * FROM `+src+`)`)
	if err != nil {
		return nil, fmt.Errorf("describe results: %w", err)
	}
	defer rows.Close()
	var cols []kalla.Column
	for rows.Next() {
		var c kalla.Column
		var null string
		if err := rows.Scan(&c.Name, &c.DataType, &null); err != nil {
			return nil, fmt.Errorf("describe results: %w", err)
		}
		c.Nullable = null != "NO"
		cols = append(cols, c)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("describe results: %w", err)
	}
	return cols, nil
}

// recordSides are the sides of a page of pairs: the prefix that names a
// record column in sort, the records file's row-number column, and its
// alias in readPairs' query.
var recordSides = [2]struct{ prefix, row, alias string }{
	{"left.", recon.LeftRowColumn, "l"},
	{"right.", recon.RightRowColumn, "r"},
}

// readPairs reads rows [offset, offset+limit) of the matched pairs file at
// path, each joined on _left_row/_right_row to its two records in the
// records files (paths: left, right), all as text. q narrows the pairs to
// those where the pair or either record contains it; order may name a
// column of the pairs or, as "left.<column>"/"right.<column>", of a
// record. Without a search or a record column to sort by, the page is
// cut from the pairs first and only its records are read: the records
// files are sorted by row number, so DuckDB's join filter reads the row
// groups holding them, not the whole side.
func readPairs(ctx context.Context, db *sql.DB, path string, paths [2]string, offset, limit int, q string, order pageOrder) (*resultsPage, error) {
	page := &resultsPage{Offset: offset, Limit: limit, Query: q}
	opts := ", file_row_number = true"
	if strings.Contains(path, "*") {
		opts += ", filename = true" // Spark's part files, named in row order
	}
	pairs := "read_parquet(" + dialect.DuckDB.QuoteString(path) + opts + ")"
	var err error
	if page.Columns, err = describeResults(ctx, db, "read_parquet("+dialect.DuckDB.QuoteString(path)+")"); err != nil {
		return nil, err
	}
	page.Records = &pairRecords{}
	sets := [2]*recordSet{&page.Records.Left, &page.Records.Right}
	var sel []string
	for _, c := range page.Columns {
		sel = append(sel, "CAST(m."+dialect.DuckDB.QuoteIdent(c.Name)+" AS VARCHAR)")
	}
	sortExpr := ""
	recordSort := false
	for i, sd := range recordSides {
		cols, err := describeResults(ctx, db, "read_parquet("+dialect.DuckDB.QuoteString(paths[i])+")")
		if err != nil {
			return nil, err
		}
		found := false
		for _, c := range cols {
			if c.Name == sd.row {
				found = true
				continue
			}
			sets[i].Columns = append(sets[i].Columns, c)
			expr := "CAST(" + sd.alias + "." + dialect.DuckDB.QuoteIdent(c.Name) + " AS VARCHAR)"
			sel = append(sel, expr)
			if order.column == sd.prefix+c.Name {
				sortExpr, recordSort = sd.alias+"."+dialect.DuckDB.QuoteIdent(c.Name), true
			}
		}
		if !found {
			return nil, fmt.Errorf("read matched records: %s has no column %s", paths[i], sd.row)
		}
	}
	for _, c := range page.Columns {
		if sortExpr == "" && order.column != "" && c.Name == order.column {
			sortExpr = "m." + dialect.DuckDB.QuoteIdent(c.Name)
		}
	}
	if order.column != "" && sortExpr == "" {
		return nil, kalla.Errorf(kalla.EINVALID, "query parameter sort: the pairs have no column %q (a record's column is left.<name> or right.<name>)", order.column)
	}
	// Ties, and no sort, in the order the run wrote the pairs.
	written := "m.file_row_number"
	if strings.Contains(opts, "filename") {
		written = "m.filename, m.file_row_number"
	}
	orderBy := written
	if sortExpr != "" {
		dir := " ASC"
		if order.desc {
			dir = " DESC"
		}
		orderBy = sortExpr + dir + " NULLS LAST, " + written
	}
	join := fmt.Sprintf(" LEFT JOIN read_parquet(%s) l ON l.%s = m.%s LEFT JOIN read_parquet(%s) r ON r.%s = m.%s",
		dialect.DuckDB.QuoteString(paths[0]), dialect.DuckDB.QuoteIdent(recon.LeftRowColumn), dialect.DuckDB.QuoteIdent(recon.LeftRowColumn),
		dialect.DuckDB.QuoteString(paths[1]), dialect.DuckDB.QuoteIdent(recon.RightRowColumn), dialect.DuckDB.QuoteIdent(recon.RightRowColumn))
	where, args := "", []any{}
	if q != "" {
		conds := make([]string, len(sel))
		for i, s := range sel {
			conds[i] = "contains(lower(coalesce(" + s + ", '')), ?)"
			args = append(args, strings.ToLower(q))
		}
		where = " WHERE " + strings.Join(conds, " OR ")
		if err := db.QueryRowContext(ctx, "SELECT count(*) FROM "+pairs+" m"+join+where, args...).Scan(&page.TotalRows); err != nil {
			return nil, fmt.Errorf("count results: %w", err)
		}
	} else if err := db.QueryRowContext(ctx, "SELECT count(*) FROM read_parquet("+dialect.DuckDB.QuoteString(path)+")").Scan(&page.TotalRows); err != nil {
		return nil, fmt.Errorf("count results: %w", err)
	}
	from := pairs + " m"
	query := "SELECT " + strings.Join(sel, ", ") + " FROM %s" + join + where + " ORDER BY " + orderBy + " LIMIT ? OFFSET ?"
	args = append(args, limit, offset)
	if q == "" && !recordSort {
		// The page of pairs first, then its records.
		from = "(SELECT * FROM " + pairs + " m ORDER BY " + orderBy + " LIMIT ? OFFSET ?) m"
		query = "SELECT " + strings.Join(sel, ", ") + " FROM %s" + join + " ORDER BY " + orderBy
	}
	data, err := db.QueryContext(ctx, fmt.Sprintf(query, from), args...)
	if err != nil {
		return nil, fmt.Errorf("read results: %w", err)
	}
	defer data.Close()
	all, err := file.ScanStrings(data, len(sel))
	if err != nil {
		return nil, fmt.Errorf("read results: %w", err)
	}
	n, nl := len(page.Columns), len(sets[0].Columns)
	page.Rows = make([][]*string, 0, len(all))
	sets[0].Rows, sets[1].Rows = make([][]*string, 0, len(all)), make([][]*string, 0, len(all))
	for _, row := range all {
		page.Rows = append(page.Rows, row[:n])
		sets[0].Rows = append(sets[0].Rows, row[n:n+nl])
		sets[1].Rows = append(sets[1].Rows, row[n+nl:])
	}
	return page, nil
}
