package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/kalla-recon/kalla/internal/kalla"
)

const tokenColumns = "name, role, created_at, created_by, last_used, revoked_at"

// CreateToken records a named token by the SHA-256 of the token (hash,
// lowercase hex); the token itself never reaches the store. The store sets
// t.CreatedAt. Errors: EINVALID for a bad name or role or a hash that is
// not 64 hex digits, ECONFLICT when the name already has a token that is
// not revoked.
func (s *Store) CreateToken(ctx context.Context, t *kalla.APIToken, hash string) error {
	if err := kalla.ValidateTokenName(t.Name); err != nil {
		return err
	}
	if !t.Role.Valid() {
		return kalla.Errorf(kalla.EINVALID, "role %q is not viewer, preparer, approver or admin", t.Role)
	}
	if !isSHA256Hex(hash) {
		return kalla.Errorf(kalla.EINVALID, "token hash must be a SHA-256 in lowercase hex")
	}
	now := s.timestamp()
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("create token %q: %w", t.Name, err)
	}
	defer tx.Rollback()
	// Checked first inside the write transaction, so the usual conflict
	// is a clear error rather than a driver's unique-index message; the
	// index still decides between two processes racing on PostgreSQL.
	var one int
	err = tx.QueryRowContext(ctx, s.d.rebind("SELECT 1 FROM api_tokens WHERE name = ? AND revoked_at IS NULL"), t.Name).Scan(&one)
	switch {
	case err == nil:
		return kalla.Errorf(kalla.ECONFLICT, "%s already has a token: revoke it first (kalla token revoke %s)", t.Name, t.Name)
	case !errors.Is(err, sql.ErrNoRows):
		return fmt.Errorf("create token %q: %w", t.Name, err)
	}
	if _, err := tx.ExecContext(ctx, s.d.rebind("INSERT INTO api_tokens (name, role, token_hash, created_at, created_by) VALUES (?, ?, ?, ?, ?)"),
		t.Name, string(t.Role), hash, s.d.time(now), t.CreatedBy); err != nil {
		// Two processes racing on PostgreSQL both pass the check above;
		// the partial unique index refuses the second (unique_violation).
		if pe := (*pgconn.PgError)(nil); errors.As(err, &pe) && pe.Code == "23505" && pe.ConstraintName == "api_tokens_active_name" {
			return kalla.Errorf(kalla.ECONFLICT, "%s already has a token: revoke it first (kalla token revoke %s)", t.Name, t.Name)
		}
		return fmt.Errorf("create token %q: %w", t.Name, err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("create token %q: %w", t.Name, err)
	}
	t.CreatedAt, t.LastUsed, t.RevokedAt = now, nil, nil
	return nil
}

// TokenByHash returns the token whose SHA-256 is hash, revoked or not (the
// caller refuses a revoked one). Errors: ENOTFOUND (ErrNotFound) when no
// token has that hash; the error never quotes the hash.
func (s *Store) TokenByHash(ctx context.Context, hash string) (*kalla.APIToken, error) {
	t, err := scanToken(s.r.QueryRowContext(ctx, s.d.rebind("SELECT "+tokenColumns+" FROM api_tokens WHERE token_hash = ?"), hash))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, notFound("no such token")
	}
	if err != nil {
		return nil, fmt.Errorf("look up token: %w", err)
	}
	return t, nil
}

// ActiveToken returns the token of name that is not revoked, with its
// hash, which a UI session is signed with (so a session ends when its token
// is revoked or replaced). Errors: ENOTFOUND (ErrNotFound) when name has no
// such token.
func (s *Store) ActiveToken(ctx context.Context, name string) (*kalla.APIToken, string, error) {
	var hash string
	t, err := scanToken(s.r.QueryRowContext(ctx, s.d.rebind("SELECT "+tokenColumns+", token_hash FROM api_tokens WHERE name = ? AND revoked_at IS NULL"), name), &hash)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, "", notFound("%s has no token", name)
	}
	if err != nil {
		return nil, "", fmt.Errorf("look up token of %q: %w", name, err)
	}
	return t, hash, nil
}

// ListTokens returns every token, revoked ones too, by name and then
// creation (oldest first).
func (s *Store) ListTokens(ctx context.Context) ([]*kalla.APIToken, error) {
	rows, err := s.r.QueryContext(ctx, "SELECT "+tokenColumns+" FROM api_tokens ORDER BY name, created_at, id")
	if err != nil {
		return nil, fmt.Errorf("list tokens: %w", err)
	}
	defer rows.Close()
	out := []*kalla.APIToken{}
	for rows.Next() {
		t, err := scanToken(rows)
		if err != nil {
			return nil, fmt.Errorf("list tokens: %w", err)
		}
		out = append(out, t)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list tokens: %w", err)
	}
	return out, nil
}

// RevokeToken revokes the token of name that is not revoked yet and
// returns it as it is now. Errors: ENOTFOUND (ErrNotFound) when name has
// no such token.
func (s *Store) RevokeToken(ctx context.Context, name string) (*kalla.APIToken, error) {
	t, err := scanToken(s.w.QueryRowContext(ctx, s.d.rebind("UPDATE api_tokens SET revoked_at = ? WHERE name = ? AND revoked_at IS NULL RETURNING "+tokenColumns),
		s.d.time(s.timestamp()), name))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, notFound("%s has no token to revoke", name)
	}
	if err != nil {
		return nil, fmt.Errorf("revoke token of %q: %w", name, err)
	}
	return t, nil
}

// TouchToken records that the token with hash was used now, unless that
// was recorded less than a minute ago: a write per request would queue
// every request behind SQLite's one writer.
func (s *Store) TouchToken(ctx context.Context, hash string) error {
	now := s.timestamp()
	_, err := s.w.ExecContext(ctx, s.d.rebind("UPDATE api_tokens SET last_used = ? WHERE token_hash = ? AND (last_used IS NULL OR last_used < ?)"),
		s.d.time(now), hash, s.d.time(now.Add(-time.Minute)))
	if err != nil {
		return fmt.Errorf("record token use: %w", err)
	}
	return nil
}

// HasTokens reports whether any named token was ever created, revoked
// ones included: a server that had people's tokens keeps asking for one
// even after the last is revoked, rather than falling open.
func (s *Store) HasTokens(ctx context.Context) (bool, error) {
	var n int
	if err := s.r.QueryRowContext(ctx, "SELECT count(*) FROM (SELECT 1 FROM api_tokens LIMIT 1) t").Scan(&n); err != nil {
		return false, fmt.Errorf("count tokens: %w", err)
	}
	return n > 0, nil
}

// scanToken scans tokenColumns, then into extra the columns that follow.
func scanToken(row rowScanner, extra ...any) (*kalla.APIToken, error) {
	var t kalla.APIToken
	var created, used, revoked timeScan
	if err := row.Scan(append([]any{&t.Name, &t.Role, &created, &t.CreatedBy, &used, &revoked}, extra...)...); err != nil {
		return nil, err
	}
	t.CreatedAt, t.LastUsed, t.RevokedAt = created.t, used.ptr(), revoked.ptr()
	return &t, nil
}

// isSHA256Hex reports whether h is 64 lowercase hex digits.
func isSHA256Hex(h string) bool {
	if len(h) != 64 {
		return false
	}
	for _, c := range h {
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}
