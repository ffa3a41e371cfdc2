package spark

import (
	"context"
	"fmt"

	"github.com/kalla-recon/kalla/internal/engine"
	"github.com/kalla-recon/kalla/internal/kalla"
)

// amounts computes the summary's money totals (kalla.Amounts) exactly as
// the DuckDB engine does: per side the amount of all records and of the
// open ones (those the unmatched output holds: no pair names their row),
// grouped by currency, summed by Spark as exact decimals and combined by
// kalla.MakeAmounts, so both engines give the same figures. nil when Kalla
// cannot tell which columns are amounts.
func (r *run) amounts(ctx context.Context, rec *kalla.Recipe, left, right *side) (*kalla.Amounts, error) {
	spec, ok := kalla.AmountColumns(rec)
	if !ok {
		return nil, nil
	}
	var sums []kalla.AmountSum
	for i, s := range []*side{left, right} {
		amt, cur, ok, err := kalla.AmountExprs(spec, i, "s", s.cols, qi, "STRING")
		if err != nil {
			return nil, err
		}
		if !ok {
			return nil, nil
		}
		rid := []string{engine.LeftRidColumn, engine.RightRidColumn}[i]
		sel, group := "CAST(NULL AS STRING)", ""
		if cur != "" {
			sel, group = cur, " GROUP BY 1"
		}
		q := fmt.Sprintf("SELECT %s, CAST(sum(%s) AS STRING), CAST(sum(CASE WHEN m.id IS NULL THEN %s END) AS STRING) FROM %s s LEFT JOIN (SELECT DISTINCT %s AS id FROM %s) m ON s.%s = m.id%s",
			sel, amt, amt, qi(s.table), rid, qi(matchTable), ridCol, group)
		df, err := r.sql(ctx, q)
		if err != nil {
			return nil, fmt.Errorf("sum %s amounts: %w", s.name, err)
		}
		rows, err := r.collect(ctx, df, "amounts")
		if err != nil {
			return nil, fmt.Errorf("sum %s amounts: %w", s.name, err)
		}
		for _, row := range rows {
			v := row.Values()
			text := func(x any) string {
				if x == nil {
					return ""
				}
				return fmt.Sprint(x)
			}
			var cp *string
			if v[0] != nil {
				c := text(v[0])
				cp = &c
			}
			sums = append(sums, kalla.AmountSum{Side: i, Currency: cp, Sum: text(v[1])}, kalla.AmountSum{Side: i, Currency: cp, Open: true, Sum: text(v[2])})
		}
	}
	return kalla.MakeAmounts(spec, sums)
}
