package objstore

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	mrand "math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/kalla-recon/kalla/internal/kalla"
	"github.com/kalla-recon/kalla/internal/testenv"
)

// ---------------------------------------------------------------- helpers

// s3Config returns the configuration that reaches env's server.
func s3Config(env testenv.S3Env) S3Config {
	return S3Config{Endpoint: env.Endpoint, Region: env.Region, AccessKey: env.AccessKey, SecretKey: env.SecretKey, PathStyle: true}
}

// newTestFetcher returns a Fetcher writing into a fresh folder, which it
// also returns so tests can check nothing is left behind.
func newTestFetcher(t *testing.T, cfg FetcherConfig) (*Fetcher, string) {
	t.Helper()
	if cfg.TempDir == "" {
		cfg.TempDir = t.TempDir()
	}
	return NewFetcher(cfg), cfg.TempDir
}

// pseudoRandom returns n deterministic bytes that do not compress.
func pseudoRandom(n int) []byte {
	r := mrand.NewChaCha8([32]byte{'k', 'a', 'l', 'l', 'a'})
	b := make([]byte, n)
	_, _ = r.Read(b)
	return b
}

func sum(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

func randomSecret(t *testing.T) string {
	t.Helper()
	b := make([]byte, 12)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return "sekrit" + hex.EncodeToString(b)
}

// wantCode fails the test unless err is a *kalla.Error with code.
func wantCode(t *testing.T, err error, code string) {
	t.Helper()
	if err == nil {
		t.Fatalf("got no error, want %s", code)
	}
	if got := kalla.ErrorCode(err); got != code {
		t.Fatalf("error code = %s, want %s; error: %v", got, code, err)
	}
}

// wantEmptyDir fails the test unless dir holds no files.
func wantEmptyDir(t *testing.T, dir string) {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		t.Errorf("left behind in %s: %s", dir, e.Name())
	}
}

// readFetched returns the content of a fetched file and checks cleanup
// removes it (twice is harmless).
func readFetched(t *testing.T, path string, cleanup func()) []byte {
	t.Helper()
	got, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("read fetched file: %v", err)
	}
	cleanup()
	cleanup()
	if _, err := os.Stat(path); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("cleanup left %s (stat err %v)", path, err)
	}
	return got
}

// closedPort returns a loopback address nothing listens on.
func closedPort(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}

// ---------------------------------------------------------------- S3, real server

func TestFetchS3CSV(t *testing.T) {
	t.Parallel()
	env := testenv.S3(t)
	csv := []byte("id,amount,memo\r\n1,15000.00,\"café, ünïcode\"\r\n2,0.30,\"line\nbreak\"\r\n")
	key := "in/2026-11/orders v1.csv"
	env.Put(t, key, csv)

	f, dir := newTestFetcher(t, FetcherConfig{S3: s3Config(env)})
	path, cleanup, err := f.Fetch(context.Background(), env.URI(key))
	if err != nil {
		t.Fatalf("Fetch: %v", err)
	}
	// In a folder of its own under dir, held by this process (package
	// scratch): a killed run's copy is removed by the next fetch.
	if own := filepath.Dir(path); filepath.Dir(own) != dir || !strings.HasPrefix(filepath.Base(own), "kalla-fetch-") || !strings.HasSuffix(path, ".csv") {
		t.Errorf("path = %s, want a .csv file in a kalla-fetch- folder in %s", path, dir)
	}
	if got := readFetched(t, path, cleanup); !bytes.Equal(got, csv) {
		t.Errorf("fetched %q, want %q", got, csv)
	}
	wantEmptyDir(t, dir)

	// Without a region the client asks the server for the bucket's.
	cfg := s3Config(env)
	cfg.Region = ""
	f, _ = newTestFetcher(t, FetcherConfig{S3: cfg})
	path, cleanup, err = f.Fetch(context.Background(), env.URI(key))
	if err != nil {
		t.Fatalf("Fetch without a region: %v", err)
	}
	if got := readFetched(t, path, cleanup); !bytes.Equal(got, csv) {
		t.Errorf("fetched %q, want %q", got, csv)
	}
}

// TestFetchS3Streams checks a 40 MiB object goes to disk without passing
// through the Go heap as a whole: the bytes allocated during the fetch stay
// far below the object's size.
func TestFetchS3Streams(t *testing.T) {
	env := testenv.S3(t)
	const size = 40 << 20
	data := pseudoRandom(size)
	want := sum(data)
	env.Put(t, "big.parquet", data)
	data = nil

	f, _ := newTestFetcher(t, FetcherConfig{S3: s3Config(env)})
	runtime.GC()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	path, cleanup, err := f.Fetch(context.Background(), env.URI("big.parquet"))
	runtime.ReadMemStats(&after)
	if err != nil {
		t.Fatalf("Fetch: %v", err)
	}
	defer cleanup()
	allocated := after.TotalAlloc - before.TotalAlloc
	grown := int64(after.HeapAlloc) - int64(before.HeapAlloc)
	t.Logf("fetch of %d MiB: allocated %d KiB in total, heap grew by %d KiB", size>>20, allocated>>10, grown>>10)
	if allocated > size/8 {
		t.Errorf("fetch allocated %d bytes for a %d-byte object: it is not streaming", allocated, size)
	}

	fh, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer fh.Close()
	h := sha256.New()
	if n, err := io.Copy(h, fh); err != nil || n != size {
		t.Fatalf("read back %d bytes (err %v), want %d", n, err, size)
	}
	if got := hex.EncodeToString(h.Sum(nil)); got != want {
		t.Errorf("sha256 = %s, want %s", got, want)
	}
}

func TestFetchS3NotFound(t *testing.T) {
	t.Parallel()
	env := testenv.S3(t)
	env.Put(t, "present.csv", []byte("a\n1\n"))
	f, dir := newTestFetcher(t, FetcherConfig{S3: s3Config(env)})

	for name, uri := range map[string]string{
		"missing key":    env.URI("absent/orders.csv"),
		"missing bucket": "s3://" + env.Bucket + "-nope/present.csv",
	} {
		t.Run(name, func(t *testing.T) {
			_, _, err := f.Fetch(context.Background(), uri)
			wantCode(t, err, kalla.ENOTFOUND)
			if !strings.Contains(err.Error(), uri) {
				t.Errorf("error %q does not name %s", err, uri)
			}
		})
	}
	wantEmptyDir(t, dir)
}

func TestFetchS3Unavailable(t *testing.T) {
	t.Parallel()
	env := testenv.S3(t)
	env.Put(t, "a.csv", []byte("a\n1\n"))
	secret := randomSecret(t)

	cases := map[string]S3Config{
		"wrong secret":     {Endpoint: env.Endpoint, Region: env.Region, AccessKey: env.AccessKey, SecretKey: secret, PathStyle: true},
		"wrong access key": {Endpoint: env.Endpoint, Region: env.Region, AccessKey: "nobody", SecretKey: secret, PathStyle: true},
		"unreachable":      {Endpoint: "http://" + closedPort(t), Region: env.Region, AccessKey: env.AccessKey, SecretKey: secret, PathStyle: true},
	}
	for name, cfg := range cases {
		t.Run(name, func(t *testing.T) {
			f, dir := newTestFetcher(t, FetcherConfig{S3: cfg, ConnectTimeout: 2 * time.Second})
			start := time.Now()
			_, _, err := f.Fetch(context.Background(), env.URI("a.csv"))
			wantCode(t, err, kalla.EUNAVAILABLE)
			t.Logf("%s after %v: %v", name, time.Since(start).Round(time.Millisecond), err)
			for _, msg := range []string{err.Error(), kalla.ErrorMessage(err)} {
				if strings.Contains(msg, secret) {
					t.Errorf("error shows the secret key: %s", msg)
				}
			}
			wantEmptyDir(t, dir)
		})
	}
}

func TestFetchS3SizeCap(t *testing.T) {
	t.Parallel()
	env := testenv.S3(t)
	env.Put(t, "big.csv", pseudoRandom(64<<10))
	f, dir := newTestFetcher(t, FetcherConfig{S3: s3Config(env), MaxSize: 64<<10 - 1})
	_, _, err := f.Fetch(context.Background(), env.URI("big.csv"))
	wantCode(t, err, kalla.EINVALID)
	if !strings.Contains(err.Error(), "larger than the limit") {
		t.Errorf("error %q does not say the object is too large", err)
	}
	wantEmptyDir(t, dir)

	// Exactly at the limit is fine.
	f, _ = newTestFetcher(t, FetcherConfig{S3: s3Config(env), MaxSize: 64 << 10})
	path, cleanup, err := f.Fetch(context.Background(), env.URI("big.csv"))
	if err != nil {
		t.Fatalf("Fetch at the limit: %v", err)
	}
	if got := readFetched(t, path, cleanup); len(got) != 64<<10 {
		t.Errorf("fetched %d bytes, want %d", len(got), 64<<10)
	}
}

func TestFetchS3CancelRemovesPartial(t *testing.T) {
	t.Parallel()
	env := testenv.S3(t)
	env.Put(t, "big.csv", pseudoRandom(24<<20))
	f, dir := newTestFetcher(t, FetcherConfig{S3: s3Config(env)})

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var sawPartial atomic.Bool
	f.progress = func(n int64) {
		if n >= 1<<20 && !sawPartial.Load() {
			if ents, _ := os.ReadDir(dir); len(ents) == 1 {
				sawPartial.Store(true)
			}
			cancel()
		}
	}
	_, _, err := f.Fetch(ctx, env.URI("big.csv"))
	if err == nil {
		t.Fatal("Fetch succeeded after cancel")
	}
	if !errors.Is(err, context.Canceled) {
		t.Errorf("error %v is not context.Canceled", err)
	}
	if !sawPartial.Load() {
		t.Error("no partial file existed mid-download; the test did not test anything")
	}
	wantEmptyDir(t, dir)
}

// ---------------------------------------------------------------- Store, real server

func TestStorePutStat(t *testing.T) {
	t.Parallel()
	env := testenv.S3(t)
	st, err := NewStore(s3Config(env), env.Bucket, "uploads/")
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()

	// 20 MiB of unknown length: more than one 16 MiB part, so multipart.
	data := pseudoRandom(20 << 20)
	uri, err := st.Put(ctx, "run1/left.csv", io.MultiReader(bytes.NewReader(data)), -1)
	if err != nil {
		t.Fatalf("Put: %v", err)
	}
	if want := env.URI("uploads/run1/left.csv"); uri != want {
		t.Errorf("uri = %s, want %s", uri, want)
	}
	if got := env.Get(t, "uploads/run1/left.csv"); sum(got) != sum(data) {
		t.Errorf("stored object differs from what was put (%d bytes, want %d)", len(got), len(data))
	}
	info, err := st.Stat(ctx, "run1/left.csv")
	if err != nil {
		t.Fatalf("Stat: %v", err)
	}
	if info.Size != int64(len(data)) || info.URI != uri || info.ETag == "" || time.Since(info.Modified) > time.Hour {
		t.Errorf("Stat = %+v", info)
	}

	// A small one with a known size, then fetched back through a Fetcher.
	small := []byte("k,v\n1,2\n")
	uri, err = st.Put(ctx, "run1/right.csv", bytes.NewReader(small), int64(len(small)))
	if err != nil {
		t.Fatalf("Put: %v", err)
	}
	f, _ := newTestFetcher(t, FetcherConfig{S3: s3Config(env)})
	path, cleanup, err := f.Fetch(ctx, uri)
	if err != nil {
		t.Fatalf("Fetch %s: %v", uri, err)
	}
	if got := readFetched(t, path, cleanup); !bytes.Equal(got, small) {
		t.Errorf("fetched %q, want %q", got, small)
	}

	_, err = st.Stat(ctx, "run1/absent.csv")
	wantCode(t, err, kalla.ENOTFOUND)
	_, err = st.Put(ctx, "", bytes.NewReader(nil), 0)
	wantCode(t, err, kalla.EINVALID)
}

func TestStoreErrors(t *testing.T) {
	t.Parallel()
	env := testenv.S3(t)
	ctx := context.Background()

	st, err := NewStore(s3Config(env), env.Bucket+"-nope", "")
	if err != nil {
		t.Fatal(err)
	}
	_, err = st.Put(ctx, "a.csv", strings.NewReader("a\n"), 2)
	wantCode(t, err, kalla.ENOTFOUND)

	secret := randomSecret(t)
	cfg := s3Config(env)
	cfg.SecretKey = secret
	st, err = NewStore(cfg, env.Bucket, "")
	if err != nil {
		t.Fatal(err)
	}
	_, err = st.Put(ctx, "a.csv", strings.NewReader("a\n"), -1)
	wantCode(t, err, kalla.EUNAVAILABLE)
	if strings.Contains(err.Error(), secret) {
		t.Errorf("error shows the secret key: %v", err)
	}

	// versitygw answers an unknown access key with 404 XAdminUserNotFound,
	// and a HEAD's 404 looks like a missing object to minio-go.
	cfg = s3Config(env)
	cfg.AccessKey = "nobody"
	st, err = NewStore(cfg, env.Bucket, "")
	if err != nil {
		t.Fatal(err)
	}
	env.Put(t, "present.csv", []byte("a\n"))
	for _, key := range []string{"present.csv", "absent.csv"} {
		_, err = st.Stat(ctx, key)
		wantCode(t, err, kalla.EUNAVAILABLE)
	}
	_, err = st.Put(ctx, "a.csv", strings.NewReader("a\n"), 2)
	wantCode(t, err, kalla.EUNAVAILABLE)

	if _, err := NewStore(s3Config(env), "Not_A_Bucket", ""); kalla.ErrorCode(err) != kalla.EINVALID {
		t.Errorf("NewStore with a bad bucket name: %v, want EINVALID", err)
	}
}

// ---------------------------------------------------------------- https, loopback

// tlsServer starts an https server on loopback and counts the connections
// made to it, so tests can prove a refused fetch never touched the network.
func tlsServer(t *testing.T, h http.HandlerFunc) (*httptest.Server, *atomic.Int64) {
	t.Helper()
	var conns atomic.Int64
	srv := httptest.NewUnstartedServer(h)
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			conns.Add(1)
		}
	}
	srv.StartTLS()
	t.Cleanup(srv.Close)
	return srv, &conns
}

// hostPort returns srv's "127.0.0.1:port".
func hostPort(srv *httptest.Server) string {
	u, _ := url.Parse(srv.URL)
	return u.Host
}

// httpsConfig trusts srv's certificate and allows the given hosts.
func httpsConfig(srv *httptest.Server, allow ...string) FetcherConfig {
	return FetcherConfig{AllowHTTP: allow, RootCAs: srv.Client().Transport.(*http.Transport).TLSClientConfig.RootCAs}
}

func TestFetchHTTPSRefusedWithoutNetwork(t *testing.T) {
	t.Parallel()
	srv, conns := tlsServer(t, func(w http.ResponseWriter, r *http.Request) {
		t.Errorf("request reached the server: %s", r.URL)
	})
	plain := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		t.Errorf("request reached the plain server: %s", r.URL)
	}))
	defer plain.Close()

	cases := []struct {
		name, uri string
		allow     []string
		wantMsg   string
	}{
		{"disabled", srv.URL + "/a.csv", nil, "fetching https:// sources is disabled; allow the host in configuration"},
		{"other host", srv.URL + "/a.csv", []string{"data.example.com", "*.example.org"}, `host "127.0.0.1" is not allowed`},
		{"other port", srv.URL + "/a.csv", []string{"127.0.0.1:1"}, `host "127.0.0.1" is not allowed`},
		{"wildcard is not the apex", "https://example.org/a.csv", []string{"*.example.org"}, `host "example.org" is not allowed`},
		{"plain http", plain.URL + "/a.csv", []string{"127.0.0.1"}, "plain http:// is not allowed"},
		{"other scheme", "ftp://127.0.0.1/a.csv", []string{"127.0.0.1"}, "only s3:// and https://"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cfg := httpsConfig(srv, c.allow...)
			f, dir := newTestFetcher(t, cfg)
			_, _, err := f.Fetch(context.Background(), c.uri)
			wantCode(t, err, kalla.EINVALID)
			if !strings.Contains(err.Error(), c.wantMsg) {
				t.Errorf("error %q does not contain %q", err, c.wantMsg)
			}
			wantEmptyDir(t, dir)
		})
	}
	if n := conns.Load(); n != 0 {
		t.Errorf("%d connections were made to the https server", n)
	}
}

func TestFetchHTTPSAllowed(t *testing.T) {
	t.Parallel()
	body := []byte("id,amount\n1,10.00\n2,20.00\n")
	srv, _ := tlsServer(t, func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/exports/ledger.csv.gz":
			// A misconfigured server: the bytes must still arrive as stored.
			w.Header().Set("Content-Encoding", "gzip")
			w.Write(body)
		case "/moved.csv":
			http.Redirect(w, r, "/exports/ledger.csv.gz", http.StatusFound)
		default:
			http.NotFound(w, r)
		}
	})
	for _, allow := range []string{"127.0.0.1", hostPort(srv), "https://" + hostPort(srv)} {
		t.Run(allow, func(t *testing.T) {
			f, dir := newTestFetcher(t, httpsConfig(srv, allow))
			path, cleanup, err := f.Fetch(context.Background(), srv.URL+"/exports/ledger.csv.gz?token=abc")
			if err != nil {
				t.Fatalf("Fetch: %v", err)
			}
			if !strings.HasSuffix(path, ".csv.gz") {
				t.Errorf("path %s lost the .csv.gz extension", path)
			}
			if got := readFetched(t, path, cleanup); !bytes.Equal(got, body) {
				t.Errorf("fetched %q, want %q", got, body)
			}

			path, cleanup, err = f.Fetch(context.Background(), srv.URL+"/moved.csv")
			if err != nil {
				t.Fatalf("Fetch through a redirect: %v", err)
			}
			if got := readFetched(t, path, cleanup); !bytes.Equal(got, body) {
				t.Errorf("fetched %q, want %q", got, body)
			}

			_, _, err = f.Fetch(context.Background(), srv.URL+"/absent.csv")
			wantCode(t, err, kalla.ENOTFOUND)
			wantEmptyDir(t, dir)
		})
	}
}

func TestFetchHTTPSRedirectToDisallowedHost(t *testing.T) {
	t.Parallel()
	inner, innerConns := tlsServer(t, func(w http.ResponseWriter, r *http.Request) {
		t.Errorf("redirect was followed to %s", r.URL)
	})
	outer, _ := tlsServer(t, func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, inner.URL+"/metadata?X-Amz-Signature=s3cr3t", http.StatusFound)
	})
	// Both servers share httptest's certificate, so inner is trusted too.
	f, dir := newTestFetcher(t, httpsConfig(outer, hostPort(outer)))
	_, _, err := f.Fetch(context.Background(), outer.URL+"/a.csv")
	wantCode(t, err, kalla.EINVALID)
	if !strings.Contains(err.Error(), "refused redirect") || strings.Contains(err.Error(), "s3cr3t") {
		t.Errorf("error = %v", err)
	}
	if n := innerConns.Load(); n != 0 {
		t.Errorf("%d connections were made to the redirect target", n)
	}
	wantEmptyDir(t, dir)
}

func TestFetchHTTPSSizeCap(t *testing.T) {
	t.Parallel()
	chunk := bytes.Repeat([]byte("x"), 4096)
	srv, _ := tlsServer(t, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/declared.csv" {
			w.Header().Set("Content-Length", strconv.Itoa(1<<30))
		}
		// Stream forever (or until the declared length): the client must stop.
		for i := 0; r.Context().Err() == nil && i < (1<<30)/len(chunk); i++ {
			if _, err := w.Write(chunk); err != nil {
				return
			}
		}
	})
	for _, p := range []string{"/declared.csv", "/chunked.csv"} {
		t.Run(p, func(t *testing.T) {
			cfg := httpsConfig(srv, "127.0.0.1")
			cfg.MaxSize = 1 << 20
			f, dir := newTestFetcher(t, cfg)
			_, _, err := f.Fetch(context.Background(), srv.URL+p)
			wantCode(t, err, kalla.EINVALID)
			if !strings.Contains(err.Error(), "larger than the limit of 1 MiB") {
				t.Errorf("error = %v", err)
			}
			wantEmptyDir(t, dir)
		})
	}
}

func TestFetchHTTPSCancelRemovesPartial(t *testing.T) {
	t.Parallel()
	srv, _ := tlsServer(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", strconv.Itoa(2<<20))
		w.Write(make([]byte, 1<<20))
		w.(http.Flusher).Flush()
		<-r.Context().Done() // the second half never comes
	})
	f, dir := newTestFetcher(t, httpsConfig(srv, "127.0.0.1"))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var sawPartial atomic.Bool
	f.progress = func(n int64) {
		if n >= 1<<20 {
			if ents, _ := os.ReadDir(dir); len(ents) == 1 {
				sawPartial.Store(true)
			}
			cancel()
		}
	}
	_, _, err := f.Fetch(ctx, srv.URL+"/slow.csv")
	if !errors.Is(err, context.Canceled) {
		t.Errorf("error %v is not context.Canceled", err)
	}
	if !sawPartial.Load() {
		t.Error("no partial file existed mid-download")
	}
	wantEmptyDir(t, dir)
}

func TestFetchHTTPSTimeoutsAndSecrets(t *testing.T) {
	t.Parallel()
	srv, _ := tlsServer(t, func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-time.After(5 * time.Second):
		case <-r.Context().Done():
		}
	})
	cfg := httpsConfig(srv, "127.0.0.1")
	cfg.ResponseHeaderTimeout = 200 * time.Millisecond
	f, dir := newTestFetcher(t, cfg)

	u, _ := url.Parse(srv.URL)
	for name, uri := range map[string]string{
		"slow headers": "https://alice:pa55word@" + u.Host + "/a.csv?X-Amz-Signature=s3cr3t&X-Amz-Security-Token=t0ken",
		"unreachable":  "https://alice:pa55word@" + closedPort(t) + "/a.csv?X-Amz-Signature=s3cr3t&X-Amz-Security-Token=t0ken",
	} {
		t.Run(name, func(t *testing.T) {
			start := time.Now()
			_, _, err := f.Fetch(context.Background(), uri)
			wantCode(t, err, kalla.EUNAVAILABLE)
			if d := time.Since(start); d > 3*time.Second {
				t.Errorf("took %v", d)
			}
			for _, s := range []string{"pa55word", "s3cr3t", "t0ken"} {
				if strings.Contains(err.Error(), s) {
					t.Errorf("error shows %q: %v", s, err)
				}
			}
			// The user name is not a secret: shown, as everywhere.
			if !strings.Contains(err.Error(), "https://alice:xxxxx@") {
				t.Errorf("error does not name the URL redacted: %v", err)
			}
			t.Logf("%v", err)
		})
	}
	wantEmptyDir(t, dir)
}

func TestFetchPlainHTTPWhenAllowed(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "a\n1\n")
	}))
	defer srv.Close()
	f, _ := newTestFetcher(t, FetcherConfig{AllowHTTP: []string{"127.0.0.1"}, AllowPlainHTTP: true})
	path, cleanup, err := f.Fetch(context.Background(), srv.URL+"/a.csv")
	if err != nil {
		t.Fatalf("Fetch: %v", err)
	}
	if got := readFetched(t, path, cleanup); string(got) != "a\n1\n" {
		t.Errorf("fetched %q", got)
	}
}

// ---------------------------------------------------------------- units

func TestParseS3URI(t *testing.T) {
	t.Parallel()
	cases := []struct {
		uri, bucket, key string
		ok               bool
	}{
		{"s3://b/k.csv", "b", "k.csv", true},
		{"S3://b/dir/a b%20c?#.csv", "b", "dir/a b%20c?#.csv", true},
		{"s3://b/", "", "", false},
		{"s3://b", "", "", false},
		{"s3:///k", "", "", false},
		{"s3://AKIA:secretkey@b/k", "", "", false},
	}
	for _, c := range cases {
		o, err := parseS3URI(c.uri)
		if c.ok != (err == nil) || o.bucket != c.bucket || o.key != c.key {
			t.Errorf("parseS3URI(%q) = %+v, %v", c.uri, o, err)
		}
		if err != nil && strings.Contains(err.Error(), "secretkey") {
			t.Errorf("error shows the secret: %v", err)
		}
	}
}

func TestHostAllowed(t *testing.T) {
	t.Parallel()
	list := []string{"Data.Example.com", "files.internal:8443", "*.bank.test", "[::1]", "https://reports.example.net"}
	cases := map[string]bool{
		"https://data.example.com/a":        true,
		"https://DATA.example.com.:444/a":   true,
		"https://evil.com/data.example.com": false,
		"https://data.example.com.evil/a":   false,
		"https://files.internal:8443/a":     true,
		"https://files.internal/a":          false,
		"https://x.y.bank.test/a":           true,
		"https://bank.test/a":               false,
		"https://evilbank.test/a":           false,
		"https://[::1]:9/a":                 true,
		"https://reports.example.net/a":     true,
	}
	for raw, want := range cases {
		u, _ := url.Parse(raw)
		if got := hostAllowed(list, u); got != want {
			t.Errorf("hostAllowed(%s) = %t, want %t", raw, got, want)
		}
	}
}

func TestTempSuffix(t *testing.T) {
	t.Parallel()
	cases := map[string]string{
		"a/orders.csv":         ".csv",
		"a/orders.csv.gz":      ".csv.gz",
		"x.PARQUET":            ".PARQUET",
		"noext":                "",
		".hidden":              "",
		"a/we ird.na me.csv":   ".csv",
		"a/b.c/file":           "",
		"evil.*.csv":           ".csv",
		"x.a very long name$":  "",
		"report.2026.11.csv":   ".2026.11.csv",
		"dir.with.dots/ok.tsv": ".tsv",
	}
	for in, want := range cases {
		if got := tempSuffix(in); got != want {
			t.Errorf("tempSuffix(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestS3ConfigFromEnv(t *testing.T) {
	t.Setenv("S3_ENDPOINT", "http://127.0.0.1:7070")
	t.Setenv("S3_ACCESS_KEY", "ak")
	t.Setenv("S3_SECRET_KEY", "topsecret")
	t.Setenv("S3_REGION", "eu-west-1")
	t.Setenv("S3_PATH_STYLE", "")
	c, err := S3ConfigFromEnv()
	if err != nil {
		t.Fatal(err)
	}
	want := S3Config{Endpoint: "http://127.0.0.1:7070", Region: "eu-west-1", AccessKey: "ak", SecretKey: "topsecret", PathStyle: true}
	if c != want {
		t.Errorf("S3ConfigFromEnv = %+v, want %+v", c, want)
	}
	if s := c.String(); strings.Contains(s, "topsecret") {
		t.Errorf("String shows the secret: %s", s)
	}

	t.Setenv("S3_PATH_STYLE", "false")
	if c, err := S3ConfigFromEnv(); err != nil || c.PathStyle {
		t.Errorf("S3_PATH_STYLE=false: %+v, %v", c, err)
	}
	t.Setenv("S3_PATH_STYLE", "maybe")
	if _, err := S3ConfigFromEnv(); kalla.ErrorCode(err) != kalla.EINVALID {
		t.Errorf("S3_PATH_STYLE=maybe: %v, want EINVALID", err)
	}
	t.Setenv("S3_PATH_STYLE", "")
	t.Setenv("S3_ENDPOINT", "")
	if c, err := S3ConfigFromEnv(); err != nil || c.PathStyle {
		t.Errorf("no endpoint: %+v, %v; want virtual-host style", c, err)
	}
}

func TestS3ConfigValidate(t *testing.T) {
	t.Parallel()
	cases := map[string]bool{
		"":                         true,
		"http://127.0.0.1:7070":    true,
		"https://s3.example.com":   true,
		"s3.example.com:9000":      true,
		"ftp://h":                  false,
		"http://u:topsecret@h:1":   false,
		"http://h:1/bucket":        false,
		"http://%zz":               false,
		"https://h/?X-Amz-Token=1": false,
	}
	for ep, ok := range cases {
		err := S3Config{Endpoint: ep, AccessKey: "a", SecretKey: "topsecret"}.Validate()
		if (err == nil) != ok {
			t.Errorf("Validate(%q) = %v, want ok=%t", ep, err, ok)
		}
		if err != nil && strings.Contains(err.Error(), "topsecret") {
			t.Errorf("Validate(%q) shows the secret: %v", ep, err)
		}
	}
	if err := (S3Config{AccessKey: "a"}).Validate(); err == nil {
		t.Error("Validate accepted an access key without a secret key")
	}
	// An invalid configuration surfaces on the first s3:// fetch, not before.
	f := NewFetcher(FetcherConfig{S3: S3Config{Endpoint: "ftp://h"}, TempDir: t.TempDir()})
	_, _, err := f.Fetch(context.Background(), "s3://b/k.csv")
	wantCode(t, err, kalla.EINVALID)
}

// cancelReader cancels a context once n bytes have been read through it.
type cancelReader struct {
	r      io.Reader
	n      int64
	cancel context.CancelFunc
}

func (c *cancelReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	if c.n -= int64(n); c.n <= 0 {
		c.cancel()
	}
	return n, err
}

func TestStorePutCancelLeavesNothing(t *testing.T) {
	t.Parallel()
	env := testenv.S3(t)
	st, err := NewStore(s3Config(env), env.Bucket, "")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	// Cancelled while reading the second part, after the first was sent.
	r := &cancelReader{r: bytes.NewReader(pseudoRandom(40 << 20)), n: 20 << 20, cancel: cancel}
	_, err = st.Put(ctx, "half.csv", r, -1)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("Put = %v, want context.Canceled", err)
	}
	_, err = st.Stat(context.Background(), "half.csv")
	wantCode(t, err, kalla.ENOTFOUND)
	for up := range st.client.ListIncompleteUploads(context.Background(), env.Bucket, "", true) {
		t.Errorf("unfinished multipart upload left behind: %+v (err %v)", up.Key, up.Err)
	}
}

// TestFetchPrefixS3 checks that a preview's fetch of a large object reads
// only its start: a ranged GET, counted in bytes received from the server.
func TestFetchPrefixS3(t *testing.T) {
	t.Parallel()
	env := testenv.S3(t)
	const size, n = 4 << 20, 64 << 10
	data := pseudoRandom(size)
	env.Put(t, "big.csv", data)
	env.Put(t, "small.csv", data[:1000])
	env.Put(t, "empty.csv", nil)
	f, dir := newTestFetcher(t, FetcherConfig{S3: s3Config(env)})
	var received atomic.Int64
	f.progress = func(written int64) { received.Store(written) }

	path, whole, cleanup, err := f.FetchPrefix(context.Background(), env.URI("big.csv"), n)
	if err != nil {
		t.Fatalf("FetchPrefix: %v", err)
	}
	if got := readFetched(t, path, cleanup); whole || !bytes.Equal(got, data[:n]) {
		t.Errorf("prefix of a %d-byte object: %d bytes, whole %v; want its first %d", size, len(got), whole, n)
	}
	if r := received.Load(); r > n+1 {
		t.Errorf("received %d bytes from the server for a %d-byte prefix: not a ranged read", r, n)
	}
	for key, want := range map[string][]byte{"small.csv": data[:1000], "empty.csv": {}} {
		path, whole, cleanup, err := f.FetchPrefix(context.Background(), env.URI(key), n)
		if err != nil {
			t.Fatalf("FetchPrefix %s: %v", key, err)
		}
		if got := readFetched(t, path, cleanup); !whole || !bytes.Equal(got, want) {
			t.Errorf("%s: %d bytes, whole %v; want all %d", key, len(got), whole, len(want))
		}
	}
	_, _, _, err = f.FetchPrefix(context.Background(), env.URI("absent.csv"), n)
	wantCode(t, err, kalla.ENOTFOUND)
	wantEmptyDir(t, dir)
}

// TestFetchPrefixHTTPS checks the prefix of an https:// source: asked with
// a Range header, and read no further than needed from a server that
// ignores it.
func TestFetchPrefixHTTPS(t *testing.T) {
	t.Parallel()
	data := pseudoRandom(1 << 20)
	var sent atomic.Int64
	srv, _ := tlsServer(t, func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Range") != "bytes=0-4096" {
			t.Errorf("Range header %q", r.Header.Get("Range"))
		}
		// Ignore the range: send everything, as some servers do.
		for off := 0; off < len(data); off += 16 << 10 {
			k, err := w.Write(data[off : off+16<<10])
			sent.Add(int64(k))
			if err != nil {
				return
			}
		}
	})
	f, dir := newTestFetcher(t, httpsConfig(srv, hostPort(srv)))
	path, whole, cleanup, err := f.FetchPrefix(context.Background(), srv.URL+"/big.csv", 4096)
	if err != nil {
		t.Fatalf("FetchPrefix: %v", err)
	}
	if got := readFetched(t, path, cleanup); whole || !bytes.Equal(got, data[:4096]) {
		t.Errorf("prefix: %d bytes, whole %v", len(got), whole)
	}
	wantEmptyDir(t, dir)
	t.Logf("the server wrote %d of %d bytes before the connection was dropped", sent.Load(), len(data))
}

// TestFetchStalledServer: a server that sends part of a file and then
// nothing, keeping the connection open, is stopped after the idle timeout
// with a SourceStalled error naming the source; no file is left.
func TestFetchStalledServer(t *testing.T) {
	const idle = 300 * time.Millisecond
	srv, _ := tlsServer(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", "1000000")
		w.Write(bytes.Repeat([]byte("a,b\n"), 1000))
		w.(http.Flusher).Flush()
		<-r.Context().Done() // silent until the client gives up
	})
	cfg := httpsConfig(srv, hostPort(srv))
	cfg.IdleTimeout = idle
	f, tmp := newTestFetcher(t, cfg)
	_, _, err := f.Fetch(context.Background(), srv.URL+"/ledger.csv")
	var se *kalla.SourceError
	if !errors.As(err, &se) || se.Kind != kalla.SourceStalled || !strings.Contains(err.Error(), "/ledger.csv sent nothing for 300ms") {
		t.Fatalf("stalled fetch: %v", err)
	}
	if left, _ := os.ReadDir(tmp); len(left) != 0 {
		t.Errorf("a stalled fetch left %d files", len(left))
	}
}

// TestOpenRange reads parts of an S3 object and of an https:// file by
// ranged GETs: the bytes asked for and no more, io.EOF past the end; a
// missing object is ENOTFOUND, and a server that ignores Range is told
// apart (errors.ErrUnsupported) so the caller can fetch the file whole.
func TestOpenRange(t *testing.T) {
	t.Parallel()
	data := pseudoRandom(1 << 20)
	check := func(t *testing.T, r io.ReaderAt, size int64, received func() int64) {
		t.Helper()
		if size != int64(len(data)) {
			t.Fatalf("size %d, want %d", size, len(data))
		}
		before := received()
		p := make([]byte, 1000)
		if n, err := r.ReadAt(p, 5000); n != 1000 || err != nil || !bytes.Equal(p, data[5000:6000]) {
			t.Errorf("ReadAt(1000 at 5000) = %d, %v", n, err)
		}
		if got := received() - before; got != 1000 {
			t.Errorf("read 1000 bytes, received %d", got)
		}
		if n, err := r.ReadAt(p, size-10); n != 10 || err != io.EOF || !bytes.Equal(p[:10], data[len(data)-10:]) {
			t.Errorf("ReadAt over the end = %d, %v; want 10, io.EOF", n, err)
		}
		if n, err := r.ReadAt(p, size); n != 0 || err != io.EOF {
			t.Errorf("ReadAt at the end = %d, %v", n, err)
		}
	}
	t.Run("s3", func(t *testing.T) {
		env := testenv.S3(t)
		env.Put(t, "obj.bin", data)
		f, _ := newTestFetcher(t, FetcherConfig{S3: s3Config(env)})
		var received atomic.Int64
		f.progress = func(written int64) { received.Store(written) }
		r, size, err := f.OpenRange(context.Background(), env.URI("obj.bin"))
		if err != nil {
			t.Fatal(err)
		}
		var total int64
		check(t, r, size, func() int64 { total += received.Swap(0); return total })
		_, _, err = f.OpenRange(context.Background(), env.URI("absent.bin"))
		wantCode(t, err, kalla.ENOTFOUND)
	})
	t.Run("https", func(t *testing.T) {
		var sent atomic.Int64
		srv, _ := tlsServer(t, func(w http.ResponseWriter, r *http.Request) {
			switch r.URL.Path {
			case "/obj.bin":
				http.ServeContent(&countWriter{w, &sent}, r, "obj.bin", time.Time{}, bytes.NewReader(data))
			case "/norange.bin":
				w.Write(data[:100]) // ignores Range
			default:
				http.NotFound(w, r)
			}
		})
		f, _ := newTestFetcher(t, httpsConfig(srv, hostPort(srv)))
		r, size, err := f.OpenRange(context.Background(), srv.URL+"/obj.bin")
		if err != nil {
			t.Fatal(err)
		}
		check(t, r, size, sent.Load)
		_, _, err = f.OpenRange(context.Background(), srv.URL+"/norange.bin")
		if !errors.Is(err, errors.ErrUnsupported) {
			t.Errorf("a server without ranges: %v, want errors.ErrUnsupported", err)
		}
		_, _, err = f.OpenRange(context.Background(), srv.URL+"/absent.bin")
		wantCode(t, err, kalla.ENOTFOUND)
	})
}

type countWriter struct {
	http.ResponseWriter
	n *atomic.Int64
}

func (c *countWriter) Write(p []byte) (int, error) {
	k, err := c.ResponseWriter.Write(p)
	c.n.Add(int64(k))
	return k, err
}

// TestStoreListRemove lists objects under a prefix (and only there),
// removes one (a missing one too, without error) and then a whole folder,
// leaving its neighbour whose name shares the folder's start.
func TestStoreListRemove(t *testing.T) {
	t.Parallel()
	env := testenv.S3(t)
	st, err := NewStore(s3Config(env), env.Bucket, "out/")
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for _, k := range []string{"matched.csv/part-0.csv", "matched.csv/part-1.csv", "matched.csv2/x", "summary.json"} {
		if _, err := st.Put(ctx, k, bytes.NewReader([]byte(k)), int64(len(k))); err != nil {
			t.Fatal(err)
		}
	}
	env.Put(t, "elsewhere/matched.csv/part-0.csv", []byte("x"))
	list := func(prefix string) []string {
		objs, err := st.List(ctx, prefix)
		if err != nil {
			t.Fatalf("List(%q): %v", prefix, err)
		}
		var out []string
		for _, o := range objs {
			if o.Size <= 0 {
				t.Errorf("List: %s has size %d", o.URI, o.Size)
			}
			out = append(out, o.URI)
		}
		return out
	}
	if got, want := list("matched.csv/"), []string{env.URI("out/matched.csv/part-0.csv"), env.URI("out/matched.csv/part-1.csv")}; !slices.Equal(got, want) {
		t.Errorf("List = %v, want %v", got, want)
	}
	if err := st.Remove(ctx, "summary.json"); err != nil {
		t.Fatal(err)
	}
	if err := st.Remove(ctx, "summary.json"); err != nil {
		t.Errorf("removing a missing object: %v", err)
	}
	_, err = st.Stat(ctx, "summary.json")
	wantCode(t, err, kalla.ENOTFOUND)
	if err := st.RemoveAll(ctx, "matched.csv/"); err != nil {
		t.Fatal(err)
	}
	if got, want := list(""), []string{env.URI("out/matched.csv2/x")}; !slices.Equal(got, want) {
		t.Errorf("after RemoveAll: %v, want %v", got, want)
	}
	wantCode(t, st.RemoveAll(ctx, " "), kalla.EINVALID)
	if got := env.Get(t, "elsewhere/matched.csv/part-0.csv"); string(got) != "x" {
		t.Errorf("an object outside the store's prefix changed: %q", got)
	}
}
