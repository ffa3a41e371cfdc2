package dialect

import (
	"strings"

	"github.com/kalla-recon/kalla/internal/kalla"
)

// class is what Where needs to know about a column's type: how a filter
// value is checked in Go and which fixed cast, if any, it is bound through.
// Type names read from metadata are only ever classified, never written into
// SQL.
type class int

const (
	classOther       class = iota // bound as text; the server infers or converts
	classText                     // character types
	classInteger                  // integer types of any width
	classDecimal                  // exact decimals (numeric, decimal)
	classFloat                    // binary floating point
	classBool                     // booleans
	classDate                     // calendar dates
	classTimestamp                // timestamps without time zone (MySQL DATETIME and TIMESTAMP)
	classTimestampTZ              // timestamps with time zone
	classUUID                     // uuid
	classJSON                     // json, jsonb
)

// colType is a classified column type.
type colType struct {
	class class
	// name is the type as the source reported it, for error messages.
	name string
	// jsonb is set for Postgres jsonb, which has comparison operators of its
	// own; plain json has none and is compared as jsonb.
	jsonb bool
	// boolInt is set for MySQL's BOOLEAN, which is TINYINT(1): it takes
	// "true" and "false" as well as numbers.
	boolInt bool
}

// typeName returns the type name Where classifies for c in dialect d:
// DuckDB columns are compared in the engine, so their EngineType counts
// (DataType when EngineType is empty, as for file sources typed by DuckDB
// itself); Postgres and MySQL columns are compared in the source, so their
// DataType counts.
func (d Dialect) typeName(c kalla.Column) string {
	if d == DuckDB && strings.TrimSpace(c.EngineType) != "" {
		return c.EngineType
	}
	return c.DataType
}

// classify maps a type name as reported by information_schema, format_type,
// SHOW COLUMNS or DuckDB's DESCRIBE to a class. Unknown names (arrays,
// enums, intervals, user-defined types) are classOther.
func (d Dialect) classify(c kalla.Column) colType {
	name := d.typeName(c)
	t := colType{name: name}
	n := strings.ToLower(strings.TrimSpace(name))
	if strings.HasSuffix(n, "]") || strings.HasPrefix(n, "array") || strings.HasPrefix(n, "_") {
		return t // arrays: int4[], INTEGER[3], ARRAY, _int4
	}
	if d == MySQL && (strings.HasPrefix(n, "tinyint(1)") || n == "bool" || n == "boolean") {
		t.class, t.boolInt = classInteger, true
		return t
	}
	// Drop the type modifier and MySQL's attributes: numeric(12,2) -> numeric,
	// int(11) unsigned -> int, timestamp(3) with time zone -> timestamp with time zone.
	if i := strings.IndexByte(n, '('); i >= 0 {
		if j := strings.IndexByte(n[i:], ')'); j >= 0 {
			n = n[:i] + n[i+j+1:]
		} else {
			n = n[:i]
		}
	}
	n = strings.Join(strings.Fields(n), " ")
	for _, attr := range []string{" unsigned", " signed", " zerofill"} {
		n = strings.ReplaceAll(n, attr, "")
	}
	switch n {
	case "text", "varchar", "character varying", "char", "character", "bpchar", "citext", "name",
		"string", "nvarchar", "nchar", "national character", "national character varying",
		"tinytext", "mediumtext", "longtext", "enum", "set":
		t.class = classText
	case "smallint", "integer", "int", "bigint", "int2", "int4", "int8", "tinyint", "mediumint",
		"int1", "int16", "int32", "int64", "int128", "hugeint", "uhugeint", "utinyint", "usmallint",
		"uinteger", "ubigint", "smallserial", "serial", "bigserial", "serial2", "serial4", "serial8",
		"long", "short", "signed", "byteint":
		t.class = classInteger
	case "numeric", "decimal", "dec", "fixed":
		t.class = classDecimal
	case "real", "float4", "float8", "float", "double", "double precision":
		t.class = classFloat
	case "boolean", "bool", "logical":
		t.class = classBool
	case "date":
		t.class = classDate
	case "timestamp", "timestamp without time zone", "datetime", "timestamp_s", "timestamp_ms",
		"timestamp_us", "timestamp_ns":
		t.class = classTimestamp
	case "timestamptz", "timestamp with time zone":
		t.class = classTimestampTZ
		if d == MySQL {
			t.class = classTimestamp // MySQL has no such type; be safe if one is reported.
		}
	case "uuid":
		t.class = classUUID
	case "json":
		t.class = classJSON
	case "jsonb":
		t.class, t.jsonb = classJSON, d == Postgres
	}
	return t
}
