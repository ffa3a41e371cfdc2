// Package dialect is the one place Kalla turns identifiers and filters into
// SQL text, for the three dialects it speaks: Postgres, MySQL/MariaDB and
// DuckDB. Connectors and the engine build their statements from its pieces
// instead of formatting SQL themselves, so that its two rules hold
// everywhere by construction:
//
//   - identifiers are quoted by exactly one function per dialect
//     (Dialect.QuoteIdent), and only names read from a source's own metadata
//     reach it from Where;
//   - values are always bound parameters: no filter value, and no type name
//     read from metadata, is ever written into SQL text.
//
// Where also checks filter values against the column types in Go, so that
// "abc" for a numeric column is an EINVALID error naming the condition
// rather than a database error at run time. DESIGN.md records how each
// dialect binds each type, and what was measured to choose it.
package dialect
