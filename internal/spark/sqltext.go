package spark

import (
	"fmt"
	"strings"

	"github.com/kalla-recon/kalla/internal/dialect"
	"github.com/kalla-recon/kalla/internal/kalla"
)

// sparkString renders s as a Spark SQL string literal. Spark reads
// backslash escapes inside literals, so both the quote and the backslash
// are escaped; every other character stands for itself.
func sparkString(s string) string {
	var b strings.Builder
	b.WriteByte('\'')
	for _, c := range s {
		switch c {
		case '\\':
			b.WriteString(`\\`)
		case '\'':
			b.WriteString(`\'`)
		default:
			b.WriteRune(c)
		}
	}
	b.WriteByte('\'')
	return b.String()
}

// sparkWhere renders filters as a WHERE clause for Spark SQL over a view
// with cols. internal/dialect checks every value against its column's type
// and renders the condition with DuckDB's casts (BIGINT, DECIMAL(p,s),
// DATE, TIMESTAMP, BOOLEAN, which Spark spells alike) and $n placeholders;
// Spark Connect's SQL has no parameters, so each placeholder becomes the
// value as an escaped string literal (the casts around it stay).
func sparkWhere(source string, filters []kalla.Filter, cols []kalla.Column) (string, error) {
	clause, args, err := dialect.DuckDB.WhereFor(source, filters, cols, 1)
	if err != nil || clause == "" {
		return "", err
	}
	for _, t := range []string{"HUGEINT", "UUID", "TIMESTAMPTZ", "json("} {
		if strings.Contains(clause, t) {
			return "", kalla.Errorf(kalla.EINVALID, "source %s: a filter needs %s, which the Spark engine does not support", source, strings.TrimSuffix(t, "("))
		}
	}
	return inlineArgs(clause, args)
}

// inlineArgs replaces $1, $2, ... outside quoted identifiers and literals
// with args as Spark string literals.
func inlineArgs(clause string, args []any) (string, error) {
	var b strings.Builder
	used := 0
	for i := 0; i < len(clause); i++ {
		c := clause[i]
		switch c {
		case '"', '\'':
			j := i + 1
			for j < len(clause) {
				if clause[j] == c {
					if j+1 < len(clause) && clause[j+1] == c {
						j += 2
						continue
					}
					break
				}
				j++
			}
			if c == '\'' {
				return "", fmt.Errorf("filter clause holds a literal; expected parameters only")
			}
			b.WriteString(clause[i : j+1])
			i = j
		case '$':
			j := i + 1
			for j < len(clause) && clause[j] >= '0' && clause[j] <= '9' {
				j++
			}
			var n int
			if _, err := fmt.Sscanf(clause[i+1:j], "%d", &n); err != nil || n < 1 || n > len(args) {
				return "", fmt.Errorf("filter clause: bad placeholder %q", clause[i:j])
			}
			s, ok := args[n-1].(string)
			if !ok {
				return "", fmt.Errorf("filter clause: argument %d is %T, not text", n, args[n-1])
			}
			b.WriteString(sparkString(s))
			used++
			i = j - 1
		default:
			b.WriteByte(c)
		}
	}
	if used != len(args) {
		return "", fmt.Errorf("filter clause: %d placeholders for %d arguments", used, len(args))
	}
	return b.String(), nil
}
