package postgres

import (
	"context"
	"database/sql/driver"
	"errors"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/kalla-recon/kalla/internal/connector"
	"github.com/kalla-recon/kalla/internal/dialect"
	"github.com/kalla-recon/kalla/internal/kalla"
)

// Stage streams every row matching the filters into the sink: one
// REPEATABLE READ, READ ONLY transaction with StageTimeout as its statement
// timeout. Rows arrive in binary form, are decoded in Go to the values
// DuckDB's appender takes, and are appended one at a time as they come, so
// only pgx's read buffer of the table is ever in Go memory. Cancelling ctx
// stops the query on the server.
//
// Reading and appending run in one goroutine: a reading goroutine feeding
// the appender through batches was measured (BenchmarkStage1M) and was no
// faster, since the server, pgx and DuckDB's appender already keep two
// cores busy. Errors: EINVALID for a bad filter or a value DuckDB
// cannot hold (NaN or infinity, see doc.go), EUNAVAILABLE when the server
// fails or the statement times out, ctx.Err() when cancelled.
func (s *Source) Stage(ctx context.Context, filters []kalla.Filter, sink connector.Sink) (int64, error) {
	where, args, err := dialect.Postgres.WhereFor(s.name, filters, s.cols, 1)
	if err != nil {
		return 0, err
	}
	if err := checkNames(s.name, s.cols); err != nil {
		return 0, err
	}
	var n int64
	err = s.withTx(ctx, s.opts.StageTimeout, true, false, func(conn *pgx.Conn) error {
		plans, err := s.measure(ctx, conn, where, args)
		if err != nil {
			return err
		}
		cols := make([]kalla.Column, len(plans))
		exprs := make([]string, len(plans))
		formats := make(pgx.QueryResultFormats, len(plans))
		decs := make([]decoder, len(plans))
		for i, p := range plans {
			cols[i] = s.cols[i]
			cols[i].EngineType = p.engineType
			exprs[i] = p.selectExpr()
			formats[i] = pgx.BinaryFormatCode
			decs[i] = newDecoder(p)
		}
		// The query has its own context so that a failure while appending
		// stops it on the server; closing the rows would read them all.
		qctx, cancel := context.WithCancel(ctx)
		defer cancel()
		q := "SELECT " + strings.Join(exprs, ", ") + " FROM " + s.from + where
		rows, err := conn.Query(qctx, q, append([]any{formats}, args...)...)
		if err != nil {
			return err
		}
		n, err = sink.Append(ctx, cols, func(w connector.RowWriter) error {
			vals := make([]driver.Value, len(decs))
			for rows.Next() {
				// Values alias the row's buffer, valid until the next
				// row: the appender copies them in WriteRow.
				for i, raw := range rows.RawValues() {
					v, err := decs[i].decode(raw)
					if err != nil {
						return valueError(s.name, plans[i], err)
					}
					vals[i] = v
				}
				if err := w.WriteRow(vals...); err != nil {
					return err
				}
			}
			return rows.Err()
		})
		if err != nil {
			cancel()
		}
		rows.Close()
		return err
	})
	if err != nil {
		return n, s.fail(ctx, err, "stage rows")
	}
	return n, nil
}

// measure decides the staging type of the numeric columns whose catalog
// type gives no usable precision (see doc.go), by reading the widest
// integer part and the longest fraction among the rows to be staged, in
// the transaction's snapshot. It returns the plans to stage with.
func (s *Source) measure(ctx context.Context, conn *pgx.Conn, where string, args []any) ([]plan, error) {
	plans := append([]plan(nil), s.plans...)
	var idx []int
	var sel []string
	for i, p := range plans {
		if !p.measure {
			continue
		}
		t := p.textExpr()
		idx = append(idx, i)
		sel = append(sel,
			"max(length(split_part(ltrim("+t+", '-'), '.', 1)))",
			"max(length(split_part("+t+", '.', 2)))",
			"coalesce(bool_or("+t+" IN ('NaN', 'Infinity', '-Infinity')), false)")
	}
	if len(idx) == 0 {
		return plans, nil
	}
	intDigits := make([]*int32, len(idx))
	scales := make([]*int32, len(idx))
	special := make([]bool, len(idx))
	dest := make([]any, 0, 3*len(idx))
	for k := range idx {
		dest = append(dest, &intDigits[k], &scales[k], &special[k])
	}
	if err := conn.QueryRow(ctx, "SELECT "+strings.Join(sel, ", ")+" FROM "+s.from+where, args...).Scan(dest...); err != nil {
		return nil, fmt.Errorf("measure numeric columns: %w", err)
	}
	for k, i := range idx {
		p := &plans[i]
		p.measure = false
		if intDigits[k] == nil || scales[k] == nil {
			// No values: any exact type will do.
			p.kind, p.width, p.scale = kNumeric, 38, 10
			p.engineType = nominalNumeric
			continue
		}
		id, sc := int(*intDigits[k]), int(*scales[k])
		if special[k] || id+sc > 38 {
			p.kind, p.engineType, p.cast = kText, "VARCHAR", true
			why := "more than 38 digits"
			if special[k] {
				why = "NaN or Infinity"
			}
			s.log.Warn("numeric column staged as text to keep every digit", "source", s.name, "column", p.name, "reason", why)
			continue
		}
		p.kind, p.width, p.scale = kNumeric, 38, sc
		p.engineType = fmt.Sprintf("DECIMAL(38,%d)", sc)
	}
	return plans, nil
}

// valueError explains a value that cannot be staged.
func valueError(name string, p plan, err error) error {
	switch {
	case errors.Is(err, errNaN):
		return kalla.Errorf(kalla.EINVALID, "source %s: column %q holds NaN, which DuckDB's %s cannot hold", name, p.name, p.engineType)
	case errors.Is(err, errInf):
		return kalla.Errorf(kalla.EINVALID, "source %s: column %q holds infinity, which DuckDB's %s cannot hold", name, p.name, p.engineType)
	}
	return kalla.WrapError(kalla.EINTERNAL, err, "source %s: column %q: cannot decode a %s value", name, p.name, p.dataType)
}

// checkNames refuses columns whose names differ only in case: Postgres
// tells "Name" from "name", DuckDB does not, so such a table cannot be
// staged as it is.
func checkNames(name string, cols []kalla.Column) error {
	seen := make(map[string]string, len(cols))
	for _, c := range cols {
		k := strings.ToLower(c.Name)
		if prev, dup := seen[k]; dup {
			return kalla.Errorf(kalla.EINVALID, "source %s: columns %q and %q differ only in case, which the engine cannot tell apart: stage a view that renames one", name, prev, c.Name)
		}
		seen[k] = c.Name
	}
	return nil
}
