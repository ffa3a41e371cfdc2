package kalla

import "strings"

// Column describes one column of a source as its own system reports it.
// DataType is the source's type name (for example "numeric(12,2)" in
// Postgres, "DECIMAL(18,2)" for an inferred CSV column); EngineType is the
// DuckDB type the column is staged as for a run.
type Column struct {
	Name       string `json:"name"`
	DataType   string `json:"data_type"`
	Nullable   bool   `json:"nullable"`
	EngineType string `json:"-"`
}

// FindColumn returns the index of the column named name, or -1. Names match
// exactly first; a unique case-insensitive match is accepted too, since SQL
// users rarely repeat the case of a header.
func FindColumn(cols []Column, name string) int {
	for i, c := range cols {
		if c.Name == name {
			return i
		}
	}
	found := -1
	for i, c := range cols {
		if strings.EqualFold(c.Name, name) {
			if found >= 0 {
				return -1
			}
			found = i
		}
	}
	return found
}

// ColumnNames lists the column names for messages, comma separated.
func ColumnNames(cols []Column) string {
	names := make([]string, len(cols))
	for i, c := range cols {
		names[i] = c.Name
	}
	return strings.Join(names, ", ")
}
