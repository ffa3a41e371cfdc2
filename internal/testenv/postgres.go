package testenv

import (
	"context"
	"net/url"
	"testing"

	"github.com/jackc/pgx/v5"
)

// Postgres creates a fresh, empty database (named kt_ followed by random hex
// digits) on the PostgreSQL server at EnvPostgresURL and returns a postgres://
// URI for it with the same user, password, host and query parameters. The
// database is dropped WITH (FORCE) when the test and its subtests end, so
// connections left open do not block the cleanup.
//
// Without EnvPostgresURL the test is skipped (or fails, see package doc).
func Postgres(t testing.TB) string {
	t.Helper()
	admin := lookup(t, EnvPostgresURL)[0]
	u, err := url.Parse(admin)
	if err != nil {
		t.Fatalf("testenv: %s is not a URL: %v", EnvPostgresURL, err)
	}
	name := uniqueName(t, "kt_")

	ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
	defer cancel()
	conn, err := pgx.Connect(ctx, admin)
	if err != nil {
		t.Fatalf("testenv: connect to PostgreSQL at %s (is `bash scripts/services.sh start` done?): %v", u.Redacted(), err)
	}
	defer conn.Close(context.Background())
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{name}.Sanitize()); err != nil {
		t.Fatalf("testenv: create PostgreSQL database %s: %v", name, err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
		defer cancel()
		conn, err := pgx.Connect(ctx, admin)
		if err != nil {
			t.Errorf("testenv: drop PostgreSQL database %s: connect: %v", name, err)
			return
		}
		defer conn.Close(context.Background())
		if _, err := conn.Exec(ctx, "DROP DATABASE IF EXISTS "+pgx.Identifier{name}.Sanitize()+" WITH (FORCE)"); err != nil {
			t.Errorf("testenv: drop PostgreSQL database %s: %v", name, err)
		}
	})

	out := *u
	out.Path = "/" + name
	out.RawPath = ""
	return out.String()
}
