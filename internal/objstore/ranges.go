package objstore

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/minio/minio-go/v7"

	"github.com/kalla-recon/kalla/internal/connector"
	"github.com/kalla-recon/kalla/internal/kalla"
)

// OpenRange opens uri for reading by ranges, for a reader that needs a few
// parts of a large object (a Parquet file's footer and first row groups, the
// start of a compressed file) rather than all of it. It learns the object's
// size without reading its content: a HEAD for S3, a GET of the first byte
// for https:// (its Content-Range gives the size). Each ReadAt of the
// returned reader is one ranged GET of exactly the bytes asked for, made
// with ctx and watched by the idle timeout; nothing is written to disk.
//
// Errors as Fetch; an https:// server that does not answer a Range request
// with 206 Partial Content gives an error wrapping errors.ErrUnsupported, so
// the caller may fetch the file whole instead.
func (f *Fetcher) OpenRange(ctx context.Context, uri string) (io.ReaderAt, int64, error) {
	lower := strings.ToLower(uri)
	var r *rangeReader
	var err error
	switch {
	case strings.HasPrefix(lower, "s3://"):
		r, err = f.openRangeS3(ctx, uri)
	case strings.HasPrefix(lower, "https://"), strings.HasPrefix(lower, "http://"):
		r, err = f.openRangeHTTP(ctx, uri)
	default:
		return nil, 0, kalla.Errorf(kalla.EINVALID, "fetch %s: only s3:// and https:// sources can be fetched", kalla.Excerpt(kalla.Redact(uri)))
	}
	if err != nil {
		return nil, 0, err
	}
	return r, r.size, nil
}

// rangeReader reads an object by ranged GETs.
type rangeReader struct {
	f    *Fetcher
	ctx  context.Context
	name string // redacted, for messages
	size int64
	// get returns the body of a GET of bytes [off, off+n) and whether the
	// server answered with just that range.
	get func(ctx context.Context, off, n int64) (io.ReadCloser, error)
}

// ReadAt reads len(p) bytes at off with one ranged GET; it returns io.EOF
// when the object ends before p is full.
func (r *rangeReader) ReadAt(p []byte, off int64) (int, error) {
	if off < 0 {
		return 0, fmt.Errorf("read %s: negative offset %d", r.name, off)
	}
	if off >= r.size {
		return 0, io.EOF
	}
	want := min(int64(len(p)), r.size-off)
	if want == 0 {
		return 0, nil
	}
	var n int
	err := connector.WithIdle(r.ctx, r.f.cfg.IdleTimeout, func(ctx context.Context) error {
		body, err := r.get(ctx, off, want)
		if err != nil {
			return err
		}
		defer body.Close()
		src := &guardReader{ctx: ctx, r: body, progress: r.f.progress, wd: connector.WatchdogOf(ctx)}
		n, err = io.ReadFull(src, p[:want])
		if err != nil {
			return kalla.WrapError(kalla.EUNAVAILABLE, kalla.RedactError(err), "fetch %s: read %d bytes at %d: the connection ended after %d", r.name, want, off, n)
		}
		return nil
	})
	if err != nil {
		var se *kalla.SourceError
		if errors.As(err, &se) && se.Kind == kalla.SourceStalled {
			err = connector.StallError(r.name, r.f.idle())
		}
		return n, err
	}
	if int64(len(p)) > want {
		return n, io.EOF
	}
	return n, nil
}

// openRangeS3 learns an S3 object's size with a HEAD.
func (f *Fetcher) openRangeS3(ctx context.Context, uri string) (*rangeReader, error) {
	obj, err := parseS3URI(uri)
	if err != nil {
		return nil, err
	}
	if f.s3err != nil {
		return nil, f.s3err
	}
	info, err := f.s3.StatObject(ctx, obj.bucket, obj.key, minio.StatObjectOptions{})
	if err != nil {
		if minio.ToErrorResponse(err).StatusCode == http.StatusNotFound {
			// A HEAD has no error body: a GET tells a missing object from
			// refused credentials (see Store.Stat).
			if body, _, _, gerr := (minio.Core{Client: f.s3}).GetObject(ctx, obj.bucket, obj.key, minio.GetObjectOptions{}); gerr == nil {
				body.Close()
			} else {
				err = gerr
			}
		}
		return nil, s3Error(err, "fetch", obj, f.cfg.S3)
	}
	r := &rangeReader{f: f, ctx: ctx, name: obj.String(), size: info.Size}
	r.get = func(ctx context.Context, off, n int64) (io.ReadCloser, error) {
		opts := minio.GetObjectOptions{}
		if err := opts.SetRange(off, off+n-1); err != nil {
			return nil, kalla.WrapError(kalla.EINTERNAL, err, "fetch %s", obj)
		}
		body, _, _, err := minio.Core{Client: f.s3}.GetObject(ctx, obj.bucket, obj.key, opts)
		if err != nil {
			return nil, s3Error(err, "fetch", obj, f.cfg.S3)
		}
		return body, nil
	}
	return r, nil
}

// openRangeHTTP learns an https:// file's size from the Content-Range of a
// GET of its first byte.
func (f *Fetcher) openRangeHTTP(ctx context.Context, uri string) (*rangeReader, error) {
	u, err := url.Parse(uri)
	if err != nil || u.Host == "" {
		return nil, kalla.Errorf(kalla.EINVALID, "fetch %s: not a valid URL", kalla.Excerpt(kalla.Redact(uri)))
	}
	shown := kalla.Excerpt(kalla.Redact(u.String()))
	if err := f.allow(u); err != nil {
		return nil, kalla.Errorf(kalla.EINVALID, "fetch %s: %s", shown, err)
	}
	r := &rangeReader{f: f, ctx: ctx, name: shown}
	// get asks for bytes [off, off+n); size is -1 while it is unknown.
	get := func(ctx context.Context, off, n int64) (*http.Response, error) {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
		if err != nil {
			return nil, kalla.Errorf(kalla.EINVALID, "fetch %s: not a valid URL", shown)
		}
		req.Header.Set("User-Agent", "kalla")
		req.Header.Set("Range", fmt.Sprintf("bytes=%d-%d", off, off+n-1))
		resp, err := f.http.Do(req)
		if err != nil {
			var kerr *kalla.Error
			if errors.As(err, &kerr) {
				return nil, kalla.Errorf(kerr.Code, "fetch %s: %s", shown, kerr.Message)
			}
			var uerr *url.Error
			if errors.As(err, &uerr) {
				err = uerr.Err
			}
			return nil, kalla.WrapError(kalla.EUNAVAILABLE, kalla.RedactError(err), "fetch %s: cannot reach the server", shown)
		}
		return resp, nil
	}
	var size int64
	err = connector.WithIdle(ctx, f.cfg.IdleTimeout, func(ctx context.Context) error {
		resp, err := get(ctx, 0, 1)
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		switch {
		case resp.StatusCode == http.StatusNotFound || resp.StatusCode == http.StatusGone:
			return kalla.Errorf(kalla.ENOTFOUND, "fetch %s: the server answered %s", shown, resp.Status)
		case resp.StatusCode == http.StatusRequestedRangeNotSatisfiable:
			size = 0 // an empty file has no first byte
			return nil
		case resp.StatusCode == http.StatusOK:
			return kalla.WrapError(kalla.EUNAVAILABLE, errors.ErrUnsupported, "fetch %s: the server does not answer range requests", shown)
		case resp.StatusCode != http.StatusPartialContent:
			return kalla.Errorf(kalla.EUNAVAILABLE, "fetch %s: the server answered %s", shown, resp.Status)
		}
		total, ok := contentRangeSize(resp.Header.Get("Content-Range"))
		if !ok {
			return kalla.WrapError(kalla.EUNAVAILABLE, errors.ErrUnsupported, "fetch %s: the server answered a range request without the file's size (Content-Range %q)", shown, resp.Header.Get("Content-Range"))
		}
		size = total
		return nil
	})
	if err != nil {
		return nil, err
	}
	if size > f.cfg.MaxSize {
		return nil, tooLarge(shown, size, f.cfg.MaxSize)
	}
	r.size = size
	r.get = func(ctx context.Context, off, n int64) (io.ReadCloser, error) {
		resp, err := get(ctx, off, n)
		if err != nil {
			return nil, err
		}
		if resp.StatusCode != http.StatusPartialContent {
			resp.Body.Close()
			if resp.StatusCode == http.StatusNotFound || resp.StatusCode == http.StatusGone {
				return nil, kalla.Errorf(kalla.ENOTFOUND, "fetch %s: the server answered %s", shown, resp.Status)
			}
			return nil, kalla.Errorf(kalla.EUNAVAILABLE, "fetch %s: the server answered %s to a range request", shown, resp.Status)
		}
		if start, ok := contentRangeStart(resp.Header.Get("Content-Range")); !ok || start != off {
			resp.Body.Close()
			return nil, kalla.Errorf(kalla.EUNAVAILABLE, "fetch %s: asked for bytes from %d, the server sent Content-Range %q", shown, off, resp.Header.Get("Content-Range"))
		}
		return resp.Body, nil
	}
	return r, nil
}

// contentRangeSize reads the complete length from "bytes a-b/size".
func contentRangeSize(h string) (int64, bool) {
	_, total, ok := strings.Cut(h, "/")
	if !ok {
		return 0, false
	}
	n, err := strconv.ParseInt(strings.TrimSpace(total), 10, 64)
	return n, err == nil && n >= 0
}

// contentRangeStart reads the first byte's offset from "bytes a-b/size".
func contentRangeStart(h string) (int64, bool) {
	rest, ok := strings.CutPrefix(strings.TrimSpace(h), "bytes ")
	if !ok {
		return 0, false
	}
	a, _, ok := strings.Cut(rest, "-")
	if !ok {
		return 0, false
	}
	n, err := strconv.ParseInt(strings.TrimSpace(a), 10, 64)
	return n, err == nil
}
