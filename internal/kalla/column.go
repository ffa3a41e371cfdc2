package kalla

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
)

// Column describes one column of a source as its own system reports it.
// DataType is the source's type name (for example "numeric(12,2)" in
// Postgres, "DECIMAL(18,2)" for an inferred CSV column); EngineType is the
// DuckDB type the column is staged as for a run.
type Column struct {
	Name       string `json:"name"`
	DataType   string `json:"data_type"`
	Nullable   bool   `json:"nullable"`
	EngineType string `json:"-"`
}

// FindColumn returns the index of the column named name, or -1. Names match
// exactly first; a unique case-insensitive match is accepted too, since SQL
// users rarely repeat the case of a header.
func FindColumn(cols []Column, name string) int {
	for i, c := range cols {
		if c.Name == name {
			return i
		}
	}
	found := -1
	for i, c := range cols {
		if strings.EqualFold(c.Name, name) {
			if found >= 0 {
				return -1
			}
			found = i
		}
	}
	return found
}

// ColumnNames lists the column names for messages, comma separated.
func ColumnNames(cols []Column) string {
	names := make([]string, len(cols))
	for i, c := range cols {
		names[i] = c.Name
	}
	return strings.Join(names, ", ")
}

// decimalRE reads a DECIMAL or NUMERIC with its optional precision and
// scale.
var decimalRE = regexp.MustCompile(`^(?i)(DECIMAL|NUMERIC)\s*(\(\s*([0-9]+)\s*(,\s*([0-9]+)\s*)?\))?$`)

// Decimal reads a recipe schema type (DuckDB's names) as a DECIMAL: its
// precision and scale, DECIMAL(p) being DECIMAL(p,0) and a bare DECIMAL
// DuckDB's DECIMAL(18,3). ok is false for any other type.
func Decimal(typ string) (precision, scale int, ok bool) {
	m := decimalRE.FindStringSubmatch(strings.TrimSpace(typ))
	switch {
	case m == nil:
		return 0, 0, false
	case m[2] == "":
		return 18, 3, true
	}
	p, err := strconv.Atoi(m[3])
	if err != nil {
		return 0, 0, false
	}
	if m[5] == "" {
		return p, 0, true
	}
	s, err := strconv.Atoi(m[5])
	return p, s, err == nil
}

// NumberPattern is what a CSV value must look like, in full, for its
// column to be typed as a number when no schema says otherwise: blanks or
// tabs around it, an optional minus, digits with an optional fraction (or a
// fraction alone), an optional exponent. It is DuckDB's sniffer's notion
// of a number (it reads "+5", "NaN" and "Infinity" as text), applied to
// every value on both engines, so that a column's type does not depend on
// whether its odd value falls in the sniffer's sample. Leading zeros
// ("007", "-0") make a code, not a number, by a rule of their own.
const NumberPattern = `[ \t]*-?([0-9]+(\.[0-9]*)?|\.[0-9]+)([eE][+-]?[0-9]+)?[ \t]*`

// ExactScale reports whether a recipe schema type (DuckDB's names) is an
// exact number, an integer or a decimal, and how many decimals it keeps: 0
// for integers, the scale for a DECIMAL (see Decimal). Both engines convert
// text to such a type by rounding, so a value with more decimals than it
// keeps must be refused, not loaded: a declared DECIMAL(12,2) would
// otherwise turn 10.005 into 10.01 and match it.
func ExactScale(typ string) (scale int, ok bool) {
	if _, s, ok := Decimal(typ); ok {
		return s, true
	}
	t := strings.ToUpper(strings.TrimSpace(typ))
	switch t {
	case "TINYINT", "INT1", "SMALLINT", "INT2", "SHORT", "INTEGER", "INT", "INT4", "SIGNED", "BIGINT", "INT8", "LONG", "HUGEINT", "INT128",
		"UTINYINT", "USMALLINT", "UINTEGER", "UBIGINT", "UHUGEINT":
		return 0, true
	}
	return 0, false
}

// DeclaredLoss says why a column's values do not fit the exact type the
// recipe's schema declares: n of them would change, the first val in data
// row row (0 when the engine does not know it). Both engines say it with this function.
func DeclaredLoss(name, typ string, scale int, n int64, val string, row int64) string {
	why := fmt.Sprintf("which keeps %d decimal(s), but %d value(s) have more", scale, n)
	if strings.ContainsAny(val, "eE") {
		why = fmt.Sprintf("but %d value(s) are written in exponent notation, which Kalla converts only to DOUBLE", n)
	}
	where := ""
	if row > 0 {
		where = fmt.Sprintf(" in row %d", row)
	}
	return fmt.Sprintf("column %q is declared %s, %s, the first %q%s: converting would change them; declare a type that holds them (a larger scale, or DOUBLE for approximate numbers) or correct the file", name, typ, why, strings.TrimSpace(val), where)
}
