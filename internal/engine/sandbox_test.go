package engine

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kalla-recon/kalla/internal/connector"
	"github.com/kalla-recon/kalla/internal/engine/sandboxtest"
	"github.com/kalla-recon/kalla/internal/file"
	"github.com/kalla-recon/kalla/internal/kalla"
)

// sandboxFixture is two small sides and the planted secret.
type sandboxFixture struct {
	dir string
	env sandboxtest.Env
}

func newSandboxFixture(t *testing.T) sandboxFixture {
	t.Helper()
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
	return sandboxFixture{dir: dir, env: env}
}

func (f sandboxFixture) recipe(matchSQL string) *kalla.Recipe {
	return &kalla.Recipe{RecipeID: "sandbox", MatchSQL: matchSQL, Sources: kalla.Sources{
		Left:  kalla.SourceSpec{Alias: "invoices", Type: kalla.SourceCSV, URI: filepath.Join(f.dir, "left.csv"), PrimaryKey: []string{"id"}},
		Right: kalla.SourceSpec{Alias: "payments", Type: kalla.SourceCSV, URI: filepath.Join(f.dir, "right.csv"), PrimaryKey: []string{"id"}},
	}}
}

func (f sandboxFixture) sources(t *testing.T) (connector.Source, connector.Source) {
	t.Helper()
	var srcs [2]connector.Source
	for i, name := range []string{"left.csv", "right.csv"} {
		s, err := file.Open(t.Context(), filepath.Join(f.dir, name), file.Options{Type: kalla.SourceCSV})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		srcs[i] = s
	}
	return srcs[0], srcs[1]
}

func (f sandboxFixture) open(t *testing.T, opts Options) *Engine {
	t.Helper()
	opts.TempDir = f.env.SpillDir
	e, err := Open(t.Context(), opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.Close() })
	return e
}

// TestSandboxBattery runs every escape attempt as a recipe's match SQL
// through a run (Execute, writing both formats), a dry run and a recipe
// check (CheckRecipe): each is refused by name, and no byte of the secret
// comes back in the message or in any file written.
func TestSandboxBattery(t *testing.T) {
	f := newSandboxFixture(t)
	if len(sandboxtest.Attempts) < 20 {
		t.Fatalf("only %d attempts", len(sandboxtest.Attempts))
	}
	for _, a := range sandboxtest.Attempts {
		t.Run(a.Name, func(t *testing.T) {
			rec := f.recipe(f.env.Render(a.SQL))
			for _, dry := range []bool{false, true} {
				l, r := f.sources(t)
				e := f.open(t, Options{Threads: 2})
				sum, err := e.Execute(t.Context(), Run{Recipe: rec, Left: l, Right: r, OutDir: f.env.OutDir, Formats: []string{FormatCSV, FormatParquet}, RunID: "sandbox", DryRun: dry})
				if err == nil {
					t.Fatalf("dry run %v: the attempt ran: %+v", dry, sum)
				}
				if !errors.Is(err, ErrRecipe) || kalla.ErrorCode(err) != kalla.EINVALID {
					t.Errorf("dry run %v: not a recipe error: %v", dry, err)
				}
				sandboxtest.Refused(t, f.env, a, kalla.ErrorMessage(err))
				sandboxtest.NoLeak(t, "error", err.Error())
			}
			if _, err := os.Stat(filepath.Join(f.env.OutDir, SummaryFile)); !os.IsNotExist(err) {
				t.Errorf("a refused run left a summary: %v", err)
			}
			sandboxtest.NoLeakInDir(t, f.env, f.dir, nil)

			l, r := f.sources(t)
			chk, err := f.open(t, Options{}).CheckRecipe(t.Context(), rec, l, r, [2]error{})
			if err != nil {
				t.Fatal(err)
			}
			if chk.OK() || len(chk.Problems) != 1 {
				t.Fatalf("check: %+v", chk)
			}
			sandboxtest.Refused(t, f.env, a, chk.Problems[0])
		})
	}
}

// TestSandboxHoldsAlone runs the battery with Kalla's own check bypassed:
// straight on the connection of an Inspection (the sides staged as for a
// run, then sandboxed) and on a second connection to its database. Every
// attempt that reads outside the database is refused by DuckDB itself; the
// rest (settings, catalog) may answer, and none returns the secret. After
// that, rules still run on the same database (TryRules).
func TestSandboxHoldsAlone(t *testing.T) {
	f := newSandboxFixture(t)
	l, r := f.sources(t)
	e := f.open(t, Options{})
	in, err := e.Inspect(t.Context(), f.recipe("").Sources.Left, f.recipe("").Sources.Right, l, r)
	if err != nil {
		t.Fatal(err)
	}
	fork, release, err := e.fork(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	defer release()
	for _, a := range sandboxtest.Attempts {
		q := f.env.Render(a.SQL)
		for conn, run := range map[string]func() (string, error){
			"inspection": func() (string, error) { return queryText(t.Context(), in.QueryContext, q) },
			"fork":       func() (string, error) { return queryText(t.Context(), fork.conn.QueryContext, q) },
		} {
			out, err := run()
			// The one attempt DuckDB lets through switches profiling on,
			// which prints every later plan.
			in.ExecContext(t.Context(), "PRAGMA disable_profiling")
			fork.exec(t.Context(), "PRAGMA disable_profiling")
			if a.Reads && err == nil {
				t.Errorf("%s (%s): DuckDB answered: %.300s", a.Name, conn, out)
			}
			sandboxtest.NoLeak(t, a.Name+" ("+conn+"): rows", out)
			if err != nil {
				sandboxtest.NoLeak(t, a.Name+" ("+conn+"): error", err.Error())
			}
		}
	}
	tr, err := in.TryRules(t.Context(), []kalla.Rule{{Name: "by_ref", Conditions: []kalla.Condition{{Op: "eq", Left: "id", Right: "ref"}}}})
	if err != nil {
		t.Fatalf("rules after the sandbox: %v", err)
	}
	if tr.Pairs != 2 {
		t.Errorf("rules matched %d pairs, want 2", tr.Pairs)
	}
}

// queryText runs q and returns every value it returned as text.
func queryText(ctx context.Context, query func(context.Context, string, ...any) (*sql.Rows, error), q string) (string, error) {
	rows, err := query(ctx, q)
	if err != nil {
		return "", err
	}
	defer rows.Close()
	cols, err := rows.Columns()
	if err != nil {
		return "", err
	}
	var b strings.Builder
	for rows.Next() {
		vals := make([]any, len(cols))
		ptrs := make([]any, len(cols))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		if err := rows.Scan(ptrs...); err != nil {
			return b.String(), err
		}
		for _, v := range vals {
			fmt.Fprintf(&b, "%v|%s\n", v, v)
		}
	}
	return b.String(), rows.Err()
}

// TestSandboxSettings proves each setting of the sandbox on its own and
// that Kalla's later work still runs under it: no option can be changed
// afterwards on any connection (the lock, and external access as a latch);
// the outputs are written only to their exact allowed paths; session
// variables still work; DuckDB still spills (it keeps the private spill
// folder allowed by itself), while the folder it was given stays closed.
func TestSandboxSettings(t *testing.T) {
	f := newSandboxFixture(t)
	ctx := t.Context()
	e := f.open(t, Options{MemoryLimit: "128MB", Threads: 2})
	if !strings.HasPrefix(e.tempDir, f.env.SpillDir+string(os.PathSeparator)) {
		t.Fatalf("spill folder %s is not a private folder inside %s", e.tempDir, f.env.SpillDir)
	}
	// Before the sandbox, a match is refused: no entry point can forget it.
	if _, err := e.match(ctx, "SELECT l.id FROM left_src l JOIN right_src r ON true", &side{}, &side{}, false); !errors.Is(err, errNoSandbox) {
		t.Fatalf("match before sandbox: %v", err)
	}
	allowed := partialPath(f.env.OutDir, "matched.csv")
	if err := os.MkdirAll(f.env.OutDir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(allowed, []byte(sandboxtest.Secret), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := e.exec(ctx, "CREATE TABLE big AS SELECT i, md5(CAST(i AS VARCHAR)) || md5(CAST(i + 1 AS VARCHAR)) AS s FROM range(3000000) t(i)"); err != nil {
		t.Fatal(err)
	}
	if err := e.sandbox(ctx, []string{allowed}); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(allowed); !os.IsNotExist(err) {
		t.Errorf("a stale temporary output survived the sandbox: %v", err)
	}
	fork, release, err := e.fork(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer release()
	for _, w := range []*Engine{e, fork} {
		for _, q := range []string{
			"SET enable_external_access = true",
			"SET lock_configuration = false",
			"RESET lock_configuration",
			"SET autoload_known_extensions = true",
			"SET autoinstall_known_extensions = true",
			"SET allowed_directories = ['/']",
			"SET allowed_paths = ['/etc/passwd']",
			"SET temp_directory = '/'",
			"SET memory_limit = '1GB'",
			"SET disabled_filesystems = ''",
		} {
			if _, err := w.exec(ctx, q); err == nil {
				t.Errorf("%s: accepted after the sandbox", q)
			}
		}
	}
	var ext, lock, autoload, autoinstall string
	if err := e.queryRow(ctx, `SELECT current_setting('enable_external_access'), current_setting('lock_configuration'),
		current_setting('autoload_known_extensions'), current_setting('autoinstall_known_extensions')`).Scan(&ext, &lock, &autoload, &autoinstall); err != nil {
		t.Fatal(err)
	}
	if ext != "false" || lock != "true" || autoload != "false" || autoinstall != "false" {
		t.Errorf("settings: external access %s, lock %s, autoload %s, autoinstall %s", ext, lock, autoload, autoinstall)
	}
	// Kalla's own work after the sandbox.
	if _, err := e.exec(ctx, "COPY (SELECT 1 AS a) TO "+sqlQuote(allowed)+" (FORMAT csv, HEADER true)"); err != nil {
		t.Errorf("write to the allowed output: %v", err)
	}
	for _, p := range []string{filepath.Join(f.env.OutDir, "matched.csv"), filepath.Join(f.env.OutDir, "other.csv")} {
		if _, err := e.exec(ctx, "COPY (SELECT 1 AS a) TO "+sqlQuote(p)+" (FORMAT csv)"); err == nil {
			t.Errorf("wrote %s, which is not allowed", p)
		}
	}
	if _, err := fork.exec(ctx, "SET VARIABLE __kalla_probe = (SELECT 42)"); err != nil {
		t.Errorf("SET VARIABLE: %v", err)
	}
	var rows int64
	var least string
	if err := e.queryRow(ctx, "SELECT count(*), min(s) FROM (SELECT * FROM big ORDER BY s)").Scan(&rows, &least); err != nil || rows != 3000000 {
		t.Fatalf("a sort beyond the memory limit: %d rows, %v", rows, err)
	}
	spilled, err := os.ReadDir(e.tempDir)
	if err != nil || len(spilled) == 0 {
		t.Errorf("nothing spilled to %s (%v): the test proves nothing", e.tempDir, err)
	}
	for _, q := range []string{
		"SELECT * FROM read_text(" + sqlQuote(filepath.Join(f.env.SpillDir, "secret.txt")) + ")",
		"SELECT * FROM glob(" + sqlQuote(f.env.SpillDir+"/*") + ")",
		"SELECT * FROM read_text(" + sqlQuote(e.tempDir+"/../secret.txt") + ")",
	} {
		if out, err := queryText(ctx, e.conn.QueryContext, q); err == nil {
			t.Errorf("%s answered %q", q, out)
		}
	}
}

func sqlQuote(s string) string { return "'" + strings.ReplaceAll(s, "'", "''") + "'" }
