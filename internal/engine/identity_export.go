package engine

import (
	"context"
	"log/slog"
)

// Names of the hidden identity columns a rewritten match SQL adds, for
// engines that run the rewritten text themselves (internal/spark).
const (
	LeftRidColumn  = leftRid
	RightRidColumn = rightRid
)

// KeyColumn names the column a rewritten match SQL adds to carry key column
// i of a side ("l" or "r") when the SQL does not select it itself.
func KeyColumn(side string, i int) string { return pkCol(side, i) }

// RowIDColumn names the hidden row-id column the view of a side ("left_src"
// or "right_src") must expose for a rewritten match SQL.
func RowIDColumn(view string) string { return sideNames{view: view}.rid() }

// MatchIdentity is a match SQL rewritten by DuckDB's parser to carry each
// output row's left and right row ids and primary keys.
type MatchIdentity struct {
	// SQL is the rewritten statement as DuckDB renders it.
	SQL string
	// LeftKeys and RightKeys give, per primary-key column, the position in
	// the SQL's own select list of a plain reference to it, or -1 when the
	// key is carried in an added KeyColumn.
	LeftKeys, RightKeys []int
}

// RewriteMatchSQL parses matchSQL with DuckDB (in a throwaway in-memory
// database that reads nothing) and applies the same checks and rewriting a
// DuckDB run does: exactly one SELECT, reading left_src/right_src (or the
// aliases) and nothing else, each side once in the top-level FROM, no
// top-level GROUP BY or set operation. Errors are EINVALID and say what to
// change.
func RewriteMatchSQL(ctx context.Context, matchSQL, leftAlias, rightAlias string, leftPK, rightPK []string) (MatchIdentity, error) {
	e, err := Open(ctx, Options{Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		return MatchIdentity{}, err
	}
	defer e.Close()
	if err := e.sandbox(ctx, nil); err != nil {
		return MatchIdentity{}, err
	}
	id, err := e.withIdentity(ctx, matchSQL,
		sideNames{view: "left_src", alias: leftAlias, pk: leftPK},
		sideNames{view: "right_src", alias: rightAlias, pk: rightPK})
	if err != nil {
		return MatchIdentity{}, err
	}
	return MatchIdentity{SQL: id.sql, LeftKeys: id.left, RightKeys: id.right}, nil
}

// RecipeError marks err as the recipe's fault (errors.Is(err, ErrRecipe):
// the CLI exits 2), without changing its text, for an engine that checks
// recipes as this one does (its SQL, its keys, its rules).
func RecipeError(err error) error { return recipeErr(err) }
