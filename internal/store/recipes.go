package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/kalla-recon/kalla/internal/kalla"
)

const recipeColumns = "id, name, recipe_json, created_at, updated_at"

// CreateRecipe stores a new recipe under r.ID. The store sets CreatedAt and
// UpdatedAt to now and writes them back into r. It returns kalla.ECONFLICT
// when a recipe with that ID exists and kalla.EINVALID when the ID is empty.
func (s *Store) CreateRecipe(ctx context.Context, r *kalla.StoredRecipe) error {
	if r.ID == "" {
		return kalla.Errorf(kalla.EINVALID, "recipe id is required")
	}
	doc, err := json.Marshal(r.Recipe)
	if err != nil {
		return fmt.Errorf("create recipe %q: encode: %w", r.ID, err)
	}
	now := s.timestamp()
	res, err := s.w.ExecContext(ctx, s.d.rebind(`
INSERT INTO recipes (`+recipeColumns+`) VALUES (?, ?, ?, ?, ?)
ON CONFLICT (id) DO NOTHING`),
		r.ID, r.Name, string(doc), s.d.time(now), s.d.time(now))
	if err != nil {
		return fmt.Errorf("create recipe %q: %w", r.ID, err)
	}
	if err := oneRow(res, func() error {
		return kalla.Errorf(kalla.ECONFLICT, "recipe %q already exists", r.ID)
	}); err != nil {
		return err
	}
	r.CreatedAt, r.UpdatedAt = now, now
	return nil
}

// PutRecipe replaces the stored recipe r.ID with r. The store keeps
// CreatedAt, sets UpdatedAt to now, and writes both back into r. It returns
// kalla.ENOTFOUND (ErrNotFound) when there is no such recipe.
func (s *Store) PutRecipe(ctx context.Context, r *kalla.StoredRecipe) error {
	doc, err := json.Marshal(r.Recipe)
	if err != nil {
		return fmt.Errorf("put recipe %q: encode: %w", r.ID, err)
	}
	now := s.timestamp()
	var created timeScan
	err = s.w.QueryRowContext(ctx, s.d.rebind(`
UPDATE recipes SET name = ?, recipe_json = ?, updated_at = ? WHERE id = ?
RETURNING created_at`),
		r.Name, string(doc), s.d.time(now), r.ID).Scan(&created)
	if errors.Is(err, sql.ErrNoRows) {
		return notFound("recipe %q", r.ID)
	}
	if err != nil {
		return fmt.Errorf("put recipe %q: %w", r.ID, err)
	}
	r.CreatedAt, r.UpdatedAt = created.t, now
	return nil
}

// GetRecipe returns the recipe stored under id. It returns kalla.ENOTFOUND
// (ErrNotFound) when there is none.
func (s *Store) GetRecipe(ctx context.Context, id string) (*kalla.StoredRecipe, error) {
	r, err := scanRecipe(s.r.QueryRowContext(ctx, s.d.rebind("SELECT "+recipeColumns+" FROM recipes WHERE id = ?"), id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, notFound("recipe %q", id)
	}
	if err != nil {
		return nil, fmt.Errorf("get recipe %q: %w", id, err)
	}
	return r, nil
}

// ListRecipes returns every stored recipe, ordered by ID.
func (s *Store) ListRecipes(ctx context.Context) ([]*kalla.StoredRecipe, error) {
	rows, err := s.r.QueryContext(ctx, "SELECT "+recipeColumns+" FROM recipes ORDER BY id")
	if err != nil {
		return nil, fmt.Errorf("list recipes: %w", err)
	}
	defer rows.Close()
	out := []*kalla.StoredRecipe{}
	for rows.Next() {
		r, err := scanRecipe(rows)
		if err != nil {
			return nil, fmt.Errorf("list recipes: %w", err)
		}
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list recipes: %w", err)
	}
	return out, nil
}

// DeleteRecipe removes the recipe stored under id. Runs of it keep their own
// snapshot of the recipe. It returns kalla.ENOTFOUND (ErrNotFound) when there
// is none.
func (s *Store) DeleteRecipe(ctx context.Context, id string) error {
	res, err := s.w.ExecContext(ctx, s.d.rebind("DELETE FROM recipes WHERE id = ?"), id)
	if err != nil {
		return fmt.Errorf("delete recipe %q: %w", id, err)
	}
	return oneRow(res, func() error { return notFound("recipe %q", id) })
}

func scanRecipe(row rowScanner) (*kalla.StoredRecipe, error) {
	var r kalla.StoredRecipe
	var doc string
	var created, updated timeScan
	if err := row.Scan(&r.ID, &r.Name, &doc, &created, &updated); err != nil {
		return nil, err
	}
	if err := json.Unmarshal([]byte(doc), &r.Recipe); err != nil {
		return nil, fmt.Errorf("decode recipe %q: %w", r.ID, err)
	}
	r.CreatedAt, r.UpdatedAt = created.t, updated.t
	return &r, nil
}
