package mysql

import (
	"fmt"
	"strings"

	"github.com/kalla-recon/kalla/internal/dialect"
)

// kind says how Stage decodes a column's text.
type kind uint8

const (
	kText     kind = iota // text as is
	kInt                  // signed integer of any width
	kUint                 // unsigned integer of any width
	kFloat32              // float
	kFloat64              // double
	kDecimal              // decimal with a DECIMAL(p,s) the engine can hold
	kDate                 // date
	kDateTime             // datetime or timestamp
	kUUID                 // MariaDB uuid
)

// colMeta is one row of information_schema.COLUMNS.
type colMeta struct {
	name       string
	dataType   string // DATA_TYPE, lower case
	columnType string // COLUMN_TYPE
	nullable   bool
	precision  *int64
	scale      *int64
}

// plan is how one column is described and staged.
type plan struct {
	name       string
	engineType string
	kind       kind
	expr       string // what Stage and Sample select
	measure    bool   // decimal too wide for the catalog to decide (see doc.go)
	width      int
	scale      int
}

// planFor maps a column's MySQL type to how it is staged.
func planFor(m colMeta) plan {
	col := dialect.MySQL.QuoteIdent(m.name)
	p := plan{name: m.name, expr: col}
	unsigned := strings.Contains(strings.ToLower(m.columnType), "unsigned")
	intType := func(signed, uns string) {
		p.kind, p.engineType = kInt, signed
		if unsigned {
			p.kind, p.engineType = kUint, uns
		}
	}
	switch m.dataType {
	case "tinyint":
		intType("TINYINT", "UTINYINT")
	case "smallint":
		intType("SMALLINT", "USMALLINT")
	case "mediumint", "int", "integer":
		intType("INTEGER", "UINTEGER")
	case "bigint":
		intType("BIGINT", "UBIGINT")
	case "decimal", "numeric":
		if m.precision != nil && m.scale != nil {
			prec, sc := int(*m.precision), int(*m.scale)
			p.kind, p.scale = kDecimal, sc
			if prec >= 1 && prec <= 38 && sc <= prec {
				p.width, p.engineType = prec, fmt.Sprintf("DECIMAL(%d,%d)", prec, sc)
				break
			}
			p.width, p.measure, p.engineType = 38, true, fmt.Sprintf("DECIMAL(38,%d)", sc)
			break
		}
		p.kind, p.engineType, p.expr = kText, "VARCHAR", "CAST("+col+" AS CHAR)"
	case "float":
		p.kind, p.engineType = kFloat32, "FLOAT"
	case "double", "real":
		p.kind, p.engineType = kFloat64, "DOUBLE"
	case "char", "varchar", "tinytext", "text", "mediumtext", "longtext", "enum", "set", "json":
		p.kind, p.engineType = kText, "VARCHAR"
	case "date":
		p.kind, p.engineType = kDate, "DATE"
	case "datetime":
		p.kind, p.engineType = kDateTime, "TIMESTAMP"
	case "timestamp":
		p.kind, p.engineType = kDateTime, "TIMESTAMPTZ"
	case "year":
		p.kind, p.engineType = kInt, "SMALLINT"
	case "bit":
		p.kind, p.engineType, p.expr = kUint, "UBIGINT", "("+col+" + 0)"
	case "uuid":
		p.kind, p.engineType = kUUID, "UUID"
	case "binary", "varbinary", "tinyblob", "blob", "mediumblob", "longblob":
		p.kind, p.engineType, p.expr = kText, "VARCHAR", "HEX("+col+")"
	default:
		p.kind, p.engineType, p.expr = kText, "VARCHAR", "CAST("+col+" AS CHAR)"
	}
	return p
}

// parseTable splits a ?table= value into database and table: "payments",
// "billing.payments", or with backquoted parts (`my.db`.`my“table`) whose
// doubled backquotes stand for one.
func parseTable(s string) (db, table string, err error) {
	parts, err := dialect.MySQL.SplitQualified(s)
	if err != nil {
		return "", "", fmt.Errorf("table name: %w", err)
	}
	switch len(parts) {
	case 1:
		return "", parts[0], nil
	case 2:
		return parts[0], parts[1], nil
	}
	return "", "", fmt.Errorf("table name %q has more than two parts (use db.table)", s)
}
