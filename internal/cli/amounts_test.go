package cli_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestAmountColumnMissing: a recipe naming an amount column its source
// lacks is refused before anything is written (exit 2, naming the side and
// the column); the golden scenario rules_seed_three_pass pins correct ones.
func TestAmountColumnMissing(t *testing.T) {
	scen, err := filepath.Abs(filepath.Join("..", "engine", "testdata", "scenarios", "rules_seed_three_pass"))
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(scen, "recipe.json"))
	if err != nil {
		t.Fatal(err)
	}
	var rec map[string]any
	if err := json.Unmarshal(b, &rec); err != nil {
		t.Fatal(err)
	}
	srcs := rec["sources"].(map[string]any)
	for side, file := range map[string]string{"left": "left.csv", "right": "right.csv"} {
		srcs[side].(map[string]any)["uri"] = filepath.Join(scen, file)
	}
	srcs["left"].(map[string]any)["amount_column"] = "amt"
	srcs["right"].(map[string]any)["amount_column"] = "paid_amount"
	dir := t.TempDir()
	path := filepath.Join(dir, "recipe.json")
	b, _ = json.Marshal(rec)
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "out")
	code, _, errs := runKalla(t, "run", "--recipe", path, "--out", out)
	if code != 2 || !strings.Contains(errs, `sources.left: amount column "amt" is not a column of the source`) {
		t.Fatalf("exit %d, stderr %s: want exit 2 naming sources.left and amt", code, errs)
	}
	if _, err := os.Stat(filepath.Join(out, "summary.json")); err == nil {
		t.Errorf("a refused run left a summary")
	}
}
