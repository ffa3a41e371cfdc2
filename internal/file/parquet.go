package file

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/apache/arrow-go/v18/parquet/metadata"

	"github.com/kalla-recon/kalla/internal/kalla"
	"github.com/kalla-recon/kalla/internal/scratch"
)

// footerGuess is how much of a Parquet file's end the first read takes: the
// footer of most files fits, so one read finds it.
const footerGuess = 64 << 10

// parquetSample is what a Parquet preview reads: the file's footer (its
// schema and exact row count) and its first row groups.
type parquetSample struct {
	path    string // a valid Parquet file: the first row groups and a footer naming only them
	cleanup func()
	rows    int64 // the whole file's row count, from its footer
	whole   bool  // the sample holds every row group
}

// readParquetFooter reads the metadata at the end of a Parquet file of size
// bytes through r: one read of its last footerGuess bytes, a second one for
// a larger footer.
func readParquetFooter(r io.ReaderAt, size int64) (*metadata.FileMetaData, error) {
	if size < 12 {
		return nil, fmt.Errorf("%d bytes is too short for a Parquet file", size)
	}
	n := min(size, footerGuess)
	tail := make([]byte, n)
	if _, err := r.ReadAt(tail, size-n); err != nil && !errors.Is(err, io.EOF) {
		return nil, err
	}
	switch magic := string(tail[n-4:]); magic {
	case "PAR1":
	case "PARE":
		return nil, errors.New("the footer is encrypted")
	default:
		return nil, fmt.Errorf("the file does not end with the Parquet magic bytes (%q)", magic)
	}
	flen := int64(binary.LittleEndian.Uint32(tail[n-8:]))
	if flen+12 > size {
		return nil, fmt.Errorf("the footer length %d does not fit in a file of %d bytes", flen, size)
	}
	var raw []byte
	if flen+8 <= n {
		raw = tail[n-8-flen : n-8]
	} else {
		raw = make([]byte, flen)
		if _, err := r.ReadAt(raw, size-8-flen); err != nil && !errors.Is(err, io.EOF) {
			return nil, err
		}
	}
	meta, err := metadata.NewFileMetaData(raw, nil)
	if err != nil {
		return nil, fmt.Errorf("read the footer: %w", err)
	}
	return meta, nil
}

// rowGroupEnd is the offset just past the last byte of a row group's column
// chunks; ok is false when a chunk lives in another file.
func rowGroupEnd(meta *metadata.FileMetaData, i int) (end int64, ok bool) {
	for _, c := range meta.RowGroups[i].Columns {
		if c.IsSetFilePath() || c.MetaData == nil {
			return 0, false
		}
		start := c.MetaData.DataPageOffset
		if d := c.MetaData.DictionaryPageOffset; d != nil && *d > 0 && *d < start {
			start = *d
		}
		end = max(end, start+c.MetaData.TotalCompressedSize)
	}
	return end, true
}

// sampleParquet writes a Parquet file holding the first row groups of the
// file r reads (size bytes long): as many as fit in budget bytes from the
// file's start, at least one. Since a footer locates column chunks by their
// offset in the file, the file's first bytes up to the end of those row
// groups, followed by a footer that names only them, are a valid Parquet
// file with the same schema, read by DuckDB as it reads the original. The
// indexes and Bloom filters that may follow the row groups are dropped from
// the new footer, which would otherwise point past its end. The reads are
// the footer and that prefix: nothing else of the file. errors.ErrUnsupported
// (wrapped) means the file's layout does not allow it (chunks in other files, row
// groups out of order); the caller reads the file whole instead.
func sampleParquet(r io.ReaderAt, size, budget int64) (*parquetSample, error) {
	meta, err := readParquetFooter(r, size)
	if err != nil {
		return nil, err
	}
	groups := []int{}
	var end int64 = 4 // the leading magic bytes
	for i := range meta.RowGroups {
		e, ok := rowGroupEnd(meta, i)
		if !ok {
			return nil, fmt.Errorf("row group %d has a column chunk in another file: %w", i, errors.ErrUnsupported)
		}
		if len(groups) > 0 && max(end, e) > budget {
			break
		}
		if e > size || e < end && len(groups) > 0 {
			return nil, fmt.Errorf("row group %d is not after the one before: %w", i, errors.ErrUnsupported)
		}
		end = max(end, e)
		groups = append(groups, i)
	}
	sub, err := meta.Subset(groups)
	if err != nil {
		return nil, err
	}
	for _, rg := range sub.RowGroups {
		for _, c := range rg.Columns {
			c.OffsetIndexOffset, c.OffsetIndexLength = nil, nil
			c.ColumnIndexOffset, c.ColumnIndexLength = nil, nil
			c.MetaData.BloomFilterOffset, c.MetaData.BloomFilterLength = nil, nil
		}
	}
	var footer bytes.Buffer
	if _, err := sub.WriteTo(&footer, nil); err != nil {
		return nil, fmt.Errorf("write the sample's footer: %w", err)
	}
	out, remove, err := scratch.CreateTemp("", "kalla-sample-", "*.parquet")
	if err != nil {
		return nil, err
	}
	name := out.Name()
	// Large reads: for a remote file each is one ranged request.
	_, err = io.CopyBuffer(out, io.NewSectionReader(r, 0, end), make([]byte, 4<<20))
	if err == nil {
		_, err = out.Write(footer.Bytes())
	}
	if err == nil {
		_, err = out.Write(binary.LittleEndian.AppendUint32(nil, uint32(footer.Len())))
	}
	if err == nil {
		_, err = out.Write([]byte("PAR1"))
	}
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		remove()
		return nil, err
	}
	return &parquetSample{
		path:    name,
		cleanup: remove,
		rows:    meta.NumRows,
		whole:   len(groups) == len(meta.RowGroups),
	}, nil
}

// sampledParquet returns the source Parquet previews read (see
// sampleParquet). Called with s.sampleMu held.
func (s *Source) sampledParquet(ctx context.Context, budget int64) (src *Source, whole bool, err error) {
	s.mu.Lock()
	local := s.path
	s.mu.Unlock()
	var r io.ReaderAt
	var size int64
	if local != "" {
		f, err := os.Open(local)
		if err != nil {
			return nil, false, kalla.WrapError(kalla.EUNAVAILABLE, err, "source %s: cannot read %s", s.name(), local)
		}
		defer f.Close()
		st, err := f.Stat()
		if err != nil {
			return nil, false, kalla.WrapError(kalla.EUNAVAILABLE, err, "source %s: cannot read %s", s.name(), local)
		}
		r, size = f, st.Size()
	} else {
		r, size, err = s.opts.Fetcher.OpenRange(ctx, s.uri)
		if errors.Is(err, errors.ErrUnsupported) {
			s.sample, s.sampleWhole = s, true // asked once: read whole from now on
			return s, true, nil               // a server without ranges: the file is fetched whole
		}
		if err != nil {
			return nil, false, err
		}
	}
	ps, err := sampleParquet(r, size, budget)
	switch {
	case errors.Is(err, errors.ErrUnsupported):
		s.sample, s.sampleWhole = s, true // asked once: read whole from now on
		return s, true, nil
	case err != nil:
		if ctx.Err() != nil {
			return nil, false, ctx.Err()
		}
		var kerr *kalla.Error
		if errors.As(err, &kerr) {
			return nil, false, err // the fetch's own error, naming the source
		}
		return nil, false, kalla.Errorf(kalla.EINVALID, "source %s: not a readable Parquet file: %v", s.name(), err)
	}
	s.footerRows, s.rowsKnown = ps.rows, true
	s.sample = &Source{uri: s.uri, path: ps.path, typ: s.typ, opts: s.opts, cleanup: ps.cleanup, isSample: true}
	s.sampleWhole = ps.whole
	return s.sample, ps.whole, nil
}
