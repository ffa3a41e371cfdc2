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
	"errors"
	"time"

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

// DistinctNoter is a Sink that takes note of a column whose staged values
// the source proved pairwise distinct (NULLs aside) while reading them, at
// no extra pass: a CSV file whose first column rises strictly from line to
// line. The engine then skips its own search for repeats of that key.
type DistinctNoter interface {
	NoteDistinct(column string)
}

// Prover is a Sink that lets a source stage on what the start of its data
// shows and prove the rest while the run goes on: a CSV file's column
// types and ordered keys come from its first rows, and the scan of the
// whole file that proves them runs only when the cores have nothing else
// to do (about 0.1 s of both cores that otherwise delayed every load of a
// 1M-row file).
type Prover interface {
	// Proves reports whether the sink takes a proof now. When it does
	// not, the source proves before it stages, as it always did.
	Proves() bool
	// Prove hands the sink the proof of what the source staged. The run
	// calls prove exactly once, before it reports anything: prove waits
	// for the proof, which then runs at full priority, and returns nil
	// when the staged table is the one a proving stage makes, an error
	// wrapping ErrUnproven when it is not (the run stages again, with
	// the sink taking no proof), or ctx's error, which stops the proof.
	Prove(prove func(ctx context.Context) error)
}

// ErrUnproven is wrapped by a Prover's proof that found the source's data
// other than its start showed: the run must stage it again.
var ErrUnproven = errors.New("the data disproved what its first rows showed")

// RowWriter receives one row at a time from a source, values in column
// order as Go values the DuckDB appender accepts (nil for NULL).
type RowWriter interface {
	WriteRow(values ...driver.Value) error
}

// Total kinds: how far a preview's total_rows can be trusted.
const (
	// TotalExact: total_rows is the number of matching rows.
	TotalExact = "exact"
	// TotalAtLeast: at least total_rows rows match; counting further was
	// not cheap (more than the count cap matched, or counting ran past its
	// time budget). The exact count is available on request.
	TotalAtLeast = "at_least"
)

// Defaults of LoadOptions. Measured on a 1M-row Postgres table with
// filters matching about 40 % of it: counting to 1,001 takes about 2 ms, to
// 10,001 about 13 ms, which 32 callers sharing 4 connections wait for in
// turn. The budget bounds a filter that matches few rows of a large table
// without an index (the count must read it all to find them).
const (
	DefaultCountCap    = 1_000
	DefaultCountBudget = 100 * time.Millisecond
)

// ErrCountBudget is returned (wrapped) by BoundedCounter.CountUpTo when the
// count ran past its time budget.
var ErrCountBudget = errors.New("count ran past its time budget")

// BoundedCounter is a Source that can count cheaply: no further than max
// rows and within a time budget, so that a preview of a large table does
// not wait for (or hold a pooled connection through) a full count. Database
// sources implement it; a source that does not is counted with Count.
type BoundedCounter interface {
	// CountUpTo returns min(max, rows matching the filters). A count that
	// runs past budget is stopped by the server and reported as an error
	// wrapping ErrCountBudget; the connection stays usable.
	CountUpTo(ctx context.Context, filters []kalla.Filter, max int64, budget time.Duration) (int64, error)
}

// Prefix is a Source whose previews read only the start of it (a large
// file's first bytes), so that a preview does not wait for a download or a
// full read. Its Columns, Sample and CountUpTo see that prefix; Count and
// Stage see the whole source.
type Prefix interface {
	// Whole reports whether the prefix previews read is the whole source.
	Whole(ctx context.Context) (bool, error)
	// PrefixSource returns that prefix as a Source of its own, whose Stage
	// stages only it (a recipe preview's sample); it belongs to the
	// source, which closes it.
	PrefixSource(ctx context.Context) (Source, error)
}

// RowCounter is a Source that may know its exact row count without reading
// its rows, as a Parquet file's footer holds it: an unfiltered preview's
// total is then exact at no cost.
type RowCounter interface {
	// KnownRows returns the source's row count, and ok false when it is
	// not known without reading the rows.
	KnownRows(ctx context.Context) (n int64, ok bool, err error)
}

// Preview is a scoped load: a sample of rows under filters with their
// total, exact or a lower bound as TotalKind says. Field names are the
// API's.
type Preview struct {
	Columns   []kalla.Column `json:"columns"`
	Rows      [][]*string    `json:"rows"`
	TotalRows int64          `json:"total_rows"`
	// TotalKind is TotalExact or TotalAtLeast; TotalExact repeats it as a
	// boolean for clients that only need to know whether to say "about".
	TotalKind   string `json:"total_kind"`
	TotalExact  bool   `json:"total_exact"`
	PreviewRows int    `json:"preview_rows"`
}

// LoadOptions say how hard a scoped load works for its total.
type LoadOptions struct {
	// ExactTotal counts every matching row, however long it takes.
	ExactTotal bool
	// CountCap is the most rows a bounded count counts before answering
	// "more than CountCap"; 0 means DefaultCountCap.
	CountCap int64
	// CountBudget is the time a bounded count may take; 0 means
	// DefaultCountBudget.
	CountBudget time.Duration
}

// Total returns the number of rows of src matching the filters and its
// kind (TotalExact or TotalAtLeast), as a preview answers it, given that a
// sample of at most limit rows under the filters held sampled rows: see
// LoadWith. Zero fields of opts take their defaults.
func Total(ctx context.Context, src Source, filters []kalla.Filter, sampled, limit int64, opts LoadOptions) (n int64, kind string, err error) {
	if opts.CountCap <= 0 {
		opts.CountCap = DefaultCountCap
	}
	if opts.CountBudget <= 0 {
		opts.CountBudget = DefaultCountBudget
	}
	bc, bounded := src.(BoundedCounter)
	whole := true
	pf, prefix := src.(Prefix)
	if prefix && !opts.ExactTotal {
		if whole, err = pf.Whole(ctx); err != nil {
			return 0, "", err
		}
	}
	if rc, ok := src.(RowCounter); ok && len(filters) == 0 && !whole {
		n, known, err := rc.KnownRows(ctx)
		if err != nil || known {
			return n, TotalExact, err
		}
	}
	switch {
	case !whole && bounded:
		if n, err = bc.CountUpTo(ctx, filters, opts.CountCap+1, opts.CountBudget); err != nil && !errors.Is(err, ErrCountBudget) {
			return 0, "", err
		}
		return max(n, sampled), TotalAtLeast, nil
	case sampled < limit && !opts.ExactTotal:
		return sampled, TotalExact, nil
	case bounded && !prefix && !opts.ExactTotal:
		n, err := bc.CountUpTo(ctx, filters, opts.CountCap+1, opts.CountBudget)
		switch {
		case errors.Is(err, ErrCountBudget):
			return sampled, TotalAtLeast, nil
		case err != nil:
			return 0, "", err
		case n > opts.CountCap:
			return n, TotalAtLeast, nil
		}
		return n, TotalExact, nil
	}
	if n, err = src.Count(ctx, filters); err != nil {
		return 0, "", err
	}
	return n, TotalExact, nil
}

// Load performs a scoped load with the default LoadOptions: the sample, and
// a total that is exact when it is cheap and a labelled lower bound
// otherwise. See LoadWith.
func Load(ctx context.Context, src Source, name string, filters []kalla.Filter, limit int) (*Preview, error) {
	return LoadWith(ctx, src, name, filters, limit, LoadOptions{})
}

// LoadWith performs a scoped load: it validates the filters against the
// source's real columns, clamps limit to [1, MaxLimit] (0 means
// DefaultLimit), and returns the sample with the number of matching rows.
// The sample is read first. When it holds fewer than limit rows it is every
// matching row, and its length is the exact total at no further cost.
// Otherwise a BoundedCounter counts up to CountCap+1 rows within
// CountBudget: a count within the cap is exact; beyond it the total is "at
// least CountCap+1", and past the budget "at least the sample". With
// ExactTotal, or for a source that cannot bound its count, Count gives the
// exact total. A Prefix source whose prefix is not the whole source
// answers the rows matching in the prefix, as "at least"; one whose prefix
// is whole is counted exactly, the rows being at hand; without filters a
// RowCounter that knows its row count answers it, exactly.
func LoadWith(ctx context.Context, src Source, name string, filters []kalla.Filter, limit int, opts LoadOptions) (*Preview, error) {
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
	rows, err := src.Sample(ctx, filters, limit)
	if err != nil {
		return nil, err
	}
	if rows == nil {
		rows = [][]*string{}
	}
	p := &Preview{Columns: cols, Rows: rows, PreviewRows: len(rows)}
	if p.TotalRows, p.TotalKind, err = Total(ctx, src, filters, int64(len(rows)), int64(limit), opts); err != nil {
		return nil, err
	}
	p.TotalExact = p.TotalKind == TotalExact
	return p, nil
}
