package cli_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestDryRun checks that --dry-run reports the run's findings and writes
// nothing: no --out needed, and an existing output folder (with an old
// summary) is left exactly as it was.
func TestDryRun(t *testing.T) {
	recipe := filepath.Join("..", "engine", "testdata", "scenarios", "rules_split_payments", "recipe.json")
	code, out, errs := runKalla(t, "run", "--recipe", recipe, "--dry-run")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errs)
	}
	for _, want := range []string{"Dry run", "14 matched pairs", "2. split (1:N): 12 pairs", "amount ~ amount: 1 of 6 differ",
		"INV-4 (row 4): exact: reference matches P11 but amount differs (250.00 vs 100.00) | split: reference matches payments P11, P12 but sum of amount differs by 20.0 % > 1 %"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}

	dir := t.TempDir()
	old := filepath.Join(dir, "summary.json")
	if err := os.WriteFile(old, []byte("{}"), 0o644); err != nil {
		t.Fatal(err)
	}
	code, out, errs = runKalla(t, "run", "--recipe", recipe, "--out", dir, "--dry-run", "--json")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errs)
	}
	var sum struct {
		Status  string            `json:"status"`
		Matched int               `json:"matched_count"`
		Outputs []json.RawMessage `json:"outputs"`
		Rules   *struct {
			Breaks []json.RawMessage `json:"breaks"`
		} `json:"rules"`
	}
	if err := json.Unmarshal([]byte(out), &sum); err != nil {
		t.Fatalf("--json: %v\n%s", err, out)
	}
	if sum.Status != "dry_run" || sum.Matched != 14 || len(sum.Outputs) != 0 || sum.Rules == nil || len(sum.Rules.Breaks) != 3 {
		t.Errorf("dry-run summary: %+v", sum)
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Errorf("the output folder holds %d entries after a dry run, want only the old summary.json", len(entries))
	}
	if b, _ := os.ReadFile(old); string(b) != "{}" {
		t.Errorf("a dry run changed the old summary.json: %s", b)
	}

	// Without --dry-run, --out is still required.
	if code, _, errs := runKalla(t, "run", "--recipe", recipe); code != 2 || !strings.Contains(errs, "--out is required") {
		t.Errorf("run without --out: exit %d: %s", code, errs)
	}
}
