package store_test

import (
	"context"
	"errors"
	"go/parser"
	"go/token"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kalla-recon/kalla/internal/kalla"
	"github.com/kalla-recon/kalla/internal/store"
	"github.com/kalla-recon/kalla/internal/testenv"
)

// backends are the store's backends; each gives a test the URL of a fresh,
// empty metadata store.
var backends = []struct {
	name   string
	newURL func(t *testing.T) string
}{
	{"sqlite", func(t *testing.T) string {
		return "sqlite://" + filepath.Join(t.TempDir(), "kalla.db")
	}},
	{"postgres", func(t *testing.T) string { return testenv.Postgres(t) }},
}

// TestStore runs the one contract suite against every backend.
func TestStore(t *testing.T) {
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			t.Parallel()
			testContract(t, b.newURL)
		})
	}
}

// open opens the store at u and closes it when the test ends.
func open(t *testing.T, u string, opts ...store.Option) *store.Store {
	t.Helper()
	s, err := store.Open(context.Background(), u, opts...)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return s
}

// wantCode fails the test unless err carries the kalla error code; an
// ENOTFOUND error must also wrap store.ErrNotFound.
func wantCode(t *testing.T, err error, code string) {
	t.Helper()
	if err == nil {
		t.Fatalf("err = nil, want code %s", code)
	}
	if got := kalla.ErrorCode(err); got != code {
		t.Fatalf("err = %v: code %s, want %s", err, got, code)
	}
	if is := errors.Is(err, store.ErrNotFound); is != (code == kalla.ENOTFOUND) {
		t.Fatalf("err = %v: errors.Is(err, ErrNotFound) = %v with code %s", err, is, code)
	}
}

// clock is a fake clock for WithClock: every reading is later than the last
// by a little over a millisecond, and carries nanoseconds and a non-UTC zone
// so tests see the store normalise them.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock {
	return &clock{t: time.Date(2026, 11, 25, 10, 0, 0, 123456789, time.FixedZone("CET", 3600))}
}

// Advance moves the clock d forward.
func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(time.Millisecond + 1234*time.Nanosecond)
	return c.t
}

func TestOpenRejectsBadURLs(t *testing.T) {
	for name, u := range map[string]string{
		"unknown scheme": "mysql://u:secret@host/db",
		"memory":         "sqlite://:memory:",
		"empty path":     "sqlite://",
		"query in path":  "sqlite:///tmp/x.db?mode=ro",
	} {
		t.Run(name, func(t *testing.T) {
			s, err := store.Open(context.Background(), u)
			if s != nil {
				t.Fatalf("Open returned a store")
			}
			wantCode(t, err, kalla.EINVALID)
			if strings.Contains(err.Error(), "secret") {
				t.Fatalf("error shows the password: %v", err)
			}
		})
	}
}

// TestOpenErrorsHideCredentials checks that connection failures never quote
// the password of the store's URL.
func TestOpenErrorsHideCredentials(t *testing.T) {
	good, err := url.Parse(testenv.Postgres(t))
	if err != nil {
		t.Fatal(err)
	}
	const secret = "s3cr3t-Pw"
	wrongPassword := *good
	wrongPassword.User = url.UserPassword(good.User.Username(), secret)
	unreachable := wrongPassword
	unreachable.Host = "127.0.0.1:1"
	inQuery := *good
	inQuery.User = url.User(good.User.Username())
	inQuery.RawQuery = "password=" + secret + "&sslmode=disable"
	for name, u := range map[string]string{
		"wrong password":    wrongPassword.String(),
		"unreachable":       unreachable.String(),
		"password in query": inQuery.String(),
		"bad port":          "postgres://u:" + secret + "@127.0.0.1:notaport/db",
	} {
		t.Run(name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			s, err := store.Open(ctx, u)
			if err == nil {
				s.Close()
				t.Fatal("Open succeeded")
			}
			if strings.Contains(err.Error(), secret) || strings.Contains(kalla.ErrorMessage(err), secret) {
				t.Fatalf("error shows the password: %v", err)
			}
		})
	}
}

// TestSQLiteFileMode checks that a new SQLite store, which holds source
// URIs with credentials, is readable by its owner only.
func TestSQLiteFileMode(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "state")
	path := filepath.Join(dir, "kalla.db")
	s := open(t, path) // a plain path, and a directory that does not exist yet
	if err := s.UpsertSource(context.Background(), &kalla.RegisteredSource{Alias: "a", URI: "postgres://u:pw@h/db"}); err != nil {
		t.Fatal(err)
	}
	if s.Backend() != "sqlite" {
		t.Fatalf("Backend = %q", s.Backend())
	}
	for _, p := range []string{path, path + "-wal", path + "-shm"} {
		fi, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		if mode := fi.Mode().Perm(); mode&0o077 != 0 {
			t.Errorf("%s has mode %v, want no group or other access", filepath.Base(p), mode)
		}
	}
}

// TestSQLiteURLForms checks that the URL forms Open documents name the same
// file.
func TestSQLiteURLForms(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "kalla.db")
	s := open(t, "sqlite://"+path)
	ctx := context.Background()
	if err := s.UpsertSource(ctx, &kalla.RegisteredSource{Alias: "a", URI: "x.csv"}); err != nil {
		t.Fatal(err)
	}
	t.Chdir(dir)
	for _, u := range []string{path, "sqlite:" + path, "sqlite:kalla.db", "kalla.db"} {
		s2 := open(t, u)
		if _, err := s2.GetSource(ctx, "a"); err != nil {
			t.Errorf("%s: %v", u, err)
		}
	}
}

// TestNoLogging guards the promise that the store logs nothing, so a raw
// source URI can never reach a log through it.
func TestNoLogging(t *testing.T) {
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	fset := token.NewFileSet()
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		af, err := parser.ParseFile(fset, f, nil, parser.ImportsOnly)
		if err != nil {
			t.Fatal(err)
		}
		for _, imp := range af.Imports {
			p, _ := strconv.Unquote(imp.Path.Value)
			if p == "log" || p == "log/slog" {
				t.Errorf("%s imports %s: the store must not log", f, p)
			}
		}
		src, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, bad := range []string{"fmt.Print", "fmt.Fprint", "os.Stdout", "os.Stderr", "println("} {
			if strings.Contains(string(src), bad) {
				t.Errorf("%s uses %s: the store must not print", f, bad)
			}
		}
	}
}
