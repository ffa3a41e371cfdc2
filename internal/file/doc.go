// Package file is the connector for CSV and Parquet files: local paths and
// file:// URIs, and remote objects (s3://, https://) that a Fetcher first
// streams to a local temporary file. DuckDB reads the file itself, so rows
// never pass through Go memory.
//
// Previews read only the start of a file: a CSV file's first bytes; a
// Parquet file's footer (its schema and exact row count) and its first row
// groups, written with a footer naming only them as a small Parquet file
// of its own (ranged reads for a remote file). Runs read the whole file.
//
// CSV is read strictly: a header row, RFC 4180 quoting, every row with as many
// fields as the header. DuckDB's own CSV defaults are lenient in ways a
// reconciliation tool must not be (a ragged file collapses into one text
// column, an unclosed quote becomes a stray character, "1.5" is rounded into
// an integer column), so the package checks what the sniffer decided and
// infers numeric types itself: every column DuckDB calls numeric gets an
// exact DECIMAL wide enough for every value (or BIGINT when no value has a
// fraction), measured from every value. Money therefore compares exactly at
// its scale and no digit is ever lost. Where the scan that reads the file
// anyway can follow its rows, it measures the columns written as plain
// numbers itself and DuckDB reads them straight as their type (numWalk);
// otherwise they are loaded as text, proven or measured in DuckDB, and
// converted.
//
// The other types the sniffer picks from its 20,480-row sample (dates,
// timestamps, booleans) are loaded as such; a later value that is not one
// makes that column text and the file is read again (execLoad), so a column
// gets the type its whole content calls for, as on the Spark engine.
// A timestamp column stays text when a time in it has more than six
// decimals of a second, which DuckDB's TIMESTAMP would cut: the file scan
// notices such a time anywhere and refineStamps decides per column.
package file
