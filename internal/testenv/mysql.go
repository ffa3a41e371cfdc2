package testenv

import (
	"context"
	"database/sql"
	"net/url"
	"testing"

	"github.com/go-sql-driver/mysql"
)

// MySQL creates a fresh, empty database (named kt_ followed by random hex
// digits, character set utf8mb4) on the MariaDB/MySQL server at EnvMySQLURL
// and returns a URI for it in the form Kalla's mysql connector accepts:
// mysql://user:password@127.0.0.1:3306/kt_…, keeping the admin URI's query
// parameters. The database is dropped when the test and its subtests end.
//
// Without EnvMySQLURL the test is skipped (or fails, see package doc).
func MySQL(t testing.TB) string {
	t.Helper()
	admin := lookup(t, EnvMySQLURL)[0]
	u, err := url.Parse(admin)
	if err != nil || u.Scheme != "mysql" || u.Host == "" {
		t.Fatalf("testenv: %s must look like mysql://user:password@host:port/db, got %q (err %v)", EnvMySQLURL, admin, err)
	}
	cfg := mysql.NewConfig()
	cfg.Net = "tcp"
	cfg.Addr = u.Host
	if u.Port() == "" {
		cfg.Addr = u.Host + ":3306"
	}
	if u.User != nil {
		cfg.User = u.User.Username()
		cfg.Passwd, _ = u.User.Password()
	}
	connector, err := mysql.NewConnector(cfg)
	if err != nil {
		t.Fatalf("testenv: %s: %v", EnvMySQLURL, err)
	}
	db := sql.OpenDB(connector)
	t.Cleanup(func() { db.Close() })
	name := uniqueName(t, "kt_")

	ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
	defer cancel()
	if _, err := db.ExecContext(ctx, "CREATE DATABASE `"+name+"` CHARACTER SET utf8mb4"); err != nil {
		t.Fatalf("testenv: create MariaDB database %s on %s (is `bash scripts/services.sh start` done?): %v", name, u.Redacted(), err)
	}
	// Registered after db.Close, so it runs before it (cleanups run last-in first-out).
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
		defer cancel()
		if _, err := db.ExecContext(ctx, "DROP DATABASE IF EXISTS `"+name+"`"); err != nil {
			t.Errorf("testenv: drop MariaDB database %s: %v", name, err)
		}
	})

	out := *u
	out.Path = "/" + name
	out.RawPath = ""
	return out.String()
}
