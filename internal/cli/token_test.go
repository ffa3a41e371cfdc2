package cli_test

import (
	"context"
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kalla-recon/kalla/internal/auth"
	"github.com/kalla-recon/kalla/internal/kalla"
	"github.com/kalla-recon/kalla/internal/store"
	"github.com/kalla-recon/kalla/internal/testenv"
)

// TestTokenCommands: kalla token create prints the token once (and only
// its hash reaches the store), list shows records without tokens, revoke
// revokes; on the SQLite file in the data folder and on PostgreSQL.
func TestTokenCommands(t *testing.T) {
	for _, b := range []struct {
		name  string
		flags func(t *testing.T) ([]string, string)
	}{
		{"sqlite", func(t *testing.T) ([]string, string) {
			dir := t.TempDir()
			return []string{"--data-dir", dir}, filepath.Join(dir, "kalla.db")
		}},
		{"postgres", func(t *testing.T) ([]string, string) {
			u := testenv.Postgres(t)
			return []string{"--database-url", u}, u
		}},
	} {
		t.Run(b.name, func(t *testing.T) {
			flags, url := b.flags(t)
			code, out, errOut := runKalla(t, append([]string{"token", "create", "--name", "alice", "--role", "approver"}, flags...)...)
			token := strings.TrimSpace(out)
			if code != 0 || !strings.HasPrefix(token, auth.TokenPrefix) || strings.Contains(out, "\n"+auth.TokenPrefix) || !strings.Contains(errOut, "shown this once") {
				t.Fatalf("create: %d %q %q", code, out, errOut)
			}
			if code, _, errOut := runKalla(t, append([]string{"token", "create", "--name", "alice", "--role", "viewer"}, flags...)...); code != 1 || !strings.Contains(errOut, "already has a token") {
				t.Errorf("second create: %d %q", code, errOut)
			}
			if code, _, errOut := runKalla(t, append([]string{"token", "create", "--name", "bob", "--role", "boss"}, flags...)...); code != 2 || !strings.Contains(errOut, "viewer, preparer, approver or admin") {
				t.Errorf("bad role: %d %q", code, errOut)
			}
			if code, _, _ := runKalla(t, append([]string{"token", "create", "--role", "viewer"}, flags...)...); code != 2 {
				t.Errorf("no name: exit %d, want 2", code)
			}

			st, err := store.Open(context.Background(), url)
			if err != nil {
				t.Fatal(err)
			}
			defer st.Close()
			tk, err := st.TokenByHash(context.Background(), auth.Hash(token))
			if err != nil || tk.Name != "alice" || tk.Role != kalla.RoleApprover || !strings.HasPrefix(tk.CreatedBy, "cli") {
				t.Fatalf("stored: %+v %v", tk, err)
			}

			code, out, _ = runKalla(t, append([]string{"token", "list", "--json"}, flags...)...)
			var list struct{ Tokens []kalla.APIToken }
			if code != 0 || json.Unmarshal([]byte(out), &list) != nil || len(list.Tokens) != 1 || list.Tokens[0].Name != "alice" ||
				strings.Contains(out, token) || strings.Contains(out, auth.Hash(token)) {
				t.Errorf("list: %d %s", code, out)
			}
			code, out, _ = runKalla(t, append([]string{"token", "revoke", "alice"}, flags...)...)
			if code != 0 || !strings.Contains(out, "revoked the token of alice") {
				t.Errorf("revoke: %d %q", code, out)
			}
			code, out, _ = runKalla(t, append([]string{"token", "list"}, flags...)...)
			if code != 0 || !strings.Contains(out, "alice") || strings.Contains(out, token) {
				t.Errorf("list after revoke: %d %q", code, out)
			}
			if code, _, errOut := runKalla(t, append([]string{"token", "revoke", "alice"}, flags...)...); code != 1 || !strings.Contains(errOut, "no token to revoke") {
				t.Errorf("second revoke: %d %q", code, errOut)
			}
		})
	}
}
