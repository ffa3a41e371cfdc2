package dialect

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/kalla-recon/kalla/internal/kalla"
)

// Where renders filters as a WHERE clause for a statement over a source
// whose real columns are cols. It is WhereFor without a source name; use
// WhereFor when the source has one, so that an unknown column is reported
// against it.
func (d Dialect) Where(filters []kalla.Filter, cols []kalla.Column, argStart int) (clause string, args []any, err error) {
	return d.WhereFor("", filters, cols, argStart)
}

// WhereFor renders filters as " WHERE (cond) AND (cond) ...", to be appended
// to a statement over the source named source whose real columns are cols.
// With no filters it returns "" and nil args.
//
// Every filter is first checked with kalla.ValidateFilters (operator, value
// shape, column existence), then each value is checked against the column's
// type in Go, so that bad input is an EINVALID error naming the condition
// before any query runs: "abc" for a numeric column, 2024-02-30 for a date,
// a LIKE pattern ending in a lone backslash. A column is written under its
// real name from cols (kalla.FindColumn matches case-insensitively), quoted
// by QuoteIdent; values are only ever bound parameters, numbered from
// argStart ($argStart, $argStart+1, ... for Postgres and DuckDB; MySQL's ?
// are positional, so its args must follow those of any placeholder written
// before the clause). args holds one string per placeholder, in order; a
// number keeps its exact decimal text and never passes through float64.
//
// Each value is bound through a fixed cast chosen from the column's type
// class (see DESIGN.md), never through a type name read from metadata:
// casting to the column's own type would round 100.005 to 100.01 in a
// numeric(12,2) column and make eq match a value the column never held.
//
// Operators: eq (=), neq (<>), gt (>), gte (>=), lt (<), lte (<=),
// between (BETWEEN low AND high, inclusive; low > high matches nothing),
// in (IN (...)), like (LIKE: % any run, _ one character, \ escapes the
// next character; non-text columns are matched on their text form), and
// is_null / is_not_null (IS NULL, IS NOT NULL; no value, no parameter).
//
// NULL follows SQL's three-valued logic in every dialect: a row whose column
// is NULL matches no operator but is_null, so neq excludes NULLs and a row
// passes neither {x eq v} nor {x neq v}. Filter values cannot be null (the
// JSON form has no null value): is_null is how NULL rows are asked for.
// Text comparisons and LIKE follow the column's collation: case-sensitive in
// Postgres and DuckDB by default, case-insensitive under MySQL's default
// collations.
//
// Errors are EINVALID for filters that are wrong for these columns (or that
// would need more than 65535 bound parameters, the Postgres and MySQL
// limit) and EINTERNAL for an invalid Dialect or argStart < 1.
func (d Dialect) WhereFor(source string, filters []kalla.Filter, cols []kalla.Column, argStart int) (clause string, args []any, err error) {
	if !d.valid() {
		return "", nil, kalla.Errorf(kalla.EINTERNAL, "dialect: invalid %s", d)
	}
	if argStart < 1 {
		return "", nil, kalla.Errorf(kalla.EINTERNAL, "dialect: argStart %d is not 1-based", argStart)
	}
	if len(filters) == 0 {
		return "", nil, nil
	}
	if err := kalla.ValidateFilters(source, filters, cols); err != nil {
		return "", nil, err
	}
	var b strings.Builder
	b.WriteString(" WHERE ")
	for i, f := range filters {
		col := cols[kalla.FindColumn(cols, f.Column)]
		if col.Name == "" || strings.IndexByte(col.Name, 0) >= 0 || !utf8.ValidString(col.Name) {
			return "", nil, kalla.Errorf(kalla.EINVALID, "filter %s: column name %q cannot be used in SQL", describe(f), kalla.Excerpt(col.Name))
		}
		cond, condArgs, err := d.condition(f, col, argStart+len(args))
		if err != nil {
			return "", nil, err
		}
		if i > 0 {
			b.WriteString(" AND ")
		}
		b.WriteByte('(')
		b.WriteString(cond)
		b.WriteByte(')')
		args = append(args, condArgs...)
	}
	if last := argStart - 1 + len(args); d != DuckDB && last > maxParams {
		return "", nil, kalla.Errorf(kalla.EINVALID, "filters need %d values, more than the %d bound parameters a %s statement can hold", last, maxParams, d)
	}
	return b.String(), args, nil
}

// maxParams is the most bound parameters Postgres's protocol (a 16-bit
// count) and MySQL's prepared statements accept in one statement.
const maxParams = 65535

// condition renders one validated filter on col, its first placeholder
// numbered n.
func (d Dialect) condition(f kalla.Filter, col kalla.Column, n int) (string, []any, error) {
	ct := d.classify(col)
	lhs := d.QuoteIdent(col.Name)

	switch f.Op {
	case kalla.OpIsNull:
		return lhs + " IS NULL", nil, nil
	case kalla.OpIsNotNull:
		return lhs + " IS NOT NULL", nil, nil
	}
	if f.Op == kalla.OpLike {
		p := f.Values[0].Text
		if err := d.checkText(p); err != nil {
			return "", nil, valueError(f, col, ct, p, err)
		}
		if err := checkLikePattern(p); err != nil {
			return "", nil, kalla.Errorf(kalla.EINVALID, "filter %s: like pattern %q %s", describe(f), kalla.Excerpt(p), err.Error())
		}
		return d.likeOperand(ct, lhs) + " LIKE " + d.Placeholder(n) + d.likeEscape(), []any{p}, nil
	}

	if ct.class == classJSON {
		lhs = d.jsonOperand(ct, lhs)
	}
	exprs := make([]string, len(f.Values))
	args := make([]any, len(f.Values))
	for i, s := range f.Values {
		expr, arg, err := d.value(f, col, ct, s, d.Placeholder(n+i))
		if err != nil {
			return "", nil, err
		}
		exprs[i], args[i] = expr, arg
	}
	var op string
	switch f.Op {
	case kalla.OpEq:
		op = " = "
	case kalla.OpNeq:
		op = " <> "
	case kalla.OpGt:
		op = " > "
	case kalla.OpGte:
		op = " >= "
	case kalla.OpLt:
		op = " < "
	case kalla.OpLte:
		op = " <= "
	case kalla.OpBetween:
		return lhs + " BETWEEN " + exprs[0] + " AND " + exprs[1], args, nil
	case kalla.OpIn:
		return lhs + " IN (" + strings.Join(exprs, ", ") + ")", args, nil
	default:
		// kalla.ValidateFilters accepted an operator this package does not
		// know: the two are out of step.
		return "", nil, kalla.Errorf(kalla.EINTERNAL, "filter %s: dialect cannot render operator %q", describe(f), kalla.Excerpt(string(f.Op)))
	}
	return lhs + op + exprs[0], args, nil
}

// checkText refuses text no dialect can bind: invalid UTF-8 (rejected by
// Postgres and DuckDB, mangled by MySQL) and, for Postgres, NUL bytes, which
// its text types cannot hold.
func (d Dialect) checkText(s string) error {
	if !utf8.ValidString(s) {
		return errors.New("is not valid UTF-8")
	}
	if d == Postgres && strings.IndexByte(s, 0) >= 0 {
		return errors.New("contains a NUL byte, which Postgres text cannot hold")
	}
	return nil
}

// value checks one filter value against the column's type class and returns
// the SQL expression for placeholder ph and the argument to bind to it.
func (d Dialect) value(f kalla.Filter, col kalla.Column, ct colType, s kalla.Scalar, ph string) (string, any, error) {
	text := s.Text
	if err := d.checkText(text); err != nil {
		return "", nil, valueError(f, col, ct, text, err)
	}
	switch ct.class {
	case classInteger, classDecimal, classFloat:
		num, err := parseDecimal(text)
		if err != nil && ct.boolInt {
			if b, ok := parseBool(text); ok {
				num, err = decimal{}, nil // false is 0
				if b {
					num.intPart = "1"
				}
			}
		}
		if err != nil {
			return "", nil, valueError(f, col, ct, text, err)
		}
		expr, err := d.numberExpr(ct, num, ph)
		if err != nil {
			return "", nil, valueError(f, col, ct, text, err)
		}
		return expr, num.String(), nil
	case classBool:
		b, ok := parseBool(text)
		if !ok {
			return "", nil, valueError(f, col, ct, text, errors.New("is not a boolean (true or false)"))
		}
		return d.cast(ph, "boolean", "", "BOOLEAN"), strconv.FormatBool(b), nil
	case classDate:
		v, err := normalizeDate(text)
		if err != nil {
			return "", nil, valueError(f, col, ct, text, err)
		}
		return d.cast(ph, "date", "DATE", "DATE"), v, nil
	case classTimestamp, classTimestampTZ:
		tz := ct.class == classTimestampTZ
		v, err := normalizeTimestamp(text, tz)
		if err != nil {
			return "", nil, valueError(f, col, ct, text, err)
		}
		if tz {
			return d.cast(ph, "timestamptz", "", "TIMESTAMPTZ"), v, nil
		}
		return d.cast(ph, "timestamp", "DATETIME(6)", "TIMESTAMP"), v, nil
	case classUUID:
		v, ok := normalizeUUID(text)
		if !ok {
			return "", nil, valueError(f, col, ct, text, errors.New("is not a UUID"))
		}
		// MariaDB's UUID type converts the text itself; MySQL has no UUID type.
		return d.cast(ph, "uuid", "", "UUID"), v, nil
	case classJSON:
		if !validJSON(text) {
			return "", nil, valueError(f, col, ct, text, errors.New("is not valid JSON"))
		}
		switch d {
		case Postgres:
			return "CAST(" + ph + " AS jsonb)", text, nil
		case MySQL:
			return "JSON_EXTRACT(" + ph + ", '$')", text, nil
		default:
			return "json(" + ph + ")", text, nil
		}
	}
	// Text and types this package does not know: bind the text as written;
	// the server converts it to the column's type (Postgres infers the
	// parameter's type from the column) or reports why it cannot.
	return ph, text, nil
}

// numberExpr returns the expression binding num for a numeric column. The
// cast types are chosen from the number's own digits, so the value reaches
// the comparison exactly:
//
//   - Postgres: bigint for integers that fit, else numeric (the server would
//     otherwise type the parameter as the column's int4 and reject 1.5 or
//     3000000000); numeric for numeric columns; floats are left to
//     parameter inference so that a real column is compared as real.
//   - MySQL: DECIMAL(p,s) with the number's own precision, since MySQL
//     compares a string with a number as double.
//   - DuckDB: BIGINT, HUGEINT or DECIMAL(p,s) with the number's own
//     precision, since DuckDB casts a parameter to the column's type and
//     DECIMAL(12,2) would round 100.005 to 100.01.
func (d Dialect) numberExpr(ct colType, num decimal, ph string) (string, error) {
	if ct.class == classFloat {
		return ph, nil
	}
	p, s := num.precision()
	switch d {
	case Postgres:
		if ct.class == classInteger && num.fitsInt64() {
			return "CAST(" + ph + " AS bigint)", nil
		}
		return "CAST(" + ph + " AS numeric)", nil
	case MySQL:
		if p > 65 || s > 30 {
			return "", errors.New("has more digits than MySQL's DECIMAL holds (65 digits, 30 after the point)")
		}
		return "CAST(" + ph + " AS DECIMAL(" + strconv.Itoa(p) + "," + strconv.Itoa(s) + "))", nil
	default:
		if ct.class == classInteger && num.fitsInt64() {
			return "CAST(" + ph + " AS BIGINT)", nil
		}
		if ct.class == classInteger && num.fitsInt128() {
			return "CAST(" + ph + " AS HUGEINT)", nil
		}
		if p > 38 {
			return "", errors.New("has more digits than DuckDB's DECIMAL holds (38)")
		}
		return "CAST(" + ph + " AS DECIMAL(" + strconv.Itoa(p) + "," + strconv.Itoa(s) + "))", nil
	}
}

// cast wraps ph in CAST(ph AS t), t being this dialect's type among the
// fixed names given, or returns ph alone when that name is "" (the server
// converts the text itself).
func (d Dialect) cast(ph, pg, my, duck string) string {
	t := map[Dialect]string{Postgres: pg, MySQL: my, DuckDB: duck}[d]
	if t == "" {
		return ph
	}
	return "CAST(" + ph + " AS " + t + ")"
}

// likeOperand returns the column expression LIKE applies to: Postgres and
// DuckDB have LIKE only for text, so other columns are matched on their
// text form; MySQL converts any column itself.
func (d Dialect) likeOperand(ct colType, lhs string) string {
	if ct.class == classText || d == MySQL {
		return lhs
	}
	if d == Postgres {
		return "CAST(" + lhs + " AS text)"
	}
	return "CAST(" + lhs + " AS VARCHAR)"
}

// likeEscape returns the ESCAPE clause that makes \ the escape character
// in every dialect. Postgres uses \ by default. DuckDB has no default
// escape. MySQL and MariaDB use \ by default, but a '\\' literal would
// read differently under sql_mode NO_BACKSLASH_ESCAPES, so the character is
// written as CHAR(92), which needs no string literal (measured on MariaDB
// 10.11 with and without that mode, prepared and interpolated).
func (d Dialect) likeEscape() string {
	switch d {
	case DuckDB:
		return ` ESCAPE '\'`
	case MySQL:
		return " ESCAPE CHAR(92)"
	}
	return ""
}

// jsonOperand returns the column expression a JSON value is compared with:
// Postgres json has no comparison operators, so it is compared as jsonb;
// MySQL compares JSON_EXTRACT(col, '$'), a JSON value in MySQL and the
// normalized text in MariaDB (whose JSON is text); DuckDB compares json()'s
// minified text.
func (d Dialect) jsonOperand(ct colType, lhs string) string {
	switch d {
	case Postgres:
		if ct.jsonb {
			return lhs
		}
		return "CAST(" + lhs + " AS jsonb)"
	case MySQL:
		return "JSON_EXTRACT(" + lhs + ", '$')"
	}
	return "json(" + lhs + ")"
}

// valueError is the EINVALID error for a value that does not fit its
// column; problem's text completes the sentence "value %q ...".
func valueError(f kalla.Filter, col kalla.Column, ct colType, value string, problem error) error {
	typ := ct.name
	if typ == "" {
		typ = "of unknown type"
	}
	return kalla.Errorf(kalla.EINVALID, "filter %s: column %q is %s; value %q %s", describe(f), col.Name, typ, kalla.Excerpt(value), problem.Error())
}

// describe renders f for a message. kalla.Filter.String is empty when a
// value marked as a number is not one (possible only for filters built in
// Go), so this falls back to the raw fields rather than lose the condition.
func describe(f kalla.Filter) string {
	if s := f.String(); s != "" {
		return s
	}
	return kalla.Excerpt(fmt.Sprintf("{column %q, op %q, values %+v}", f.Column, f.Op, f.Values))
}
