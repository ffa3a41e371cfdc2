package cli_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/kalla-recon/kalla/internal/engine/sandboxtest"
)

// TestSandboxCommands runs the sandbox battery through `kalla recipe check`,
// `kalla run` and `kalla run --dry-run`, as a user types them: each attempt
// exits 2 with a refusal that names it, and no output, message or file
// written holds a byte of the planted secret.
func TestSandboxCommands(t *testing.T) {
	dir := t.TempDir()
	for name, body := range map[string]string{
		"left.csv":  "id,amount\nL1,10\nL2,20\nL3,30\n",
		"right.csv": "id,ref,amount\nP1,L2,20\nP2,L1,10\nP3,L9,5\n",
	} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	out, spill := filepath.Join(dir, "out"), filepath.Join(dir, "spill")
	env := sandboxtest.Plant(t, filepath.Join(dir, "data"), spill, out)
	env.LeftCol, env.RightCol, env.On = "id", "id", "l.id = r.ref"
	for _, a := range sandboxtest.Attempts {
		t.Run(a.Name, func(t *testing.T) {
			rec := map[string]any{"recipe_id": "sandbox", "match_sql": env.Render(a.SQL), "sources": map[string]any{
				"left":  map[string]any{"alias": "invoices", "uri": "left.csv", "primary_key": []string{"id"}},
				"right": map[string]any{"alias": "payments", "uri": "right.csv", "primary_key": []string{"id"}}}}
			data, err := json.Marshal(rec)
			if err != nil {
				t.Fatal(err)
			}
			recipe := filepath.Join(dir, "recipe.json")
			if err := os.WriteFile(recipe, data, 0o644); err != nil {
				t.Fatal(err)
			}

			code, stdout, stderr := runKalla(t, "recipe", "check", "--json", recipe)
			sandboxtest.NoLeak(t, "recipe check", stdout+stderr)
			var chk struct{ Problems []string }
			if err := json.Unmarshal([]byte(stdout), &chk); code != 2 || err != nil || len(chk.Problems) != 1 {
				t.Fatalf("recipe check: exit %d (%v):\n%s%s", code, err, stdout, stderr)
			}
			sandboxtest.Refused(t, env, a, chk.Problems[0])

			for _, args := range [][]string{
				{"run", "--recipe", recipe, "--out", out, "--temp-dir", spill, "--format", "csv,parquet", "--json"},
				{"run", "--recipe", recipe, "--dry-run", "--json"},
			} {
				code, stdout, stderr := runKalla(t, args...)
				sandboxtest.NoLeak(t, "kalla run", stdout+stderr)
				if code != 2 {
					t.Fatalf("%v: exit %d:\n%s%s", args, code, stdout, stderr)
				}
				sandboxtest.Refused(t, env, a, stderr)
			}
			sandboxtest.NoLeakInDir(t, env, dir, nil)
		})
	}
}
