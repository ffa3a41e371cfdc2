package rules

import (
	"regexp"
	"strconv"
	"strings"

	"github.com/kalla-recon/kalla/internal/kalla"
)

// class is what the compiler needs to know of a column's type.
type class int

const (
	classText class = iota
	classInt
	classDecimal
	classFloat
	classDate
	classTimestamp
	classBool
	classOther
)

var decimalType = regexp.MustCompile(`^DECIMAL\((\d+),\s*(\d+)\)$`)

// classify reads an engine type name (DuckDB's or Spark's spelling).
func classify(engineType string) (class, int) {
	t := strings.ToUpper(strings.TrimSpace(engineType))
	if m := decimalType.FindStringSubmatch(t); m != nil {
		s, _ := strconv.Atoi(m[2])
		return classDecimal, s
	}
	switch t {
	case "VARCHAR", "TEXT", "STRING", "", "NULL":
		return classText, 0
	case "TINYINT", "SMALLINT", "INTEGER", "BIGINT", "HUGEINT", "UTINYINT", "USMALLINT", "UINTEGER", "UBIGINT", "UHUGEINT",
		"INT", "LONG", "SHORT", "BYTE": // the last four: Spark's names
		return classInt, 0
	case "FLOAT", "DOUBLE", "REAL":
		return classFloat, 10
	case "DATE":
		return classDate, 0
	case "BOOLEAN":
		return classBool, 0
	}
	if strings.HasPrefix(t, "TIMESTAMP") {
		return classTimestamp, 0
	}
	if strings.HasPrefix(t, "DECIMAL") || strings.HasPrefix(t, "NUMERIC") {
		return classDecimal, 10
	}
	return classOther, 0
}

func (c class) numeric() bool { return c == classInt || c == classDecimal || c == classFloat }

// column is a resolved column of one side.
type column struct {
	kalla.Column
	class class
	scale int
}

// Kind tells what the rules compiler makes of an engine type: "text",
// "number", "date" (dates and timestamps), or "other". Recipe suggestions
// use it to propose only conditions the compiler accepts.
func Kind(engineType string) string {
	switch c, _ := classify(engineType); {
	case c == classText:
		return "text"
	case c.numeric():
		return "number"
	case c == classDate || c == classTimestamp:
		return "date"
	}
	return "other"
}
