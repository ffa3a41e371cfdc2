package testenv_test

import (
	"bytes"
	"context"
	"database/sql"
	"net/url"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"
	"github.com/jackc/pgx/v5"
	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"

	"github.com/kalla-recon/kalla/internal/testenv"
)

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return c
}

func TestPostgres(t *testing.T) {
	var name string
	t.Run("fresh database", func(t *testing.T) {
		uri := testenv.Postgres(t)
		u, err := url.Parse(uri)
		if err != nil {
			t.Fatal(err)
		}
		if u.Scheme != "postgres" || !strings.HasPrefix(u.Path, "/kt_") {
			t.Fatalf("unexpected URI %q", u.Redacted())
		}
		conn, err := pgx.Connect(ctx(t), uri)
		if err != nil {
			t.Fatal(err)
		}
		// Left open on purpose: the cleanup must drop the database anyway (WITH (FORCE)).
		if err := conn.QueryRow(ctx(t), "SELECT current_database()").Scan(&name); err != nil {
			t.Fatal(err)
		}
		if "/"+name != u.Path {
			t.Fatalf("connected to %q, want %q", name, u.Path)
		}
		var n int
		if err := conn.QueryRow(ctx(t), "SELECT count(*) FROM pg_tables WHERE schemaname = 'public'").Scan(&n); err != nil || n != 0 {
			t.Fatalf("new database has %d tables (err %v)", n, err)
		}
		if _, err := conn.Exec(ctx(t), "CREATE TABLE t (id bigint, amount numeric(18,2)); INSERT INTO t VALUES (1, 10.50), (2, 0.30)"); err != nil {
			t.Fatal(err)
		}
		var sum string
		if err := conn.QueryRow(ctx(t), "SELECT sum(amount)::text FROM t").Scan(&sum); err != nil || sum != "10.80" {
			t.Fatalf("sum = %q (err %v)", sum, err)
		}
	})
	if name == "" {
		return
	}
	admin, err := pgx.Connect(ctx(t), os.Getenv(testenv.EnvPostgresURL))
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close(context.Background())
	var exists bool
	if err := admin.QueryRow(ctx(t), "SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)", name).Scan(&exists); err != nil {
		t.Fatal(err)
	}
	if exists {
		t.Errorf("database %s still exists after cleanup", name)
	}
}

// mysqlDB opens a mysql:// URI with the go-sql-driver, the way a connector would.
func mysqlDB(t *testing.T, uri string) *sql.DB {
	t.Helper()
	u, err := url.Parse(uri)
	if err != nil {
		t.Fatal(err)
	}
	cfg := mysql.NewConfig()
	cfg.Net = "tcp"
	cfg.Addr = u.Host
	cfg.User = u.User.Username()
	cfg.Passwd, _ = u.User.Password()
	cfg.DBName = strings.TrimPrefix(u.Path, "/")
	cfg.MultiStatements = true
	c, err := mysql.NewConnector(cfg)
	if err != nil {
		t.Fatal(err)
	}
	db := sql.OpenDB(c)
	t.Cleanup(func() { db.Close() })
	return db
}

func TestMySQL(t *testing.T) {
	var name string
	t.Run("fresh database", func(t *testing.T) {
		uri := testenv.MySQL(t)
		u, err := url.Parse(uri)
		if err != nil {
			t.Fatal(err)
		}
		if u.Scheme != "mysql" || u.Host == "" || !strings.HasPrefix(u.Path, "/kt_") {
			t.Fatalf("unexpected URI %q", u.Redacted())
		}
		db := mysqlDB(t, uri)
		if err := db.QueryRowContext(ctx(t), "SELECT DATABASE()").Scan(&name); err != nil {
			t.Fatal(err)
		}
		if "/"+name != u.Path {
			t.Fatalf("connected to %q, want %q", name, u.Path)
		}
		if _, err := db.ExecContext(ctx(t), "CREATE TABLE t (id BIGINT, name VARCHAR(20), amount DECIMAL(18,2)); INSERT INTO t VALUES (1, 'café', 10.50), (2, '東京', 0.30)"); err != nil {
			t.Fatal(err)
		}
		var sum, names string
		if err := db.QueryRowContext(ctx(t), "SELECT CAST(SUM(amount) AS CHAR), GROUP_CONCAT(name ORDER BY id) FROM t").Scan(&sum, &names); err != nil {
			t.Fatal(err)
		}
		if sum != "10.80" || names != "café,東京" {
			t.Fatalf("got sum %q names %q", sum, names)
		}
	})
	if name == "" {
		return
	}
	admin := mysqlDB(t, os.Getenv(testenv.EnvMySQLURL))
	var n int
	if err := admin.QueryRowContext(ctx(t), "SELECT COUNT(*) FROM information_schema.schemata WHERE schema_name = ?", name).Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n != 0 {
		t.Errorf("database %s still exists after cleanup", name)
	}
}

func TestS3(t *testing.T) {
	var bucket string
	var client *minio.Client
	t.Run("fresh bucket", func(t *testing.T) {
		s3 := testenv.S3(t)
		bucket = s3.Bucket
		if s3.Endpoint == "" || s3.AccessKey == "" || s3.SecretKey == "" || s3.Region == "" || !strings.HasPrefix(s3.Bucket, "kt-") {
			t.Fatalf("incomplete S3Env %+v", s3)
		}
		if got := s3.URI("a/b.csv"); got != "s3://"+s3.Bucket+"/a/b.csv" {
			t.Fatalf("URI = %q", got)
		}
		s3.Put(t, "in/small.csv", []byte("id,amount\n1,10.50\n"))
		if got := string(s3.Get(t, "in/small.csv")); got != "id,amount\n1,10.50\n" {
			t.Fatalf("Get = %q", got)
		}

		// A client built only from the exported fields, as a connector would.
		u, err := url.Parse(s3.Endpoint)
		if err != nil {
			t.Fatal(err)
		}
		client, err = minio.New(u.Host, &minio.Options{
			Creds:        credentials.NewStaticV4(s3.AccessKey, s3.SecretKey, ""),
			Secure:       u.Scheme == "https",
			Region:       s3.Region,
			BucketLookup: minio.BucketLookupPath,
		})
		if err != nil {
			t.Fatal(err)
		}
		// A multipart upload (12 MiB in 5 MiB parts) round-trips byte for byte.
		big := bytes.Repeat([]byte("0123456789abcdef"), 12<<20/16)
		if _, err := client.PutObject(ctx(t), s3.Bucket, "in/big.bin", bytes.NewReader(big), int64(len(big)),
			minio.PutObjectOptions{PartSize: 5 << 20}); err != nil {
			t.Fatal(err)
		}
		if got := s3.Get(t, "in/big.bin"); !bytes.Equal(got, big) {
			t.Fatalf("multipart object differs: %d bytes back, want %d", len(got), len(big))
		}
		var keys []string
		for o := range client.ListObjects(ctx(t), s3.Bucket, minio.ListObjectsOptions{Recursive: true}) {
			if o.Err != nil {
				t.Fatal(o.Err)
			}
			keys = append(keys, o.Key)
		}
		if strings.Join(keys, ",") != "in/big.bin,in/small.csv" {
			t.Fatalf("keys = %v", keys)
		}
		// An unfinished multipart upload must not keep the cleanup from removing the bucket.
		core := minio.Core{Client: client}
		if _, err := core.NewMultipartUpload(ctx(t), s3.Bucket, "in/unfinished.bin", minio.PutObjectOptions{}); err != nil {
			t.Fatal(err)
		}
	})
	if client == nil {
		return
	}
	ok, err := client.BucketExists(ctx(t), bucket)
	if err != nil {
		t.Fatal(err)
	}
	if ok {
		t.Errorf("bucket %s still exists after cleanup", bucket)
	}
}

// childEnv is set in the environment of the test binary when it runs itself
// to check what happens without services.
const childEnv = "KALLA_TESTENV_CHILD"

// TestChildHelper does nothing in a normal run; in a child run it calls the
// helper named by childEnv.
func TestChildHelper(t *testing.T) {
	switch os.Getenv(childEnv) {
	case "postgres":
		testenv.Postgres(t)
	case "mysql":
		testenv.MySQL(t)
	case "s3":
		testenv.S3(t)
	default:
		return
	}
	t.Log("helper returned") // not reached: the helper skips or fails
}

func TestMissingServices(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the test binary again")
	}
	// "" runs the child with neither variable: it must skip. Either
	// variable alone must turn the skip into a failure.
	for _, helper := range []string{"postgres", "mysql", "s3"} {
		for _, requireBy := range []string{"", testenv.EnvRequireServices + "=1", testenv.EnvCI + "=true"} {
			require := requireBy != ""
			var env []string
			for _, kv := range os.Environ() {
				if !strings.HasPrefix(kv, "KALLA_TEST") && !strings.HasPrefix(kv, testenv.EnvCI+"=") {
					env = append(env, kv)
				}
			}
			env = append(env, childEnv+"="+helper)
			if require {
				env = append(env, requireBy)
			}
			cmd := exec.Command(os.Args[0], "-test.run=^TestChildHelper$", "-test.v", "-test.count=1")
			cmd.Env = env
			out, err := cmd.CombinedOutput()
			if !strings.Contains(string(out), "scripts/services.sh start") {
				t.Errorf("%s require=%v: no hint in output:\n%s", helper, require, out)
			}
			if require {
				if err == nil || !strings.Contains(string(out), "--- FAIL: TestChildHelper") {
					t.Errorf("%s with %s: want a failure, got err %v:\n%s", helper, requireBy, err, out)
				}
			} else if err != nil || !strings.Contains(string(out), "--- SKIP: TestChildHelper") {
				t.Errorf("%s without services: want a skip, got err %v:\n%s", helper, err, out)
			}
		}
	}
}
