package engine

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/kalla-recon/kalla/internal/connector"
	"github.com/kalla-recon/kalla/internal/kalla"
)

// Check is the result of checking a recipe without running it
// (kalla.Check, shared by every engine).
type Check = kalla.Check

// CheckRecipe validates a recipe against its real sources without reading
// them into a run: each source must be readable (a nil source means it could
// not be opened; openErrs says why), its primary key must exist, its filters
// must fit its columns, the match SQL must bind against the real schemas,
// and its output must let Kalla tell which records matched. Problems are
// collected, not returned as errors; an error means the check itself failed.
func (e *Engine) CheckRecipe(ctx context.Context, rec *kalla.Recipe, left, right connector.Source, openErrs [2]error) (*Check, error) {
	c := &Check{Problems: []string{}}
	sides := []*side{
		{name: "left", names: sideNames{view: "left_src", alias: rec.Sources.Left.Alias}, spec: rec.Sources.Left, table: "__kalla_left"},
		{name: "right", names: sideNames{view: "right_src", alias: rec.Sources.Right.Alias}, spec: rec.Sources.Right, table: "__kalla_right"},
	}
	ready := true
	for i, src := range []connector.Source{left, right} {
		s := sides[i]
		if src == nil {
			ready = false
			c.Problems = append(c.Problems, kalla.ErrorMessage(kalla.AsSourceError(openErrs[i], s.name, s.spec.Alias)))
			continue
		}
		cols, err := src.Columns(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			ready = false
			c.Problems = append(c.Problems, kalla.ErrorMessage(kalla.AsSourceError(err, s.name, s.spec.Alias)))
			continue
		}
		if i == 0 {
			c.LeftColumns = cols
		} else {
			c.RightColumns = cols
		}
		if err := kalla.ValidateFilters(s.spec.Alias, s.spec.Filters, cols); err != nil {
			c.Problems = append(c.Problems, fmt.Sprintf("sources.%s.filters: %s", s.name, kalla.ErrorMessage(err)))
		}
		defs := make([]string, len(cols))
		for j, col := range cols {
			typ := col.EngineType
			if typ == "" {
				typ = "VARCHAR"
			}
			defs[j] = qi(col.Name) + " " + typ
		}
		if _, err := e.exec(ctx, "CREATE OR REPLACE TABLE "+qi(s.table)+" ("+strings.Join(defs, ", ")+")"); err != nil {
			return nil, fmt.Errorf("create empty %s table: %w", s.name, err)
		}
		s.cols = cols
		if err := e.defineViews(ctx, s); err != nil {
			ready = false
			c.Problems = append(c.Problems, kalla.ErrorMessage(err))
		}
	}
	if !ready {
		what := "match_sql"
		if len(rec.Rules) > 0 {
			what = "rules"
		}
		c.Problems = append(c.Problems, what+": not checked until the problems above are fixed")
		return c, nil
	}
	// The check writes nothing.
	if err := e.sandbox(ctx, nil); err != nil {
		return nil, err
	}
	var m *matchResult
	var err error
	if len(rec.Rules) > 0 {
		// The rules run on the empty staged tables: every statement binds
		// against the real schemas, and no data is read.
		m, err = e.matchRules(ctx, rec, sides[0], sides[1])
	} else {
		m, err = e.match(ctx, rec.MatchSQL, sides[0], sides[1], false)
	}
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		c.Problems = append(c.Problems, splitProblems(kalla.ErrorMessage(err))...)
		return c, nil
	}
	out, err := e.describe(ctx, m.table)
	if err != nil {
		return nil, err
	}
	for _, col := range out {
		if !strings.HasPrefix(col.Name, "__kalla_") {
			c.OutputColumns = append(c.OutputColumns, col)
		}
	}
	if _, err := matchedSelect(m, sides[0], sides[1]); err != nil {
		c.Problems = append(c.Problems, kalla.ErrorMessage(err))
	}
	if len(rec.Rules) == 0 {
		w, err := e.joinWarnings(ctx, rec.MatchSQL)
		if err != nil {
			return nil, err
		}
		c.Warnings = w
	}
	return c, nil
}

// joinWarnings reads the plan of a match SQL that binds and warns when it
// compares every left record with every right record: a cross join (FROM
// left_src l, right_src r with no condition linking them) or a join with
// no equality to join on (a nested loop). Either is slow on large sides
// and usually pairs records that have nothing to do with each other.
func (e *Engine) joinWarnings(ctx context.Context, matchSQL string) ([]string, error) {
	// The JSON form names operators as DuckDB's code does (CROSS_PRODUCT);
	// the text form is for people, and DuckDB 2.0 renamed its boxes
	// ("Cross Product").
	var key, plan string
	err := e.conn.QueryRowContext(ctx, "EXPLAIN (FORMAT json) "+strings.TrimRight(strings.TrimSpace(matchSQL), ";")).Scan(&key, &plan)
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, fmt.Errorf("explain match: %w", err)
	}
	var nodes []planNode
	if err := json.Unmarshal([]byte(plan), &nodes); err != nil {
		return nil, fmt.Errorf("read match plan: %w", err)
	}
	ops := map[string]bool{}
	var walk func([]planNode)
	walk = func(ns []planNode) {
		for _, n := range ns {
			ops[n.Name] = true
			walk(n.Children)
		}
	}
	walk(nodes)
	switch {
	case ops["CROSS_PRODUCT"]:
		return []string{"match_sql compares every left record with every right record (a cross join, such as FROM left_src l, right_src r with no condition linking them): join the sides on a reference, e.g. JOIN right_src r ON l.invoice_id = r.reference_number"}, nil
	case ops["NESTED_LOOP_JOIN"] || ops["BLOCKWISE_NL_JOIN"]:
		return []string{"match_sql has no equality to join on, so it compares every left record with every right record (slow on large sides, and it may pair unrelated records): add a condition such as l.invoice_id = r.reference_number"}, nil
	}
	if len(ops) == 0 {
		return nil, fmt.Errorf("read match plan: no operators in %.200s", plan)
	}
	return nil, nil
}

// planNode is one operator of DuckDB's EXPLAIN (FORMAT json).
type planNode struct {
	Name     string     `json:"name"`
	Children []planNode `json:"children"`
}

// splitProblems turns a message listing several problems ("invalid
// rules:\n  - a\n  - b") into one problem each, so a check lists them flat.
func splitProblems(msg string) []string {
	_, rest, ok := strings.Cut(msg, ":\n  - ")
	if !ok {
		return []string{msg}
	}
	return strings.Split(rest, "\n  - ")
}
