package server_test

import (
	"encoding/json"
	"html"
	"strings"
	"testing"
	"time"

	"github.com/kalla-recon/kalla/internal/kalla"
	"github.com/kalla-recon/kalla/internal/testenv"
)

// TestBrokenSourcesEverywhere: a missing file, a missing table (Postgres,
// MariaDB) and a refused connection give the same words, naming the side
// and alias, through every door of the server: validating a recipe,
// previewing it, running it (the run's recorded reason), the run's page in
// the web UI, and registering the source. No password is shown.
func TestBrokenSourcesEverywhere(t *testing.T) {
	s := startServer(t, nil)
	for _, b := range testenv.BrokenSources(t, s.dataDir) {
		t.Run(b.Name, func(t *testing.T) {
			rec := smallRecipe()
			rec.RecipeID = "broken"
			rec.Sources.Left = kalla.SourceSpec{Alias: "ledger", URI: b.URI, PrimaryKey: rec.Sources.Left.PrimaryKey}
			want := append([]string{"left source ledger: "}, b.Want...)
			check := func(what, got string) {
				t.Helper()
				for _, w := range want {
					if !strings.Contains(got, w) {
						t.Errorf("%s: %q lacks %q", what, got, w)
					}
				}
				if n := strings.Count(got, "source ledger"); n != 1 {
					t.Errorf("%s names the source %d times: %q", what, n, got)
				}
				if strings.Contains(got, "secret") {
					t.Errorf("%s shows the password: %q", what, got)
				}
			}

			var v struct {
				OK       bool     `json:"ok"`
				Problems []string `json:"problems"`
			}
			s.call("POST", "/api/recipes/validate", rec, 200, &v)
			if v.OK || len(v.Problems) == 0 {
				t.Fatalf("validate: %+v", v)
			}
			check("validate", v.Problems[0])

			st, body := s.do("POST", "/api/recipes/preview", map[string]any{"recipe": rec})
			var e apiError
			json.Unmarshal(body, &e)
			wantStatus := map[kalla.SourceKind]int{kalla.SourceNotFound: 404, kalla.SourceUnreachable: 502}[b.Kind]
			if st != wantStatus {
				t.Errorf("preview: status %d, want %d: %s", st, wantStatus, body)
			}
			check("preview", e.Error.Message)

			id := s.startRun(map[string]any{"recipe": rec})
			r := s.waitRun(id, 30*time.Second, "the end", func(r run) bool { return r.Status.Done() })
			if r.Status != kalla.RunFailed {
				t.Fatalf("run: %s", r.Status)
			}
			check("run", r.Error)

			resp, err := s.client.Get(s.url + "/runs/" + id)
			if err != nil {
				t.Fatal(err)
			}
			page, _ := readAll(resp)
			_, failure, _ := strings.Cut(string(page), `id="failure">`)
			failure, _, _ = strings.Cut(failure, "</pre>")
			check("run page", html.UnescapeString(failure))

			st, body = s.do("POST", "/api/sources", map[string]any{"alias": "ledger", "uri": b.URI})
			json.Unmarshal(body, &e)
			if st != wantStatus {
				t.Errorf("register: status %d, want %d: %s", st, wantStatus, body)
			}
			want[0] = "source ledger: "
			check("register", e.Error.Message)
		})
	}
}
