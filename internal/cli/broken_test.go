package cli_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kalla-recon/kalla/internal/cli"
	"github.com/kalla-recon/kalla/internal/kalla"
	"github.com/kalla-recon/kalla/internal/testenv"
)

// TestBrokenSources: `recipe check` and `run` on a recipe whose left
// source cannot be read give the same message naming the side and alias,
// never a panic or a password, for each common failure.
func TestBrokenSources(t *testing.T) {
	dir := t.TempDir()
	bank := filepath.Join(dir, "bank.csv")
	if err := os.WriteFile(bank, []byte("ref\n1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, b := range testenv.BrokenSources(t, dir) {
		t.Run(b.Name, func(t *testing.T) {
			rec := kalla.Recipe{RecipeID: "broken", MatchSQL: "SELECT l.id, r.ref FROM left_src l JOIN right_src r ON l.id = r.ref",
				Sources: kalla.Sources{
					Left:  kalla.SourceSpec{Alias: "ledger", URI: b.URI, PrimaryKey: []string{"id"}},
					Right: kalla.SourceSpec{Alias: "bank", URI: bank, PrimaryKey: []string{"ref"}},
				}}
			data, _ := json.Marshal(rec)
			path := filepath.Join(t.TempDir(), "recipe.json")
			if err := os.WriteFile(path, data, 0o644); err != nil {
				t.Fatal(err)
			}
			want := append([]string{"left source ledger: "}, b.Want...)
			check := func(what, out string) {
				t.Helper()
				for _, w := range want {
					if !strings.Contains(out, w) {
						t.Errorf("%s: output lacks %q:\n%s", what, w, out)
					}
				}
				if n := strings.Count(out, "source ledger"); n != 1 {
					t.Errorf("%s names the source %d times:\n%s", what, n, out)
				}
				if strings.Contains(out, "secret") || strings.Contains(out, "panic") {
					t.Errorf("%s: output shows a password or a panic:\n%s", what, out)
				}
			}
			code, out, errOut := runKalla(t, "recipe", "check", path)
			if code != cli.ExitInvalid {
				t.Errorf("recipe check: exit %d, want %d", code, cli.ExitInvalid)
			}
			check("recipe check", out+errOut)
			code, out, errOut = runKalla(t, "run", "--recipe", path, "--out", t.TempDir())
			if code != cli.ExitFailed {
				t.Errorf("run: exit %d, want %d", code, cli.ExitFailed)
			}
			check("run", errOut)
			if out != "" {
				t.Errorf("run printed a summary: %s", out)
			}
		})
	}
}

// TestRunMaxDuration: a run past --max-duration fails with a reason that
// names the limit, not a bare "context deadline exceeded".
func TestRunMaxDuration(t *testing.T) {
	dir := t.TempDir()
	bank := filepath.Join(dir, "bank.csv")
	if err := os.WriteFile(bank, []byte("ref\n1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	rec := kalla.Recipe{RecipeID: "quick", MatchSQL: "SELECT l.ref, r.ref FROM left_src l JOIN right_src r ON l.ref = r.ref",
		Sources: kalla.Sources{
			Left:  kalla.SourceSpec{Alias: "a", URI: bank, PrimaryKey: []string{"ref"}},
			Right: kalla.SourceSpec{Alias: "b", URI: bank, PrimaryKey: []string{"ref"}},
		}}
	data, _ := json.Marshal(rec)
	path := filepath.Join(dir, "recipe.json")
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
	code, _, errOut := runKalla(t, "run", "--recipe", path, "--out", t.TempDir(), "--max-duration", "1ns")
	if code != cli.ExitFailed || !strings.Contains(errOut, "maximum duration of 1ns (--max-duration)") {
		t.Fatalf("run past --max-duration: exit %d\n%s", code, errOut)
	}
	if code, _, errOut := runKalla(t, "run", "--recipe", path, "--out", t.TempDir(), "--source-idle-timeout", "0s"); code != cli.ExitInvalid {
		t.Fatalf("--source-idle-timeout 0s: exit %d\n%s", code, errOut)
	}
}
