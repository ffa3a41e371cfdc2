// Package duck opens Kalla's in-process DuckDB databases (the engine's, a
// preview's, the results reader's, learning's, the exceptions import's)
// with the settings every one of them must share, so that what Kalla
// writes and shows does not depend on the machine it runs on.
//
// DuckDB takes its time zone from the machine (the TZ variable, else
// /etc/localtime). The zone decides how a TIMESTAMP WITH TIME ZONE is
// written as text (a CSV output, a CAST to VARCHAR) and what a user's SQL
// gets from date_trunc or a cast to DATE on such a value: the same run on a
// server in Tokyo and one in London wrote different files, and could match
// differently. Kalla's Spark engine runs its sessions in UTC; so does every
// DuckDB database opened here.
package duck

import (
	"context"
	"database/sql"
	"fmt"

	// The DuckDB driver, registered as "duckdb".
	_ "github.com/duckdb/duckdb-go/v2"
)

// TimeZone is the zone of every DuckDB database Kalla opens, as Spark's
// spark.sql.session.timeZone is for its sessions.
const TimeZone = "UTC"

// Open opens a new in-memory DuckDB database set to TimeZone. The setting
// is global: every connection of the database, now or later, has it.
func Open(ctx context.Context) (*sql.DB, error) {
	db, err := sql.Open("duckdb", "")
	if err != nil {
		return nil, fmt.Errorf("open duckdb: %w", err)
	}
	// GLOBAL: a plain SET would hold for the one pooled connection it
	// happened to run on. The DSN cannot carry it: the time zone is an
	// option of the ICU extension, not known yet when the database opens.
	if _, err := db.ExecContext(ctx, "SET GLOBAL TimeZone = '"+TimeZone+"'"); err != nil {
		db.Close()
		return nil, fmt.Errorf("set duckdb time zone: %w", err)
	}
	for _, q := range sameSQL {
		if _, err := db.ExecContext(ctx, q); err != nil {
			db.Close()
			return nil, fmt.Errorf("configure duckdb: %w", err)
		}
	}
	return db, nil
}

// sameSQL keeps two things DuckDB 2.0 changed as they were in 1.5, the
// version Kalla's recipes and outputs were written against:
//   - A column that is NULL in every row and has no other type (a
//     header-only side's columns, a user's NULL AS x) is INTEGER, as 1.5
//     and Kalla's Spark engine write it. 2.0 lets the NULL type through,
//     and the matched file's Parquet schema changed with it.
//   - A lambda may still be written x -> x + 1, beside 2.0's lambda x: x +
//     1. 2.0 refuses the arrow and tells the user to SET lambda_syntax,
//     which match SQL cannot do (the sandbox locks every setting).
//
// Integer division and modulo by zero are errors in 2.0 ("Use TRY(...)"),
// where 1.5 gave NULL; Kalla keeps 2.0's way, which is also its Spark
// engine's (ANSI mode): a zero divisor in a user's SQL fails the run and
// names the expression instead of matching on a NULL.
var sameSQL = []string{
	"SET GLOBAL legacy_disable_null_type = true",
	"SET GLOBAL lambda_syntax = 'ENABLE_SINGLE_ARROW'",
}
