// Package sandboxtest is the battery of escape attempts every engine's
// match SQL sandbox must refuse: match SQL that tries to read files,
// URLs, Kalla's metadata store, settings, extensions or other statements
// instead of the two staged sides. The attempts are data, so each entry
// point (engine, API, CLI) and each future engine runs the same list; the
// helpers plant a secret and prove that no byte of it comes back.
package sandboxtest

import (
	"encoding/base64"
	"encoding/hex"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// Secret is the content of every planted file. An attempt that got past
// the sandbox would return it.
const Secret = "kalla-sandbox-secret-5d1f0c7a9e3b"

// Env is where a test planted the secret and how its recipe joins.
type Env struct {
	// SecretFile holds Secret; SecretDir is its folder, which holds
	// nothing the run needs.
	SecretFile, SecretDir string
	// DataDir is the folder of Kalla's metadata store (kalla.db).
	DataDir string
	// SpillDir is the folder given to the engine for spilling (the engine
	// spills in a folder of its own inside it); a secret is planted there.
	SpillDir string
	// OutDir is the run's output folder; a secret is planted there (an
	// earlier run's file, a stale temporary output).
	OutDir string
	// URL serves Secret over HTTP.
	URL string
	// LeftCol and RightCol are a column of each side, On joins them.
	LeftCol, RightCol, On string
}

// Attempt is one way match SQL might try to leave the sandbox.
type Attempt struct {
	// Name says what the attempt tries.
	Name string
	// SQL is the match SQL, a template (see Render).
	SQL string
	// Refusal is a part of the message Kalla's own check gives (also a
	// template): the function, table or statement it names.
	Refusal string
	// Reads is true when the attempt reads outside the database (a file,
	// URL, extension or other database): the engine's own lockdown must
	// refuse it even with Kalla's check bypassed. Attempts that only read
	// the database's settings or catalog may be answered by the engine
	// alone, and must still return no secret.
	Reads bool
}

// frame is a complete match SQL with a leak in the select list.
const frame = "SELECT l.{lcol} AS lk, r.{rcol} AS rk, %s AS leak FROM left_src l JOIN right_src r ON {on}"

func sel(expr string) string { return strings.Replace(frame, "%s", expr, 1) }

// Attempts are the escape attempts, each distinct.
var Attempts = []Attempt{
	{"read_text in a scalar subquery", sel("(SELECT content FROM read_text('{secret}'))"), "read_text(...) is not allowed", true},
	{"read_blob", sel("(SELECT content FROM read_blob('{secret}'))"), "read_blob(...)", true},
	{"read_csv joined in FROM", "SELECT l.{lcol} AS lk, r.{rcol} AS rk, x.* FROM left_src l JOIN right_src r ON {on}, read_csv('{secret}', header = false) x", "read_csv(...)", true},
	{"read_csv_auto", sel("(SELECT string_agg(column0, '') FROM read_csv_auto('{secret}', header = false))"), "read_csv_auto(...)", true},
	{"read_parquet", sel("(SELECT count(*) FROM read_parquet('{secret}'))"), "read_parquet(...)", true},
	{"read_json", sel("(SELECT count(*) FROM read_json('{secret}'))"), "read_json(...)", true},
	// New in DuckDB 2.0: a reader of one file, which reads the secret
	// when external access is on.
	{"read_single_csv_file", sel("(SELECT string_agg(column0, '') FROM read_single_csv_file('{secret}', header = false))"), "read_single_csv_file(...)", true},
	// New in DuckDB 2.0, built in: generates TPC-H tables into the database.
	{"dbgen", sel("(SELECT count(*) FROM dbgen(sf = 0.01))"), "dbgen(...)", false},
	{"parquet_metadata", sel("(SELECT count(*) FROM parquet_metadata('{secret}'))"), "parquet_metadata(...)", true},
	{"glob of the secret folder", sel("(SELECT string_agg(file, ',') FROM glob('{secretdir}/*'))"), "glob(...)", true},
	{"a quoted path as a table", sel("(SELECT string_agg(column0, '') FROM '{secret}')"), "{secret}", true},
	{"sniff_csv", sel("(SELECT Prompt FROM sniff_csv('{secret}'))"), "sniff_csv(...)", true},
	{"SUMMARIZE of a file", sel("(SELECT max(max) FROM (SUMMARIZE '{secret}'))"), "DESCRIBE, SHOW or SUMMARIZE", true},
	{"query() running read_text", sel("(SELECT * FROM query('SELECT content FROM read_text(''{secret}'')'))"), "query(...)", true},
	{"query_table of a path", sel("(SELECT count(*) FROM query_table('{secret}'))"), "query_table(...)", true},
	{"ATTACH through query()", sel("(SELECT count(*) FROM query('ATTACH ''{data}/kalla.db'' AS meta'))"), "query(...)", true},
	{"COPY statement", "COPY (SELECT content FROM read_text('{secret}')) TO '{out}/leak.csv'", "exactly one SELECT statement", true},
	{"INSTALL and LOAD after the SELECT", sel("1") + "; INSTALL httpfs; LOAD httpfs", "exactly one SELECT statement", true},
	{"SET in a second statement", sel("1") + "; SET enable_external_access = true", "exactly one SELECT statement", true},
	// DuckDB's lock lets PRAGMA enable_profiling through (a plan printed
	// to standard output, no file): only Kalla's one-statement rule stops it.
	{"PRAGMA in a second statement", sel("1") + "; PRAGMA enable_profiling", "exactly one SELECT statement", false},
	{"stacked SELECT reading a file", sel("1") + "; SELECT content FROM read_text('{secret}')", "exactly one SELECT statement", true},
	{"getenv", sel("getenv('HOME')"), "getenv(...)", false},
	{"a named parameter", sel("$kalla_secret"), "$kalla_secret is a parameter", false},
	{"current_setting of a path", sel("current_setting('temp_directory')"), "current_setting(...)", false},
	{"duckdb_settings()", sel("(SELECT string_agg(value, ',') FROM duckdb_settings())"), "duckdb_settings(...)", false},
	{"duckdb_extensions()", sel("(SELECT string_agg(extension_name, ',') FROM duckdb_extensions())"), "duckdb_extensions(...)", true},
	{"duckdb_secrets()", sel("(SELECT count(*) FROM duckdb_secrets())"), "duckdb_secrets(...)", true},
	{"pragma_ table function", sel("(SELECT string_agg(name, ',') FROM pragma_table_info('left_src'))"), "pragma_table_info(...)", false},
	{"http URL", sel("(SELECT content FROM read_text('{url}'))"), "read_text(...)", true},
	{"CTE hiding read_text", "WITH s AS (SELECT content FROM read_text('{secret}')) SELECT l.{lcol} AS lk, r.{rcol} AS rk, s.content AS leak FROM left_src l JOIN right_src r ON {on}, s", "read_text(...)", true},
	{"lateral join", "SELECT l.{lcol} AS lk, r.{rcol} AS rk, x.content AS leak FROM left_src l JOIN right_src r ON {on}, LATERAL (SELECT content FROM read_text('{secret}') WHERE l.{lcol} IS NOT NULL) x", "read_text(...)", true},
	{"read_text in the ON clause", "SELECT l.{lcol} AS lk, r.{rcol} AS rk FROM left_src l JOIN right_src r ON {on} AND length((SELECT content FROM read_text('{secret}'))) > 0", "read_text(...)", true},
	{"read_text in a UNION branch", sel("1") + " UNION ALL SELECT content, content, 1 FROM read_text('{secret}')", "read_text(...)", true},
	{"a string-built path", sel("(SELECT content FROM read_text(concat('{secretdir}', '/', 'secret.txt')))"), "read_text(...)", true},
	{"the metadata store kalla.db", sel("(SELECT string_agg(CAST(content AS VARCHAR), '') FROM read_blob('{data}/kalla.db*'))"), "read_blob(...)", true},
	{"the configured spill folder", sel("(SELECT string_agg(content, '') FROM read_text('{spill}/*'))"), "read_text(...)", true},
	{"an earlier file in the output folder", sel("(SELECT string_agg(column0, '') FROM read_csv('{out}/old.csv', header = false))"), "read_csv(...)", true},
	{"a stale temporary output", sel("(SELECT content FROM read_text('{out}/.matched.csv.partial'))"), "read_text(...)", true},
	{"information_schema view", sel("(SELECT string_agg(table_name, ',') FROM information_schema.tables)"), `table "information_schema.tables"`, false},
	{"schema-qualified catalog table", sel("(SELECT count(*) FROM system.main.duckdb_settings())"), "duckdb_settings(...)", false},
}

// Render fills an attempt's template: {secret}, {secretdir}, {data},
// {spill}, {out}, {url}, {lcol}, {rcol}, {on}.
func (env Env) Render(s string) string {
	esc := func(p string) string { return strings.ReplaceAll(filepath.ToSlash(p), "'", "''") }
	return strings.NewReplacer(
		"{secretdir}", esc(env.SecretDir), "{secret}", esc(env.SecretFile), "{data}", esc(env.DataDir),
		"{spill}", esc(env.SpillDir), "{out}", esc(env.OutDir), "{url}", env.URL,
		"{lcol}", env.LeftCol, "{rcol}", env.RightCol, "{on}", env.On,
	).Replace(s)
}

// Plant writes the secret where the attempts look for it: a secret file in
// a folder of its own, the spill folder, the output folder (as an earlier
// run's file and as a stale temporary output) and, unless the metadata
// store exists already (a server test plants it through the API), a file
// named kalla.db in dataDir. It also serves the secret over HTTP. The
// folders are created when missing.
func Plant(t testing.TB, dataDir, spillDir, outDir string) Env {
	t.Helper()
	env := Env{SecretDir: t.TempDir(), DataDir: dataDir, SpillDir: spillDir, OutDir: outDir}
	env.SecretFile = filepath.Join(env.SecretDir, "secret.txt")
	write := func(p string) {
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(Secret+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write(env.SecretFile)
	write(filepath.Join(spillDir, "secret.txt"))
	write(filepath.Join(outDir, "old.csv"))
	write(filepath.Join(outDir, ".matched.csv.partial"))
	if _, err := os.Stat(filepath.Join(dataDir, "kalla.db")); os.IsNotExist(err) {
		write(filepath.Join(dataDir, "kalla.db"))
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte(Secret + "\n"))
	}))
	t.Cleanup(srv.Close)
	env.URL = srv.URL + "/secret.txt"
	return env
}

// Leaked reports whether text holds the secret, as text, hex or base64.
func Leaked(text string) bool {
	low := strings.ToLower(text)
	for _, form := range []string{Secret, hex.EncodeToString([]byte(Secret)), base64.StdEncoding.EncodeToString([]byte(Secret))} {
		if strings.Contains(low, strings.ToLower(form)) {
			return true
		}
	}
	// Half of it is enough to count (a truncated excerpt).
	return strings.Contains(text, Secret[len(Secret)/2:])
}

// NoLeak fails the test when text holds the secret.
func NoLeak(t testing.TB, where, text string) {
	t.Helper()
	if Leaked(text) {
		t.Errorf("%s leaks the planted secret: %.400s", where, text)
	}
}

// NoLeakInDir fails the test when any file under dir, except the planted
// ones and those skip accepts, holds the secret.
func NoLeakInDir(t testing.TB, env Env, dir string, skip func(path string) bool) {
	t.Helper()
	planted := map[string]bool{
		env.SecretFile: true, filepath.Join(env.SpillDir, "secret.txt"): true,
		filepath.Join(env.OutDir, "old.csv"): true, filepath.Join(env.OutDir, ".matched.csv.partial"): true,
		filepath.Join(env.DataDir, "kalla.db"): true,
	}
	filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() || planted[p] || (skip != nil && skip(p)) {
			return nil
		}
		b, err := os.ReadFile(p)
		if err == nil && Leaked(string(b)) {
			t.Errorf("file %s leaks the planted secret", p)
		}
		return nil
	})
}

// Refused fails the test unless msg is a refusal of attempt a by Kalla's
// check: it names match_sql and what the attempt used.
func Refused(t testing.TB, env Env, a Attempt, msg string) {
	t.Helper()
	if !strings.Contains(msg, "match_sql") || !strings.Contains(msg, env.Render(a.Refusal)) {
		t.Errorf("%s: message %q does not refuse with %q", a.Name, msg, env.Render(a.Refusal))
	}
	NoLeak(t, a.Name+": message", msg)
}
