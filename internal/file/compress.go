package file

import (
	"bufio"
	"compress/bzip2"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/klauspost/compress/zstd"

	"github.com/kalla-recon/kalla/internal/kalla"
	"github.com/kalla-recon/kalla/internal/scratch"
)

// Codecs a CSV file may be compressed with, by its name's last extension.
const (
	codecGzip  = "gzip"
	codecZstd  = "zstd"
	codecBzip2 = "bzip2"
)

// codecOf returns the codec of a compressed file's name, "" for a plain
// one. Compressed in a way Kalla cannot read, it is an EINVALID error.
func codecOf(uri string) (string, error) {
	u := strings.ToLower(uri)
	if i := strings.IndexAny(u, "?#"); i >= 0 && strings.Contains(u, "://") {
		u = u[:i]
	}
	switch {
	case strings.HasSuffix(u, ".gz"), strings.HasSuffix(u, ".gzip"):
		return codecGzip, nil
	case strings.HasSuffix(u, ".zst"), strings.HasSuffix(u, ".zstd"):
		return codecZstd, nil
	case strings.HasSuffix(u, ".bz2"):
		return codecBzip2, nil
	}
	for _, ext := range []string{".xz", ".zip", ".lz4", ".snappy", ".7z", ".z"} {
		if strings.HasSuffix(u, ext) {
			return "", kalla.Errorf(kalla.EINVALID, "source %s: Kalla reads CSV files compressed with gzip (.gz), zstd (.zst) or bzip2 (.bz2), not %s", kalla.Excerpt(kalla.Redact(uri)), ext)
		}
	}
	return "", nil
}

// decompressor reads the codec's stream from r.
func decompressor(codec string, r io.Reader) (io.ReadCloser, error) {
	switch codec {
	case codecGzip:
		return gzip.NewReader(r)
	case codecZstd:
		d, err := zstd.NewReader(r, zstd.WithDecoderConcurrency(1))
		if err != nil {
			return nil, err
		}
		return d.IOReadCloser(), nil
	case codecBzip2:
		return io.NopCloser(bzip2.NewReader(r)), nil
	}
	return nil, fmt.Errorf("unknown codec %q", codec)
}

// inflate writes at most limit bytes (limit < 0: all) of the codec's
// stream read from r into a new temporary file in dir, and returns its
// path, whether that is the whole stream, and a function that removes it.
// It stops reading r once limit bytes are out: a preview of a large
// compressed file reads only the compressed bytes behind its start.
func (s *Source) inflate(ctx context.Context, r io.Reader, limit int64, dir string) (path string, whole bool, cleanup func(), err error) {
	dec, err := decompressor(s.codec, r)
	if err != nil {
		return "", false, nil, s.codecError(err)
	}
	defer dec.Close()
	out, remove, err := scratch.CreateTemp(dir, "kalla-plain-", "*.csv")
	if err != nil {
		return "", false, nil, kalla.WrapError(kalla.EUNAVAILABLE, err, "source %s: create the decompressed copy", s.name())
	}
	name := out.Name()
	fail := func(err error) (string, bool, func(), error) {
		out.Close()
		remove()
		return "", false, nil, err
	}
	src := io.Reader(&ctxReader{ctx: ctx, r: dec})
	if limit >= 0 {
		src = io.LimitReader(src, limit+1) // one byte more tells a cut
	}
	w := bufio.NewWriterSize(out, 1<<20)
	n, err := io.Copy(w, src)
	if err == nil {
		err = w.Flush()
	}
	if err != nil {
		if ctx.Err() != nil {
			return fail(ctx.Err())
		}
		var kerr *kalla.Error
		if errors.As(err, &kerr) {
			return fail(err) // the fetch's own error, naming the source
		}
		var pe *os.PathError
		if errors.As(err, &pe) {
			return fail(kalla.WrapError(kalla.EUNAVAILABLE, err, "source %s: write the decompressed copy", s.name()))
		}
		return fail(s.codecError(err))
	}
	whole = limit < 0 || n <= limit
	if !whole {
		if err := out.Truncate(limit); err != nil {
			return fail(kalla.WrapError(kalla.EUNAVAILABLE, err, "source %s: write the decompressed copy", s.name()))
		}
	}
	if err := out.Close(); err != nil {
		remove()
		return "", false, nil, kalla.WrapError(kalla.EUNAVAILABLE, err, "source %s: write the decompressed copy", s.name())
	}
	return name, whole, remove, nil
}

// codecError is the EINVALID error for a stream that does not decompress.
func (s *Source) codecError(err error) error {
	return kalla.Errorf(kalla.EINVALID, "source %s: cannot decompress it as %s: %v", s.name(), s.codec, err)
}

// ctxReader stops at the first read after ctx ends.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c *ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}

// sampledCompressed decompresses the first n bytes of a compressed CSV
// file, reading its compressed bytes from the start no further than that
// takes: a local file, or a remote one by ranged reads of 1 MiB. Called
// with s.sampleMu held. A server without ranges leaves the file to be
// fetched whole.
func (s *Source) sampledCompressed(ctx context.Context, n int64) (path string, whole bool, cleanup func(), err error) {
	var r io.Reader
	if s.packed != "" {
		f, err := os.Open(s.packed)
		if err != nil {
			return "", false, nil, kalla.WrapError(kalla.EUNAVAILABLE, err, "source %s: cannot read %s", s.name(), s.packed)
		}
		defer f.Close()
		r = f
	} else {
		ra, size, err := s.opts.Fetcher.OpenRange(ctx, s.uri)
		if err != nil {
			return "", false, nil, err
		}
		// Each refill of the buffer is one ranged read.
		r = bufio.NewReaderSize(io.NewSectionReader(ra, 0, size), 1<<20)
	}
	return s.inflate(ctx, r, n, "")
}
