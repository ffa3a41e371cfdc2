package file

import (
	"context"
	"fmt"
	"strings"

	"github.com/kalla-recon/kalla/internal/dialect"
	"github.com/kalla-recon/kalla/internal/kalla"
)

// declaredExact is a column the recipe's schema gives an exact number type
// (an integer or a DECIMAL). DuckDB converts to such a type by rounding,
// text and DOUBLE alike ("10.005" to DECIMAL(12,2) is 10.01, "1.5" to
// BIGINT is 2), so the values are proven to fit before the conversion and a
// value that would change is refused, naming it.
type declaredExact struct {
	name, typ string
	scale     int
}

// exactTextSQL is true for a number written in text (t, trimmed) that
// converts to a type keeping scale decimals without rounding: no exponent,
// and no more decimals than scale once trailing zeros are dropped. Text
// that is no number at all is left to the conversion's own error.
func exactTextSQL(t string, scale int) string {
	return fmt.Sprintf("(NOT (contains(%[1]s, 'e') OR contains(%[1]s, 'E')) AND (strpos(%[1]s, '.') = 0 OR strlen(rtrim(%[1]s, '0')) - strpos(%[1]s, '.') <= %[2]d))", t, scale)
}

// convertDeclared converts each declared column of table to its type after
// proving that no value changes. orig gives a column's current type when it
// is not text (a Parquet column): its values must then survive the round
// trip through the declared type. A column missing from orig, or VARCHAR,
// holds text (a CSV column, a Parquet string) and is checked as written.
func (s *Source) convertDeclared(ctx context.Context, x execer, table string, cols []declaredExact, orig map[string]string) error {
	if len(cols) == 0 {
		return nil
	}
	// One scan proves every column: count, first row and first value of
	// the values that would change.
	var sel []string
	for _, d := range cols {
		c := dialect.DuckDB.QuoteIdent(d.name)
		var bad string
		if o := orig[d.name]; o == "" || strings.EqualFold(o, "VARCHAR") {
			bad = "NOT " + exactTextSQL("trim("+c+")", d.scale)
		} else {
			bad = fmt.Sprintf("TRY_CAST(%[1]s AS %[2]s) IS NOT NULL AND CAST(TRY_CAST(%[1]s AS %[2]s) AS %[3]s) <> %[1]s", c, d.typ, o)
		}
		f := fmt.Sprintf(" FILTER (WHERE %s IS NOT NULL AND %s)", c, bad)
		sel = append(sel, "count(*)"+f, "coalesce(min(rowid)"+f+" + 1, 0)", fmt.Sprintf("coalesce(arg_min(CAST(%s AS VARCHAR), rowid)%s, '')", c, f))
	}
	n, row, val := make([]int64, len(cols)), make([]int64, len(cols)), make([]string, len(cols))
	var dest []any
	for i := range cols {
		dest = append(dest, &n[i], &row[i], &val[i])
	}
	if err := x.QueryRowContext(ctx, "SELECT "+strings.Join(sel, ", ")+" FROM "+table).Scan(dest...); err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return fmt.Errorf("check declared types: %w", err)
	}
	for i, d := range cols {
		if n[i] > 0 {
			return kalla.Errorf(kalla.EINVALID, "source %s: %s", s.name(), kalla.DeclaredLoss(d.name, d.typ, d.scale, n[i], val[i], row[i]))
		}
	}
	for _, d := range cols {
		q := fmt.Sprintf("ALTER TABLE %s ALTER %s TYPE %s", table, dialect.DuckDB.QuoteIdent(d.name), d.typ)
		if _, err := x.ExecContext(ctx, q); err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			return kalla.WrapError(kalla.EINVALID, cleanDuckErr(err), "source %s: column %q is declared %s but a value does not convert to it", s.name(), d.name, d.typ)
		}
	}
	return nil
}
