package file

import (
	"bufio"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"github.com/kalla-recon/kalla/internal/connector"
	"github.com/kalla-recon/kalla/internal/dialect"
	"github.com/kalla-recon/kalla/internal/kalla"
)

// Fetcher streams a remote object (s3://, https://) to a local file and
// returns its path and a function that removes it.
type Fetcher interface {
	Fetch(ctx context.Context, uri string) (path string, cleanup func(), err error)
	// FetchPrefix fetches at most n bytes from the object's start (a
	// ranged read); whole says whether that is the whole object.
	FetchPrefix(ctx context.Context, uri string, n int64) (path string, whole bool, cleanup func(), err error)
	// OpenRange opens the object for reads by ranges (each ReadAt a
	// ranged read of just those bytes) and returns its size; an error
	// wrapping errors.ErrUnsupported means the server cannot serve ranges.
	OpenRange(ctx context.Context, uri string) (r io.ReaderAt, size int64, err error)
}

// DefaultSampleBytes is how much of a CSV file's start a preview reads.
const DefaultSampleBytes = 8 << 20

// Options configure a file source.
type Options struct {
	// Type is kalla.SourceCSV or kalla.SourceParquet; empty means infer
	// from the URI.
	Type string
	// Schema overrides inferred column types: column name to DuckDB type.
	Schema map[string]string
	// CSV holds dialect settings.
	CSV *kalla.CSVOptions
	// BaseDir resolves relative paths (a recipe's folder); empty means the
	// working directory.
	BaseDir string
	// Fetcher fetches non-local URIs; nil refuses them.
	Fetcher Fetcher
	// TempDir receives the UTF-8 copy of a CSV file in another encoding
	// (CSV.Encoding), removed by Close; empty means the system's
	// temporary folder.
	TempDir string
	// SampleBytes is how much of a file's start previews (Columns,
	// Sample, CountUpTo) read: a CSV file's first SampleBytes, cut at the
	// last whole line (decompressed bytes for a compressed one); a Parquet
	// file's footer and the first row groups that end within SampleBytes
	// of its start (at least one). 0 means DefaultSampleBytes. Count and
	// Stage read the whole file, except that a Parquet file's unfiltered
	// count is its footer's.
	SampleBytes int64
}

// Source is a CSV or Parquet file. It implements connector.Source, and
// connector.Prefix: a file is previewed from a sample of its start (ranged
// reads for a remote one: a CSV file's first bytes, a Parquet file's footer
// and first row groups), read whole only to count it exactly or stage it.
type Source struct {
	uri     string // as given, for messages (redacted when printed)
	path    string // local path; for a remote file, once fetched whole
	remote  bool
	typ     string
	opts    Options
	cleanup func()

	mu      sync.Mutex
	preview *previewDB // private DuckDB holding the file for Columns/Count/Sample
	plan    *csvPlan   // what was learned of a CSV file (header, sniffed types)

	fetchMu sync.Mutex // serializes the whole fetch of a remote file

	sampleMu    sync.Mutex
	sample      *Source // the file's start, as its own source; s itself when that is the whole file
	sampleWhole bool
	isSample    bool
	footerRows  int64 // a Parquet file's row count, from its footer, once rowsKnown
	rowsKnown   bool

	codec  string // a compressed CSV file's codec (codecGzip, ...); "" for a plain file
	packed string // a local compressed file, decompressed into path when first read whole
}

var (
	_ connector.Source         = (*Source)(nil)
	_ connector.Prefix         = (*Source)(nil)
	_ connector.BoundedCounter = (*Source)(nil)
	_ connector.RowCounter     = (*Source)(nil)
)

// Open returns a Source for uri. Local files are checked to exist; remote
// ones are fetched with opts.Fetcher when first read: a preview fetches
// only the start of the file (see Options.SampleBytes). Errors: ENOTFOUND for a missing file,
// EINVALID for an unsupported URI or type.
func Open(ctx context.Context, uri string, opts Options) (*Source, error) {
	s := &Source{uri: uri, opts: opts}
	s.typ = strings.ToLower(opts.Type)
	if s.typ == "" {
		s.typ = kalla.TypeFromURI(uri)
	}
	if s.typ != kalla.SourceCSV && s.typ != kalla.SourceParquet {
		return nil, kalla.Errorf(kalla.EINVALID, "source %s: cannot tell whether it is CSV or Parquet: give the type (csv or parquet)", kalla.Excerpt(kalla.Redact(uri)))
	}
	path, remote, err := localPath(uri, opts.BaseDir)
	if err != nil {
		return nil, err
	}
	if err := kalla.CheckNotPartial(uri); err != nil {
		return nil, err
	}
	if remote {
		if opts.Fetcher == nil {
			return nil, kalla.Errorf(kalla.EINVALID, "source %s: remote files are not enabled here", kalla.Excerpt(kalla.Redact(uri)))
		}
		s.remote = true
	} else {
		st, err := os.Stat(path)
		switch {
		case errors.Is(err, os.ErrNotExist):
			return nil, kalla.Errorf(kalla.ENOTFOUND, "source %s: file %s does not exist", uri, path)
		case err != nil:
			return nil, kalla.WrapError(kalla.EUNAVAILABLE, err, "source %s: cannot read %s", uri, path)
		case st.IsDir():
			return nil, kalla.Errorf(kalla.EINVALID, "source %s: %s is a directory, not a file", uri, path)
		}
		// A link must not lead to a partial file either.
		if real, err := filepath.EvalSymlinks(path); err == nil && kalla.IsPartialPath(real) {
			return nil, kalla.WrapError(kalla.EINVALID, kalla.ErrPartialFile, "source %s: %s leads to %s, which cannot be read", uri, path, real)
		}
	}
	s.path = path
	if s.typ == kalla.SourceCSV {
		if s.codec, err = codecOf(uri); err != nil {
			return nil, err
		}
	}
	if s.codec != "" {
		// Decompressed when first read whole (fetchWhole), then
		// transcoded if need be; a preview decompresses only the start.
		if !remote {
			s.packed, s.path = path, ""
		}
		return s, nil
	}
	// A remote file is transcoded once fetched (fetchWhole, sampled).
	if c := opts.CSV; s.typ == kalla.SourceCSV && !remote && c != nil && c.Encoding != "" && c.Encoding != kalla.EncodingUTF8 {
		utf8Path, remove, err := s.transcode(path, c.Encoding, opts.TempDir)
		if err != nil {
			s.Close()
			return nil, err
		}
		s.path = utf8Path
		fetched := s.cleanup
		s.cleanup = func() {
			remove()
			if fetched != nil {
				fetched()
			}
		}
	}
	return s, nil
}

// CheckURI checks a local file-source URI without opening it: a file://
// URI takes no parameters; a plain path has none (a "?" in it is part of
// the file's name). Remote URIs are objstore's to check. Errors: EINVALID.
func CheckURI(uri string) error {
	_, _, err := localPath(uri, "")
	return err
}

// localPath resolves uri to a local path, or reports that it is remote.
func localPath(uri, base string) (path string, remote bool, err error) {
	lower := strings.ToLower(uri)
	switch {
	case strings.HasPrefix(lower, "file://"):
		u, err := url.Parse(uri)
		if err != nil {
			return "", false, kalla.Errorf(kalla.EINVALID, "source %s: invalid file URI: %v", uri, err)
		}
		if u.Host != "" && u.Host != "localhost" {
			return "", false, kalla.Errorf(kalla.EINVALID, "source %s: file URIs must name a local path (file:///path)", uri)
		}
		if u.RawQuery != "" || u.ForceQuery || u.Fragment != "" {
			return "", false, kalla.Errorf(kalla.EINVALID, "source %s: file:// URIs take no parameters (no \"?\" or \"#\"); a local path may be given as is", kalla.Excerpt(kalla.Redact(uri)))
		}
		return u.Path, false, nil
	case strings.HasPrefix(lower, "s3://"), strings.HasPrefix(lower, "https://"), strings.HasPrefix(lower, "http://"):
		return "", true, nil
	case strings.Contains(lower, "://"):
		return "", false, kalla.Errorf(kalla.EINVALID, "source %s: unsupported scheme for a file source (use a path, file://, s3:// or https://)", kalla.Excerpt(kalla.Redact(uri)))
	}
	if !filepath.IsAbs(uri) && base != "" {
		return filepath.Join(base, uri), false, nil
	}
	return uri, false, nil
}

// Path returns the local path the source reads.
func (s *Source) Path() string { return s.path }

// Close removes a fetched temporary file and the preview database.
func (s *Source) Close() error {
	s.sampleMu.Lock()
	var err error
	if s.sample != nil && s.sample != s {
		err = s.sample.Close()
	}
	s.sample = nil
	s.sampleMu.Unlock()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.preview != nil {
		if cerr := s.preview.close(); err == nil {
			err = cerr
		}
		s.preview = nil
	}
	if s.cleanup != nil {
		s.cleanup()
		s.cleanup = nil
	}
	return err
}

func (s *Source) name() string { return kalla.Excerpt(kalla.Redact(s.uri)) }

// Stage loads the file into the sink's table, applying the filters.
func (s *Source) Stage(ctx context.Context, filters []kalla.Filter, sink connector.Sink) (int64, error) {
	if err := s.fetchWhole(ctx); err != nil {
		return 0, err
	}
	return s.load(ctx, sink, sink.Table(), filters)
}

// fetchWhole fetches a remote file whole, and decompresses a compressed
// one (then transcodes it, given an encoding), once.
func (s *Source) fetchWhole(ctx context.Context) error {
	if !s.remote && s.codec == "" {
		return nil
	}
	s.fetchMu.Lock()
	defer s.fetchMu.Unlock()
	s.mu.Lock()
	done := s.path != ""
	s.mu.Unlock()
	if done {
		return nil
	}
	p, cleanup := s.packed, func() {}
	if s.remote {
		var err error
		if p, cleanup, err = s.opts.Fetcher.Fetch(ctx, s.uri); err != nil {
			return err
		}
	}
	if s.codec != "" {
		f, err := os.Open(p)
		if err != nil {
			cleanup()
			return kalla.WrapError(kalla.EUNAVAILABLE, err, "source %s: cannot read %s", s.name(), p)
		}
		plain, _, remove, err := s.inflate(ctx, bufio.NewReaderSize(f, 1<<20), -1, s.opts.TempDir)
		f.Close()
		cleanup()
		if err != nil {
			return err
		}
		p, cleanup = plain, remove
	}
	if c := s.opts.CSV; s.typ == kalla.SourceCSV && c != nil && c.Encoding != "" && c.Encoding != kalla.EncodingUTF8 {
		utf8Path, removeUTF8, err := s.transcode(p, c.Encoding, s.opts.TempDir)
		cleanup()
		if err != nil {
			return err
		}
		p, cleanup = utf8Path, removeUTF8
	}
	s.mu.Lock()
	s.path, s.cleanup = p, cleanup
	s.mu.Unlock()
	return nil
}

// execer is what load needs from a DuckDB connection: a run's sink or the
// preview database.
type execer interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// load creates table (a quoted name) from the file and returns its row count.
func (s *Source) load(ctx context.Context, x execer, table string, filters []kalla.Filter) (int64, error) {
	var cols []kalla.Column
	var p *csvPlan
	var err error
	switch s.typ {
	case kalla.SourceCSV:
		cols, p, err = s.loadCSV(ctx, x, table)
	default:
		cols, err = s.loadParquet(ctx, x, table)
	}
	if err != nil {
		return 0, err
	}
	if err := s.noteDistinct(ctx, x, table, cols, p); err != nil {
		return 0, err
	}
	if len(filters) > 0 {
		// Deleting rows outside the scope keeps the row ids of the rest, so
		// a record's row number stays its position in the file.
		where, args, err := dialect.DuckDB.Where(filters, cols, 1)
		if err != nil {
			return 0, err
		}
		cond := strings.TrimPrefix(where, " WHERE ")
		if _, err := x.ExecContext(ctx, "DELETE FROM "+table+" WHERE NOT coalesce(("+cond+"), false)", args...); err != nil {
			return 0, s.queryError(err, "apply filters")
		}
	}
	var n int64
	if err := x.QueryRowContext(ctx, "SELECT count(*) FROM "+table).Scan(&n); err != nil {
		return 0, fmt.Errorf("count staged rows: %w", err)
	}
	return n, nil
}

// noteDistinct tells a sink that takes note of it (the engine's) that the
// staged table's first column holds no value twice, when the scan of plan
// p proved it: the column is text, read as the file's bytes, and the table
// has a row for every data line the proof walked. Filters applied after
// only remove rows. A plan built on the file's first rows (dataLines
// unknown) is proven later, its rows counted then (see planProof).
func (s *Source) noteDistinct(ctx context.Context, x execer, table string, cols []kalla.Column, p *csvPlan) error {
	noter, ok := x.(connector.DistinctNoter)
	if !ok || s.typ != kalla.SourceCSV || len(cols) == 0 || cols[0].DataType != "VARCHAR" {
		return nil
	}
	if p == nil || !p.firstDistinct || p.header[0] != cols[0].Name {
		return nil
	}
	if p.dataLines < 0 {
		noter.NoteDistinct(cols[0].Name)
		return nil
	}
	var n int64
	if err := x.QueryRowContext(ctx, "SELECT count(*) FROM "+table).Scan(&n); err != nil {
		return fmt.Errorf("count loaded rows: %w", err)
	}
	if n == p.dataLines {
		noter.NoteDistinct(cols[0].Name)
	}
	return nil
}

func (s *Source) loadParquet(ctx context.Context, x execer, table string) ([]kalla.Column, error) {
	if _, err := x.ExecContext(ctx, "CREATE TABLE "+table+" AS SELECT * FROM read_parquet(?)", s.path); err != nil {
		return nil, s.queryError(err, "read Parquet")
	}
	cols, err := describe(ctx, x, table)
	if err != nil {
		return nil, err
	}
	var declared []declaredExact
	orig := map[string]string{}
	for name, typ := range s.opts.Schema {
		i := kalla.FindColumn(cols, name)
		if i < 0 {
			return nil, kalla.Errorf(kalla.EINVALID, "source %s: schema names column %q, which the file does not have (columns: %s)", s.name(), name, kalla.ColumnNames(cols))
		}
		if scale, ok := kalla.ExactScale(typ); ok {
			// Proven first, below: DuckDB's conversion rounds.
			declared = append(declared, declaredExact{name: cols[i].Name, typ: typ, scale: scale})
			orig[cols[i].Name] = cols[i].EngineType
			continue
		}
		q := fmt.Sprintf("ALTER TABLE %s ALTER %s TYPE %s", table, dialect.DuckDB.QuoteIdent(cols[i].Name), typ)
		if _, err := x.ExecContext(ctx, q); err != nil {
			return nil, kalla.WrapError(kalla.EINVALID, cleanDuckErr(err), "source %s: cannot convert column %q to %s", s.name(), cols[i].Name, typ)
		}
	}
	if err := s.convertDeclared(ctx, x, table, declared, orig); err != nil {
		return nil, err
	}
	return describe(ctx, x, table)
}

// describe lists a DuckDB table's columns.
func describe(ctx context.Context, x execer, table string) ([]kalla.Column, error) {
	var raw string
	// One row with the columns as JSON keeps the execer interface small.
	q := "SELECT CAST(to_json(list({'name': column_name, 'type': column_type, 'null': \"null\"})) AS VARCHAR) FROM (DESCRIBE " + table + ")"
	if err := x.QueryRowContext(ctx, q).Scan(&raw); err != nil {
		return nil, fmt.Errorf("describe %s: %w", table, err)
	}
	return parseDescribe(raw)
}

// queryError turns a DuckDB error while reading the file into a user error
// naming the file.
func (s *Source) queryError(err error, what string) error {
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	return kalla.WrapError(kalla.EINVALID, cleanDuckErr(err), "source %s: %s", s.name(), what)
}

// cleanDuckErr keeps the first meaningful line of a DuckDB error: the rest is
// advice about DuckDB options a Kalla user cannot set.
func cleanDuckErr(err error) error {
	msg := err.Error()
	if i := strings.Index(msg, "\n"); i >= 0 {
		rest := msg[i+1:]
		msg = msg[:i]
		// Keep DuckDB's line/position hints, which name the place at fault.
		for _, l := range strings.Split(rest, "\n") {
			l = strings.TrimSpace(l)
			// "Column at position: 0 Set type: VARCHAR Sniffed type:
			// BIGINT" lines are about the types Kalla set on other
			// columns (numbers are read as text, then typed), not the
			// value at fault.
			if strings.HasPrefix(l, "Column at position:") {
				continue
			}
			if strings.HasPrefix(l, "Line:") || strings.HasPrefix(l, "Original Line:") || strings.HasPrefix(l, "Column ") {
				msg += "; " + l
			}
		}
	}
	return errors.New(msg)
}
