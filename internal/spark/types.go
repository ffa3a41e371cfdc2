package spark

import (
	"context"
	"fmt"
	"strings"

	"github.com/kalla-recon/kalla/internal/kalla"
)

// Patterns of the text forms DuckDB's CSV reader (internal/file) types
// without being told: booleans, numbers, ISO dates and timestamps.
const (
	// The words DuckDB's sniffer reads as booleans (not y, n, on, off).
	reBool = `^(?i)(t|f|true|false|yes|no)$`
	// A number (kalla.NumberPattern), and one written with an exponent.
	reNumber = "^(?:" + kalla.NumberPattern + ")$"
	reExpo   = `[eE]`
	// ISO order, with one or two digits of month, day and time, as
	// DuckDB's sniffer reads them (2026-1-5, 2026-01-05 1:02:03).
	reDate = `^[0-9]{4}-[0-9]{1,2}-[0-9]{1,2}$`
	reTS   = `^[0-9]{4}-[0-9]{1,2}-[0-9]{1,2}[ T][0-9]{1,2}:[0-9]{1,2}(:[0-9]{1,2}(\.[0-9]{1,6})?)?$`
	// Leading zeros, tested on the trimmed value ("007", "-0", not "0.5").
	reZeros = `^[+-]?0`
)

// csvTypes chooses each CSV column's type by the rules internal/file applies
// on DuckDB, measured by Spark over every value: BOOLEAN, BIGINT when no
// value has a fraction and 18 digits fit, DECIMAL(18|38, scale) otherwise,
// DOUBLE only for exponent notation or more than 38 digits, DATE and
// TIMESTAMP for ISO text, text for numbers with leading zeros (codes) and
// everything else. A recipe's schema wins.
func (r *run) csvTypes(ctx context.Context, s *side, table string, names []string) ([]string, error) {
	var sel []string
	for _, n := range names {
		c := qi(n)
		sel = append(sel,
			fmt.Sprintf("count(%s)", c),
			fmt.Sprintf("count_if(%s RLIKE %s)", c, sparkString(reBool)),
			fmt.Sprintf("count_if(%s RLIKE %s AND NOT %s RLIKE %s)", c, sparkString(reNumber), c, sparkString(reExpo)),
			fmt.Sprintf("count_if(%s RLIKE %s AND %s RLIKE %s)", c, sparkString(reNumber), c, sparkString(reExpo)),
			fmt.Sprintf("count_if(%s RLIKE %s AND try_cast(%s AS DATE) IS NOT NULL)", c, sparkString(reDate), c),
			fmt.Sprintf("count_if((%s RLIKE %s OR %s RLIKE %s) AND try_cast(%s AS TIMESTAMP_NTZ) IS NOT NULL)", c, sparkString(reTS), c, sparkString(reDate), c),
			fmt.Sprintf("count_if(trim(%[1]s) RLIKE %[2]s AND length(trim(%[1]s)) > 1 AND NOT trim(%[1]s) RLIKE %[3]s)", c, sparkString(reZeros), sparkString(`^[+-]?0\.`)),
			fmt.Sprintf("coalesce(max(CASE WHEN instr(trim(%[1]s), '.') > 0 THEN length(trim(%[1]s)) - instr(trim(%[1]s), '.') ELSE 0 END), 0)", c),
			fmt.Sprintf("coalesce(max(CASE WHEN instr(trim(%[1]s), '.') > 0 THEN instr(trim(%[1]s), '.') - 1 ELSE length(trim(%[1]s)) END), 0)", c))
	}
	row, err := r.one(ctx, "SELECT "+strings.Join(sel, ", ")+" FROM "+qi(table))
	if err != nil {
		return nil, kalla.AsSourceError(err, s.name, s.spec.Alias)
	}
	types := make([]string, len(names))
	for i, n := range names {
		v := func(k int) int64 { return toInt64(row[9*i+k]) }
		nonNull, bools, nums, expos, dates, stamps, zeros, scale, intDigits := v(0), v(1), v(2), v(3), v(4), v(5), v(6), v(7), v(8)
		t := "STRING"
		switch {
		case nonNull == 0:
		case bools == nonNull:
			t = "BOOLEAN"
		case nums+expos == nonNull:
			switch digits := intDigits + scale; {
			case zeros > 0:
			case expos > 0 || digits > 38:
				t = "DOUBLE"
			case scale == 0 && intDigits <= 18:
				t = "BIGINT"
			case digits <= 18:
				t = fmt.Sprintf("DECIMAL(18,%d)", scale)
			default:
				t = fmt.Sprintf("DECIMAL(38,%d)", scale)
			}
		case dates == nonNull:
			t = "DATE"
		case stamps == nonNull:
			t = "TIMESTAMP_NTZ"
		}
		types[i] = t
		for k, given := range s.spec.Schema {
			if strings.EqualFold(k, n) {
				st, err := sparkType(given)
				if err != nil {
					return nil, kalla.Errorf(kalla.EINVALID, "source %s: schema type %q of column %q: %s", s.spec.Alias, given, n, err.Error())
				}
				types[i] = st
			}
		}
	}
	return types, nil
}

// sparkType maps a recipe schema type (DuckDB's names) to Spark's.
func sparkType(t string) (string, error) {
	if p, s, ok := kalla.Decimal(t); ok {
		return fmt.Sprintf("DECIMAL(%d,%d)", p, s), nil
	}
	switch strings.ToUpper(strings.TrimSpace(t)) {
	case "VARCHAR", "TEXT", "STRING":
		return "STRING", nil
	case "BIGINT", "INT8", "LONG":
		return "BIGINT", nil
	case "INTEGER", "INT", "INT4":
		return "INT", nil
	case "SMALLINT":
		return "SMALLINT", nil
	case "DOUBLE", "FLOAT8":
		return "DOUBLE", nil
	case "BOOLEAN", "BOOL":
		return "BOOLEAN", nil
	case "DATE":
		return "DATE", nil
	case "TIMESTAMP":
		return "TIMESTAMP_NTZ", nil
	}
	return "", fmt.Errorf("not supported on Spark")
}

// declaredExact is a CSV column the recipe's schema gives an exact number
// type, with the decimals the type keeps.
type declaredExact struct {
	name, typ string
	scale     int
}

// checkDeclared refuses a side whose text in a declared exact column would
// be rounded by the cast (more decimals than the type keeps, or exponent
// notation), as internal/file does on DuckDB and with its message. view
// holds the columns as text with their row ids; one query checks every
// column, since each is a Spark job over the whole file.
func (r *run) checkDeclared(ctx context.Context, s *side, view string, cols []declaredExact) error {
	var sel []string
	for _, d := range cols {
		c := "trim(" + qi(d.name) + ")"
		bad := fmt.Sprintf("(%[1]s IS NOT NULL AND (instr(%[1]s, 'e') > 0 OR instr(%[1]s, 'E') > 0 OR (instr(%[1]s, '.') > 0 AND length(TRIM(TRAILING '0' FROM %[1]s)) - instr(%[1]s, '.') > %[2]d)))", c, d.scale)
		sel = append(sel, fmt.Sprintf("count_if(%[1]s), min(CASE WHEN %[1]s THEN %[2]s END), min_by(%[3]s, CASE WHEN %[1]s THEN %[2]s END)", bad, ridCol, c))
	}
	row, err := r.one(ctx, fmt.Sprintf("SELECT %s FROM %s", strings.Join(sel, ", "), qi(view)))
	if err != nil {
		return kalla.AsSourceError(err, s.name, s.spec.Alias)
	}
	for i, d := range cols {
		if n := toInt64(row[3*i]); n > 0 {
			val, _ := row[3*i+2].(string)
			err := kalla.Errorf(kalla.EINVALID, "source %s: %s", kalla.Redact(s.spec.URI), kalla.DeclaredLoss(d.name, d.typ, d.scale, n, val, toInt64(row[3*i+1])+1))
			return kalla.AsSourceError(err, s.name, s.spec.Alias)
		}
	}
	return nil
}
