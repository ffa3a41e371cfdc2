// Package spark runs match-SQL recipes on an Apache Spark 4.x cluster
// through Spark Connect (github.com/apache/spark-connect-go): Spark's
// executors read the sources, match and write the outputs; this package
// only sends SQL and reader options. It implements recon.Engine. See
// DESIGN.md for how it keeps DuckDB's answers.
package spark
