// Package connector is the contract between Kalla and the systems that hold
// users' data, in the manner of database/sql/driver: one small interface that
// every technology package (file, postgres, mysql) implements, plus the Sink
// the engine hands to a source so it can stage rows for a run.
//
// A Source reads through a connection built from its own URI and owned by the
// connector layer; Kalla's metadata store is never used to read user data.
package connector

import (
	"context"
	"database/sql"
	"database/sql/driver"

	"github.com/kalla-recon/kalla/internal/kalla"
)

// Default and maximum row limits for a sample (scoped preview).
const (
	DefaultLimit = 200
	MaxLimit     = 1000
)

// Source is one data source opened from its URI. Methods are safe for
// concurrent use. Errors are *kalla.Error values whose messages name the
// source by its redacted URI and never carry credentials: EINVALID for bad
// filters or unknown columns, ENOTFOUND for a missing table or file,
// EUNAVAILABLE when the source cannot be reached.
type Source interface {
	// Columns describes the source's columns in their natural order.
	Columns(ctx context.Context) ([]kalla.Column, error)
	// Count returns the true number of rows matching the filters.
	Count(ctx context.Context, filters []kalla.Filter) (int64, error)
	// Sample returns at most limit rows matching the filters, each value
	// rendered as text in column order, nil for NULL.
	Sample(ctx context.Context, filters []kalla.Filter, limit int) ([][]*string, error)
	// Stage loads every row matching the filters into the sink and returns
	// how many rows it staged. It never holds the whole source in Go memory.
	Stage(ctx context.Context, filters []kalla.Filter, sink Sink) (int64, error)
	// Close releases what the source holds (temporary files, a pool
	// reference). Pools shared through a cache stay cached.
	Close() error
}

// Sink is where Stage puts rows: one table in the run's DuckDB database.
type Sink interface {
	// Table is the quoted name of the table that Stage must create.
	Table() string
	// ExecContext runs a statement in the engine. File sources create the
	// table from DuckDB's own scan of the file (CREATE TABLE <Table()> AS ...).
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	// QueryRowContext runs a query in the engine that returns one row.
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
	// Append creates the table with the columns' EngineType and appends the
	// rows that fill writes. It reports progress as rows arrive.
	Append(ctx context.Context, cols []kalla.Column, fill func(w RowWriter) error) (int64, error)
}

// RowWriter receives one row at a time from a source, values in column
// order as Go values the DuckDB appender accepts (nil for NULL).
type RowWriter interface {
	WriteRow(values ...driver.Value) error
}

// Preview is a scoped load: a sample of rows under filters with the true
// total. Field names are the API's.
type Preview struct {
	Columns     []kalla.Column `json:"columns"`
	Rows        [][]*string    `json:"rows"`
	TotalRows   int64          `json:"total_rows"`
	PreviewRows int            `json:"preview_rows"`
}

// Load performs a scoped load: it validates the filters against the source's
// real columns, clamps limit to [1, MaxLimit] (0 means DefaultLimit), and
// returns the sample with the true count of matching rows.
func Load(ctx context.Context, src Source, name string, filters []kalla.Filter, limit int) (*Preview, error) {
	switch {
	case limit <= 0:
		limit = DefaultLimit
	case limit > MaxLimit:
		limit = MaxLimit
	}
	cols, err := src.Columns(ctx)
	if err != nil {
		return nil, err
	}
	if err := kalla.ValidateFilters(name, filters, cols); err != nil {
		return nil, err
	}
	total, err := src.Count(ctx, filters)
	if err != nil {
		return nil, err
	}
	rows, err := src.Sample(ctx, filters, limit)
	if err != nil {
		return nil, err
	}
	if rows == nil {
		rows = [][]*string{}
	}
	return &Preview{Columns: cols, Rows: rows, TotalRows: total, PreviewRows: len(rows)}, nil
}
