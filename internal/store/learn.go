package store

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/kalla-recon/kalla/internal/kalla"
)

// RecipeDigest is the SHA-256 (hex) of a recipe's JSON as the store encodes
// it: a proposal names the recipe version it changes by this digest, so
// saving it can refuse a recipe edited meanwhile.
func RecipeDigest(r kalla.Recipe) string {
	b, err := json.Marshal(r)
	if err != nil {
		// A recipe read from the store always encodes.
		panic(err)
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// RecipeChange is a change of a stored recipe a person accepted (a rule
// learned from manual matches), recorded in the audit chain.
type RecipeChange struct {
	// Recipe is the new version; its ID names the stored recipe.
	Recipe *kalla.StoredRecipe
	// Base is the RecipeDigest of the version the change was made from.
	Base string
	// Action, Actor, Role and Note are the audit entry's; RunID the run
	// the change was learned on (the entry belongs to its evidence).
	Action, Actor, Note, RunID string
	Role                       kalla.Role
}

// SaveRecipeChange replaces a stored recipe with a new version and appends
// one audit entry (item 0, before and after the recipe's JSON with its
// source URIs redacted) to the hash chain, in one transaction: both or
// neither. Errors: ENOTFOUND for no such recipe, ECONFLICT when the stored
// recipe is no longer the version Base names.
func (s *Store) SaveRecipeChange(ctx context.Context, c RecipeChange) (*kalla.AuditEntry, error) {
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return nil, fmt.Errorf("save recipe change: %w", err)
	}
	defer tx.Rollback()
	if s.d.dollar {
		if _, err := tx.ExecContext(ctx, fmt.Sprintf("SELECT pg_advisory_xact_lock(%d)", auditLockKey)); err != nil {
			return nil, fmt.Errorf("save recipe change: %w", err)
		}
	}
	id := c.Recipe.ID
	old, err := scanRecipe(tx.QueryRowContext(ctx, s.d.rebind("SELECT "+recipeColumns+" FROM recipes WHERE id = ?"), id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, notFound("recipe %q", id)
	}
	if err != nil {
		return nil, fmt.Errorf("save recipe change %q: %w", id, err)
	}
	if RecipeDigest(old.Recipe) != c.Base {
		return nil, kalla.Errorf(kalla.ECONFLICT, "recipe %q was changed since the proposal was made: ask for a new proposal", id)
	}
	doc, err := json.Marshal(c.Recipe.Recipe)
	if err != nil {
		return nil, fmt.Errorf("save recipe change %q: encode: %w", id, err)
	}
	now := s.timestamp()
	if _, err := tx.ExecContext(ctx, s.d.rebind(`UPDATE recipes SET name = ?, recipe_json = ?, updated_at = ? WHERE id = ?`),
		c.Recipe.Name, string(doc), s.d.time(now), id); err != nil {
		return nil, fmt.Errorf("save recipe change %q: %w", id, err)
	}
	var actionID int64
	if err := tx.QueryRowContext(ctx, s.d.rebind(`INSERT INTO exception_actions (action, actor, role, code, note, assignee, items, result, created_at)
VALUES (?, ?, ?, '', ?, '', 0, ?, ?) RETURNING id`), c.Action, c.Actor, string(c.Role), c.Note, "recipe "+id+" saved", s.d.time(now)).Scan(&actionID); err != nil {
		return nil, fmt.Errorf("record action: %w", err)
	}
	before, err := json.Marshal(old.Recipe.Redacted())
	if err != nil {
		return nil, fmt.Errorf("encode recipe: %w", err)
	}
	after, err := json.Marshal(c.Recipe.Recipe.Redacted())
	if err != nil {
		return nil, fmt.Errorf("encode recipe: %w", err)
	}
	seq, prev, err := s.auditHead(ctx, tx)
	if err != nil {
		return nil, err
	}
	e := &kalla.AuditEntry{Seq: seq + 1, At: now, Actor: c.Actor, Role: c.Role, Action: c.Action, ActionID: actionID,
		RunID: c.RunID, Before: string(before), After: string(after), Note: c.Note, PrevHash: prev}
	e.Hash = e.ComputeHash()
	if err := s.appendAudit(ctx, tx, e); err != nil {
		return nil, err
	}
	if err := tx.Commit(); err != nil {
		return nil, fmt.Errorf("save recipe change: %w", err)
	}
	c.Recipe.UpdatedAt = now
	return e, nil
}
