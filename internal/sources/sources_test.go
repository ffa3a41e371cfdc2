package sources_test

import (
	"strings"
	"testing"

	"github.com/kalla-recon/kalla/internal/kalla"
	"github.com/kalla-recon/kalla/internal/sources"
)

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
