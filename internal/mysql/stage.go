package mysql

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"strings"

	"github.com/kalla-recon/kalla/internal/connector"
	"github.com/kalla-recon/kalla/internal/dialect"
	"github.com/kalla-recon/kalla/internal/kalla"
)

// Stage streams every row matching the filters into the sink, in one
// REPEATABLE READ, READ ONLY transaction whose statement is limited to
// StageTimeout. Rows are decoded from the server's text and appended one
// at a time as they arrive (in one goroutine, as package postgres measured
// best), so the table is never held in Go memory.
// Cancelling ctx stops the read. Errors: EINVALID for a bad filter or a
// value DuckDB cannot hold (a zero date), EUNAVAILABLE when the server
// fails or the statement times out, ctx.Err() when cancelled.
func (s *Source) Stage(ctx context.Context, filters []kalla.Filter, sink connector.Sink) (int64, error) {
	where, args, err := dialect.MySQL.WhereFor(s.name, filters, s.cols, 1)
	if err != nil {
		return 0, err
	}
	var n int64
	err = s.withTx(ctx, true, func(tx *sql.Tx) error {
		plans, err := s.measure(ctx, tx, where, args)
		if err != nil {
			return err
		}
		cols := make([]kalla.Column, len(plans))
		exprs := make([]string, len(plans))
		decs := make([]decoder, len(plans))
		for i, p := range plans {
			cols[i] = s.cols[i]
			cols[i].EngineType = p.engineType
			exprs[i] = p.expr
			decs[i] = decoder{kind: p.kind, width: uint8(p.width), scale: p.scale}
		}
		// The query has its own context so that a failure while appending
		// stops it; closing the rows would read them all.
		qctx, cancel := context.WithCancel(ctx)
		defer cancel()
		rows, err := tx.QueryContext(qctx, s.limit("SELECT "+strings.Join(exprs, ", ")+" FROM "+s.from+where, s.opts.StageTimeout), args...)
		if err != nil {
			return err
		}
		n, err = sink.Append(ctx, cols, func(w connector.RowWriter) error {
			raw := make([]sql.RawBytes, len(decs))
			dest := make([]any, len(raw))
			for i := range raw {
				dest[i] = &raw[i]
			}
			vals := make([]driver.Value, len(decs))
			for rows.Next() {
				if err := rows.Scan(dest...); err != nil {
					return err
				}
				// Values alias the driver's buffer, valid until the next
				// row: the appender copies them in WriteRow.
				for i, b := range raw {
					v, err := decs[i].decode(b)
					if err != nil {
						return valueError(s.name, plans[i], b, err)
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

// measure decides the staging type of decimal columns wider than DuckDB's
// 38 digits: DECIMAL(38,s) when every value to be staged fits, else
// VARCHAR holding the exact text.
func (s *Source) measure(ctx context.Context, tx *sql.Tx, where string, args []any) ([]plan, error) {
	plans := append([]plan(nil), s.plans...)
	var idx []int
	var sel []string
	for i, p := range plans {
		if p.measure {
			idx = append(idx, i)
			sel = append(sel, "MAX(LENGTH(SUBSTRING_INDEX(TRIM(LEADING '-' FROM CAST("+p.expr+" AS CHAR)), '.', 1)))")
		}
	}
	if len(idx) == 0 {
		return plans, nil
	}
	digits := make([]sql.NullInt64, len(idx))
	dest := make([]any, len(idx))
	for k := range idx {
		dest[k] = &digits[k]
	}
	if err := tx.QueryRowContext(ctx, s.limit("SELECT "+strings.Join(sel, ", ")+" FROM "+s.from+where, s.opts.StageTimeout), args...).Scan(dest...); err != nil {
		return nil, fmt.Errorf("measure decimal columns: %w", err)
	}
	for k, i := range idx {
		p := &plans[i]
		p.measure = false
		if digits[k].Valid && int(digits[k].Int64)+p.scale > 38 {
			p.kind, p.engineType = kText, "VARCHAR"
			p.expr = "CAST(" + p.expr + " AS CHAR)"
			s.log.Warn("decimal column staged as text to keep every digit", "source", s.name, "column", p.name)
		}
	}
	return plans, nil
}

// valueError explains a value that cannot be staged.
func valueError(name string, p plan, raw []byte, err error) error {
	if errors.Is(err, errZeroDate) {
		return kalla.Errorf(kalla.EINVALID, "source %s: column %q holds %q, which is not a date DuckDB's %s can hold", name, p.name, raw, p.engineType)
	}
	return kalla.WrapError(kalla.EINTERNAL, err, "source %s: column %q: cannot read %q as %s", name, p.name, raw, p.engineType)
}
