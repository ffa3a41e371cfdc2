package dialect

import "strings"

// SparkQuoteIdent returns name as one Spark SQL identifier: `name` with
// embedded backticks doubled and NUL bytes dropped, so no name can close
// its quotes and continue the statement. Spark compares quoted names
// case-insensitively unless spark.sql.caseSensitive is set.
func SparkQuoteIdent(name string) string {
	var b strings.Builder
	b.Grow(len(name) + 2)
	b.WriteByte('`')
	for i := 0; i < len(name); i++ {
		switch c := name[i]; c {
		case 0:
		case '`':
			b.WriteString("``")
		default:
			b.WriteByte(c)
		}
	}
	b.WriteByte('`')
	return b.String()
}

// SparkQuoteString renders s as a Spark SQL string literal. Spark reads a
// backslash in a literal as an escape (spark.sql.parser.escapedStringLiterals
// is false by default), and reads a doubled quote as the end of one literal
// and the start of the next (adjacent literals are joined), not as a quote:
// so backslashes and quotes are escaped with a backslash. NUL bytes are dropped.
func SparkQuoteString(s string) string {
	var b strings.Builder
	b.Grow(len(s) + 2)
	b.WriteByte('\'')
	for i := 0; i < len(s); i++ {
		switch c := s[i]; c {
		case 0:
		case '\\', '\'':
			b.WriteByte('\\')
			b.WriteByte(c)
		default:
			b.WriteByte(c)
		}
	}
	b.WriteByte('\'')
	return b.String()
}
