package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/kalla-recon/kalla/internal/kalla"
)

const sourceColumns = "alias, uri, source_type, status, status_message, created_at, updated_at"

// UpsertSource registers src under src.Alias, or replaces the registration
// of that alias. The URI is stored raw, credentials included. The store sets
// UpdatedAt to now and CreatedAt to when the alias was first registered (an
// update keeps it), and writes both back into src. It returns kalla.EINVALID
// when the alias or URI is empty.
func (s *Store) UpsertSource(ctx context.Context, src *kalla.RegisteredSource) error {
	if src.Alias == "" {
		return kalla.Errorf(kalla.EINVALID, "source alias is required")
	}
	if src.URI == "" {
		return kalla.Errorf(kalla.EINVALID, "source %q: URI is required", src.Alias)
	}
	now := s.timestamp()
	var created timeScan
	err := s.w.QueryRowContext(ctx, s.d.rebind(`
INSERT INTO sources (`+sourceColumns+`)
VALUES (?, ?, ?, ?, ?, ?, ?)
ON CONFLICT (alias) DO UPDATE SET
	uri = excluded.uri,
	source_type = excluded.source_type,
	status = excluded.status,
	status_message = excluded.status_message,
	updated_at = excluded.updated_at
RETURNING created_at`),
		src.Alias, src.URI, src.SourceType, src.Status, src.StatusMessage, s.d.time(now), s.d.time(now),
	).Scan(&created)
	if err != nil {
		return fmt.Errorf("upsert source %q: %w", src.Alias, err)
	}
	src.CreatedAt, src.UpdatedAt = created.t, now
	return nil
}

// GetSource returns the source registered under alias, with its raw URI. It
// returns kalla.ENOTFOUND (ErrNotFound) when there is none.
func (s *Store) GetSource(ctx context.Context, alias string) (*kalla.RegisteredSource, error) {
	src, err := scanSource(s.r.QueryRowContext(ctx, s.d.rebind("SELECT "+sourceColumns+" FROM sources WHERE alias = ?"), alias))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, notFound("source %q", alias)
	}
	if err != nil {
		return nil, fmt.Errorf("get source %q: %w", alias, err)
	}
	return src, nil
}

// ListSources returns every registered source, ordered by alias.
func (s *Store) ListSources(ctx context.Context) ([]*kalla.RegisteredSource, error) {
	rows, err := s.r.QueryContext(ctx, "SELECT "+sourceColumns+" FROM sources ORDER BY alias")
	if err != nil {
		return nil, fmt.Errorf("list sources: %w", err)
	}
	defer rows.Close()
	out := []*kalla.RegisteredSource{}
	for rows.Next() {
		src, err := scanSource(rows)
		if err != nil {
			return nil, fmt.Errorf("list sources: %w", err)
		}
		out = append(out, src)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list sources: %w", err)
	}
	return out, nil
}

// DeleteSource removes the source registered under alias. Recipes and runs
// that name the alias are left alone. It returns kalla.ENOTFOUND
// (ErrNotFound) when there is none.
func (s *Store) DeleteSource(ctx context.Context, alias string) error {
	res, err := s.w.ExecContext(ctx, s.d.rebind("DELETE FROM sources WHERE alias = ?"), alias)
	if err != nil {
		return fmt.Errorf("delete source %q: %w", alias, err)
	}
	return oneRow(res, func() error { return notFound("source %q", alias) })
}

// rowScanner is *sql.Row or *sql.Rows.
type rowScanner interface {
	Scan(dest ...any) error
}

func scanSource(row rowScanner) (*kalla.RegisteredSource, error) {
	var src kalla.RegisteredSource
	var created, updated timeScan
	if err := row.Scan(&src.Alias, &src.URI, &src.SourceType, &src.Status, &src.StatusMessage, &created, &updated); err != nil {
		return nil, err
	}
	src.CreatedAt, src.UpdatedAt = created.t, updated.t
	return &src, nil
}

// oneRow returns nil when res affected a row and missing() when it affected
// none.
func oneRow(res sql.Result, missing func() error) error {
	n, err := res.RowsAffected()
	if err != nil {
		return fmt.Errorf("rows affected: %w", err)
	}
	if n == 0 {
		return missing()
	}
	return nil
}
