package file

import (
	"context"
	"database/sql"
	"fmt"

	_ "github.com/duckdb/duckdb-go/v2" // registers the "duckdb" driver
	"github.com/kalla-recon/kalla/internal/dialect"
	"github.com/kalla-recon/kalla/internal/kalla"
)

// previewDB is a private in-memory DuckDB holding the file, so that
// Columns, Count and Sample see exactly the types a run would stage.
type previewDB struct {
	db   *sql.DB
	cols []kalla.Column
}

func (p *previewDB) close() error { return p.db.Close() }

const previewTable = `"file"`

// open loads the file into the preview database once.
func (s *Source) open(ctx context.Context) (*previewDB, error) {
	s.mu.Lock()
	p := s.preview
	s.mu.Unlock()
	if p != nil {
		return p, nil
	}
	db, err := sql.Open("duckdb", "")
	if err != nil {
		return nil, fmt.Errorf("open preview database: %w", err)
	}
	db.SetMaxOpenConns(1)
	if _, err := s.load(ctx, db, previewTable, nil); err != nil {
		db.Close()
		return nil, err
	}
	cols, err := describe(ctx, db, previewTable)
	if err != nil {
		db.Close()
		return nil, err
	}
	p = &previewDB{db: db, cols: cols}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.preview != nil { // another caller won the race
		db.Close()
		return s.preview, nil
	}
	s.preview = p
	return p, nil
}

// Columns describes the file's columns with their inferred types.
func (s *Source) Columns(ctx context.Context) ([]kalla.Column, error) {
	p, err := s.open(ctx)
	if err != nil {
		return nil, err
	}
	return append([]kalla.Column(nil), p.cols...), nil
}

// Count returns the number of rows matching the filters.
func (s *Source) Count(ctx context.Context, filters []kalla.Filter) (int64, error) {
	p, err := s.open(ctx)
	if err != nil {
		return 0, err
	}
	where, args, err := dialect.DuckDB.Where(filters, p.cols, 1)
	if err != nil {
		return 0, err
	}
	var n int64
	if err := p.db.QueryRowContext(ctx, "SELECT count(*) FROM "+previewTable+where, args...).Scan(&n); err != nil {
		return 0, s.queryError(err, "count rows")
	}
	return n, nil
}

// Sample returns up to limit rows matching the filters, in file order.
func (s *Source) Sample(ctx context.Context, filters []kalla.Filter, limit int) ([][]*string, error) {
	p, err := s.open(ctx)
	if err != nil {
		return nil, err
	}
	where, args, err := dialect.DuckDB.Where(filters, p.cols, 1)
	if err != nil {
		return nil, err
	}
	sel := ""
	for i, c := range p.cols {
		if i > 0 {
			sel += ", "
		}
		sel += "CAST(" + dialect.DuckDB.QuoteIdent(c.Name) + " AS VARCHAR)"
	}
	q := fmt.Sprintf("SELECT %s FROM %s%s ORDER BY rowid LIMIT %s", sel, previewTable, where, dialect.DuckDB.Placeholder(len(args)+1))
	rows, err := p.db.QueryContext(ctx, q, append(args, limit)...)
	if err != nil {
		return nil, s.queryError(err, "read sample")
	}
	defer rows.Close()
	return ScanStrings(rows, len(p.cols))
}

// ScanStrings reads every row of rows as text values (nil for NULL).
func ScanStrings(rows *sql.Rows, ncols int) ([][]*string, error) {
	out := [][]*string{}
	for rows.Next() {
		vals := make([]sql.NullString, ncols)
		ptrs := make([]any, ncols)
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		if err := rows.Scan(ptrs...); err != nil {
			return nil, fmt.Errorf("scan row: %w", err)
		}
		row := make([]*string, ncols)
		for i, v := range vals {
			if v.Valid {
				s := v.String
				row[i] = &s
			}
		}
		out = append(out, row)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read rows: %w", err)
	}
	return out, nil
}
