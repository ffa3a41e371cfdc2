package spark_test

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kalla-recon/kalla/internal/engine/sandboxtest"
	"github.com/kalla-recon/kalla/internal/kalla"
	"github.com/kalla-recon/kalla/internal/spark"
)

// sparkAttempts are escapes specific to Spark SQL, in the battery's form:
// reading paths as tables (runSQLOnFiles), table functions reading files,
// Java reflection, other statements (ADD JAR, SET, CREATE ... USING).
var sparkAttempts = []sandboxtest.Attempt{
	{Name: "csv.`path` as a table", SQL: "SELECT l.{lcol} AS lk, r.{rcol} AS rk, x.* FROM left_src l JOIN right_src r ON {on}, csv.`{secret}` x", Refusal: "match_sql", Reads: true},
	{Name: "text.\"path\" as a table", SQL: "SELECT l.{lcol} AS lk, r.{rcol} AS rk, x.* FROM left_src l JOIN right_src r ON {on}, text.\"{secret}\" x", Refusal: "match_sql", Reads: true},
	{Name: "read_files table function", SQL: "SELECT l.{lcol} AS lk, r.{rcol} AS rk, (SELECT max(value) FROM read_files('{secret}', format => 'text')) AS leak FROM left_src l JOIN right_src r ON {on}", Refusal: "read_files", Reads: true},
	{Name: "IDENTIFIER clause naming a path", SQL: "SELECT l.{lcol} AS lk, r.{rcol} AS rk, x.* FROM left_src l JOIN right_src r ON {on}, IDENTIFIER('text.`{secret}`') x", Refusal: "identifier", Reads: true},
	{Name: "reflect into java.nio", SQL: "SELECT l.{lcol} AS lk, r.{rcol} AS rk, reflect('java.lang.System', 'getenv', 'HOME') AS leak FROM left_src l JOIN right_src r ON {on}", Refusal: "reflect is not allowed", Reads: true},
	{Name: "java_method", SQL: "SELECT l.{lcol} AS lk, r.{rcol} AS rk, java_method('java.lang.System', 'getProperty', 'user.home') AS leak FROM left_src l JOIN right_src r ON {on}", Refusal: "java_method is not allowed", Reads: true},
	{Name: "input_file_name", SQL: "SELECT l.{lcol} AS lk, r.{rcol} AS rk, input_file_name() AS leak FROM left_src l JOIN right_src r ON {on}", Refusal: "input_file_name is not allowed", Reads: false},
	{Name: "ADD JAR after the SELECT", SQL: "SELECT l.{lcol} AS lk, r.{rcol} AS rk FROM left_src l JOIN right_src r ON {on}; ADD JAR '{secret}'", Refusal: "match_sql", Reads: true},
	{Name: "SET runSQLOnFiles", SQL: "SET spark.sql.runSQLOnFiles = true", Refusal: "match_sql", Reads: false},
	{Name: "CREATE TEMP VIEW USING csv", SQL: "CREATE TEMPORARY VIEW leak USING csv OPTIONS (path '{secret}')", Refusal: "match_sql", Reads: true},
	{Name: "a catalog table", SQL: "SELECT l.{lcol} AS lk, r.{rcol} AS rk, (SELECT count(*) FROM spark_catalog.default.t) AS leak FROM left_src l JOIN right_src r ON {on}", Refusal: "match_sql", Reads: true},
}

// TestSandboxBatteryOnSpark runs the shared escape battery and the
// Spark-specific attempts as match SQL on the Spark engine: each is refused
// with a match_sql error naming what it used, before any Spark work; no
// byte of the secret comes back and no summary is written.
func TestSandboxBatteryOnSpark(t *testing.T) {
	e := newEngine(t)
	dir := t.TempDir()
	for name, body := range map[string]string{
		"left.csv":  "id,amount\nL1,10\nL2,20\nL3,30\n",
		"right.csv": "id,ref,amount\nP1,L2,20\nP2,L1,10\nP3,L9,5\n",
	} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	env := sandboxtest.Plant(t, filepath.Join(dir, "data"), filepath.Join(dir, "spill"), filepath.Join(dir, "out"))
	env.LeftCol, env.RightCol, env.On = "id", "id", "l.id = r.ref"
	attempts := append(append([]sandboxtest.Attempt{}, sandboxtest.Attempts...), sparkAttempts...)
	for _, a := range attempts {
		t.Run(a.Name, func(t *testing.T) {
			rec := &kalla.Recipe{RecipeID: "sandbox", MatchSQL: env.Render(a.SQL), Sources: kalla.Sources{
				Left:  kalla.SourceSpec{Alias: "invoices", Type: kalla.SourceCSV, URI: filepath.Join(dir, "left.csv"), PrimaryKey: []string{"id"}},
				Right: kalla.SourceSpec{Alias: "payments", Type: kalla.SourceCSV, URI: filepath.Join(dir, "right.csv"), PrimaryKey: []string{"id"}},
			}}
			sum, err := e.Execute(t.Context(), spark.Job{Recipe: rec, OutDir: env.OutDir, RunID: "sandbox"})
			if err == nil {
				t.Fatalf("the attempt ran: %+v", sum)
			}
			if kalla.ErrorCode(err) != kalla.EINVALID {
				t.Errorf("not an invalid-recipe error: %v", err)
			}
			msg := kalla.ErrorMessage(err)
			if !strings.Contains(msg, "match_sql") || !strings.Contains(strings.ToLower(msg), strings.ToLower(env.Render(a.Refusal))) {
				t.Errorf("message %q does not refuse with %q", msg, env.Render(a.Refusal))
			}
			sandboxtest.NoLeak(t, "error", err.Error())
			if _, err := os.Stat(filepath.Join(env.OutDir, "summary.json")); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("a refused run left a summary: %v", err)
			}
			sandboxtest.NoLeakInDir(t, env, dir, nil)
			chk, err := e.Check(t.Context(), rec)
			if err != nil {
				t.Fatal(err)
			}
			if len(chk.Problems) != 1 || !strings.Contains(chk.Problems[0], "match_sql") {
				t.Errorf("check: %q", chk.Problems)
			}
		})
	}
}
