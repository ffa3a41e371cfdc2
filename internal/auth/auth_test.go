package auth_test

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kalla-recon/kalla/internal/auth"
	"github.com/kalla-recon/kalla/internal/kalla"
	"github.com/kalla-recon/kalla/internal/store"
)

// TestSessions: a session names its token's person; it ends when it
// expires, when it is altered, and when its token is revoked or replaced.
// A real SQLite store holds the tokens.
func TestSessions(t *testing.T) {
	ctx := context.Background()
	st, err := store.Open(ctx, filepath.Join(t.TempDir(), "kalla.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	now := time.Now()
	a := auth.New(auth.Config{Store: st, Bootstrap: "boot-token", Now: func() time.Time { return now }})

	tok, hash, err := auth.NewToken()
	if err != nil {
		t.Fatal(err)
	}
	if hash != auth.Hash(tok) || strings.Contains(hash, tok) {
		t.Fatalf("hash %q of %q", hash, tok)
	}
	if err := st.CreateToken(ctx, &kalla.APIToken{Name: "alice", Role: kalla.RoleApprover}, hash); err != nil {
		t.Fatal(err)
	}
	alice := kalla.Principal{Name: "alice", Role: kalla.RoleApprover}
	if p, err := a.Token(ctx, tok); err != nil || p != alice {
		t.Fatalf("Token = %v, %v", p, err)
	}
	if p, err := a.Token(ctx, "boot-token"); err != nil || p != (kalla.Principal{Name: "admin", Role: kalla.RoleAdmin}) {
		t.Fatalf("bootstrap Token = %v, %v", p, err)
	}
	if _, err := a.Token(ctx, tok+"x"); kalla.ErrorCode(err) != kalla.EUNAUTHORIZED {
		t.Fatalf("wrong token: %v", err)
	}

	value, p, err := a.NewSession(ctx, tok, time.Hour)
	if err != nil || p != alice || strings.Contains(value, tok) || strings.Contains(value, hash) {
		t.Fatalf("NewSession = %q, %v, %v", value, p, err)
	}
	if p, err := a.Session(ctx, value); err != nil || p != alice {
		t.Fatalf("Session = %v, %v", p, err)
	}
	boot, _, err := a.NewSession(ctx, "boot-token", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	// The MAC is hex; its last digit is changed to one it is not, so the
	// value is always altered (replacing it with a fixed "0" was a no-op
	// one time in sixteen).
	last := "0"
	if strings.HasSuffix(value, "0") {
		last = "1"
	}
	for name, v := range map[string]string{
		"altered mac":     value[:len(value)-1] + last,
		"other name":      "bob" + value[len("alice"):],
		"bootstrap's mac": "alice" + boot[len("admin"):],
		"no parts":        "alice",
		"empty":           "",
	} {
		if _, err := a.Session(ctx, v); kalla.ErrorCode(err) != kalla.EUNAUTHORIZED {
			t.Errorf("%s: %v, want unauthorized", name, err)
		}
	}
	now = now.Add(2 * time.Hour)
	if _, err := a.Session(ctx, value); kalla.ErrorCode(err) != kalla.EUNAUTHORIZED {
		t.Errorf("expired session admitted: %v", err)
	}
	now = now.Add(-2 * time.Hour)

	// Revoked, then replaced by a new token: the old session stays dead.
	if _, err := st.RevokeToken(ctx, "alice"); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Session(ctx, value); kalla.ErrorCode(err) != kalla.EUNAUTHORIZED {
		t.Errorf("session of a revoked token admitted: %v", err)
	}
	if _, err := a.Token(ctx, tok); err == nil || !strings.Contains(err.Error(), "revoked") {
		t.Errorf("revoked token: %v", err)
	}
	tok2, hash2, _ := auth.NewToken()
	if err := st.CreateToken(ctx, &kalla.APIToken{Name: "alice", Role: kalla.RoleViewer}, hash2); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Session(ctx, value); kalla.ErrorCode(err) != kalla.EUNAUTHORIZED {
		t.Errorf("old session admitted after the token was replaced: %v", err)
	}
	if p, err := a.Token(ctx, tok2); err != nil || p.Role != kalla.RoleViewer {
		t.Errorf("new token: %v %v", p, err)
	}
}

// TestRequired: open without tokens on loopback; required with a
// bootstrap token, beyond loopback, or once a token was ever created, and
// still after it is revoked.
func TestRequired(t *testing.T) {
	ctx := context.Background()
	st, err := store.Open(ctx, filepath.Join(t.TempDir(), "kalla.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	for _, c := range []struct {
		cfg  auth.Config
		want bool
	}{
		{auth.Config{Store: st}, false},
		{auth.Config{}, false},
		{auth.Config{Store: st, Bootstrap: "b"}, true},
		{auth.Config{Store: st, Always: true}, true},
	} {
		if got, err := auth.New(c.cfg).Required(ctx); err != nil || got != c.want {
			t.Errorf("%+v: Required = %v, %v", c.cfg, got, err)
		}
	}
	a := auth.New(auth.Config{Store: st})
	_, hash, _ := auth.NewToken()
	if err := st.CreateToken(ctx, &kalla.APIToken{Name: "x", Role: kalla.RoleViewer}, hash); err != nil {
		t.Fatal(err)
	}
	if _, err := st.RevokeToken(ctx, "x"); err != nil {
		t.Fatal(err)
	}
	if got, err := a.Required(ctx); err != nil || !got {
		t.Errorf("after a token was created and revoked: Required = %v, %v", got, err)
	}
}
