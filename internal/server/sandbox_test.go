package server_test

import (
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kalla-recon/kalla/internal/engine/sandboxtest"
	"github.com/kalla-recon/kalla/internal/kalla"
)

// TestSandboxRoutes runs the sandbox battery through every API route that
// runs match SQL: preview (what the UI builder calls), validate, and an
// inline recipe on a run. The secret is also planted in the metadata store
// itself (a stored recipe's description), so reading kalla.db would find
// it. Each attempt is refused by name, and no response, run record or
// file in the data folder (but the store) holds a byte of the secret.
func TestSandboxRoutes(t *testing.T) {
	s := startServer(t, nil)
	stored := smallRecipe()
	stored.RecipeID, stored.Description = "holds-the-secret", sandboxtest.Secret
	s.call("POST", "/api/recipes", stored, 201, nil)

	env := sandboxtest.Plant(t, s.dataDir, filepath.Join(s.dataDir, "tmp"), filepath.Join(s.dataDir, "runs"))
	env.LeftCol, env.RightCol, env.On = "invoice_id", "payment_id", "l.invoice_id = r.reference_number"
	for _, a := range sandboxtest.Attempts {
		t.Run(a.Name, func(t *testing.T) {
			rec := smallRecipe()
			rec.MatchSQL = env.Render(a.SQL)

			msg := s.wantError("POST", "/api/recipes/preview", map[string]any{"recipe": rec, "limit": 20}, 400, kalla.EINVALID)
			sandboxtest.Refused(t, env, a, msg)

			var chk struct {
				OK       bool     `json:"ok"`
				Problems []string `json:"problems"`
			}
			b := s.call("POST", "/api/recipes/validate", rec, 200, &chk)
			sandboxtest.NoLeak(t, "validate", string(b))
			if chk.OK || len(chk.Problems) != 1 {
				t.Fatalf("validate: %s", b)
			}
			sandboxtest.Refused(t, env, a, chk.Problems[0])

			id := s.startRun(map[string]any{"recipe": rec})
			r := s.waitRun(id, time.Minute, "failed", func(r run) bool { return r.Status.Done() })
			if r.Status != kalla.RunFailed {
				t.Fatalf("run %s: %s, want failed", id, r.Status)
			}
			sandboxtest.Refused(t, env, a, r.Error)
			_, body := s.do("GET", "/api/runs/"+id, nil)
			sandboxtest.NoLeak(t, "run record", string(body))
			for _, ev := range s.follow(id, time.Minute) {
				sandboxtest.NoLeak(t, "event "+ev.Event, ev.Data)
			}
		})
	}
	_, list := s.do("GET", "/api/runs", nil)
	sandboxtest.NoLeak(t, "run list", string(list))
	sandboxtest.NoLeakInDir(t, env, s.dataDir, func(p string) bool {
		return strings.HasPrefix(filepath.Base(p), "kalla.db")
	})
}
