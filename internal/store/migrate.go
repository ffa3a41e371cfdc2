package store

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"sort"
	"strings"
)

// migrationFS holds the schema migrations, one folder per dialect. Files are
// applied in name order (0001_…, 0002_…); a released file is never edited,
// only followed by a new one.
//
//go:embed migrations/sqlite/*.sql migrations/postgres/*.sql
var migrationFS embed.FS

// migration is one schema change.
type migration struct {
	version string // file name without .sql, such as "0001_init"
	sql     string
}

// migrations returns the dialect's migrations in order.
func (d dialect) migrations() ([]migration, error) {
	dir := "migrations/" + d.name
	names, err := fs.Glob(migrationFS, dir+"/*.sql")
	if err != nil {
		return nil, fmt.Errorf("list migrations: %w", err)
	}
	sort.Strings(names)
	out := make([]migration, 0, len(names))
	for _, name := range names {
		b, err := migrationFS.ReadFile(name)
		if err != nil {
			return nil, fmt.Errorf("read migration %s: %w", name, err)
		}
		out = append(out, migration{version: strings.TrimSuffix(path.Base(name), ".sql"), sql: string(b)})
	}
	return out, nil
}

// Migrate applies the migrations the database has not had yet, in order,
// each in its own transaction together with its row in schema_migrations,
// and returns the versions it applied (such as "0001_init"). It is
// idempotent, and safe when several processes start at once: on SQLite the
// write lock, on PostgreSQL an advisory lock, makes each migration apply
// once. Open calls it unless given WithoutMigrations.
func (s *Store) Migrate(ctx context.Context) (applied []string, err error) {
	migs, err := s.d.migrations()
	if err != nil {
		return nil, err
	}
	if err := s.migrationTx(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, s.d.createMigrations)
		return err
	}); err != nil {
		return nil, fmt.Errorf("create schema_migrations: %w", err)
	}
	applied = []string{}
	for _, m := range migs {
		done := false
		err := s.migrationTx(ctx, func(tx *sql.Tx) error {
			var one int
			err := tx.QueryRowContext(ctx, s.d.rebind("SELECT 1 FROM schema_migrations WHERE version = ?"), m.version).Scan(&one)
			switch {
			case err == nil:
				done = true
				return nil
			case !errors.Is(err, sql.ErrNoRows):
				return err
			}
			if _, err := tx.ExecContext(ctx, m.sql); err != nil {
				return err
			}
			_, err = tx.ExecContext(ctx, s.d.rebind("INSERT INTO schema_migrations (version, applied_at) VALUES (?, ?)"),
				m.version, s.d.time(s.timestamp()))
			return err
		})
		if err != nil {
			return applied, fmt.Errorf("apply migration %s: %w", m.version, err)
		}
		if !done {
			applied = append(applied, m.version)
		}
	}
	return applied, nil
}

// migrationTx runs fn in a write transaction, taking the dialect's migration lock
// first, and commits when fn succeeds.
func (s *Store) migrationTx(ctx context.Context, fn func(*sql.Tx) error) error {
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	if s.d.lockMigrations != "" {
		if _, err := tx.ExecContext(ctx, s.d.lockMigrations); err != nil {
			tx.Rollback()
			return err
		}
	}
	if err := fn(tx); err != nil {
		tx.Rollback()
		return err
	}
	return tx.Commit()
}
