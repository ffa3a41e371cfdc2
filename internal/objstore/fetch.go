package objstore

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path"
	"strings"
	"time"

	"github.com/minio/minio-go/v7"

	"github.com/kalla-recon/kalla/internal/connector"
	"github.com/kalla-recon/kalla/internal/kalla"
	"github.com/kalla-recon/kalla/internal/scratch"
)

// Defaults for the zero values of FetcherConfig.
const (
	DefaultMaxSize               int64 = 10 << 30 // 10 GiB
	DefaultConnectTimeout              = 10 * time.Second
	DefaultResponseHeaderTimeout       = 60 * time.Second
)

// FetcherConfig configures a Fetcher. The zero value fetches s3:// objects
// anonymously from AWS and refuses every https:// URL: fetching arbitrary
// URLs from a server is a way into its private network, so each host must be
// allowed on purpose.
type FetcherConfig struct {
	// S3 says how to reach the server behind s3:// URIs.
	S3 S3Config
	// AllowHTTP lists the hosts https:// sources may be fetched from (and
	// redirected to): "host" (any port), "host:port", or "*.example.com"
	// (any subdomain). Empty disables https:// fetching.
	AllowHTTP []string
	// AllowPlainHTTP also allows http:// URLs to the hosts in AllowHTTP.
	// Off by default: plain HTTP lets anyone on the path change the data.
	AllowPlainHTTP bool
	// TempDir is where fetched files are written; empty means os.TempDir().
	// It needs room for the largest source.
	TempDir string
	// MaxSize is the largest object fetched, in bytes; 0 means
	// DefaultMaxSize. It is checked against the declared size and again
	// while streaming, since a server may not declare one.
	MaxSize int64
	// ConnectTimeout bounds connecting (TCP and TLS); 0 means
	// DefaultConnectTimeout.
	ConnectTimeout time.Duration
	// ResponseHeaderTimeout bounds the wait for a response after the request
	// is sent; 0 means DefaultResponseHeaderTimeout. The body itself may
	// take as long as the caller's context allows.
	ResponseHeaderTimeout time.Duration
	// IdleTimeout stops a fetch that receives no byte for this long, with
	// a SourceStalled error (connector.StallError); 0 means
	// connector.DefaultIdleTimeout. A server that keeps the connection
	// open and sends nothing would otherwise hold the run forever.
	IdleTimeout time.Duration
	// RootCAs replaces the system certificate pool for https:// and S3 over
	// TLS, for private certificate authorities (and tests).
	RootCAs *x509.CertPool
}

// Fetcher copies remote sources to local temporary files. It implements
// file.Fetcher (not asserted here: package file links DuckDB, which this
// package should not need). It is safe for concurrent use and holds no connections
// between fetches, so it may be created per source and dropped.
type Fetcher struct {
	cfg       FetcherConfig
	transport *http.Transport
	http      *http.Client
	s3        *minio.Client
	s3err     error // why s3 is nil: an invalid S3 configuration

	// progress, when set (by tests), is called with the bytes written so far
	// after each chunk.
	progress func(written int64)
}

// NewFetcher returns a Fetcher for cfg. It does no I/O and never fails, so
// that a bad S3 setting does not stop local files from opening; an invalid
// S3 configuration is reported (EINVALID) by the first s3:// fetch, or up
// front by cfg.S3.Validate.
func NewFetcher(cfg FetcherConfig) *Fetcher {
	if cfg.MaxSize <= 0 {
		cfg.MaxSize = DefaultMaxSize
	}
	if cfg.ConnectTimeout <= 0 {
		cfg.ConnectTimeout = DefaultConnectTimeout
	}
	if cfg.ResponseHeaderTimeout <= 0 {
		cfg.ResponseHeaderTimeout = DefaultResponseHeaderTimeout
	}
	f := &Fetcher{cfg: cfg}
	f.transport = newTransport(cfg.ConnectTimeout, cfg.ResponseHeaderTimeout, cfg.RootCAs)
	f.http = &http.Client{Transport: f.transport, CheckRedirect: f.checkRedirect}
	f.s3, f.s3err = newS3Client(cfg.S3, f.transport)
	return f
}

// Fetch streams uri (s3://bucket/key, or an allowed https:// URL) into a new
// file in the temporary folder and returns its path and a function that
// removes it. The file keeps the source's extension (.csv.gz stays .csv.gz)
// so readers can detect compression. On any error no file is left behind.
//
// Errors: ENOTFOUND for a missing object, bucket or URL (404/410);
// EUNAVAILABLE when the server cannot be reached, refuses the credentials
// or the transfer breaks (including when ctx ends); EINVALID for an
// unsupported or disallowed URI and for an object over MaxSize.
func (f *Fetcher) Fetch(ctx context.Context, uri string) (path string, cleanup func(), err error) {
	defer f.transport.CloseIdleConnections()
	return f.watched(ctx, uri, 0)
}

// watched fetches uri whole (prefix 0) or its first prefix+1 bytes, under
// the idle watchdog: a server that stops sending fails the fetch as stalled.
func (f *Fetcher) watched(ctx context.Context, uri string, prefix int64) (path string, cleanup func(), err error) {
	lower := strings.ToLower(uri)
	var fetch func(ctx context.Context, uri string, prefix int64) (string, func(), error)
	switch {
	case strings.HasPrefix(lower, "s3://"):
		fetch = f.fetchS3
	case strings.HasPrefix(lower, "https://"), strings.HasPrefix(lower, "http://"):
		fetch = f.fetchHTTP
	default:
		return "", nil, kalla.Errorf(kalla.EINVALID, "fetch %s: only s3:// and https:// sources can be fetched", kalla.Excerpt(kalla.Redact(uri)))
	}
	// The watchdog is fed by every chunk read (guardReader), and the
	// wait for the response counts as idle time too.
	err = connector.WithIdle(ctx, f.cfg.IdleTimeout, func(ctx context.Context) error {
		var err error
		path, cleanup, err = fetch(ctx, uri, prefix)
		return err
	})
	if err != nil {
		if cleanup != nil {
			cleanup()
		}
		var se *kalla.SourceError
		if errors.As(err, &se) && se.Kind == kalla.SourceStalled {
			err = connector.StallError(kalla.Excerpt(kalla.Redact(uri)), f.idle())
		}
		return "", nil, err
	}
	return path, cleanup, nil
}

// idle is the effective IdleTimeout.
func (f *Fetcher) idle() time.Duration {
	if f.cfg.IdleTimeout > 0 {
		return f.cfg.IdleTimeout
	}
	return connector.DefaultIdleTimeout
}

// FetchPrefix copies at most n bytes from the start of uri into a new
// temporary file, for a preview that reads only the start of a source: an
// S3 object is read with a ranged GET, an https:// URL with a Range header
// (a server that ignores it is read no further than needed, and the
// connection dropped). whole reports whether the file holds the whole
// object. Errors and clean-up as Fetch.
func (f *Fetcher) FetchPrefix(ctx context.Context, uri string, n int64) (path string, whole bool, cleanup func(), err error) {
	defer f.transport.CloseIdleConnections()
	if n <= 0 {
		return "", false, nil, kalla.Errorf(kalla.EINTERNAL, "fetch %s: prefix of %d bytes", kalla.Excerpt(kalla.Redact(uri)), n)
	}
	path, cleanup, err = f.watched(ctx, uri, n)
	if err != nil {
		return "", false, nil, err
	}
	// One byte more than n was asked for: it tells a cut from an object of
	// exactly n bytes.
	st, err := os.Stat(path)
	if err == nil && st.Size() > n {
		err = os.Truncate(path, n)
	}
	if err != nil {
		cleanup()
		return "", false, nil, kalla.WrapError(kalla.EINTERNAL, err, "fetch %s: cut the prefix", kalla.Excerpt(kalla.Redact(uri)))
	}
	return path, st.Size() <= n, cleanup, nil
}

// CheckURI checks a remote file-source URI without fetching it: an s3://
// URI must be s3://bucket/key, and takes no parameters: everything after
// the bucket is the object's key, "?" and "#" included, so nothing in it
// configures Kalla or the S3 client; an https:// URL must
// parse, and its query belongs to the URL (a signed URL needs it) that is
// sent only to a host the Fetcher allows: Kalla itself reads none of it.
// Whether the host is allowed is decided when fetching. Errors: EINVALID.
func CheckURI(uri string) error {
	lower := strings.ToLower(uri)
	switch {
	case strings.HasPrefix(lower, "s3://"):
		_, err := parseS3URI(uri)
		return err
	case strings.HasPrefix(lower, "https://"), strings.HasPrefix(lower, "http://"):
		if u, err := url.Parse(uri); err != nil || u.Host == "" {
			return kalla.Errorf(kalla.EINVALID, "source %s: not a valid URL", kalla.Excerpt(kalla.Redact(uri)))
		}
		return nil
	}
	return kalla.Errorf(kalla.EINVALID, "source %s: only s3:// and https:// sources are remote", kalla.Excerpt(kalla.Redact(uri)))
}

// fetchS3 fetches an object whole, or its first prefix+1 bytes when
// prefix > 0.
func (f *Fetcher) fetchS3(ctx context.Context, uri string, prefix int64) (string, func(), error) {
	obj, err := parseS3URI(uri)
	if err != nil {
		return "", nil, err
	}
	if f.s3err != nil {
		return "", nil, f.s3err
	}
	// Core.GetObject is one GET whose body is the object, unlike
	// Client.GetObject, which adds a goroutine and lazy, seekable reads.
	opts := minio.GetObjectOptions{}
	if prefix > 0 {
		if err := opts.SetRange(0, prefix); err != nil {
			return "", nil, kalla.WrapError(kalla.EINTERNAL, err, "fetch %s", obj)
		}
	}
	body, info, _, err := minio.Core{Client: f.s3}.GetObject(ctx, obj.bucket, obj.key, opts)
	if err != nil && prefix > 0 && minio.ToErrorResponse(err).Code == "InvalidRange" {
		// An empty object has no byte 0 to range over.
		return f.writeTemp(ctx, obj.String(), tempSuffix(obj.key), strings.NewReader(""), 0)
	}
	if err != nil {
		return "", nil, s3Error(err, "fetch", obj, f.cfg.S3)
	}
	defer body.Close()
	if prefix > 0 {
		return f.writeTemp(ctx, obj.String(), tempSuffix(obj.key), io.LimitReader(body, prefix+1), -1)
	}
	if info.Size > f.cfg.MaxSize {
		return "", nil, tooLarge(obj.String(), info.Size, f.cfg.MaxSize)
	}
	return f.writeTemp(ctx, obj.String(), tempSuffix(obj.key), body, info.Size)
}

// fetchHTTP fetches a URL whole, or its first prefix+1 bytes when
// prefix > 0.
func (f *Fetcher) fetchHTTP(ctx context.Context, uri string, prefix int64) (string, func(), error) {
	u, err := url.Parse(uri)
	if err != nil || u.Host == "" {
		return "", nil, kalla.Errorf(kalla.EINVALID, "fetch %s: not a valid URL", kalla.Excerpt(kalla.Redact(uri)))
	}
	shown := kalla.Excerpt(kalla.Redact(u.String()))
	if err := f.allow(u); err != nil {
		return "", nil, kalla.Errorf(kalla.EINVALID, "fetch %s: %s", shown, err)
	}

	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return "", nil, kalla.Errorf(kalla.EINVALID, "fetch %s: not a valid URL", shown)
	}
	req.Header.Set("User-Agent", "kalla")
	if prefix > 0 {
		req.Header.Set("Range", fmt.Sprintf("bytes=0-%d", prefix))
	}
	resp, err := f.http.Do(req)
	if err != nil {
		var kerr *kalla.Error
		if errors.As(err, &kerr) { // a refused redirect, already redacted
			return "", nil, kalla.Errorf(kerr.Code, "fetch %s: %s", shown, kerr.Message)
		}
		// *url.Error repeats the URL with its query; keep only the cause.
		var uerr *url.Error
		if errors.As(err, &uerr) {
			err = uerr.Err
		}
		return "", nil, kalla.WrapError(kalla.EUNAVAILABLE, kalla.RedactError(err), "fetch %s: cannot reach the server", shown)
	}
	defer resp.Body.Close()
	switch {
	case resp.StatusCode == http.StatusNotFound || resp.StatusCode == http.StatusGone:
		return "", nil, kalla.Errorf(kalla.ENOTFOUND, "fetch %s: the server answered %s", shown, resp.Status)
	case prefix > 0 && resp.StatusCode == http.StatusRequestedRangeNotSatisfiable:
		return f.writeTemp(ctx, shown, tempSuffix(resp.Request.URL.Path), strings.NewReader(""), 0) // empty
	case prefix > 0 && (resp.StatusCode == http.StatusOK || resp.StatusCode == http.StatusPartialContent):
		// A server that ignores Range sends everything: read what is needed.
		return f.writeTemp(ctx, shown, tempSuffix(resp.Request.URL.Path), io.LimitReader(resp.Body, prefix+1), -1)
	case resp.StatusCode != http.StatusOK:
		return "", nil, kalla.Errorf(kalla.EUNAVAILABLE, "fetch %s: the server answered %s", shown, resp.Status)
	case resp.ContentLength > f.cfg.MaxSize:
		return "", nil, tooLarge(shown, resp.ContentLength, f.cfg.MaxSize)
	}
	return f.writeTemp(ctx, shown, tempSuffix(resp.Request.URL.Path), resp.Body, resp.ContentLength)
}

// allow reports why u may not be fetched, or nil. The reason is a lowercase
// phrase that names no credentials.
func (f *Fetcher) allow(u *url.URL) error {
	switch {
	case u.Scheme == "http" && !f.cfg.AllowPlainHTTP:
		return errors.New("plain http:// is not allowed; use https:// or enable plain HTTP in configuration")
	case u.Scheme != "https" && u.Scheme != "http":
		return fmt.Errorf("scheme %q cannot be fetched", u.Scheme)
	case len(f.cfg.AllowHTTP) == 0:
		return fmt.Errorf("fetching %s:// sources is disabled; allow the host in configuration", u.Scheme)
	case !hostAllowed(f.cfg.AllowHTTP, u):
		return fmt.Errorf("host %q is not allowed; allow the host in configuration", u.Hostname())
	}
	return nil
}

// checkRedirect follows a redirect only to an allowed URL, so an allowed
// host cannot bounce a fetch into the private network.
func (f *Fetcher) checkRedirect(req *http.Request, via []*http.Request) error {
	if len(via) >= 10 {
		return kalla.Errorf(kalla.EUNAVAILABLE, "stopped after 10 redirects")
	}
	if err := f.allow(req.URL); err != nil {
		return kalla.Errorf(kalla.EINVALID, "refused redirect to %s: %s", kalla.Excerpt(kalla.Redact(req.URL.String())), err)
	}
	return nil
}

// hostAllowed reports whether u's host matches an entry of list: "host",
// "host:port" or "*.domain". Entries written as URLs are accepted too.
func hostAllowed(list []string, u *url.URL) bool {
	host := strings.TrimSuffix(strings.ToLower(u.Hostname()), ".")
	port := u.Port()
	if port == "" {
		port = map[string]string{"https": "443", "http": "80"}[u.Scheme]
	}
	for _, e := range list {
		e = strings.ToLower(strings.TrimSpace(e))
		if strings.Contains(e, "://") {
			if eu, err := url.Parse(e); err == nil {
				e = eu.Host
			}
		}
		eh, ep := e, ""
		if h, p, err := net.SplitHostPort(e); err == nil {
			eh, ep = h, p
		}
		eh = strings.TrimSuffix(strings.Trim(eh, "[]"), ".")
		switch {
		case eh == "" || (ep != "" && ep != port):
		case strings.HasPrefix(eh, "*."):
			if strings.HasSuffix(host, eh[1:]) && len(host) > len(eh)-1 {
				return true
			}
		case eh == host:
			return true
		}
	}
	return false
}

// writeTemp streams r into a new temporary file, in a folder of its own
// that this process holds (package scratch: the copy of a killed run is
// removed by the next fetch). name is the redacted source for messages;
// want is the declared size, or -1; causes are redacted. The file is
// removed on any error.
func (f *Fetcher) writeTemp(ctx context.Context, name, suffix string, r io.Reader, want int64) (string, func(), error) {
	dir := f.cfg.TempDir
	if dir == "" {
		dir = os.TempDir()
	}
	tmp, remove, err := scratch.CreateTemp(dir, "kalla-fetch-", "fetched-*"+suffix)
	if err != nil {
		return "", nil, kalla.WrapError(kalla.EINTERNAL, err, "fetch %s: create a temporary file in %s", name, dir)
	}
	keep := false
	defer func() {
		if !keep {
			tmp.Close()
			remove()
		}
	}()

	src := &guardReader{ctx: ctx, r: r, progress: f.progress, wd: connector.WatchdogOf(ctx)}
	dst := &trackWriter{w: tmp}
	// One byte over the limit is enough to know the object is too large.
	n, err := io.CopyBuffer(dst, io.LimitReader(src, f.cfg.MaxSize+1), make([]byte, 256<<10))
	switch {
	case dst.err != nil:
		return "", nil, kalla.WrapError(kalla.EINTERNAL, dst.err, "fetch %s: write temporary file in %s", name, dir)
	case err != nil:
		return "", nil, kalla.WrapError(kalla.EUNAVAILABLE, kalla.RedactError(err), "fetch %s: download interrupted after %d bytes", name, n)
	case n > f.cfg.MaxSize:
		return "", nil, tooLarge(name, -1, f.cfg.MaxSize)
	case want >= 0 && n != want:
		return "", nil, kalla.Errorf(kalla.EUNAVAILABLE, "fetch %s: the connection ended after %d of %d bytes", name, n, want)
	}
	if err := tmp.Close(); err != nil {
		return "", nil, kalla.WrapError(kalla.EINTERNAL, err, "fetch %s: write temporary file in %s", name, dir)
	}
	keep = true
	return tmp.Name(), remove, nil
}

// guardReader stops at the first read after ctx ends, whatever the
// underlying reader does with its own context, and reports progress.
type guardReader struct {
	ctx      context.Context
	r        io.Reader
	n        int64
	progress func(int64)
	wd       *connector.Watchdog // fed per chunk; nil when not watched
}

func (g *guardReader) Read(p []byte) (int, error) {
	if err := g.ctx.Err(); err != nil {
		return 0, err
	}
	n, err := g.r.Read(p)
	if n > 0 {
		g.wd.Beat()
	}
	g.n += int64(n)
	if g.progress != nil && n > 0 {
		g.progress(g.n)
	}
	return n, err
}

// trackWriter remembers a write error so it can be told from a read error
// (a full disk is not the server's fault). Being a plain Writer, it also
// keeps io.CopyBuffer on our buffer rather than the file's ReadFrom.
type trackWriter struct {
	w   io.Writer
	err error
}

func (t *trackWriter) Write(p []byte) (int, error) {
	n, err := t.w.Write(p)
	if err != nil {
		t.err = err
	}
	return n, err
}

// tooLarge is the EINVALID error for an object over the limit; size is -1
// when the server did not declare one.
func tooLarge(name string, size, limit int64) error {
	if size < 0 {
		return kalla.Errorf(kalla.EINVALID, "fetch %s: larger than the limit of %s", name, byteSize(limit))
	}
	return kalla.Errorf(kalla.EINVALID, "fetch %s: %s is larger than the limit of %s", name, byteSize(size), byteSize(limit))
}

// byteSize formats n for people: "10 GiB", "1.5 MiB", "512 bytes".
func byteSize(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d bytes", n)
	}
	v, i := float64(n), -1
	for v >= unit && i < 4 {
		v /= unit
		i++
	}
	s := fmt.Sprintf("%.1f", v)
	s = strings.TrimSuffix(s, ".0")
	return s + " " + []string{"KiB", "MiB", "GiB", "TiB", "PiB"}[i]
}

// tempSuffix returns the extension(s) of name's last element (".csv",
// ".csv.gz"), or "" when they hold anything but letters, digits, '.', '-'
// and '_' (a temporary file name must not carry a path or a pattern).
func tempSuffix(name string) string {
	base := strings.TrimLeft(path.Base(name), ".")
	i := strings.IndexByte(base, '.')
	if i < 0 {
		return ""
	}
	for _, ext := range []string{base[i:], path.Ext(base)} {
		if len(ext) <= 24 && strings.Trim(ext, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-_") == "" {
			return ext
		}
	}
	return ""
}
