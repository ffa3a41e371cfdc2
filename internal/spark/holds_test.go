package spark

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kalla-recon/kalla/internal/engine/sandboxtest"
	"github.com/kalla-recon/kalla/internal/testenv"
)

// TestSessionRefusesPathsAlone sends file-reading SQL straight to a
// configured session, bypassing Kalla's check: with spark.sql.runSQLOnFiles
// off, Spark itself refuses a path used as a table, and no byte of the
// secret comes back. (Spark's read_files table function is not covered by
// that setting: Kalla's parse-level check is what refuses it.)
func TestSessionRefusesPathsAlone(t *testing.T) {
	remote := testenv.SparkRemote(t)
	secret := filepath.Join(t.TempDir(), "secret.txt")
	if err := os.WriteFile(secret, []byte(sandboxtest.Secret+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	s, err := connect(t.Context(), remote, "")
	if err != nil {
		t.Fatal(err)
	}
	defer s.conn.Close()
	e, _ := New(Options{Remote: remote})
	r := &run{e: e, s: s}
	if err := r.configure(t.Context()); err != nil {
		t.Fatal(err)
	}
	defer s.release(s.sessionID())
	for _, format := range []string{"csv", "text", "json", "parquet", "binaryFile"} {
		q := "SELECT * FROM " + format + ".`" + secret + "`"
		df, err := r.sql(t.Context(), q)
		if err == nil {
			rows, cerr := df.Collect(t.Context())
			if cerr == nil {
				t.Errorf("%s: read %d rows of a path", format, len(rows))
				for _, row := range rows {
					sandboxtest.NoLeak(t, format, strings.TrimSpace(strings.Join(strings.Fields(fmtRow(row.Values())), " ")))
				}
				continue
			}
			err = cerr
		}
		sandboxtest.NoLeak(t, format+" error", err.Error())
	}
}

func fmtRow(v []any) string {
	var b strings.Builder
	for _, x := range v {
		switch y := x.(type) {
		case string:
			b.WriteString(y)
		case []byte:
			b.Write(y)
		}
		b.WriteByte(' ')
	}
	return b.String()
}
