package engine

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"

	"github.com/kalla-recon/kalla/internal/kalla"
)

// Names of the hidden identity columns.
const (
	leftRid  = "__kalla_lrid" // left record of a match output row
	rightRid = "__kalla_rrid" // right record of a match output row
)

// sideNames are the names under which one side is visible to the match SQL,
// and its primary-key columns, which are carried into the match output so
// matched pairs need no join back to the sources.
type sideNames struct {
	view  string // left_src or right_src
	alias string // the recipe's alias
	pk    []string
}

// rid is the hidden row-id column of the side's view. Each side has its own
// name so that a NATURAL JOIN or USING never joins on it.
func (n sideNames) rid() string { return "__kalla_" + strings.TrimSuffix(n.view, "_src") + "_rid" }

func (n sideNames) is(table string) bool {
	return strings.EqualFold(table, n.view) || strings.EqualFold(table, n.alias)
}

// withIdentity returns the match SQL with the left and right row ids added to
// its select list, so each output row says which records it pairs. It uses
// DuckDB's own parser, so any SQL DuckDB accepts is read the same way DuckDB
// reads it. Errors are EINVALID and say what to change: a syntax error (with
// its line and column), or a shape whose rows cannot be traced to one left
// and one right record.
func (e *Engine) withIdentity(ctx context.Context, matchSQL string, left, right sideNames) (identity, error) {
	var raw string
	if err := e.conn.QueryRowContext(ctx, "SELECT CAST(json_serialize_sql(CAST(? AS VARCHAR)) AS VARCHAR)", matchSQL).Scan(&raw); err != nil {
		return identity{}, fmt.Errorf("parse match sql: %w", err)
	}
	dec := json.NewDecoder(bytes.NewReader([]byte(raw)))
	dec.UseNumber()
	var tree map[string]any
	if err := dec.Decode(&tree); err != nil {
		return identity{}, fmt.Errorf("read parsed match sql: %w", err)
	}
	if isErr, _ := tree["error"].(bool); isErr {
		msg, _ := tree["error_message"].(string)
		if strings.HasPrefix(msg, "Only SELECT statements") {
			// DuckDB serialises SELECTs only: anything else in the text
			// (COPY, ATTACH, SET, PRAGMA, INSTALL, a second statement).
			return identity{}, kalla.Errorf(kalla.EINVALID, "match_sql must be exactly one SELECT statement: COPY, ATTACH, SET, PRAGMA, INSTALL, LOAD and any statement after it are not allowed")
		}
		if p, err := strconv.Atoi(fmt.Sprint(tree["position"])); err == nil {
			line, col := lineCol(matchSQL, p)
			return identity{}, kalla.Errorf(kalla.EINVALID, "match_sql: %s (line %d, column %d)", msg, line, col)
		}
		return identity{}, kalla.Errorf(kalla.EINVALID, "match_sql: %s", msg)
	}
	stmts, _ := tree["statements"].([]any)
	if len(stmts) != 1 {
		return identity{}, kalla.Errorf(kalla.EINVALID, "match_sql must be exactly one SELECT statement, found %d statements", len(stmts))
	}
	if err := checkReads(tree, left, right); err != nil {
		return identity{}, err
	}
	node, _ := stmts[0].(map[string]any)["node"].(map[string]any)
	if node == nil || node["type"] != "SELECT_NODE" {
		kind := "a statement that is not a plain SELECT"
		if node != nil {
			kind = fmt.Sprint(node["type"])
		}
		return identity{}, kalla.Errorf(kalla.EINVALID, "match_sql: Kalla cannot tell which records each output row pairs in %s (a UNION, INTERSECT or EXCEPT at the top level): write one SELECT ... FROM left_src l JOIN right_src r ON ..., and put alternatives in the ON condition with OR", kind)
	}
	if g, _ := node["group_expressions"].([]any); len(g) > 0 {
		return identity{}, kalla.Errorf(kalla.EINVALID, "match_sql: the top-level SELECT has GROUP BY, so an output row stands for a group, not for one left and one right record: aggregate in a subquery and join it back to left_src and right_src")
	}
	ctes := map[string]bool{}
	if cm, _ := node["cte_map"].(map[string]any); cm != nil {
		if m, _ := cm["map"].([]any); m != nil {
			for _, entry := range m {
				if kv, _ := entry.(map[string]any); kv != nil {
					if k, _ := kv["key"].(string); k != "" {
						ctes[strings.ToLower(k)] = true
					}
				}
			}
		}
	}
	var lrefs, rrefs []string
	from, _ := node["from_table"].(map[string]any)
	walkFrom(from, ctes, func(name, ref string) {
		switch {
		case left.is(name):
			lrefs = append(lrefs, ref)
		case right.is(name):
			rrefs = append(rrefs, ref)
		}
	}, nil)
	for _, s := range []struct {
		side  string
		names sideNames
		refs  []string
	}{{"left", left, lrefs}, {"right", right, rrefs}} {
		switch len(s.refs) {
		case 1:
		case 0:
			return identity{}, kalla.Errorf(kalla.EINVALID, "match_sql: %s (or %s) must appear in the top-level FROM clause, so that each output row names one %s record; a reference only inside a subquery or CTE cannot be traced", s.names.view, s.names.alias, s.side)
		default:
			return identity{}, kalla.Errorf(kalla.EINVALID, "match_sql: %s appears %d times in the top-level FROM clause (%s), so Kalla cannot tell which occurrence is the matched %s record: join it once, and use a subquery for any other use", s.names.view, len(s.refs), strings.Join(s.refs, ", "), s.side)
		}
	}
	list, _ := node["select_list"].([]any)
	id := identity{left: keyItems(list, lrefs[0], left.pk), right: keyItems(list, rrefs[0], right.pk)}
	list = append(list, columnRef(lrefs[0], left.rid(), leftRid), columnRef(rrefs[0], right.rid(), rightRid))
	for i, k := range left.pk {
		if id.left[i] < 0 {
			list = append(list, columnRef(lrefs[0], k, pkCol("l", i)))
		}
	}
	for i, k := range right.pk {
		if id.right[i] < 0 {
			list = append(list, columnRef(rrefs[0], k, pkCol("r", i)))
		}
	}
	node["select_list"] = list
	out, err := json.Marshal(tree)
	if err != nil {
		return identity{}, fmt.Errorf("encode match sql: %w", err)
	}
	if err := e.conn.QueryRowContext(ctx, "SELECT json_deserialize_sql(CAST(? AS JSON))", string(out)).Scan(&id.sql); err != nil {
		return identity{}, fmt.Errorf("render match sql: %w", err)
	}
	return id, nil
}

// walkFrom visits a parsed FROM clause: table with the name and reference
// (its alias, else its name) of each base table that is neither a CTE nor
// schema-qualified, and join (when not nil) with each join node, after
// its two sides.
func walkFrom(t map[string]any, ctes map[string]bool, table func(name, ref string), join func(j map[string]any)) {
	if t == nil {
		return
	}
	switch t["type"] {
	case "JOIN":
		l, _ := t["left"].(map[string]any)
		r, _ := t["right"].(map[string]any)
		walkFrom(l, ctes, table, join)
		walkFrom(r, ctes, table, join)
		if join != nil {
			join(t)
		}
	case "BASE_TABLE":
		name, _ := t["table_name"].(string)
		schema, _ := t["schema_name"].(string)
		if schema != "" || ctes[strings.ToLower(name)] {
			return
		}
		ref, _ := t["alias"].(string)
		if ref == "" {
			ref = name
		}
		table(name, ref)
	}
}

// identity is the match SQL rewritten to say which records each output row
// pairs.
type identity struct {
	sql string
	// left and right hold, for each primary-key column of a side, the
	// position in the SQL's own select list of an item that is that very
	// column, or -1 when the key is carried in an added pkCol column. A
	// key the SQL already selects is not materialised twice.
	left, right []int
}

// keyItems finds, for each key column, a select-list item that is a plain
// reference to that column of the side's one FROM entry (ref). A list with
// a star is left alone: its items do not map one to one to output columns.
func keyItems(list []any, ref string, pk []string) []int {
	at := make([]int, len(pk))
	for i := range at {
		at[i] = -1
	}
	for _, it := range list {
		if c, _ := it.(map[string]any); c == nil || c["class"] == "STAR" {
			return at
		}
	}
	for j, it := range list {
		c := it.(map[string]any)
		if c["class"] != "COLUMN_REF" {
			continue
		}
		names, _ := c["column_names"].([]any)
		if len(names) != 2 || !strings.EqualFold(fmt.Sprint(names[0]), ref) {
			continue
		}
		for i, k := range pk {
			if at[i] < 0 && strings.EqualFold(fmt.Sprint(names[1]), k) {
				at[i] = j
			}
		}
	}
	return at
}

// pkCol names the match output column carrying key column i of a side.
func pkCol(side string, i int) string { return fmt.Sprintf("__kalla_%spk%d", side, i) }

func columnRef(table, column, alias string) map[string]any {
	return map[string]any{
		"class":          "COLUMN_REF",
		"type":           "COLUMN_REF",
		"alias":          alias,
		"query_location": json.Number("18446744073709551615"),
		"column_names":   []any{table, column},
	}
}

// lineCol turns a byte offset into a 1-based line and column.
func lineCol(s string, pos int) (int, int) {
	if pos > len(s) {
		pos = len(s)
	}
	line := 1 + strings.Count(s[:pos], "\n")
	col := pos - strings.LastIndex(s[:pos], "\n")
	return line, col
}
