// Package sparktest runs structured rules on Apache Spark over Spark
// Connect, so tests can hold Spark's answers to DuckDB's: a rules.DB over a
// Spark session, and staging of a side's rows as a temporary view with
// exact types.
package sparktest

import (
	"context"
	"fmt"
	"strings"

	sparksql "github.com/apache/spark-connect-go/spark/sql"

	"github.com/kalla-recon/kalla/internal/dialect"
	"github.com/kalla-recon/kalla/internal/kalla"
	"github.com/kalla-recon/kalla/internal/rules"
)

// DB runs a plan's statements in one Spark session (whose temporary views
// are its own). It implements rules.DB.
type DB struct {
	Session sparksql.SparkSession
	// Log, when set, receives every statement before it runs.
	Log func(q string)
}

// Exec runs one statement. Spark Connect's SQL command takes no bound
// parameters here, so a statement with args is refused.
func (d DB) Exec(ctx context.Context, q string, args ...any) error {
	if len(args) > 0 {
		return fmt.Errorf("spark: statement with %d bound parameters", len(args))
	}
	if d.Log != nil {
		d.Log(q)
	}
	df, err := d.Session.Sql(ctx, q)
	if err != nil {
		return err
	}
	// A command ran when Sql returned; its result (a few rows at most)
	// is read so that nothing of it is left pending on the server.
	_, err = df.Collect(ctx)
	return err
}

// Query runs a query and calls each for its rows, in order.
func (d DB) Query(ctx context.Context, q string, each func(rules.Row) error) error {
	if d.Log != nil {
		d.Log(q)
	}
	df, err := d.Session.Sql(ctx, q)
	if err != nil {
		return err
	}
	rows, err := df.Collect(ctx)
	if err != nil {
		return err
	}
	for _, r := range rows {
		if err := each(rules.Values(r.Values())); err != nil {
			return err
		}
	}
	return nil
}

// SparkType is the Spark SQL type holding what a DuckDB column type holds,
// exactly: a DuckDB TIMESTAMP has no time zone, and neither has Spark's
// TIMESTAMP_NTZ.
func SparkType(duckType string) (string, error) {
	t := strings.ToUpper(strings.TrimSpace(duckType))
	switch {
	case t == "VARCHAR":
		return "STRING", nil
	case t == "BIGINT", t == "INTEGER", t == "SMALLINT", t == "TINYINT", t == "DOUBLE", t == "FLOAT", t == "DATE", t == "BOOLEAN":
		return t, nil
	case t == "HUGEINT":
		return "DECIMAL(38,0)", nil
	case t == "TIMESTAMP":
		return "TIMESTAMP_NTZ", nil
	case strings.HasPrefix(t, "DECIMAL("):
		return t, nil
	}
	return "", fmt.Errorf("no Spark type for DuckDB's %s", duckType)
}

// Stage creates temporary view name holding rows: each row's values as
// text (nil for NULL), cast to the columns' Spark types, then the row id
// column rid.
func Stage(ctx context.Context, db DB, name, rid string, cols []kalla.Column, rows [][]*string) error {
	sel := make([]string, 0, len(cols)+1)
	names := make([]string, 0, len(cols)+1)
	for i, c := range cols {
		sel = append(sel, fmt.Sprintf("CAST(c%d AS %s) AS %s", i, c.EngineType, dialect.SparkQuoteIdent(c.Name)))
		names = append(names, fmt.Sprintf("c%d", i))
	}
	sel = append(sel, fmt.Sprintf("CAST(c%d AS BIGINT) AS %s", len(cols), dialect.SparkQuoteIdent(rid)))
	names = append(names, fmt.Sprintf("c%d", len(cols)))
	var from string
	if len(rows) == 0 {
		nulls := make([]string, len(names))
		for i, n := range names {
			nulls[i] = "CAST(NULL AS STRING) AS " + n
		}
		from = "(SELECT " + strings.Join(nulls, ", ") + ") t WHERE false"
	} else {
		vals := make([]string, len(rows))
		for i, r := range rows {
			lits := make([]string, len(r))
			for j, v := range r {
				lits[j] = "CAST(NULL AS STRING)"
				if v != nil {
					lits[j] = dialect.SparkQuoteString(*v)
				}
			}
			vals[i] = "(" + strings.Join(lits, ", ") + ")"
		}
		from = "VALUES " + strings.Join(vals, ", ") + " AS t(" + strings.Join(names, ", ") + ")"
	}
	return db.Exec(ctx, fmt.Sprintf("CREATE OR REPLACE TEMPORARY VIEW %s AS SELECT %s FROM %s", dialect.SparkQuoteIdent(name), strings.Join(sel, ", "), from))
}
