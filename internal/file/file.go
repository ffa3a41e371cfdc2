package file

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
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
}

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
}

// Source is a CSV or Parquet file. It implements connector.Source.
type Source struct {
	uri     string // as given, for messages (redacted when printed)
	path    string // local path, once fetched
	typ     string
	opts    Options
	cleanup func()

	mu      sync.Mutex
	preview *previewDB // private DuckDB holding the file for Columns/Count/Sample
	plan    *csvPlan   // what was learned of a CSV file (header, sniffed types)
}

var _ connector.Source = (*Source)(nil)

// Open returns a Source for uri. Local files are checked to exist; remote
// ones are fetched with opts.Fetcher. Errors: ENOTFOUND for a missing file,
// EINVALID for an unsupported URI or type.
func Open(ctx context.Context, uri string, opts Options) (*Source, error) {
	s := &Source{uri: uri, opts: opts}
	s.typ = strings.ToLower(opts.Type)
	if s.typ == "" {
		s.typ = kalla.TypeFromURI(uri)
	}
	if s.typ != kalla.SourceCSV && s.typ != kalla.SourceParquet {
		return nil, kalla.Errorf(kalla.EINVALID, "source %s: cannot tell whether it is CSV or Parquet: give the type (csv or parquet)", kalla.RedactURI(uri))
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
			return nil, kalla.Errorf(kalla.EINVALID, "source %s: remote files are not enabled here", kalla.RedactURI(uri))
		}
		p, cleanup, err := opts.Fetcher.Fetch(ctx, uri)
		if err != nil {
			return nil, err
		}
		path, s.cleanup = p, cleanup
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
	return s, nil
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
		return u.Path, false, nil
	case strings.HasPrefix(lower, "s3://"), strings.HasPrefix(lower, "https://"), strings.HasPrefix(lower, "http://"):
		return "", true, nil
	case strings.Contains(lower, "://"):
		return "", false, kalla.Errorf(kalla.EINVALID, "source %s: unsupported scheme for a file source (use a path, file://, s3:// or https://)", kalla.RedactURI(uri))
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
	s.mu.Lock()
	defer s.mu.Unlock()
	var err error
	if s.preview != nil {
		err = s.preview.close()
		s.preview = nil
	}
	if s.cleanup != nil {
		s.cleanup()
		s.cleanup = nil
	}
	return err
}

func (s *Source) name() string { return kalla.RedactURI(s.uri) }

// Stage loads the file into the sink's table, applying the filters.
func (s *Source) Stage(ctx context.Context, filters []kalla.Filter, sink connector.Sink) (int64, error) {
	return s.load(ctx, sink, sink.Table(), filters)
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
	var err error
	switch s.typ {
	case kalla.SourceCSV:
		cols, err = s.loadCSV(ctx, x, table)
	default:
		cols, err = s.loadParquet(ctx, x, table)
	}
	if err != nil {
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

func (s *Source) loadParquet(ctx context.Context, x execer, table string) ([]kalla.Column, error) {
	if _, err := x.ExecContext(ctx, "CREATE TABLE "+table+" AS SELECT * FROM read_parquet(?)", s.path); err != nil {
		return nil, s.queryError(err, "read Parquet")
	}
	cols, err := describe(ctx, x, table)
	if err != nil {
		return nil, err
	}
	for name, typ := range s.opts.Schema {
		i := kalla.FindColumn(cols, name)
		if i < 0 {
			return nil, kalla.Errorf(kalla.EINVALID, "source %s: schema names column %q, which the file does not have (columns: %s)", s.name(), name, kalla.ColumnNames(cols))
		}
		q := fmt.Sprintf("ALTER TABLE %s ALTER %s TYPE %s", table, dialect.DuckDB.QuoteIdent(cols[i].Name), typ)
		if _, err := x.ExecContext(ctx, q); err != nil {
			return nil, kalla.WrapError(kalla.EINVALID, cleanDuckErr(err), "source %s: cannot convert column %q to %s", s.name(), cols[i].Name, typ)
		}
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
			if strings.HasPrefix(l, "Line:") || strings.HasPrefix(l, "Original Line:") || strings.HasPrefix(l, "Column ") {
				msg += "; " + l
			}
		}
	}
	return errors.New(msg)
}
