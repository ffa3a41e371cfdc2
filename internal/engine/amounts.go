package engine

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	"github.com/kalla-recon/kalla/internal/kalla"
	"github.com/kalla-recon/kalla/internal/rules"
)

// amounts computes the summary's money totals (kalla.Amounts) once the
// outputs are written: per side one scan of the staging table summing the
// amount of all records and of the open ones, grouped by currency. The open
// records are told the way the unmatched file told them (the rules'
// reasons table, or the paired row ids' bitstring the write left in this
// connection), so the totals agree with the files. nil when Kalla cannot
// tell which columns are amounts.
func (e *Engine) amounts(ctx context.Context, rec *kalla.Recipe, m *matchResult, left, right *side) (*kalla.Amounts, error) {
	spec, ok := kalla.AmountColumns(rec)
	if !ok {
		return nil, nil
	}
	t0 := time.Now()
	defer func() { e.log.Debug("amounts summed", "took", time.Since(t0)) }()
	var sums []kalla.AmountSum
	for i, s := range []*side{left, right} {
		amt, cur, ok, err := kalla.AmountExprs(spec, i, "s", s.cols, qi, "VARCHAR")
		if err != nil {
			return nil, recipeErr(err)
		}
		if !ok {
			return nil, nil
		}
		rid := leftRid
		if s == right {
			rid = rightRid
		}
		var open, join string
		switch {
		case m.plan != nil && positional(s):
			// The reasons' row ids, as the unmatched file picks its
			// records: a bit per row instead of a semi join hashing
			// every open record's id.
			set, err := e.makeRowSet(ctx, s, "__kalla_open_"+s.name, "SELECT rid FROM "+qi(rulesReasonTable(s)))
			if err != nil {
				return nil, fmt.Errorf("collect open %s records: %w", s.name, err)
			}
			join, open = set.join("s"), set.in("s")
		case m.plan != nil:
			open = fmt.Sprintf("s.rowid IN (SELECT rid FROM %s)", qi(rulesReasonTable(s)))
		case fitsRowSet(s):
			// The set of paired row ids the unmatched file made on this
			// connection (unmatchedQuery).
			set := pairedSet(s)
			join, open = set.join("s"), set.notIn("s")
		default:
			open = fmt.Sprintf("s.rowid NOT IN (SELECT %s FROM %s WHERE %s IS NOT NULL AND %s IS NOT NULL)", rid, qi(m.table), leftRid, rightRid)
		}
		sel, group := "NULL", ""
		if cur != "" {
			sel, group = cur, " GROUP BY 1"
		}
		q := fmt.Sprintf("SELECT %s, CAST(sum(%s) AS VARCHAR), CAST(sum(%s) FILTER (WHERE %s) AS VARCHAR) FROM %s s%s%s", sel, amt, amt, open, qi(s.table), join, group)
		rows, err := e.conn.QueryContext(ctx, q)
		if err != nil {
			return nil, fmt.Errorf("sum %s amounts: %w", s.name, err)
		}
		for rows.Next() {
			var c, all, opn sql.NullString
			if err := rows.Scan(&c, &all, &opn); err != nil {
				rows.Close()
				return nil, fmt.Errorf("sum %s amounts: %w", s.name, err)
			}
			var cp *string
			if c.Valid {
				cp = &c.String
			}
			sums = append(sums, kalla.AmountSum{Side: i, Currency: cp, Sum: all.String}, kalla.AmountSum{Side: i, Currency: cp, Open: true, Sum: opn.String})
		}
		if err := rows.Close(); err != nil {
			return nil, fmt.Errorf("sum %s amounts: %w", s.name, err)
		}
		if err := rows.Err(); err != nil {
			return nil, fmt.Errorf("sum %s amounts: %w", s.name, err)
		}
	}
	return kalla.MakeAmounts(spec, sums)
}

// rowSet is a set of a side's row ids as a scan of the side tests it: a
// bitstring in a variable of the connection that made it, or, for a side
// above rules.PiecesAbove rows, a table of pieces (rules.PiecesSQL) joined to
// the rows by row group. A join keeps no
// order: a query reading the side in row-id order through a set in pieces
// must sort (the unmatched files do).
type rowSet struct {
	name   string
	pieces bool
}

// fitsRowSet reports whether side s's row ids can be held as a rowSet:
// there are few enough for a bitstring (DuckDB's bitstring_agg takes up to
// 2^31 - 1 bits), whether the set is then kept in one or in pieces.
func fitsRowSet(s *side) bool { return rules.DuckDB.IDSet("rid", s.ids) != "" }

// makeRowSet makes set name of side s (fitsRowSet) from src, a query of
// one column of row ids, on the engine's connection.
func (e *Engine) makeRowSet(ctx context.Context, s *side, name, src string) (rowSet, error) {
	set := rowSet{name: name, pieces: s.ids > rules.PiecesAbove}
	q := rules.PiecesSQL(name, src)
	if !set.pieces {
		q = rules.DuckDB.SetVariable(name, fmt.Sprintf("SELECT %s FROM (%s) t(x)", rules.DuckDB.IDSet("x", s.ids), src))
	}
	_, err := e.exec(ctx, q)
	return set, err
}

// join is what the FROM clause of a scan of the side under alias a adds
// to test the set ("" for a variable).
func (r rowSet) join(a string) string {
	if !r.pieces {
		return ""
	}
	return rules.PieceJoin(r.name, a+".rowid")
}

// notIn is true for a row of alias a whose row id is not in the set.
func (r rowSet) notIn(a string) string {
	if !r.pieces {
		return rules.DuckDB.IDNotIn(rules.DuckDB.Variable(r.name), a+".rowid")
	}
	return rules.PieceBit(a+".rowid") + " = 0"
}

// in is true for a row of alias a whose row id is in the set.
func (r rowSet) in(a string) string {
	if !r.pieces {
		return "NOT (" + rules.DuckDB.IDNotIn(rules.DuckDB.Variable(r.name), a+".rowid") + ")"
	}
	return rules.PieceBit(a+".rowid") + " = 1"
}

// pairedSet is the set of side s's paired row ids that a SQL recipe's
// unmatched file made (unmatchedQuery).
func pairedSet(s *side) rowSet {
	return rowSet{name: "__kalla_paired_" + s.name, pieces: s.ids > rules.PiecesAbove}
}
