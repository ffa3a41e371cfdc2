package rules

import (
	"database/sql"
	"errors"
	"fmt"
)

// Values is one row of a result that arrives as Go values (a Spark Connect
// session's rows) rather than through database/sql. It implements Row,
// scanning the values the way database/sql scans DuckDB's, so a plan reads
// counts, scores and texts alike on every engine.
type Values []any

// Scan copies the row's values into dest: strings, integers and floats
// (and their sql.Null forms, for NULL).
func (r Values) Scan(dest ...any) error {
	if len(dest) != len(r) {
		return fmt.Errorf("scan %d columns into %d values", len(r), len(dest))
	}
	for i, v := range r {
		if err := assign(dest[i], v); err != nil {
			return fmt.Errorf("column %d: %w", i, err)
		}
	}
	return nil
}

func assign(dest, v any) error {
	switch d := dest.(type) {
	case *sql.NullString:
		if v == nil {
			*d = sql.NullString{}
			return nil
		}
		s, ok := v.(string)
		if !ok {
			return fmt.Errorf("%T is not a string", v)
		}
		*d = sql.NullString{String: s, Valid: true}
		return nil
	case *sql.NullFloat64:
		if v == nil {
			*d = sql.NullFloat64{}
			return nil
		}
		f, err := toFloat(v)
		*d = sql.NullFloat64{Float64: f, Valid: err == nil}
		return err
	case *sql.NullInt64:
		if v == nil {
			*d = sql.NullInt64{}
			return nil
		}
		n, err := toInt(v)
		*d = sql.NullInt64{Int64: n, Valid: err == nil}
		return err
	case *string:
		s, ok := v.(string)
		if !ok {
			return fmt.Errorf("%T is not a string", v)
		}
		*d = s
		return nil
	case *float64:
		f, err := toFloat(v)
		*d = f
		return err
	case *int64:
		n, err := toInt(v)
		*d = n
		return err
	case *int:
		n, err := toInt(v)
		*d = int(n)
		return err
	}
	return fmt.Errorf("cannot scan into %T", dest)
}

func toInt(v any) (int64, error) {
	switch x := v.(type) {
	case int64:
		return x, nil
	case int32:
		return int64(x), nil
	case int16:
		return int64(x), nil
	case int8:
		return int64(x), nil
	case nil:
		return 0, errors.New("NULL is not an integer")
	}
	return 0, fmt.Errorf("%T is not an integer", v)
}

func toFloat(v any) (float64, error) {
	switch x := v.(type) {
	case float64:
		return x, nil
	case float32:
		return float64(x), nil
	case nil:
		return 0, errors.New("NULL is not a number")
	}
	if n, err := toInt(v); err == nil {
		return float64(n), nil
	}
	return 0, fmt.Errorf("%T is not a number", v)
}
