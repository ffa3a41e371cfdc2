// Package plainsql runs the hand-written DuckDB baselines of Kalla's
// benchmarks (commands plainduck and plainrules): a fixed list of SQL
// statements over gen's invoice and payment files, each timed, with the
// counts a reconciliation produces printed as JSON on standard output.
// The baselines differ only in their statements; this package is the
// rest, so both are timed and reported the same way.
package plainsql

import (
	"context"
	"database/sql"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"strings"
	"time"

	_ "github.com/duckdb/duckdb-go/v2"
)

// Result is what a baseline prints: the counts its reconciliation produced
// and the wall time of each statement.
type Result struct {
	Invoices       int64  `json:"invoices"`
	Payments       int64  `json:"payments"`
	MatchedPairs   int64  `json:"matched_pairs"`
	UnmatchedLeft  int64  `json:"unmatched_left"`
	UnmatchedRight int64  `json:"unmatched_right"`
	Steps          []Step `json:"steps"`
	DurationMS     int64  `json:"duration_ms"`
}

// Step is the wall time of one SQL statement.
type Step struct {
	Name       string  `json:"name"`
	DurationMS float64 `json:"duration_ms"`
}

// Statement is one timed statement of a baseline.
type Statement struct {
	Name, SQL string
	// Table, when set, names the table the statement creates: CREATE TABLE
	// AS reports no rows, so its row count is read from the table, a cheap
	// metadata read timed with the statement. Otherwise the rows are the
	// ones the statement reports (a COPY's).
	Table string
	// Count, when set, names the Result count that receives the rows, by
	// its JSON name ("invoices", "matched_pairs", ...).
	Count string
}

// field is the Result count named by its JSON name.
func (r *Result) field(name string) (*int64, error) {
	switch name {
	case "invoices":
		return &r.Invoices, nil
	case "payments":
		return &r.Payments, nil
	case "matched_pairs":
		return &r.MatchedPairs, nil
	case "unmatched_left":
		return &r.UnmatchedLeft, nil
	case "unmatched_right":
		return &r.UnmatchedRight, nil
	}
	return nil, fmt.Errorf("no count named %q", name)
}

// Main is a baseline's main: it reads -invoices, -payments and -out,
// runs the statements plan makes for them and prints the Result, or says
// what failed and exits 1 (2 for bad usage).
func Main(name string, plan func(invoices, payments, out string) []Statement) {
	invoices := flag.String("invoices", "", "invoices CSV (gen's layout)")
	payments := flag.String("payments", "", "payments CSV (gen's layout)")
	out := flag.String("out", "", "folder for the Parquet outputs")
	memoryLimit := flag.String("memory-limit", "", "DuckDB memory_limit (default: DuckDB's, 80% of RAM)")
	tempDir := flag.String("temp-dir", "", "DuckDB temp_directory to spill to (default: DuckDB's)")
	flag.Parse()
	if *invoices == "" || *payments == "" || *out == "" {
		fmt.Fprintf(os.Stderr, "usage: %s -invoices FILE -payments FILE -out DIR\n", name)
		os.Exit(2)
	}
	var settings []string
	if *memoryLimit != "" {
		settings = append(settings, "SET memory_limit = '"+strings.ReplaceAll(*memoryLimit, "'", "''")+"'")
	}
	if *tempDir != "" {
		settings = append(settings, "SET temp_directory = '"+strings.ReplaceAll(*tempDir, "'", "''")+"'")
	}
	res, err := RunWith(context.Background(), *out, settings, plan(*invoices, *payments, *out))
	if err == nil {
		enc := json.NewEncoder(os.Stdout)
		enc.SetIndent("", "  ")
		err = enc.Encode(res)
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "%s: %v\n", name, err)
		os.Exit(1)
	}
}

// Run creates out and runs the statements in order in a fresh in-memory
// DuckDB database with its default settings.
func Run(ctx context.Context, out string, statements []Statement) (*Result, error) {
	return RunWith(ctx, out, nil, statements)
}

// RunWith is Run with settings (SET statements, untimed) applied first:
// the scale benchmark gives the baseline the same memory limit and spill
// folder as Kalla.
func RunWith(ctx context.Context, out string, settings []string, statements []Statement) (*Result, error) {
	start := time.Now()
	if err := os.MkdirAll(out, 0o755); err != nil {
		return nil, err
	}
	db, err := sql.Open("duckdb", "")
	if err != nil {
		return nil, err
	}
	defer db.Close()
	// One connection: the tables live in one in-memory database either way,
	// and one connection keeps the statements strictly in order.
	conn, err := db.Conn(ctx)
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	for _, q := range settings {
		if _, err := conn.ExecContext(ctx, q); err != nil {
			return nil, fmt.Errorf("%s: %w", q, err)
		}
	}
	res := &Result{}
	for _, s := range statements {
		t0 := time.Now()
		r, err := conn.ExecContext(ctx, s.SQL)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", s.Name, err)
		}
		var n int64
		if s.Table != "" {
			err = conn.QueryRowContext(ctx, "SELECT count(*) FROM "+s.Table).Scan(&n)
		} else {
			n, err = r.RowsAffected()
		}
		if err != nil {
			return nil, fmt.Errorf("%s: count rows: %w", s.Name, err)
		}
		res.Steps = append(res.Steps, Step{Name: s.Name, DurationMS: float64(time.Since(t0).Microseconds()) / 1000})
		if s.Count != "" {
			f, err := res.field(s.Count)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", s.Name, err)
			}
			*f = n
		}
	}
	res.DurationMS = time.Since(start).Milliseconds()
	return res, nil
}
