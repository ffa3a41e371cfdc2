package dialect

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/kalla-recon/kalla/internal/kalla"
)

// Dialect is one of the SQL dialects Kalla speaks. The zero value is not a
// dialect: methods that return SQL text panic on it, so a forgotten
// initialisation fails loudly instead of quoting with the wrong character.
type Dialect int

// The dialects. MySQL covers MariaDB too: both quote with backticks, use `?`
// placeholders and accept the casts this package writes.
const (
	// Postgres is PostgreSQL, spoken through pgx: $n placeholders, "quoted"
	// identifiers.
	Postgres Dialect = iota + 1
	// MySQL is MySQL and MariaDB, spoken through go-sql-driver/mysql: ?
	// placeholders, `quoted` identifiers.
	MySQL
	// DuckDB is Kalla's engine and file reader, spoken through duckdb-go's
	// database/sql driver: $n placeholders, "quoted" identifiers.
	DuckDB
)

// String returns the dialect's lowercase name, as ParseDialect reads it and
// as error messages show it.
func (d Dialect) String() string {
	switch d {
	case Postgres:
		return "postgres"
	case MySQL:
		return "mysql"
	case DuckDB:
		return "duckdb"
	}
	return "Dialect(" + strconv.Itoa(int(d)) + ")"
}

// ParseDialect returns the dialect called name ("postgres" or "postgresql",
// "mysql" or "mariadb", "duckdb"; case-insensitive), so that configuration
// and URI schemes map to a dialect in one place. An unknown name is an
// EINVALID error.
func ParseDialect(name string) (Dialect, error) {
	switch strings.ToLower(strings.TrimSpace(name)) {
	case "postgres", "postgresql":
		return Postgres, nil
	case "mysql", "mariadb":
		return MySQL, nil
	case "duckdb":
		return DuckDB, nil
	}
	return 0, kalla.Errorf(kalla.EINVALID, "unknown SQL dialect %q (use postgres, mysql or duckdb)", kalla.Excerpt(name))
}

func (d Dialect) valid() bool { return d == Postgres || d == MySQL || d == DuckDB }

func (d Dialect) mustBeValid() {
	if !d.valid() {
		panic("dialect: invalid Dialect " + d.String())
	}
}

// QuoteIdent returns name as one quoted identifier: "name" with embedded
// double quotes doubled for Postgres and DuckDB, `name` with embedded
// backticks doubled for MySQL. It is the only place this package (and, by
// convention, Kalla) writes an identifier into SQL, so no name can close
// its quotes and continue the statement.
//
// QuoteIdent never fails. No dialect allows a NUL byte in an identifier and
// the Postgres wire protocol cannot carry one in a statement, so NUL bytes
// are dropped: the result is always a single well-formed quoted identifier.
// Where never relies on that: it refuses column names that contain NUL or are
// not valid UTF-8. The quoted name is case-sensitive in Postgres; MySQL and
// DuckDB compare column names case-insensitively whatever the quoting.
func (d Dialect) QuoteIdent(name string) string {
	d.mustBeValid()
	q := byte('"')
	if d == MySQL {
		q = '`'
	}
	var b strings.Builder
	b.Grow(len(name) + 2)
	b.WriteByte(q)
	for i := 0; i < len(name); i++ {
		switch c := name[i]; c {
		case 0:
			// Dropped; see the doc comment.
		case q:
			b.WriteByte(q)
			b.WriteByte(q)
		default:
			b.WriteByte(c)
		}
	}
	b.WriteByte(q)
	return b.String()
}

// QuoteQualified quotes each part with QuoteIdent and joins them with dots,
// for names such as schema.table or catalog.schema.table. Empty parts are
// skipped, so an optional schema can be passed as "" and yields just the
// quoted table name; with no non-empty part it returns "".
func (d Dialect) QuoteQualified(parts ...string) string {
	d.mustBeValid()
	quoted := make([]string, 0, len(parts))
	for _, p := range parts {
		if p != "" {
			quoted = append(quoted, d.QuoteIdent(p))
		}
	}
	return strings.Join(quoted, ".")
}

// QuoteString renders s as a string literal, for the few places where SQL
// cannot take a bound parameter (table-function options, COPY targets,
// struct keys in read_csv's columns). Filter values are never rendered with
// it: they are always bound. Quotes are doubled; MySQL also treats a
// backslash as an escape, so it is doubled there too.
func (d Dialect) QuoteString(s string) string {
	d.mustBeValid()
	if d == MySQL {
		s = strings.ReplaceAll(s, `\`, `\\`)
	}
	return "'" + strings.ReplaceAll(s, "'", "''") + "'"
}

// SplitQualified is the inverse of QuoteQualified for user-written names
// such as `billing.invoices` or `"My Schema"."Table.1"`: it splits on dots
// outside quotes (the dialect's quote character, doubled inside a quoted
// part) and trims unquoted parts. It returns the parts; an unclosed quote,
// an empty part or text after a closing quote is an error.
func (d Dialect) SplitQualified(s string) ([]string, error) {
	d.mustBeValid()
	q := byte('"')
	if d == MySQL {
		q = '`'
	}
	var parts []string
	for i := 0; ; {
		var part string
		if i < len(s) && s[i] == q {
			var b strings.Builder
			j := i + 1
			for {
				if j >= len(s) {
					return nil, fmt.Errorf("unclosed quote in name %q", kalla.Excerpt(s))
				}
				if s[j] == q {
					if j+1 < len(s) && s[j+1] == q {
						b.WriteByte(q)
						j += 2
						continue
					}
					j++
					break
				}
				b.WriteByte(s[j])
				j++
			}
			part, i = b.String(), j
			if i < len(s) && s[i] != '.' {
				return nil, fmt.Errorf("unexpected %q after a quoted name in %q", kalla.Excerpt(s[i:]), kalla.Excerpt(s))
			}
		} else {
			j := strings.IndexByte(s[i:], '.')
			if j < 0 {
				j = len(s) - i
			}
			part = strings.TrimSpace(s[i : i+j])
			i += j
		}
		if part == "" {
			return nil, fmt.Errorf("empty name in %q", kalla.Excerpt(s))
		}
		parts = append(parts, part)
		if i >= len(s) {
			return parts, nil
		}
		i++ // the dot
		if i >= len(s) {
			return nil, fmt.Errorf("name %q ends with a dot", kalla.Excerpt(s))
		}
	}
}

// Placeholder returns the SQL text for the n-th bound parameter (1-based):
// $n for Postgres and DuckDB, ? for MySQL, whose placeholders are
// positional. DuckDB accepts both styles; numbered ones are used so that a
// statement's parameters can be numbered the same way as in Postgres. It
// panics when n < 1, which is a programming error.
func (d Dialect) Placeholder(n int) string {
	d.mustBeValid()
	if n < 1 {
		panic("dialect: placeholder number " + strconv.Itoa(n) + " is not 1-based")
	}
	if d == MySQL {
		return "?"
	}
	return "$" + strconv.Itoa(n)
}
