// Package rules compiles a recipe's structured match rules into SQL and runs
// them as passes over the staged sources, so that most users never write
// match SQL. Each rule becomes a pass that finds candidate pairs (or
// groups) with hash or range joins only, scores them, and chooses among
// competing candidates by a deterministic greedy assignment; a record taken
// by one pass is not offered to the next. The result is the engine's match
// table (one row per pair of record ids), so counting, outputs and
// summaries are the same as for hand-written match SQL. Afterwards the
// package explains what did not match (a reason and the closest candidate
// for every unmatched record) and reports the differences within matched
// pairs (breaks).
//
// The compiler writes SQL through a Dialect, DuckDB's or Spark SQL's
// (NewSpark), so the same rules give the same answers on both engines;
// what Spark cannot compute alike is refused when compiling. See DESIGN.md.
package rules
