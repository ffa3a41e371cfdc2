// Package mysql is the connector for MySQL and MariaDB tables:
// mysql://user:password@host:port/db?table=[db.]name (mariadb:// too). It
// reads through a small pool shared by every request for the same database
// (package dbpool), each read in a READ ONLY transaction whose statements
// carry a time limit, and streams rows into DuckDB's appender without
// holding the table in Go memory.
//
// # URIs
//
// The table parameter names the table, optionally qualified with another
// database (billing.payments); parts may be quoted with backticks. Names
// match exactly first, then case-insensitively when only one table
// matches. Other query parameters are go-sql-driver DSN parameters (tls,
// charset, ...) and pass through, except those Kalla must control:
// parseTime and loc (values are parsed here, in UTC), interpolateParams
// (on, see below), time_zone (the session runs in UTC, so TIMESTAMP columns
// read as UTC instants) and allowAllFiles (always off: a server may ask
// for any local file in answer to any query).
//
// # Time limits
//
// MariaDB (what the tests run) bounds a statement with SET STATEMENT
// max_statement_time=N FOR SELECT ...; MySQL with the optimizer hint
// SELECT /*+ MAX_EXECUTION_TIME(ms) */ .... The server's flavour is read
// with the column metadata.
//
// # Types
//
// Columns come from information_schema.COLUMNS in ordinal order; DataType
// is COLUMN_TYPE (decimal(12,2), int(11) unsigned, tinyint(1),
// enum('a','b')). Types are staged as:
//
//	tinyint, smallint, mediumint, int, bigint  TINYINT .. BIGINT (unsigned: UTINYINT .. UBIGINT;
//	                                           mediumint as INTEGER/UINTEGER)
//	decimal(p,s), p <= 38                      DECIMAL(p,s), exactly
//	decimal(p,s), p > 38                       measured: DECIMAL(38,s) when every value fits, else VARCHAR
//	float, double                              FLOAT, DOUBLE
//	char, varchar, text, enum, set, json       VARCHAR
//	date                                       DATE
//	datetime                                   TIMESTAMP
//	timestamp                                  TIMESTAMPTZ (read in a UTC session)
//	year                                       SMALLINT
//	bit                                        UBIGINT (its value)
//	uuid (MariaDB)                             UUID
//	binary, varbinary, blob                    VARCHAR holding HEX()
//	anything else (time, geometry, inet6 ...)  VARCHAR holding CAST(... AS CHAR)
//
// tinyint(1), MySQL's BOOLEAN, stays TINYINT: nothing stops it holding 2.
// A zero or partial date (0000-00-00, 2024-00-10), which MySQL accepts in
// lenient modes, has no DATE value: Stage refuses it with an EINVALID error
// naming the column rather than staging another date.
//
// Every query uses the text protocol (interpolateParams: filter values are
// escaped by the driver, which follows the server's NO_BACKSLASH_ESCAPES
// mode), so one round trip runs a statement and every value arrives as
// text that this package parses itself: decimals exactly, dates without a
// time zone's help. Sample returns that text as is.
//
// # Errors
//
// As for package postgres: ENOTFOUND for a missing table or database,
// EINVALID for a bad URI, filter or value, EUNAVAILABLE when the server
// cannot be reached, refuses the login (never EUNAUTHORIZED, which is about
// Kalla's own users) or a statement outlives its limit. No message or
// cause carries the password.
package mysql
