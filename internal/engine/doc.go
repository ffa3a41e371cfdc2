// Package engine runs reconciliations on embedded DuckDB. It owns one DuckDB
// database per run: it stages both sources into it through the connector
// contract, runs the recipe's match, decides which records matched by their
// identity (never by counting keys), and streams the evidence (matched pairs,
// the full original rows of every unmatched record, a summary with
// checksums) from DuckDB straight to files.
//
// Identity: every staged record carries a hidden row id (__kalla_rid). The
// match SQL is parsed by DuckDB itself (json_serialize_sql) and the row id of
// the left and right record of each output row is added to its select list,
// so the matched/unmatched split does not depend on which columns the user's
// SQL happens to select. A recipe with structured rules instead of SQL is
// compiled by internal/rules into the same match table, with reasons for
// the unmatched records and a break report besides. See DESIGN.md.
//
// Callers do not use this package directly: internal/recon wraps it as the
// "duckdb" implementation of recon.Engine, and the run types it shares with
// other engines (Event, stage names, Check, output names) are package
// kalla's, aliased here.
package engine
