package postgres

import (
	"fmt"

	"github.com/kalla-recon/kalla/internal/dialect"
)

// kind says how Stage reads one column: which expression it selects and
// how it decodes the binary value Postgres sends for it.
type kind uint8

const (
	kText        kind = iota // text bytes (text, varchar, or anything cast to text)
	kBool                    // boolean
	kInt2                    // smallint
	kInt4                    // integer
	kInt8                    // bigint
	kFloat4                  // real
	kFloat8                  // double precision
	kNumeric                 // numeric with a DECIMAL(p,s) the engine can hold
	kDate                    // date
	kTimestamp               // timestamp without time zone
	kTimestampTZ             // timestamp with time zone
	kUUID                    // uuid
)

// nominalNumeric is the EngineType Columns reports for a numeric whose
// staging type is only decided by measuring the data (see doc.go).
const nominalNumeric = "DECIMAL(38,10)"

// colMeta is one row of information_schema.columns.
type colMeta struct {
	name      string
	dataType  string // information_schema data_type
	udtName   string
	nullable  bool
	precision *int32 // numeric_precision
	scale     *int32 // numeric_scale
}

// plan is how one column is described and staged.
type plan struct {
	name       string
	dataType   string // as reported to users
	engineType string // DuckDB type it is staged as
	kind       kind
	cast       bool // select CAST(col AS text) rather than the column itself
	// measure is set for numeric columns with no usable precision: Stage
	// measures their values before choosing engineType (see doc.go).
	measure bool
	// asNumeric selects CAST(col AS numeric) (money), so that the value is
	// the amount and not the locale's currency text.
	asNumeric bool
	width     int // DECIMAL width, for kNumeric
	scale     int // DECIMAL scale, for kNumeric
}

// planFor maps a column's Postgres type to how it is staged.
func planFor(m colMeta) plan {
	p := plan{name: m.name, dataType: m.dataType}
	switch m.dataType {
	case "ARRAY", "USER-DEFINED":
		p.dataType = m.udtName
	}
	switch m.dataType {
	case "smallint":
		p.kind, p.engineType = kInt2, "SMALLINT"
	case "integer":
		p.kind, p.engineType = kInt4, "INTEGER"
	case "bigint":
		p.kind, p.engineType = kInt8, "BIGINT"
	case "real":
		p.kind, p.engineType = kFloat4, "FLOAT"
	case "double precision":
		p.kind, p.engineType = kFloat8, "DOUBLE"
	case "numeric":
		if m.precision != nil && m.scale != nil {
			p.dataType = fmt.Sprintf("numeric(%d,%d)", *m.precision, *m.scale)
			if prec, sc := int(*m.precision), int(*m.scale); prec >= 1 && prec <= 38 && sc >= 0 && sc <= prec {
				p.kind, p.engineType, p.width, p.scale = kNumeric, fmt.Sprintf("DECIMAL(%d,%d)", prec, sc), prec, sc
				break
			}
		}
		p.kind, p.engineType, p.measure = kNumeric, nominalNumeric, true
	case "money":
		p.kind, p.engineType, p.measure, p.asNumeric = kNumeric, nominalNumeric, true, true
	case "text", "character varying", "name":
		p.kind, p.engineType = kText, "VARCHAR"
	case "boolean":
		p.kind, p.engineType = kBool, "BOOLEAN"
	case "date":
		p.kind, p.engineType = kDate, "DATE"
	case "timestamp without time zone":
		p.kind, p.engineType = kTimestamp, "TIMESTAMP"
	case "timestamp with time zone":
		p.kind, p.engineType = kTimestampTZ, "TIMESTAMPTZ"
	case "uuid":
		p.kind, p.engineType = kUUID, "UUID"
	default:
		// character(n), json, jsonb, time, interval, bytea, inet, arrays,
		// enums and every other type: Postgres's own text.
		p.kind, p.engineType, p.cast = kText, "VARCHAR", true
	}
	return p
}

// selectExpr is the expression Stage selects for the column.
func (p plan) selectExpr() string {
	col := dialect.Postgres.QuoteIdent(p.name)
	switch {
	case p.asNumeric:
		return "CAST(" + col + " AS numeric)"
	case p.cast:
		return "CAST(" + col + " AS text)"
	}
	return col
}

// textExpr is the expression Sample selects: Postgres's text form.
func (p plan) textExpr() string {
	col := dialect.Postgres.QuoteIdent(p.name)
	if p.asNumeric {
		col = "CAST(" + col + " AS numeric)"
	}
	return "CAST(" + col + " AS text)"
}

// parseTable splits a ?table= value into schema and table: "invoices",
// "billing.invoices", or with double-quoted parts ("Billing"."My.Table")
// whose doubled quotes stand for one.
func parseTable(s string) (schema, table string, err error) {
	parts, err := dialect.Postgres.SplitQualified(s)
	if err != nil {
		return "", "", fmt.Errorf("table name: %w", err)
	}
	switch len(parts) {
	case 1:
		return "", parts[0], nil
	case 2:
		return parts[0], parts[1], nil
	}
	return "", "", fmt.Errorf("table name %q has more than two parts (use schema.table)", s)
}
