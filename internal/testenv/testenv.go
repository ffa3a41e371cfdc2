// Package testenv connects tests to the real servers Kalla talks to in
// production: PostgreSQL, MariaDB (MySQL protocol) and an S3-compatible object
// store. It is imported only from _test.go files.
//
// The servers are installed and started by the project's own script:
//
//	bash scripts/services.sh start
//	eval "$(bash scripts/services.sh env)"
//
// which exports the variables named by the Env* constants below. Each helper
// gives the calling test a private, freshly created database or bucket and
// removes it when the test ends (t.Cleanup), so tests can run in parallel and
// never see each other's data:
//
//	func TestReadOrders(t *testing.T) {
//		url := testenv.Postgres(t) // postgres://kalla_test:…@127.0.0.1:5432/kt_1a2b3c…
//		…
//	}
//
// When a variable is missing the test is skipped with a hint, unless Required
// reports true (KALLA_TEST_REQUIRE_SERVICES=1, set by scripts/test.sh, or
// CI=true, set by CI), in which case it fails: CI can never pass by silently
// skipping these tests.
// When a variable is set but its server cannot be reached, the test fails.
package testenv

import (
	"crypto/rand"
	"encoding/hex"
	"os"
	"testing"
	"time"
)

// Names of the environment variables the helpers read. scripts/services.sh env
// prints export lines for all of them except EnvRequireServices, which
// scripts/test.sh sets.
const (
	// EnvPostgresURL is the admin URI of the PostgreSQL server, in the form
	// postgres://user:password@127.0.0.1:5432/postgres. The user must be
	// allowed to create and drop databases.
	EnvPostgresURL = "KALLA_TEST_POSTGRES_URL"
	// EnvMySQLURL is the admin URI of the MariaDB/MySQL server, in the form
	// mysql://user:password@127.0.0.1:3306/mysql. The user must be allowed to
	// create and drop databases.
	EnvMySQLURL = "KALLA_TEST_MYSQL_URL"
	// EnvS3Endpoint is the base URL of the S3-compatible server, such as
	// http://127.0.0.1:7070. Buckets are addressed path-style.
	EnvS3Endpoint = "KALLA_TEST_S3_ENDPOINT"
	// EnvS3AccessKey is the S3 access key id.
	EnvS3AccessKey = "KALLA_TEST_S3_ACCESS_KEY"
	// EnvS3SecretKey is the S3 secret access key.
	EnvS3SecretKey = "KALLA_TEST_S3_SECRET_KEY"
	// EnvS3Region is the S3 region; us-east-1 when unset.
	EnvS3Region = "KALLA_TEST_S3_REGION"
	// EnvRequireServices, when "1", turns a missing variable into a test
	// failure instead of a skip.
	EnvRequireServices = "KALLA_TEST_REQUIRE_SERVICES"
	// EnvCI is set to "true" by CI systems (and by this project's CI); it
	// requires the services as EnvRequireServices does, so a CI that forgot
	// scripts/test.sh still cannot pass by skipping.
	EnvCI = "CI"
)

// Required reports whether the test services (and the browser) must be
// present: EnvRequireServices is "1" or EnvCI is "true". Tests that could
// skip for want of something external check it and fail instead.
func Required() bool {
	return os.Getenv(EnvRequireServices) == "1" || os.Getenv(EnvCI) == "true"
}

// SparkRemote returns the shared Spark Connect endpoint
// (KALLA_TEST_SPARK_REMOTE); without one the test is skipped, or fails when
// the services are required.
func SparkRemote(t testing.TB) string {
	t.Helper()
	remote := os.Getenv("KALLA_TEST_SPARK_REMOTE")
	if remote == "" {
		if Required() {
			t.Fatal("KALLA_TEST_SPARK_REMOTE not set and services are required")
		}
		t.Skip("KALLA_TEST_SPARK_REMOTE not set")
	}
	return remote
}

// opTimeout bounds every setup or cleanup call made to a server.
const opTimeout = 30 * time.Second

// hint tells a developer how to get the services.
const hint = "run `bash scripts/services.sh start && eval \"$(bash scripts/services.sh env)\"` " +
	"(or `make test`, which does both)"

// lookup returns the values of the named environment variables. If any is
// unset or empty it skips the test, or fails it when Required.
func lookup(t testing.TB, names ...string) []string {
	t.Helper()
	vals := make([]string, len(names))
	var missing []string
	for i, n := range names {
		vals[i] = os.Getenv(n)
		if vals[i] == "" {
			missing = append(missing, n)
		}
	}
	if len(missing) == 0 {
		return vals
	}
	if Required() {
		t.Fatalf("testenv: %v not set and %s=1 or %s=true: %s", missing, EnvRequireServices, EnvCI, hint)
	}
	t.Skipf("testenv: %v not set, skipping: %s", missing, hint)
	return nil
}

// uniqueName returns prefix followed by 12 random hex digits, a valid database
// name for PostgreSQL and MariaDB (with prefix "kt_") and a valid bucket name
// (with prefix "kt-").
func uniqueName(t testing.TB, prefix string) string {
	t.Helper()
	b := make([]byte, 6)
	if _, err := rand.Read(b); err != nil {
		t.Fatalf("testenv: random name: %v", err)
	}
	return prefix + hex.EncodeToString(b)
}
