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
	return db, nil
}
