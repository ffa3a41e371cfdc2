package spark

import (
	"context"
	"fmt"
	"strings"

	"github.com/kalla-recon/kalla/internal/engine"
	"github.com/kalla-recon/kalla/internal/kalla"
	"github.com/kalla-recon/kalla/internal/rules"
)

// matchResult is the match table and what was counted on it.
type matchResult struct {
	pairs, repeats, outerRows int64
	leftRecords, rightRecords int64
	matchedQuery              string
	// plan is set for a rules recipe: report is what it found, breaks the
	// differences it listed, unmatched the queries of both sides'
	// unmatched records with their reasons.
	plan      *rules.Plan
	report    *kalla.RulesReport
	breaks    int64
	unmatched [2]string
}

const (
	matchRaw   = "__kalla_match_raw"
	matchTable = "__kalla_match"
)

// userSQL prepares the recipe's match SQL for Spark. DuckDB's parser checks
// and rewrites it exactly as on DuckDB (engine.RewriteMatchSQL: one SELECT,
// reading left_src/right_src or the aliases and nothing else, row ids and
// keys appended to the select list); then its text is carried over to Spark
// SQL token by token: string literals re-escaped for Spark (which reads
// backslash escapes), tolerance_match expanded into exact-decimal SQL, and
// functions that reach outside the data (Java reflection, input file
// names) refused.
func userSQL(ctx context.Context, matchSQL string, left, right *side) (engine.MatchIdentity, error) {
	id, err := engine.RewriteMatchSQL(ctx, matchSQL, left.spec.Alias, right.spec.Alias, left.pk, right.pk)
	if err != nil {
		return id, err
	}
	out, err := toSpark(id.SQL)
	if err != nil {
		return id, err
	}
	id.SQL = out
	return id, nil
}

// refused are Spark SQL functions user SQL may not call: they run Java
// methods or reveal where the data came from.
var refused = map[string]bool{
	"reflect": true, "java_method": true, "try_reflect": true,
	"input_file_name": true, "input_file_block_start": true, "input_file_block_length": true,
	"read_files": true, "identifier": true, "session_user": true, "current_user": true, "user": true,
}

// toSpark carries DuckDB-rendered SQL over to Spark SQL (see userSQL).
// Double-quoted identifiers stay as they are: the session reads them as
// identifiers (spark.sql.ansi.doubleQuotedIdentifiers).
func toSpark(s string) (string, error) {
	var b strings.Builder
	for i := 0; i < len(s); {
		c := s[i]
		switch {
		case c == '\'':
			j, text, err := readQuoted(s, i)
			if err != nil {
				return "", err
			}
			b.WriteString(sparkString(text))
			i = j
		case c == '"':
			j, _, err := readQuoted(s, i)
			if err != nil {
				return "", err
			}
			b.WriteString(s[i:j])
			i = j
		case c == '`':
			return "", kalla.Errorf(kalla.EINVALID, "match_sql: backquoted names are not allowed; quote names with double quotes")
		case c == '-' && i+1 < len(s) && s[i+1] == '-', c == '/' && i+1 < len(s) && s[i+1] == '*':
			return "", kalla.Errorf(kalla.EINVALID, "match_sql: comments in the rewritten SQL are not supported on Spark")
		case isIdentStart(c):
			j := i
			for j < len(s) && isIdentPart(s[j]) {
				j++
			}
			word := s[i:j]
			k := j
			for k < len(s) && (s[k] == ' ' || s[k] == '\n' || s[k] == '\t') {
				k++
			}
			isCall := k < len(s) && s[k] == '('
			lw := strings.ToLower(word)
			if isCall && refused[lw] {
				return "", kalla.Errorf(kalla.EINVALID, "match_sql: the function %s is not allowed: match SQL may only read left_src and right_src", word)
			}
			if isCall && lw == "count_star" {
				// DuckDB renders count(*) as count_star(), which Spark
				// does not know.
				end, args, err := callArgs(s, k)
				if err != nil {
					return "", err
				}
				if len(args) == 0 || len(args) == 1 && strings.TrimSpace(args[0]) == "" {
					b.WriteString("count(*)")
					i = end
					continue
				}
			}
			if isCall && lw == "tolerance_match" {
				end, args, err := callArgs(s, k)
				if err != nil {
					return "", err
				}
				if len(args) != 3 {
					return "", kalla.Errorf(kalla.EINVALID, "match_sql: tolerance_match takes 3 arguments (a, b, tolerance), got %d", len(args))
				}
				conv := make([]string, 3)
				for n, a := range args {
					if conv[n], err = toSpark(a); err != nil {
						return "", err
					}
					conv[n] = exact(conv[n])
				}
				fmt.Fprintf(&b, "(%[1]s >= %[2]s - %[3]s AND %[1]s <= %[2]s + %[3]s)", conv[0], conv[1], conv[2])
				i = end
				continue
			}
			b.WriteString(word)
			i = j
		default:
			b.WriteByte(c)
			i++
		}
	}
	return b.String(), nil
}

// exact brings x to DECIMAL(37,18), as DuckDB's tolerance_match brings it to
// DECIMAL(38,18): binary floats are rounded to 10 decimals first. One digit
// less than DuckDB's so that b ± t stays DECIMAL(38,18) in Spark, exactly.
func exact(x string) string {
	return fmt.Sprintf("CAST(CASE WHEN typeof(%[1]s) IN ('double', 'float') THEN CAST(CAST(%[1]s AS DECIMAL(38,10)) AS DECIMAL(37,18)) ELSE CAST(%[1]s AS DECIMAL(37,18)) END AS DECIMAL(37,18))", "("+x+")")
}

func isIdentStart(c byte) bool {
	return c == '_' || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c >= 0x80
}

func isIdentPart(c byte) bool { return isIdentStart(c) || (c >= '0' && c <= '9') || c == '$' }

// readQuoted reads the quoted text starting at s[i] (its quote doubled
// inside) and returns the index after it and the unquoted text.
func readQuoted(s string, i int) (int, string, error) {
	q := s[i]
	var b strings.Builder
	for j := i + 1; j < len(s); j++ {
		if s[j] == q {
			if j+1 < len(s) && s[j+1] == q {
				b.WriteByte(q)
				j++
				continue
			}
			return j + 1, b.String(), nil
		}
		b.WriteByte(s[j])
	}
	return 0, "", kalla.Errorf(kalla.EINVALID, "match_sql: unterminated quoted text")
}

// callArgs splits the arguments of the call whose '(' is at s[open].
func callArgs(s string, open int) (int, []string, error) {
	depth := 0
	start := open + 1
	var args []string
	for j := open; j < len(s); j++ {
		switch s[j] {
		case '\'', '"':
			k, _, err := readQuoted(s, j)
			if err != nil {
				return 0, nil, err
			}
			j = k - 1
		case '(':
			depth++
		case ')':
			depth--
			if depth == 0 {
				args = append(args, strings.TrimSpace(s[start:j]))
				return j + 1, args, nil
			}
		case ',':
			if depth == 1 {
				args = append(args, strings.TrimSpace(s[start:j]))
				start = j + 1
			}
		}
	}
	return 0, nil, kalla.Errorf(kalla.EINVALID, "match_sql: unbalanced parentheses")
}

// match runs the match SQL over the staged sides into a cached table of
// distinct pairs and counts it.
func (r *run) match(ctx context.Context, matchSQL string, left, right *side) (*matchResult, error) {
	id, err := userSQL(ctx, matchSQL, left, right)
	if err != nil {
		return nil, recipeErr(ctx, err)
	}
	df, err := r.sql(ctx, id.SQL)
	if err != nil {
		return nil, recipeErr(ctx, matchError(err))
	}
	st, err := df.Schema(ctx)
	if err != nil {
		return nil, recipeErr(ctx, matchError(sparkError(err)))
	}
	lr, rr := engine.LeftRidColumn, engine.RightRidColumn
	// Repeated output names (SELECT l.*, r.*) get DuckDB's suffixes
	// (id, id_1, ...): Spark would refuse to store them.
	var userCols, all []string
	seen := map[string]bool{}
	for _, f := range st.Fields {
		name := f.Name
		for n := 1; seen[strings.ToLower(name)]; n++ {
			name = fmt.Sprintf("%s_%d", f.Name, n)
		}
		seen[strings.ToLower(name)] = true
		all = append(all, qi(name))
		if !strings.HasPrefix(name, "__kalla_") {
			userCols = append(userCols, name)
		}
	}
	if err := r.exec(ctx, fmt.Sprintf("CACHE TABLE %s AS SELECT * FROM (%s) AS __kalla_q(%s)", qi(matchRaw), id.SQL, strings.Join(all, ", "))); err != nil {
		return nil, recipeErr(ctx, matchError(err))
	}
	r.created = append(r.created, matchRaw)
	// A column of a side's untyped NULLs (side.empty) has no type Parquet
	// can store: it is written as INTEGER, as DuckDB writes it.
	var void map[string]bool
	if len(left.empty)+len(right.empty) > 0 {
		cols, err := r.describe(ctx, matchRaw)
		if err != nil {
			return nil, err
		}
		void = map[string]bool{}
		for _, c := range cols {
			if c.DataType == "VOID" {
				void[c.Name] = true
			}
		}
	}
	both := fmt.Sprintf("%s IS NOT NULL AND %s IS NOT NULL", lr, rr)
	// One row per pair: rows repeating a pair are dropped (which of the
	// repeats is kept is Spark's choice when they differ).
	q := fmt.Sprintf(`CACHE LAZY TABLE %s AS SELECT %s FROM (SELECT *, row_number() OVER (PARTITION BY %s, %s ORDER BY %s) AS __kalla_n FROM %s WHERE %s) WHERE __kalla_n = 1`,
		qi(matchTable), strings.Join(all, ", "), lr, rr, lr, qi(matchRaw), both)
	if err := r.exec(ctx, q); err != nil {
		return nil, matchError(err)
	}
	r.created = append(r.created, matchTable)
	row, err := r.one(ctx, fmt.Sprintf(`SELECT (SELECT count_if(NOT (%[1]s)) FROM %[2]s), (SELECT count_if(%[1]s) FROM %[2]s),
  count(*), count(DISTINCT %[3]s), count(DISTINCT %[4]s) FROM %[5]s`, both, qi(matchRaw), lr, rr, qi(matchTable)))
	if err != nil {
		return nil, fmt.Errorf("count pairs: %w", err)
	}
	m := &matchResult{outerRows: toInt64(row[0])}
	m.pairs, m.leftRecords, m.rightRecords = toInt64(row[2]), toInt64(row[3]), toInt64(row[4])
	m.repeats = toInt64(row[1]) - m.pairs
	if m.matchedQuery, err = matchedQuery(userCols, void, id, left, right, [][2]string{{"'match_sql'", "_rule"}, {"CAST(1.0 AS DOUBLE)", "_score"}}); err != nil {
		return nil, err
	}
	return m, nil
}

// matchError is an error of the user's SQL on Spark.
func matchError(err error) error {
	msg := err.Error()
	// The identity columns Kalla appends (__kalla_*) are plain columns: an
	// aggregate over the pairs leaves them without a group (Spark names
	// them, or says MISSING_GROUP_BY when the SQL has no GROUP BY).
	if strings.Contains(msg, "__kalla_") || strings.Contains(msg, "[MISSING_GROUP_BY]") || strings.Contains(msg, "[MISSING_AGGREGATION]") {
		return kalla.Errorf(kalla.EINVALID, "match_sql: Kalla cannot tell which records each output row pairs on Spark (%s): select plain rows from left_src and right_src without aggregating them", msg)
	}
	return kalla.WrapError(kalla.EINVALID, err, "match_sql (Spark SQL)")
}

// matchedQuery selects matched pairs as DuckDB writes them: the SQL's own
// columns, each record's key and row number, then tail (expression, name:
// the rule and the score, and a rules match's status), ordered by left row
// then right row. Columns named in void are untyped NULLs, written as
// INTEGER.
func matchedQuery(userCols []string, void map[string]bool, id engine.MatchIdentity, left, right *side, tail [][2]string) (string, error) {
	sel := make([]string, 0, len(userCols)+8)
	taken := map[string]bool{}
	col := func(c string) string {
		if void[c] {
			return "CAST(m." + qi(c) + " AS INT)"
		}
		return "m." + qi(c)
	}
	for _, c := range userCols {
		x := col(c)
		if void[c] {
			x += " AS " + qi(c)
		}
		sel = append(sel, x)
		taken[strings.ToLower(c)] = true
	}
	add := func(expr, name string) error {
		if taken[strings.ToLower(name)] {
			return kalla.Errorf(kalla.EINVALID, "match_sql: output column %q clashes with a column Kalla adds to matched pairs; rename it with AS", name)
		}
		taken[strings.ToLower(name)] = true
		sel = append(sel, expr+" AS "+qi(name))
		return nil
	}
	keyCol := func(at []int, side string, i int) string {
		if at[i] >= 0 && at[i] < len(userCols) {
			return userCols[at[i]]
		}
		return engine.KeyColumn(side, i)
	}
	for i, k := range left.pk {
		if err := add(col(keyCol(id.LeftKeys, "l", i)), "_left_"+k); err != nil {
			return "", err
		}
	}
	for i, k := range right.pk {
		if err := add(col(keyCol(id.RightKeys, "r", i)), "_right_"+k); err != nil {
			return "", err
		}
	}
	for _, x := range append([][2]string{
		{"m." + engine.LeftRidColumn + " + 1", "_left_row"},
		{"m." + engine.RightRidColumn + " + 1", "_right_row"},
	}, tail...) {
		if err := add(x[0], x[1]); err != nil {
			return "", err
		}
	}
	return fmt.Sprintf("SELECT %s FROM %s m ORDER BY m.%s, m.%s", strings.Join(sel, ", "), qi(matchTable), engine.LeftRidColumn, engine.RightRidColumn), nil
}

// unmatchedQuery selects a side's records no pair uses, full rows in source
// order.
func unmatchedQuery(s *side, m *matchResult, rid string) string {
	return pairedQuery(s, rid, "LEFT ANTI", "")
}

// pairedQuery selects the side's original rows that the match's pairs use
// (join LEFT SEMI) or do not use (LEFT ANTI), in source order, with extra
// columns after them.
func pairedQuery(s *side, rid, join, extra string) string {
	cols := make([]string, len(s.cols))
	for i, c := range s.cols {
		cols[i] = "s." + qi(c.Name)
	}
	return fmt.Sprintf("SELECT %s%s FROM %s s %s JOIN (SELECT DISTINCT %s FROM %s) m ON s.%s = m.%s ORDER BY s.%s",
		strings.Join(cols, ", "), extra, qi(s.table), join, rid, qi(matchTable), ridCol, rid, ridCol)
}

// matchedRecordsQuery selects the side's records that some pair uses,
// whole, with their row number (row id + 1) as column row, in source
// order: what DuckDB writes as matched_left/matched_right. Errors:
// EINVALID when the source has a column of that name.
func matchedRecordsQuery(s *side, rid, row string) (string, error) {
	if i := kalla.FindColumn(s.cols, row); i >= 0 {
		return "", kalla.Errorf(kalla.EINVALID, "source %s: column %q is the name Kalla gives the row number of a matched record; rename it to write the matched records", s.spec.Alias, s.cols[i].Name)
	}
	return pairedQuery(s, rid, "LEFT SEMI", fmt.Sprintf(", s.%s + 1 AS %s", ridCol, qi(row))), nil
}
