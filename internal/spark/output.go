package spark

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"

	"github.com/apache/arrow-go/v18/parquet/file"
	"github.com/apache/spark-connect-go/spark/sql/types"

	"github.com/kalla-recon/kalla/internal/engine"
	"github.com/kalla-recon/kalla/internal/kalla"
	"github.com/kalla-recon/kalla/internal/objstore"
)

// dest is where a run's outputs go: a local folder the cluster shares, or
// an s3:// prefix. Spark's executors write the tables either way (as
// file:// or s3a:// paths); Kalla only writes summary.json, last, and
// removes what a failed run started.
type dest struct {
	// dir is the absolute local folder; empty for S3.
	dir string
	// store reaches the S3 prefix (summary.json, listing, cleanup) with
	// Kalla's own S3 credentials; nil for a local folder.
	store *objstore.Store
	// uri is the s3://bucket/prefix as given, without a trailing slash.
	uri string
	// base is what Spark writes under: file:///dir or s3a://bucket/prefix.
	base string
}

// isS3 reports whether out names an S3 prefix rather than a local folder.
func isS3(out string) bool {
	return strings.HasPrefix(out, "s3://") || strings.HasPrefix(out, "s3a://")
}

// openDest checks the output location and clears its summary, so a run
// that fails later leaves none. S3 needs Kalla's S3 settings (s3cfg, read
// from the environment when nil) for the summary; the cluster needs its
// own s3a credentials for the tables. Errors: EINVALID for a location that
// is neither, EUNAVAILABLE/ENOTFOUND from S3.
func (e *Engine) openDest(ctx context.Context, out string) (*dest, error) {
	if isS3(out) {
		rest := out[strings.Index(out, "://")+3:]
		bucket, prefix, _ := strings.Cut(rest, "/")
		prefix = strings.Trim(prefix, "/")
		if bucket == "" || strings.Contains(bucket, "@") {
			return nil, kalla.Errorf(kalla.EINVALID, "output location %s is not s3://bucket/prefix (credentials do not belong in the URI)", kalla.Redact(out))
		}
		cfg := e.opts.S3
		if cfg == nil {
			c, err := objstore.S3ConfigFromEnv()
			if err != nil {
				return nil, err
			}
			cfg = &c
		}
		keyPrefix := ""
		if prefix != "" {
			keyPrefix = prefix + "/"
		}
		st, err := objstore.NewStore(*cfg, bucket, keyPrefix)
		if err != nil {
			return nil, err
		}
		d := &dest{store: st, uri: "s3://" + bucket + "/" + prefix, base: "s3a://" + bucket + "/" + prefix}
		if prefix == "" {
			d.uri, d.base = "s3://"+bucket, "s3a://"+bucket
		}
		if err := st.Remove(ctx, engine.SummaryFile); err != nil {
			return nil, fmt.Errorf("output location %s: %w", d.uri, err)
		}
		// A rules run killed before its cleanup left its working tables.
		if err := st.RemoveAll(ctx, scratchPrefix); err != nil {
			return nil, fmt.Errorf("output location %s: remove stale scratch folders: %w", d.uri, err)
		}
		return d, nil
	}
	if strings.Contains(out, "://") {
		return nil, kalla.Errorf(kalla.EINVALID, "the Spark engine writes to a local folder the cluster shares or an s3:// prefix; %s is neither", kalla.Redact(out))
	}
	abs, err := filepath.Abs(out)
	if err != nil {
		return nil, fmt.Errorf("output folder: %w", err)
	}
	if err := os.MkdirAll(abs, 0o755); err != nil {
		return nil, kalla.WrapError(kalla.EINVALID, err, "cannot create output folder %s", abs)
	}
	if err := os.Remove(filepath.Join(abs, engine.SummaryFile)); err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("remove old summary: %w", err)
	}
	// A rules run killed before its cleanup left its working tables.
	stale, _ := filepath.Glob(filepath.Join(abs, scratchPrefix+"*"))
	for _, p := range stale {
		if err := os.RemoveAll(p); err != nil {
			return nil, fmt.Errorf("remove stale %s: %w", filepath.Base(p), err)
		}
	}
	return &dest{dir: abs, base: "file://" + abs}, nil
}

// writeSummary writes summary.json, the last file of a run: its presence
// marks a complete set of outputs.
func (d *dest) writeSummary(ctx context.Context, sum *kalla.Summary) error {
	if d.store == nil {
		return kalla.WriteJSONAtomic(filepath.Join(d.dir, engine.SummaryFile), sum)
	}
	b, err := json.MarshalIndent(sum, "", "  ")
	if err != nil {
		return fmt.Errorf("encode %s: %w", engine.SummaryFile, err)
	}
	b = append(b, '\n')
	// An S3 PUT is atomic: readers see the whole object or none.
	if _, err := d.store.Put(ctx, engine.SummaryFile, bytes.NewReader(b), int64(len(b))); err != nil {
		return fmt.Errorf("write %s: %w", engine.SummaryFile, err)
	}
	return nil
}

// csvWriteOptions make Spark's CSV as DuckDB's COPY ... (FORMAT csv,
// HEADER true) writes it: a header in every part, quotes doubled, NULL as
// an empty field, an empty string as "", dates and timestamps in ISO order
// with a space. Spark's CSV writer trims blanks around every value unless
// told not to (its reader does not): " A6" would be written as "A6".
const csvWriteOptions = `header 'true', sep ',', quote '"', escape '"', nullValue '', emptyValue '""', ` +
	`ignoreLeadingWhiteSpace 'false', ignoreTrailingWhiteSpace 'false', ` +
	`dateFormat 'yyyy-MM-dd', timestampNTZFormat 'yyyy-MM-dd HH:mm:ss[.SSSSSS]', timestampFormat 'yyyy-MM-dd HH:mm:ss[.SSSSSS]XXX'`

// csvQuery returns query with its timestamp columns rendered as DuckDB's
// CSV writer renders them: the fraction of a second without its trailing
// zeros, none when it is zero ("2026-01-01 00:00:00.1", "... 10:20:30").
// Spark's timestampFormat always prints the digits it names (".100000",
// ".000000"), so the same record would read differently from each engine.
// A timestamp with a time zone is shown in the session's zone (UTC, see
// configure) with DuckDB's "+00". Other columns are written as they are.
func (r *run) csvQuery(ctx context.Context, query string) (string, error) {
	df, err := r.sql(ctx, query)
	if err != nil {
		return "", err
	}
	st, err := df.Schema(ctx)
	if err != nil {
		return "", sparkError(err)
	}
	sel := make([]string, len(st.Fields))
	changed := false
	for i, f := range st.Fields {
		c := "q." + qi(f.Name)
		sel[i] = c
		switch f.DataType.(type) {
		case types.TimestampNtzType:
			sel[i], changed = fmt.Sprintf("%s AS %s", trimmedTimestamp(c), qi(f.Name)), true
		case types.TimestampType:
			sel[i], changed = fmt.Sprintf("concat(%s, '+00') AS %s", trimmedTimestamp(c), qi(f.Name)), true
		}
	}
	if !changed {
		return query, nil
	}
	return fmt.Sprintf("SELECT %s FROM (%s) AS q", strings.Join(sel, ", "), query), nil
}

// trimmedTimestamp renders a timestamp with six digits of fraction, then
// drops the trailing zeros and, when nothing is left of the fraction, its
// point. NULL stays NULL.
func trimmedTimestamp(col string) string {
	return fmt.Sprintf(`regexp_replace(date_format(%s, 'yyyy-MM-dd HH:mm:ss.SSSSSS'), '\\.?0+$', '')`, col)
}

// write has Spark write each table in each format as a folder of part
// files (matched.parquet/, unmatched_left.csv/, ...): locally under
// temporary names renamed once all are complete, on S3 in place (S3 has
// no rename; summary.json, written after, is what marks them complete).
// Every file is listed with its size, SHA-256 and rows.
func (r *run) write(ctx context.Context, d *dest, m *matchResult, left, right *side) (_ []kalla.OutputFile, err error) {
	type out struct {
		table string
		query string
		rows  int64
	}
	outs := []out{
		{engine.TableMatched, m.matchedQuery, m.pairs},
		{engine.TableUnmatchedLeft, unmatchedQuery(left, m, engine.LeftRidColumn), left.count - m.leftRecords},
		{engine.TableUnmatchedRight, unmatchedQuery(right, m, engine.RightRidColumn), right.count - m.rightRecords},
	}
	if m.plan != nil {
		// Unmatched records with their reasons, and the breaks.
		outs[1].query, outs[2].query = m.unmatched[0], m.unmatched[1]
		outs = append(outs, out{engine.TableBreaks, m.plan.BreaksQuery(), m.breaks})
	}
	if r.job.Records {
		for i, s := range []*side{left, right} {
			q, err := matchedRecordsQuery(s, []string{engine.LeftRidColumn, engine.RightRidColumn}[i], []string{kalla.LeftRowColumn, kalla.RightRowColumn}[i])
			if err != nil {
				return nil, err
			}
			outs = append(outs, out{[]string{engine.TableMatchedLeft, engine.TableMatchedRight}[i], q, []int64{m.leftRecords, m.rightRecords}[i]})
		}
	}
	formats := r.job.Formats
	if len(formats) == 0 {
		formats = []string{kalla.FormatParquet}
	}
	var started []string // folder names (local: partial paths)
	defer func() {
		if err == nil {
			return // local partial folders were renamed
		}
		for _, s := range started {
			if d.store == nil {
				os.RemoveAll(s) // no-op once renamed
				continue
			}
			// A cancelled run's context is done; the cleanup gets its own.
			cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cleanupTimeout)
			if rerr := d.store.RemoveAll(cctx, s+"/"); rerr != nil {
				r.e.log.Warn("spark remove failed output", "folder", s, "err", kalla.RedactError(rerr))
			}
			cancel()
		}
	}()
	var files []kalla.OutputFile
	for _, o := range outs {
		for _, f := range formats {
			name := o.table + "." + f
			target := d.base + "/" + name
			if d.store == nil {
				partial := kalla.PartialPath(filepath.Join(d.dir, name))
				if err := os.RemoveAll(partial); err != nil {
					return nil, fmt.Errorf("remove stale %s: %w", filepath.Base(partial), err)
				}
				started = append(started, partial)
				target = "file://" + partial
			} else {
				started = append(started, name)
			}
			using, query := "parquet", o.query
			if f == kalla.FormatCSV {
				using = "csv OPTIONS (" + csvWriteOptions + ")"
				if query, err = r.csvQuery(ctx, o.query); err != nil {
					return nil, fmt.Errorf("write %s: %w", name, err)
				}
			}
			if err := r.exec(ctx, fmt.Sprintf("INSERT OVERWRITE DIRECTORY %s USING %s %s", sparkString(target), using, query)); err != nil {
				return nil, fmt.Errorf("write %s: %w", name, err)
			}
			fs, n, err := r.digest(ctx, d, target, name, o.table, f)
			if err != nil {
				return nil, err
			}
			if n != o.rows {
				return nil, fmt.Errorf("write %s: wrote %d rows, expected %d", name, n, o.rows)
			}
			files = append(files, fs...)
		}
	}
	if d.store == nil {
		for _, p := range started {
			final := filepath.Join(d.dir, strings.TrimSuffix(strings.TrimPrefix(filepath.Base(p), "."), ".partial"))
			if err := os.RemoveAll(final); err != nil {
				return nil, fmt.Errorf("replace %s: %w", filepath.Base(final), err)
			}
			if err := os.Rename(p, final); err != nil {
				return nil, fmt.Errorf("finish %s: %w", filepath.Base(final), err)
			}
		}
	}
	return files, nil
}

// digest lists the files written under target (named name/<file> in the
// summary) with their sizes, SHA-256 and rows, and returns the rows in
// all. A local folder is read here; on S3 the executors hash the parts
// (Spark's binaryFile source) and count their rows, so no output passes
// through Kalla, and Kalla's listing of the prefix proves nothing else
// was written there.
func (r *run) digest(ctx context.Context, d *dest, target, name, table, format string) ([]kalla.OutputFile, int64, error) {
	if d.store == nil {
		dir := strings.TrimPrefix(target, "file://")
		files, total, err := folderDigest(dir, name, table, format)
		if err != nil || format == kalla.FormatParquet {
			return files, total, err
		}
		rows, err := r.partRows(ctx, target, format)
		if err != nil {
			return nil, 0, fmt.Errorf("read back %s: %w", name, err)
		}
		total = 0
		for i := range files {
			if files[i].Format == format {
				files[i].Rows = rows[path.Base(files[i].Name)]
				total += files[i].Rows
			}
		}
		return files, total, nil
	}
	hashes, err := r.sparkDigest(ctx, target)
	if err != nil {
		return nil, 0, fmt.Errorf("read back %s: %w", name, err)
	}
	rows, err := r.partRows(ctx, target, format)
	if err != nil {
		return nil, 0, fmt.Errorf("read back %s: %w", name, err)
	}
	objs, err := d.store.List(ctx, name+"/")
	if err != nil {
		return nil, 0, fmt.Errorf("list %s: %w", name, err)
	}
	var files []kalla.OutputFile
	var total int64
	for _, o := range objs {
		if strings.HasSuffix(o.URI, "/") {
			continue // an s3a directory marker: an empty object, no file
		}
		base := path.Base(o.URI)
		h, ok := hashes[base]
		if !ok || h.size != o.Size {
			// Spark skips names starting with _ or . (its _SUCCESS
			// marker, which the session turns off): nothing may be
			// written that the summary cannot vouch for.
			return nil, 0, fmt.Errorf("write %s: %s was written but could not be checksummed", name, base)
		}
		f := kalla.OutputFile{Name: name + "/" + base, Table: table, Format: format, Bytes: h.size, SHA256: h.sha, Rows: rows[base]}
		total += f.Rows
		files = append(files, f)
	}
	if len(files) != len(hashes) {
		return nil, 0, fmt.Errorf("write %s: Spark read %d files, the S3 listing has %d", name, len(hashes), len(files))
	}
	return files, total, nil
}

// fileHash is one file's size and SHA-256 as the executors computed them.
type fileHash struct {
	size int64
	sha  string
}

// sparkDigest has the executors read every file under dir whole (Spark's
// binaryFile source, which holds one file in an executor's memory: parts
// stay small, see spark.sql.files.maxRecordsPerFile in configure) and
// return its size and SHA-256, by file name.
func (r *run) sparkDigest(ctx context.Context, dir string) (map[string]fileHash, error) {
	df, err := r.s.sql.Read().Format("binaryFile").Load(dir)
	if err != nil {
		return nil, sparkError(err)
	}
	df, err = df.SelectExpr(ctx, "path", "length", "sha2(content, 256)")
	if err != nil {
		return nil, sparkError(err)
	}
	rows, err := r.collect(ctx, df, "digest")
	if err != nil {
		return nil, err
	}
	out := map[string]fileHash{}
	for _, row := range rows {
		v := row.Values()
		p, _ := v[0].(string)
		sha, _ := v[2].(string)
		out[path.Base(p)] = fileHash{size: toInt64(v[1]), sha: sha}
	}
	return out, nil
}

// partRows reads the written files back with Spark and counts each one's
// rows, by file name (CSV rows may span lines: only a CSV reader counts
// them right).
func (r *run) partRows(ctx context.Context, dir, format string) (map[string]int64, error) {
	rd := r.s.sql.Read().Format(format)
	if format == kalla.FormatCSV {
		rd = rd.Option("header", "true").Option("multiLine", "true").Option("quote", `"`).Option("escape", `"`).Option("inferSchema", "false")
	}
	df, err := rd.Load(dir)
	if err != nil {
		return nil, sparkError(err)
	}
	df, err = df.SelectExpr(ctx, "_metadata.file_name AS __kalla_file")
	if err != nil {
		return nil, sparkError(err)
	}
	view := fmt.Sprintf("__kalla_readback%d", len(r.created))
	if err := df.CreateTempView(ctx, view, true, false); err != nil {
		return nil, sparkError(err)
	}
	r.created = append(r.created, view)
	res, err := r.sql(ctx, "SELECT __kalla_file, count(*) FROM "+qi(view)+" GROUP BY __kalla_file")
	if err != nil {
		return nil, err
	}
	rows, err := r.collect(ctx, res, "readback")
	if err != nil {
		return nil, err
	}
	out := map[string]int64{}
	for _, row := range rows {
		v := row.Values()
		n, _ := v[0].(string)
		out[n] = toInt64(v[1])
	}
	return out, nil
}

// folderDigest lists every file Spark wrote in dir (part files, and its
// _SUCCESS and checksum files), with its size and SHA-256, and counts the
// rows of Parquet parts from their footers (CSV parts are counted by the
// caller).
func folderDigest(dir, name, table, format string) ([]kalla.OutputFile, int64, error) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, 0, fmt.Errorf("list %s: %w", name, err)
	}
	sort.Slice(ents, func(i, j int) bool { return ents[i].Name() < ents[j].Name() })
	var files []kalla.OutputFile
	var total int64
	for _, ent := range ents {
		if !ent.Type().IsRegular() {
			return nil, 0, fmt.Errorf("write %s: unexpected entry %s", name, ent.Name())
		}
		p := filepath.Join(dir, ent.Name())
		f := kalla.OutputFile{Name: name + "/" + ent.Name(), Table: table, Format: format}
		switch {
		case strings.HasPrefix(ent.Name(), ".") || strings.HasPrefix(ent.Name(), "_"):
			f.Format = "meta"
		case format == kalla.FormatParquet:
			pf, err := file.OpenParquetFile(p, false)
			if err != nil {
				return nil, 0, fmt.Errorf("read back %s: %w", f.Name, err)
			}
			f.Rows = pf.NumRows()
			pf.Close()
			total += f.Rows
		}
		if f.Bytes, f.SHA256, err = kalla.FileDigest(p); err != nil {
			return nil, 0, err
		}
		files = append(files, f)
	}
	return files, total, nil
}
