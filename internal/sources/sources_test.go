package sources_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/kalla-recon/kalla/internal/kalla"
	"github.com/kalla-recon/kalla/internal/sources"
	"github.com/kalla-recon/kalla/internal/testenv"
)

// TestOpenFailures: a source that cannot be opened comes back as a plain
// nil (a typed nil in the interface made `recipe check` panic) and a
// *kalla.SourceError naming the alias, whose kind callers test.
func TestOpenFailures(t *testing.T) {
	mgr := sources.New(sources.Config{})
	defer mgr.Close()
	for _, b := range testenv.BrokenSources(t, t.TempDir()) {
		t.Run(b.Name, func(t *testing.T) {
			src, err := mgr.Open(context.Background(), kalla.SourceSpec{Alias: "ledger", URI: b.URI}, "")
			if src != nil || err == nil {
				t.Fatalf("Open: source %#v, error %v", src, err)
			}
			var se *kalla.SourceError
			if !errors.As(err, &se) || se.Kind != b.Kind || se.Alias != "ledger" {
				t.Fatalf("Open: %T %v, want a SourceError of kind %s for ledger", err, err, b.Kind)
			}
			msg := kalla.ErrorMessage(err)
			for _, w := range append([]string{"source ledger: "}, b.Want...) {
				if !strings.Contains(msg, w) {
					t.Errorf("message %q lacks %q", msg, w)
				}
			}
			if strings.Contains(msg, "secret") {
				t.Errorf("message shows the password: %q", msg)
			}
		})
	}
}

// TestCheckURI checks that each kind of source URI is judged by its own
// connector's allow-list, without any I/O.
func TestCheckURI(t *testing.T) {
	for _, tc := range []struct {
		typ, uri, want string // want "" means accepted
	}{
		{"", "postgres://u:pw@db:5432/x?table=t&sslmode=require&connect_timeout=5&application_name=kalla", ""},
		{"", "postgres://u:pw@db/x?table=t&passfile=/etc/passwd", `"passfile"`},
		{"", "postgresql://u:pw@db/x?table=t&service=prod", `"service"`},
		{"", "postgres://u:pw@db/x?table=t&options=-c%20search_path%3Devil", `"options"`},
		{"", "postgres://u:pw@/x?table=t", "Unix sockets"},
		{"", "mysql://u:pw@db/x?table=t&tls=true&timeout=5s", ""},
		{"", "mysql://u:pw@db/x?table=t&allowAllFiles=true", `"allowAllFiles"`},
		{"", "mysql://u:pw@db/x?table=t&sql_mode=ANSI", `"sql_mode"`},
		{"", "s3://bucket/dir/odd?name.csv", ""},
		{"csv", "https://files.example.com/a.csv?X-Amz-Signature=abc", ""},
		{"", "file:///data/a.csv?header=false", "no parameters"},
		{"", "/data/a.csv", ""},
	} {
		err := sources.CheckURI(kalla.SourceSpec{Type: tc.typ, URI: tc.uri})
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("CheckURI(%s) = %v, want accepted", tc.uri, err)
		case tc.want != "" && (kalla.ErrorCode(err) != kalla.EINVALID || !strings.Contains(kalla.ErrorMessage(err), tc.want)):
			t.Errorf("CheckURI(%s) = %v, want EINVALID naming %s", tc.uri, err, tc.want)
		case err != nil && strings.Contains(err.Error(), ":pw@"):
			t.Errorf("CheckURI(%s) shows the password: %v", tc.uri, err)
		}
	}
}
