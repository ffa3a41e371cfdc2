// Package postgres is the connector for PostgreSQL tables:
// postgres://user:password@host:port/db?table=[schema.]name (postgresql://
// too). It reads through a small pool shared by every request for the same
// database (package dbpool), each read in a READ ONLY transaction with a
// statement timeout, and never holds a table in Go memory: Stage streams
// rows from the server straight into DuckDB's appender.
//
// # URIs
//
// The table parameter names the table, optionally schema-qualified
// (billing.invoices); the schema defaults to public. Each part may be
// written in double quotes ("Billing"."My.Table") to name identifiers with
// dots or quotes in them. Names match exactly first and, failing that,
// case-insensitively when only one table matches, since Postgres folds
// unquoted names to lower case and users rarely know which case a table was
// created with. Every other query parameter (sslmode, application_name,
// connect_timeout, ...) is passed to the driver unchanged.
//
// # Types
//
// Columns come from information_schema.columns in ordinal order. DataType is
// Postgres's own name (numeric(12,2), character varying, timestamp with time
// zone; udt_name for arrays and user-defined types). Each type is staged as:
//
//	smallint, integer, bigint       SMALLINT, INTEGER, BIGINT
//	numeric(p,s), p <= 38           DECIMAL(p,s), exactly
//	numeric, numeric(p>38), money   measured: DECIMAL(38,s) or VARCHAR (below)
//	real, double precision          FLOAT, DOUBLE
//	text, varchar, char(n), name    VARCHAR (char(n) without its padding, as
//	                                Postgres casts it to text)
//	date                            DATE
//	timestamp                       TIMESTAMP (microseconds, as in Postgres)
//	timestamptz                     TIMESTAMPTZ
//	boolean                         BOOLEAN
//	uuid                            UUID
//	json, jsonb                     VARCHAR holding Postgres's own text
//	anything else                   VARCHAR holding Postgres's ::text
//
// A numeric without a declared precision (or with one DuckDB cannot hold)
// has no scale a DECIMAL could take from the catalog, and guessing one would
// round. Stage therefore measures the rows it is about to stage, in the same
// snapshot (REPEATABLE READ): the widest integer part and the longest
// fraction. When both fit DECIMAL(38,s) with s the longest fraction, the
// column is staged as that; otherwise (more than 38 digits, or NaN or
// Infinity present) it is staged as VARCHAR holding Postgres's exact text,
// and a warning is logged. No digit is ever dropped. Columns reports such a
// column's EngineType as DECIMAL(38,10), a nominal type for checking a
// recipe before any data is read. money is read as numeric, so that a
// locale's currency format never reaches the engine.
//
// JSON is staged as VARCHAR rather than DuckDB's JSON type because DuckDB's
// appender re-encodes JSON values, which would make the staged text differ
// from what Postgres stores and what Sample shows; DuckDB's json functions
// accept VARCHAR.
//
// Dates and timestamps of infinity, and NaN in a numeric(p,s) column, have no
// DuckDB value of their column's type: Stage refuses them with an EINVALID
// error naming the column rather than staging a different value.
//
// Sample renders every value with Postgres's own ::text cast, in a session
// set to UTC and ISO dates, so that previews read the same on every server.
//
// # Errors
//
// Errors are *kalla.Error values naming the source by its redacted URI; no
// message or wrapped cause carries the password. ENOTFOUND: the table or the
// database does not exist. EINVALID: a bad URI, filter or value. EUNAVAILABLE:
// the server cannot be reached (within the connect timeout), refuses the
// user name or password, denies access, or a statement outlives its
// timeout. A wrong password is EUNAVAILABLE rather than EUNAUTHORIZED:
// EUNAUTHORIZED means the caller's credentials for Kalla itself, and maps to
// HTTP 401, which a browser client would take as its own session expiring.
//
// # Staging speed
//
// Stage asks for every column in binary format and decodes the raw bytes
// itself (decode.go) rather than through pgx's Scan, boxing each decimal
// once per column and each distinct date once, and appends row by row in
// the reading goroutine. BenchmarkStage1M measured the alternatives on a
// 1,000,000-row table (bigint, text, numeric(12,2), date) on the project's
// 2-core machines, against the fastest raw read of the same rows (a pgx
// query that decodes nothing, faster than COPY to io.Discard):
//
//	raw read                                  ~325 ms
//	Stage (this package)                      ~410 ms   1.28x
//	reading goroutine feeding batches         ~420 ms   (no gain: the server,
//	                                                     pgx and the appender
//	                                                     already fill both cores)
//	COPY (SELECT ...) TO STDOUT (FORMAT binary) ~475 ms
//
// COPY was slower here and cannot take bound parameters, so filters would
// have to be spliced into its SQL text: plain Query it is.
package postgres
