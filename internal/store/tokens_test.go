package store_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kalla-recon/kalla/internal/kalla"
	"github.com/kalla-recon/kalla/internal/store"
)

// hashOf is a token's SHA-256 in hex, as the store keeps it.
func hashOf(token string) string {
	sum := sha256.Sum256([]byte(token))
	return hex.EncodeToString(sum[:])
}

// testTokens: named tokens are kept by hash only, found by hash, one
// active per name, revoked (never deleted), and their use recorded at most
// once a minute.
func testTokens(t *testing.T, newURL func(t *testing.T) string) {
	ctx := context.Background()
	clk := newClock()
	u := newURL(t)
	s := open(t, u, store.WithClock(clk.Now))

	if has, err := s.HasTokens(ctx); err != nil || has {
		t.Fatalf("HasTokens on an empty store = %v, %v", has, err)
	}
	alice := &kalla.APIToken{Name: "alice", Role: kalla.RoleApprover, CreatedBy: "cli:root"}
	if err := s.CreateToken(ctx, alice, hashOf("tok-alice")); err != nil {
		t.Fatalf("CreateToken: %v", err)
	}
	if alice.CreatedAt.IsZero() {
		t.Fatal("CreateToken left CreatedAt zero")
	}
	if has, err := s.HasTokens(ctx); err != nil || !has {
		t.Fatalf("HasTokens after a token = %v, %v", has, err)
	}
	got, err := s.TokenByHash(ctx, hashOf("tok-alice"))
	if err != nil || !reflect.DeepEqual(got, alice) {
		t.Fatalf("TokenByHash = %+v, %v; want %+v", got, err, alice)
	}
	_, err = s.TokenByHash(ctx, hashOf("tok-mallory"))
	wantCode(t, err, kalla.ENOTFOUND)
	got, hash, err := s.ActiveToken(ctx, "alice")
	if err != nil || hash != hashOf("tok-alice") || !reflect.DeepEqual(got, alice) {
		t.Fatalf("ActiveToken = %+v, %q, %v", got, hash, err)
	}

	// The store holds the hash, never the token.
	var stored string
	if err := rawDB(t, u).QueryRowContext(ctx, "SELECT token_hash FROM api_tokens WHERE name = 'alice'").Scan(&stored); err != nil {
		t.Fatal(err)
	}
	if stored != hashOf("tok-alice") || strings.Contains(stored, "tok-alice") {
		t.Fatalf("stored %q", stored)
	}

	for _, bad := range []struct {
		t    kalla.APIToken
		hash string
		code string
	}{
		{kalla.APIToken{Name: "alice", Role: kalla.RoleViewer}, hashOf("other"), kalla.ECONFLICT},
		{kalla.APIToken{Name: "bob", Role: kalla.RoleViewer}, hashOf("tok-alice"), kalla.EINTERNAL}, // the same token twice: the unique index
		{kalla.APIToken{Name: "Bob", Role: kalla.RoleViewer}, hashOf("b1"), kalla.EINVALID},
		{kalla.APIToken{Name: "admin", Role: kalla.RoleAdmin}, hashOf("b2"), kalla.EINVALID},
		{kalla.APIToken{Name: "bob", Role: "owner"}, hashOf("b3"), kalla.EINVALID},
		{kalla.APIToken{Name: "bob", Role: kalla.RoleViewer}, "tok-bob", kalla.EINVALID},
	} {
		tok := bad.t
		if err := s.CreateToken(ctx, &tok, bad.hash); kalla.ErrorCode(err) != bad.code {
			t.Errorf("CreateToken(%+v) = %v; want code %s", bad.t, err, bad.code)
		}
	}

	// Use is recorded, then not again within a minute.
	if err := s.TouchToken(ctx, hashOf("tok-alice")); err != nil {
		t.Fatal(err)
	}
	got, _ = s.TokenByHash(ctx, hashOf("tok-alice"))
	if got.LastUsed == nil {
		t.Fatal("TouchToken recorded nothing")
	}
	first := *got.LastUsed
	if err := s.TouchToken(ctx, hashOf("tok-alice")); err != nil {
		t.Fatal(err)
	}
	if got, _ = s.TokenByHash(ctx, hashOf("tok-alice")); !got.LastUsed.Equal(first) {
		t.Errorf("a second use within a minute moved last_used from %v to %v", first, got.LastUsed)
	}
	clk.Advance(2 * time.Minute)
	if err := s.TouchToken(ctx, hashOf("tok-alice")); err != nil {
		t.Fatal(err)
	}
	if got, _ = s.TokenByHash(ctx, hashOf("tok-alice")); !got.LastUsed.After(first) {
		t.Errorf("a use two minutes later left last_used at %v", got.LastUsed)
	}

	// Revoking keeps the row; the name may then have a new token.
	rev, err := s.RevokeToken(ctx, "alice")
	if err != nil || rev.RevokedAt == nil {
		t.Fatalf("RevokeToken = %+v, %v", rev, err)
	}
	_, err = s.RevokeToken(ctx, "alice")
	wantCode(t, err, kalla.ENOTFOUND)
	_, _, err = s.ActiveToken(ctx, "alice")
	wantCode(t, err, kalla.ENOTFOUND)
	if got, err := s.TokenByHash(ctx, hashOf("tok-alice")); err != nil || got.RevokedAt == nil {
		t.Fatalf("revoked token by hash = %+v, %v; want it, revoked", got, err)
	}
	again := &kalla.APIToken{Name: "alice", Role: kalla.RoleViewer, CreatedBy: "admin"}
	if err := s.CreateToken(ctx, again, hashOf("tok-alice-2")); err != nil {
		t.Fatalf("a new token after revoking: %v", err)
	}
	if err := s.CreateToken(ctx, &kalla.APIToken{Name: "bob@example.com", Role: kalla.RolePreparer}, hashOf("tok-bob")); err != nil {
		t.Fatal(err)
	}
	list, err := s.ListTokens(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, tk := range list {
		names = append(names, fmt.Sprintf("%s/%s/%v", tk.Name, tk.Role, tk.RevokedAt != nil))
	}
	if want := []string{"alice/approver/true", "alice/viewer/false", "bob@example.com/preparer/false"}; !reflect.DeepEqual(names, want) {
		t.Fatalf("ListTokens = %q, want %q", names, want)
	}
	if has, err := s.HasTokens(ctx); err != nil || !has {
		t.Fatalf("HasTokens = %v, %v", has, err)
	}
}

// testTokenRace: processes creating a token for the same name at once get
// one token and clear conflicts, never a driver's unique-index error (on
// PostgreSQL both can pass the transaction's own check; the index decides).
func testTokenRace(t *testing.T, newURL func(t *testing.T) string) {
	ctx := context.Background()
	u := newURL(t)
	stores := make([]*store.Store, 6)
	for i := range stores {
		stores[i] = open(t, u)
	}
	errs := make(chan error, len(stores))
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i, s := range stores {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			errs <- s.CreateToken(ctx, &kalla.APIToken{Name: "carol", Role: kalla.RoleViewer, CreatedBy: "race"}, hashOf(fmt.Sprint("tok-carol-", i)))
		}()
	}
	close(start)
	wg.Wait()
	close(errs)
	won := 0
	for err := range errs {
		if err == nil {
			won++
			continue
		}
		wantCode(t, err, kalla.ECONFLICT)
	}
	if won != 1 {
		t.Fatalf("%d of %d racing creations won, want 1", won, len(stores))
	}
}
