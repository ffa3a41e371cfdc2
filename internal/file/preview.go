package file

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/kalla-recon/kalla/internal/connector"
	"github.com/kalla-recon/kalla/internal/dialect"
	"github.com/kalla-recon/kalla/internal/duck"
	"github.com/kalla-recon/kalla/internal/kalla"
	"github.com/kalla-recon/kalla/internal/scratch"
)

// previewDB is a private in-memory DuckDB holding the file, so that
// Columns, Count and Sample see exactly the types a run would stage.
type previewDB struct {
	db   *sql.DB
	cols []kalla.Column
}

func (p *previewDB) close() error { return p.db.Close() }

const previewTable = `"file"`

// open loads the file into the preview database once, fetching a remote
// file whole first.
func (s *Source) open(ctx context.Context) (*previewDB, error) {
	s.mu.Lock()
	p := s.preview
	s.mu.Unlock()
	if p != nil {
		return p, nil
	}
	if err := s.fetchWhole(ctx); err != nil {
		return nil, err
	}
	db, err := duck.Open(ctx)
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

// sampled returns the source previews read: the file itself when it is
// small; for a Parquet file its first row groups (sampledParquet); for a
// compressed CSV file its first Options.SampleBytes decompressed
// (sampledCompressed), cut after its last whole line; else the file's first Options.SampleBytes, cut after
// its last whole line, as a source of its own. whole says whether that is
// the whole file.
func (s *Source) sampled(ctx context.Context) (src *Source, whole bool, err error) {
	if s.isSample {
		return s, true, nil
	}
	s.sampleMu.Lock()
	defer s.sampleMu.Unlock()
	if s.sample != nil {
		return s.sample, s.sampleWhole, nil
	}
	n := s.opts.SampleBytes
	if n <= 0 {
		n = DefaultSampleBytes
	}
	if s.typ == kalla.SourceParquet {
		return s.sampledParquet(ctx, n)
	}
	if s.codec != "" {
		path, whole, cleanup, err := s.sampledCompressed(ctx, n)
		if errors.Is(err, errors.ErrUnsupported) {
			s.sample, s.sampleWhole = s, true // asked once: read whole from now on
			return s, true, nil               // a server without ranges: fetched whole
		}
		if err != nil {
			return nil, false, err
		}
		if !whole {
			if err := cutAtLastLine(path); err != nil {
				cleanup()
				return nil, false, kalla.Errorf(kalla.EINVALID, "source %s: the first line is longer than the %d bytes a preview reads: %v", s.name(), n, err)
			}
		}
		// The start of the file, decompressed, as a plain CSV source.
		opts := s.opts
		if c := opts.CSV; c != nil && c.Encoding != "" && c.Encoding != kalla.EncodingUTF8 {
			utf8Path, remove, err := s.transcode(path, c.Encoding, opts.TempDir)
			cleanup()
			if err != nil {
				return nil, false, err
			}
			path, cleanup = utf8Path, remove
		}
		s.sample = &Source{uri: s.uri, path: path, typ: s.typ, opts: opts, cleanup: cleanup, isSample: true}
		s.sampleWhole = whole
		return s.sample, whole, nil
	}
	s.mu.Lock()
	local := s.path
	s.mu.Unlock()
	var path string
	var cleanup func()
	if local != "" {
		st, err := os.Stat(local)
		if err != nil {
			return nil, false, kalla.WrapError(kalla.EUNAVAILABLE, err, "source %s: cannot read %s", s.name(), local)
		}
		if st.Size() <= n {
			s.sample, s.sampleWhole = s, true
			return s, true, nil
		}
		if path, cleanup, err = copyPrefix(local, n); err != nil {
			return nil, false, kalla.WrapError(kalla.EUNAVAILABLE, err, "source %s: read the start of %s", s.name(), local)
		}
	} else {
		p, whole, c, err := s.opts.Fetcher.FetchPrefix(ctx, s.uri, n)
		if err != nil {
			return nil, false, err
		}
		if whole {
			// The sample is the file: keep it as the whole file too.
			s.mu.Lock()
			if s.path == "" {
				s.path, s.cleanup = p, c
			} else { // fetched whole meanwhile
				c()
			}
			s.mu.Unlock()
			s.sample, s.sampleWhole = s, true
			return s, true, nil
		}
		path, cleanup = p, c
	}
	if err := cutAtLastLine(path); err != nil {
		cleanup()
		return nil, false, kalla.Errorf(kalla.EINVALID, "source %s: the first line is longer than the %d bytes a preview reads: %v", s.name(), n, err)
	}
	// A remote file's start comes as its bytes are (a local file was
	// transcoded when opened): both encodings Kalla reads take one byte a
	// character, so the cut above falls between characters.
	if c := s.opts.CSV; local == "" && s.typ == kalla.SourceCSV && c != nil && c.Encoding != "" && c.Encoding != kalla.EncodingUTF8 {
		utf8Path, remove, err := s.transcode(path, c.Encoding, s.opts.TempDir)
		cleanup()
		if err != nil {
			return nil, false, err
		}
		path, cleanup = utf8Path, remove
	}
	s.sample = &Source{uri: s.uri, path: path, typ: s.typ, opts: s.opts, cleanup: cleanup, isSample: true}
	return s.sample, false, nil
}

// copyPrefix copies the first n bytes of the file at path to a temporary
// file.
func copyPrefix(path string, n int64) (string, func(), error) {
	in, err := os.Open(path)
	if err != nil {
		return "", nil, err
	}
	defer in.Close()
	out, remove, err := scratch.CreateTemp("", "kalla-sample-", "*.csv")
	if err != nil {
		return "", nil, err
	}
	name := out.Name()
	_, err = io.Copy(out, io.LimitReader(in, n))
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		remove()
		return "", nil, err
	}
	return name, remove, nil
}

// cutAtLastLine truncates the file at path after its last newline, so that
// a sample cut mid-line ends with a whole line.
func cutAtLastLine(path string) error {
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return err
	}
	buf := make([]byte, 64<<10)
	for end := st.Size(); end > 0; {
		start := max(end-int64(len(buf)), 0)
		k, err := f.ReadAt(buf[:end-start], start)
		if err != nil && err != io.EOF {
			return err
		}
		if i := bytes.LastIndexByte(buf[:k], '\n'); i >= 0 {
			return f.Truncate(start + int64(i) + 1)
		}
		end = start
	}
	return errors.New("no line break in the sample")
}

// PrefixSource returns what previews read as a source of its own: the
// file itself when previews read it whole. Close closes it with s.
func (s *Source) PrefixSource(ctx context.Context) (connector.Source, error) {
	src, _, err := s.sampled(ctx)
	if err != nil {
		return nil, err
	}
	return src, nil
}

// Whole reports whether previews read the whole file.
func (s *Source) Whole(ctx context.Context) (bool, error) {
	_, whole, err := s.sampled(ctx)
	return whole, err
}

// Columns describes the file's columns with the types inferred from what
// previews read (see Options.SampleBytes).
func (s *Source) Columns(ctx context.Context) ([]kalla.Column, error) {
	src, _, err := s.sampled(ctx)
	if err != nil {
		return nil, err
	}
	p, err := src.open(ctx)
	if err != nil {
		return nil, err
	}
	return append([]kalla.Column(nil), p.cols...), nil
}

// CountUpTo returns min(max, rows matching the filters in what previews
// read), a lower bound of the file's count when Whole is false. The budget
// is not needed: the rows are in memory.
func (s *Source) CountUpTo(ctx context.Context, filters []kalla.Filter, max int64, budget time.Duration) (int64, error) {
	src, _, err := s.sampled(ctx)
	if err != nil {
		return 0, err
	}
	n, err := src.Count(ctx, filters)
	return min(n, max), err
}

// KnownRows returns a Parquet file's row count from its footer, which a
// preview reads anyway; ok is false for a CSV file.
func (s *Source) KnownRows(ctx context.Context) (n int64, ok bool, err error) {
	if s.typ != kalla.SourceParquet {
		return 0, false, nil
	}
	if _, _, err := s.sampled(ctx); err != nil {
		return 0, false, err
	}
	s.sampleMu.Lock()
	defer s.sampleMu.Unlock()
	return s.footerRows, s.rowsKnown, nil
}

// Count returns the number of rows matching the filters in the whole
// file, reading (and for a remote file, fetching) all of it; a Parquet
// file without filters is counted by its footer.
func (s *Source) Count(ctx context.Context, filters []kalla.Filter) (int64, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	if len(filters) == 0 {
		if n, ok, err := s.KnownRows(ctx); err != nil || ok {
			return n, err
		}
	}
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

// Sample returns up to limit rows matching the filters, in file order,
// from what previews read.
func (s *Source) Sample(ctx context.Context, filters []kalla.Filter, limit int) ([][]*string, error) {
	src, _, err := s.sampled(ctx)
	if err != nil {
		return nil, err
	}
	p, err := src.open(ctx)
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
