package engine_test

import (
	"bytes"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/kalla-recon/kalla/internal/engine"
	"github.com/kalla-recon/kalla/internal/file"
	"github.com/kalla-recon/kalla/internal/kalla"
)

// TestStagedOnFirstRows runs reconciliations of CSV files whose first
// rows (the first 1,000, which a file is staged on while its scan proves
// the rest in the background) tell something the rest of the file does
// not: a wider scale, a number written with a leading zero, keys out of
// order and repeated, a NUL byte, bytes that are not UTF-8, a line that
// ends with the delimiter. Each run must end as a run proving every file
// before staging it ends (the same values, warnings or error), and say in
// its log that it staged again (unless DuckDB refuses the file on its own
// first, and the load reports what the scan found); a file that holds what its first rows
// show must not make it stage again, nor a run under a memory limit,
// where every file proves before it stages.
func TestStagedOnFirstRows(t *testing.T) {
	// Past the first rows and past what DuckDB's sniffer reads (its 2 MB
	// buffer: see the file package), which would see the line otherwise.
	const rows = 200_000
	const odd = 150_000 // the line that differs
	// left is the invoices file, id and amount, with line odd (1-based,
	// the header is line 1) written by at when it returns something.
	left := func(at func(i int) string) string {
		var b strings.Builder
		b.WriteString("id,amount,note\n")
		for i := 2; i <= rows+1; i++ {
			if s := at(i); s != "" {
				b.WriteString(s)
				continue
			}
			fmt.Fprintf(&b, "L%06d,%d.%02d,n\n", i, 10+i%90, i%100)
		}
		return b.String()
	}
	plain := func(int) string { return "" }
	// with is the file with line odd written as line, its own id for
	// "{id}".
	with := func(line string) string {
		return left(func(i int) string {
			if i == odd {
				return strings.ReplaceAll(line, "{id}", fmt.Sprintf("L%06d", i))
			}
			return ""
		})
	}
	cases := []struct {
		name  string
		left  string
		limit string // the run's memory limit: under one, files prove first
		again bool   // the run must stage again
		err   string // the run's error, "" for none
		check func(t *testing.T, sum *kalla.Summary, out string)
	}{
		{name: "first rows hold", left: left(plain), check: func(t *testing.T, sum *kalla.Summary, out string) {
			if sum.LeftCount != rows {
				t.Errorf("left count %d, want %d", sum.LeftCount, rows)
			}
		}},
		{name: "wider scale", again: true, left: with("{id},12.345,n\n"), check: func(t *testing.T, sum *kalla.Summary, out string) {
			// DuckDB would have read 12.345 into DECIMAL(18,2) as 12.35.
			if got := unmatchedValue(t, out, fmt.Sprintf("L%06d", odd), "amount"); got != "12.345" {
				t.Errorf("amount of line %d = %q, want 12.345", odd, got)
			}
		}},
		{name: "wider scale, under a memory limit", limit: "1GB", left: with("{id},12.345,n\n"), check: func(t *testing.T, sum *kalla.Summary, out string) {
			if got := unmatchedValue(t, out, fmt.Sprintf("L%06d", odd), "amount"); got != "12.345" {
				t.Errorf("amount of line %d = %q, want 12.345", odd, got)
			}
		}},
		{name: "leading zero", again: true, left: with("{id},007,n\n"), check: func(t *testing.T, sum *kalla.Summary, out string) {
			if got := unmatchedValue(t, out, fmt.Sprintf("L%06d", odd), "amount"); got != "007" {
				t.Errorf("amount of line %d = %q, want the text 007", odd, got)
			}
		}},
		{name: "repeated key out of order", again: true, left: with("L000005,1.00,n\n"), check: func(t *testing.T, sum *kalla.Summary, out string) {
			var dups int64
			for _, w := range sum.Warnings {
				if w.Code == kalla.WarnDuplicateKeys && w.Side == "left" {
					dups = w.Count
				}
			}
			if dups != 2 {
				t.Errorf("duplicate key rows on the left = %d, want 2 (warnings %+v)", dups, sum.Warnings)
			}
		}},
		{name: "NUL byte", again: true, err: fmt.Sprintf("line %d contains a NUL byte", odd), left: with("{id},1.00,a\x00b\n")},
		// DuckDB refuses the file: the load waits for the scan, whose
		// error it reports, as a proving load does.
		{name: "not UTF-8", err: fmt.Sprintf("line %d is not UTF-8 text", odd), left: with("{id},1.00,caf\xe9\n")},
		{name: "line ending with the delimiter", again: true, err: fmt.Sprintf("line %d: the row has 4 fields but the header has 3", odd), left: with("{id},1.00,n,\n")},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			lp, rp := filepath.Join(dir, "left.csv"), filepath.Join(dir, "right.csv")
			if err := os.WriteFile(lp, []byte(c.left), 0o644); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(rp, []byte("id,ref,amount\nP1,L000002,12.02\nP2,L00003,99.99\n"), 0o644); err != nil {
				t.Fatal(err)
			}
			l, err := file.Open(t.Context(), lp, file.Options{Type: kalla.SourceCSV})
			if err != nil {
				t.Fatal(err)
			}
			defer l.Close()
			r, err := file.Open(t.Context(), rp, file.Options{Type: kalla.SourceCSV})
			if err != nil {
				t.Fatal(err)
			}
			defer r.Close()
			var logs bytes.Buffer
			e, err := engine.Open(t.Context(), engine.Options{TempDir: dir, MemoryLimit: c.limit, Logger: slog.New(slog.NewTextHandler(&logs, nil))})
			if err != nil {
				t.Fatal(err)
			}
			defer e.Close()
			rec := &kalla.Recipe{RecipeID: "first-rows", MatchSQL: "SELECT l.id, r.id AS pid FROM left_src l JOIN right_src r ON l.id = r.ref AND l.amount = r.amount",
				Sources: kalla.Sources{
					Left:  kalla.SourceSpec{Alias: "invoices", Type: kalla.SourceCSV, URI: lp, PrimaryKey: []string{"id"}},
					Right: kalla.SourceSpec{Alias: "payments", Type: kalla.SourceCSV, URI: rp, PrimaryKey: []string{"id"}},
				}}
			out := filepath.Join(dir, "out")
			sum, err := e.Execute(t.Context(), engine.Run{Recipe: rec, Left: l, Right: r, OutDir: out, Formats: []string{engine.FormatCSV}})
			if again := strings.Contains(logs.String(), "staging again"); again != c.again {
				t.Errorf("staged again: %v, want %v; log:\n%s", again, c.again, logs.String())
			}
			if c.err != "" {
				if err == nil || !strings.Contains(err.Error(), c.err) {
					t.Fatalf("error %v, want one saying %q", err, c.err)
				}
				if _, serr := os.Stat(filepath.Join(out, engine.SummaryFile)); !os.IsNotExist(serr) {
					t.Errorf("a failed run left a summary: %v", serr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if sum.MatchedCount != 1 {
				t.Errorf("%d pairs, want 1 (P1 with L000002)", sum.MatchedCount)
			}
			c.check(t, sum, out)
		})
	}
}

// unmatchedValue is column col of the record whose id is id in a run's
// unmatched_left.csv, as written.
func unmatchedValue(t *testing.T, out, id, col string) string {
	t.Helper()
	tab := readCSV(t, filepath.Join(out, "unmatched_left.csv"))
	at := slices.Index(tab.header, col)
	if at < 0 {
		t.Fatalf("no column %s in %v", col, tab.header)
	}
	for _, rec := range tab.rows {
		if rec[0] == id {
			return rec[at]
		}
	}
	t.Fatalf("no record %s in unmatched_left.csv", id)
	return ""
}
