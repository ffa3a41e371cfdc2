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
		var open string
		switch {
		case m.plan != nil && positional(s):
			// The reasons' row ids as a bitstring, as the unmatched file
			// picks its records: a bit per row instead of a semi join
			// hashing every open record's id.
			name := "__kalla_open_" + s.name
			if _, err := e.exec(ctx, rules.DuckDB.SetVariable(name, "SELECT "+rules.DuckDB.IDSet("rid", s.ids)+" FROM "+qi(rulesReasonTable(s)))); err != nil {
				return nil, fmt.Errorf("collect open %s records: %w", s.name, err)
			}
			open = "NOT (" + rules.DuckDB.IDNotIn(rules.DuckDB.Variable(name), "s.rowid") + ")"
		case m.plan != nil:
			open = fmt.Sprintf("s.rowid IN (SELECT rid FROM %s)", qi(rulesReasonTable(s)))
		case rules.DuckDB.IDSet(rid, s.ids) != "":
			open = rules.DuckDB.IDNotIn(rules.DuckDB.Variable("__kalla_paired_"+s.name), "s.rowid")
		default:
			open = fmt.Sprintf("s.rowid NOT IN (SELECT %s FROM %s WHERE %s IS NOT NULL AND %s IS NOT NULL)", rid, qi(m.table), leftRid, rightRid)
		}
		sel, group := "NULL", ""
		if cur != "" {
			sel, group = cur, " GROUP BY 1"
		}
		q := fmt.Sprintf("SELECT %s, CAST(sum(%s) AS VARCHAR), CAST(sum(%s) FILTER (WHERE %s) AS VARCHAR) FROM %s s%s", sel, amt, amt, open, qi(s.table), group)
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
