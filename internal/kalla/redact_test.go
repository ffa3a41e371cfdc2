package kalla_test

import (
	"errors"
	"io/fs"
	"strings"
	"testing"

	"github.com/kalla-recon/kalla/internal/kalla"
)

func TestRedact(t *testing.T) {
	cases := map[string]string{
		// URIs: the password and secret query values, in place.
		"postgres://alice:s3cret@db:5432/x?table=t":             "postgres://alice:xxxxx@db:5432/x?table=t",
		"mysql://root:p%40ss@127.0.0.1:3306/db?table=p":         "mysql://root:xxxxx@127.0.0.1:3306/db?table=p",
		"mysql://root:p@ss@127.0.0.1:3306/db":                   "mysql://root:xxxxx@127.0.0.1:3306/db",
		"postgres://u:pa/ss@h/db":                               "postgres://u:xxxxx@h/db",
		"postgres://alice@db/x?table=t":                         "postgres://alice@db/x?table=t",
		"postgres://db/x?table=t&password=hunter2":              "postgres://db/x?table=t&password=xxxxx",
		"postgres://db/x?sslpassword=a&sslmode=require":         "postgres://db/x?sslpassword=xxxxx&sslmode=require",
		"https://h/cb?api_key=A1&key=K2&sig=S3&x=1#frag":        "https://h/cb?api_key=xxxxx&key=xxxxx&sig=xxxxx&x=1#frag",
		"https://b.s3/o?X-Amz-Credential=AK&X-Amz-Signature=ab": "https://b.s3/o?X-Amz-Credential=xxxxx&X-Amz-Signature=xxxxx",
		"https://h/x?Token=a&ApiKey=b&access_token=c&auth=d&credential=e&secret=f&passwd=g&pwd=h&signature=i&secret_key=j&access_key=k&apikey=l": "https://h/x?Token=xxxxx&ApiKey=xxxxx&access_token=xxxxx&auth=xxxxx&credential=xxxxx&secret=xxxxx&passwd=xxxxx&pwd=xxxxx&signature=xxxxx&secret_key=xxxxx&access_key=xxxxx&apikey=xxxxx",
		"https://h/x?left_key=id&page=2":    "https://h/x?left_key=id&page=2",
		"data/invoices.csv":                 "data/invoices.csv",
		"s3://bucket/key=2024/part.parquet": "s3://bucket/key=2024/part.parquet",
		"s3://AKIA:wJalr@bucket/key.csv":    "s3://AKIA:xxxxx@bucket/key.csv",
		// MySQL DSNs.
		"root:pw@tcp(127.0.0.1:3306)/db?parseTime=true": "root:xxxxx@tcp(127.0.0.1:3306)/db?parseTime=true",
		"u:p@ss@unix(/tmp/s)/db":                        "u:xxxxx@unix(/tmp/s)/db",
		"u:pw@/db":                                      "u:xxxxx@/db",
		// Connection strings.
		"host=h user=u password=hunter2 dbname=d": "host=h user=u password=xxxxx dbname=d",
		"host=h password='two words' dbname=d":    "host=h password='xxxxx' dbname=d",
		"Server=h;Password=p;Database=d":          "Server=h;Password=xxxxx;Database=d",
		// Messages: each token at its position, nothing else touched.
		"not a url postgres://bob:pw@host/db with spaces":                                         "not a url postgres://bob:xxxxx@host/db with spaces",
		`open "mysql://u:tcp@127.0.0.1:1/db": dial tcp 127.0.0.1:1: connection refused`:           `open "mysql://u:xxxxx@127.0.0.1:1/db": dial tcp 127.0.0.1:1: connection refused`,
		"invalid DSN u:a@tcp(h:1)/d?x=1: missing":                                                 "invalid DSN u:xxxxx@tcp(h:1)/d?x=1: missing",
		"failed to connect to `user=u database=d`: password authentication failed for user \"u\"": "failed to connect to `user=u database=d`: password authentication failed for user \"u\"",
		"callback https://h/k?token=abc failed; retry https://h/k?token=abc":                      "callback https://h/k?token=xxxxx failed; retry https://h/k?token=xxxxx",
		"filter amount=12 and time 12:30":                                                         "filter amount=12 and time 12:30",
		"nothing secret here":                                                                     "nothing secret here",
		"":                                                                                        "",
	}
	for in, want := range cases {
		if got := kalla.Redact(in); got != want {
			t.Errorf("Redact(%q)\n got %q\nwant %q", in, got, want)
		}
	}
}

// TestRedactShortPassword: masking by position neither mangles a message
// that happens to contain the password's text nor, by doing so, reveals it.
func TestRedactShortPassword(t *testing.T) {
	for _, pw := range []string{"tcp", "a", "1", "dial", "h"} {
		msg := "source mysql://u:" + pw + "@127.0.0.1:1/db?table=t: dial tcp 127.0.0.1:1: connect: connection refused"
		want := "source mysql://u:xxxxx@127.0.0.1:1/db?table=t: dial tcp 127.0.0.1:1: connect: connection refused"
		if got := kalla.Redact(msg); got != want {
			t.Errorf("password %q: got %q", pw, got)
		}
	}
}

func TestRedactError(t *testing.T) {
	base := &fs.PathError{Op: "open", Path: "postgres://u:hunter2@h/db", Err: fs.ErrNotExist}
	err := kalla.RedactError(base)
	if strings.Contains(err.Error(), "hunter2") || !strings.Contains(err.Error(), "u:xxxxx@h") {
		t.Errorf("message %q", err)
	}
	var pe *fs.PathError
	if !errors.Is(err, fs.ErrNotExist) || !errors.As(err, &pe) {
		t.Errorf("chain broken: %v", err)
	}
	if kalla.RedactError(nil) != nil {
		t.Error("RedactError(nil) != nil")
	}
}

func TestExcerpt(t *testing.T) {
	if got := kalla.Excerpt("short"); got != "short" {
		t.Errorf("Excerpt(short) = %q", got)
	}
	long := strings.Repeat("é", 100000)
	got := kalla.Excerpt(long)
	if n := len([]rune(got)); n > 240 {
		t.Errorf("excerpt of 100000 characters has %d", n)
	}
	if !strings.Contains(got, "99840 characters cut") {
		t.Errorf("excerpt does not say how much was cut: %q", got)
	}
}

// TestRecipeErrorsQuoteAnExcerpt: recipe problems quote long user input
// (an id, an alias, a URI, an operator) by a bounded excerpt.
func TestRecipeErrorsQuoteAnExcerpt(t *testing.T) {
	long := strings.Repeat("a", 100000)
	rec := kalla.Recipe{RecipeID: long + "!"}
	rec.Sources.Left = kalla.SourceSpec{Alias: "1" + long, URI: "weird://" + long}
	rec.Sources.Right = kalla.SourceSpec{Alias: "r", URI: "x.csv", Type: long}
	rec.Rules = []kalla.Rule{{Name: long, Conditions: []kalla.Condition{{Op: long, Left: "a", Right: "b"}}}}
	err := rec.Validate()
	if err == nil {
		t.Fatal("invalid recipe accepted")
	}
	if n := len(err.Error()); n > 4000 {
		t.Errorf("message of %d characters: %.400s", n, err)
	}
}
