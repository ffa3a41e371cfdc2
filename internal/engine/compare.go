package engine

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
)

// Comparison is one condition of a match SQL that compares a column of the
// left side with a column of the right side: equality (Op "eq") or
// tolerance_match(l, r, t) with a constant t (Op "tolerance").
type Comparison struct {
	Op          string
	Left, Right string // column names, as the SQL spells them
	// Tolerance is the constant t of a tolerance_match, as DuckDB renders
	// it (e.g. "0.02").
	Tolerance string
}

// Comparison operators.
const (
	CompareEq        = "eq"
	CompareTolerance = "tolerance"
)

// MatchComparisons is what Kalla can read of a match SQL's conditions:
// the column comparisons every matched pair satisfies (conjuncts of the
// join conditions and the WHERE clause of the top-level SELECT), and the
// conditions it cannot read, as DuckDB renders them.
type MatchComparisons struct {
	Pairs []Comparison
	// Unread are the other conditions (an OR, a function of a column, a
	// range written by hand, a subquery...): a pair may have failed one of
	// them, and Kalla cannot tell which.
	Unread []string
}

// ReadComparisons parses matchSQL with DuckDB's parser (in a throwaway
// in-memory database that reads nothing) and returns the comparisons it
// makes between the two sides, so that the closest candidates of an
// unmatched record can be searched on the same keys and amounts. A SQL
// that does not parse, or whose sides cannot be told apart, is an error;
// the run that used it would have failed first.
func ReadComparisons(ctx context.Context, matchSQL, leftAlias, rightAlias string) (MatchComparisons, error) {
	var mc MatchComparisons
	e, err := Open(ctx, Options{Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		return mc, err
	}
	defer e.Close()
	if err := e.sandbox(ctx, nil); err != nil {
		return mc, err
	}
	parse := func(q string) (map[string]any, error) {
		var raw string
		if err := e.conn.QueryRowContext(ctx, "SELECT CAST(json_serialize_sql(CAST(? AS VARCHAR)) AS VARCHAR)", q).Scan(&raw); err != nil {
			return nil, fmt.Errorf("parse match sql: %w", err)
		}
		dec := json.NewDecoder(strings.NewReader(raw))
		dec.UseNumber()
		var tree map[string]any
		if err := dec.Decode(&tree); err != nil {
			return nil, fmt.Errorf("read parsed match sql: %w", err)
		}
		if isErr, _ := tree["error"].(bool); isErr {
			return nil, fmt.Errorf("parse match sql: %v", tree["error_message"])
		}
		return tree, nil
	}
	tree, err := parse(matchSQL)
	if err != nil {
		return mc, err
	}
	stmts, _ := tree["statements"].([]any)
	if len(stmts) != 1 {
		return mc, fmt.Errorf("match sql has %d statements", len(stmts))
	}
	node, _ := stmts[0].(map[string]any)["node"].(map[string]any)
	if node == nil || node["type"] != "SELECT_NODE" {
		return mc, fmt.Errorf("match sql is not a plain SELECT")
	}
	// render writes one expression as SQL: DuckDB renders "SELECT <expr>".
	tmpl, err := parse("SELECT 1")
	if err != nil {
		return mc, err
	}
	render := func(expr any) string {
		tn := tmpl["statements"].([]any)[0].(map[string]any)["node"].(map[string]any)
		tn["select_list"] = []any{expr}
		b, err := json.Marshal(tmpl)
		if err != nil {
			return "?"
		}
		var s string
		if err := e.conn.QueryRowContext(ctx, "SELECT json_deserialize_sql(CAST(? AS JSON))", string(b)).Scan(&s); err != nil {
			return "?"
		}
		return strings.TrimPrefix(strings.TrimSpace(s), "SELECT ")
	}
	left := sideNames{view: "left_src", alias: leftAlias}
	right := sideNames{view: "right_src", alias: rightAlias}
	side := map[string]int{} // table reference (lower case) → 0 left, 1 right
	var conds []any
	from, _ := node["from_table"].(map[string]any)
	walkFrom(from, nil, func(name, ref string) {
		switch {
		case left.is(name):
			side[strings.ToLower(ref)] = 0
		case right.is(name):
			side[strings.ToLower(ref)] = 1
		}
	}, func(t map[string]any) {
		jt, _ := t["join_type"].(string)
		rt, _ := t["ref_type"].(string)
		if c := t["condition"]; c != nil {
			if (jt == "INNER" || jt == "LEFT" || jt == "RIGHT" || jt == "OUTER") && rt == "REGULAR" {
				conds = append(conds, c)
			} else {
				mc.Unread = append(mc.Unread, strings.ToLower(jt)+" join on "+render(c))
			}
		}
		if u, _ := t["using_columns"].([]any); len(u) > 0 {
			for _, col := range u {
				name := fmt.Sprint(col)
				mc.Pairs = append(mc.Pairs, Comparison{Op: CompareEq, Left: name, Right: name})
			}
		}
	})
	if w := node["where_clause"]; w != nil {
		conds = append(conds, w)
	}
	// column returns the side and name of a qualified reference to one
	// side's column.
	column := func(x any) (int, string, bool) {
		c, _ := x.(map[string]any)
		if c == nil || c["class"] != "COLUMN_REF" {
			return 0, "", false
		}
		names, _ := c["column_names"].([]any)
		if len(names) != 2 {
			return 0, "", false
		}
		s, ok := side[strings.ToLower(fmt.Sprint(names[0]))]
		return s, fmt.Sprint(names[1]), ok
	}
	var read func(x any)
	read = func(x any) {
		c, _ := x.(map[string]any)
		if c == nil {
			return
		}
		if c["type"] == "CONJUNCTION_AND" {
			kids, _ := c["children"].([]any)
			for _, k := range kids {
				read(k)
			}
			return
		}
		switch {
		case c["type"] == "COMPARE_EQUAL":
			s1, c1, ok1 := column(c["left"])
			s2, c2, ok2 := column(c["right"])
			if ok1 && ok2 && s1 != s2 {
				if s1 == 1 {
					c1, c2 = c2, c1
				}
				mc.Pairs = append(mc.Pairs, Comparison{Op: CompareEq, Left: c1, Right: c2})
				return
			}
		case c["class"] == "FUNCTION" && strings.EqualFold(fmt.Sprint(c["function_name"]), "tolerance_match"):
			kids := functionArgs(c)
			if len(kids) == 3 {
				s1, c1, ok1 := column(kids[0])
				s2, c2, ok2 := column(kids[1])
				k, _ := kids[2].(map[string]any)
				if ok1 && ok2 && s1 != s2 && k != nil && k["class"] == "CONSTANT" {
					if s1 == 1 {
						c1, c2 = c2, c1
					}
					mc.Pairs = append(mc.Pairs, Comparison{Op: CompareTolerance, Left: c1, Right: c2, Tolerance: render(k)})
					return
				}
			}
		}
		mc.Unread = append(mc.Unread, render(c))
	}
	for _, c := range conds {
		read(c)
	}
	return mc, nil
}

// functionArgs returns the argument expressions of a parsed function call.
// DuckDB 2.0 serializes each as {"name": ..., "expression": ...} under
// "arguments" (1.5 listed the bare expressions under "children"). A named
// argument (name := value) is none that tolerance_match takes: it comes
// back as nil, and the call is left unread.
func functionArgs(c map[string]any) []any {
	args, _ := c["arguments"].([]any)
	out := make([]any, len(args))
	for i, a := range args {
		if m, _ := a.(map[string]any); m != nil && m["name"] == "" {
			out[i] = m["expression"]
		}
	}
	return out
}
