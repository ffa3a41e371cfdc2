package testenv

import (
	"net/url"
	"path/filepath"
	"testing"

	"github.com/kalla-recon/kalla/internal/kalla"
)

// BrokenSource is a source that cannot be read, with the kind of its
// failure and words of the message every entry point (recipe check, run,
// the API, the UI) must give for it.
type BrokenSource struct {
	Name string
	URI  string
	Kind kalla.SourceKind
	Want []string
}

// BrokenSources returns the sources that fail in the common ways: a
// missing file (under dir), a missing table in PostgreSQL and in MariaDB
// (fresh databases), and a server that refuses connections.
func BrokenSources(t testing.TB, dir string) []BrokenSource {
	t.Helper()
	return []BrokenSource{
		{"missing file", filepath.Join(dir, "nosuch.csv"), kalla.SourceNotFound, []string{"nosuch.csv does not exist"}},
		{"missing postgres table", WithParam(t, Postgres(t), "table", "nosuch"), kalla.SourceNotFound, []string{"table nosuch not found"}},
		{"missing mariadb table", WithParam(t, MySQL(t), "table", "nosuch"), kalla.SourceNotFound, []string{"table nosuch not found"}},
		{"refused connection", "postgres://kalla:secret@127.0.0.1:1/db?table=t", kalla.SourceUnreachable, []string{"cannot reach source", "refused"}},
	}
}

// WithParam returns uri with the query parameter name set to value.
func WithParam(t testing.TB, uri, name, value string) string {
	t.Helper()
	u, err := url.Parse(uri)
	if err != nil {
		t.Fatalf("testenv: %v", err)
	}
	q := u.Query()
	q.Set(name, value)
	u.RawQuery = q.Encode()
	return u.String()
}
