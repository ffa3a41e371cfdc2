package engine_test

import (
	"bytes"
	"encoding/csv"
	"math/big"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/kalla-recon/kalla/internal/cli"
	"github.com/kalla-recon/kalla/internal/kalla"
)

// TestGoldenMatchedRecords runs every golden scenario whose inputs are CSV
// files with `kalla run --records` and checks matched_left/matched_right
// against a ground truth computed without the engine: the row numbers of
// the scenario's hand-worked expected/matched.csv, distinct and sorted,
// each joined to its row of the input file as encoding/csv reads it. A
// field must be the input's text, or the same number (Kalla renders a
// DECIMAL column with its scale: 100 in a file of 100.50s reads 100.00).
// The files must be listed in summary.json with their rows, size and
// SHA-256, and their Parquet twins must hold the same rows.
func TestGoldenMatchedRecords(t *testing.T) {
	for _, name := range caseDirs(t, scenariosDir) {
		dir := filepath.Join(scenariosDir, name)
		data, err := os.ReadFile(filepath.Join(dir, "recipe.json"))
		if err != nil {
			t.Fatal(err)
		}
		rec, err := kalla.ParseRecipe(data)
		if err != nil {
			t.Fatal(err)
		}
		specs := []kalla.SourceSpec{rec.Sources.Left, rec.Sources.Right}
		if !strings.HasSuffix(specs[0].URI, ".csv") || !strings.HasSuffix(specs[1].URI, ".csv") {
			continue // parquet_left: the independent reader here reads CSV only
		}
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			out := t.TempDir()
			var stdout, stderr bytes.Buffer
			code := cli.Main(t.Context(), []string{"run", "--recipe", filepath.Join(dir, "recipe.json"), "--out", out, "--format", "parquet,csv", "--records", "--json"},
				strings.NewReader(""), &stdout, &stderr)
			if code != 0 {
				t.Fatalf("kalla run --records exited %d:\n%s", code, stderr.String())
			}
			var sum kalla.Summary
			readJSON(t, filepath.Join(out, "summary.json"), &sum)
			expected := readCSV(t, filepath.Join(dir, "expected", "matched.csv"))
			files := map[string]csvTable{}
			for i, side := range []string{"left", "right"} {
				rowCol := "_" + side + "_row"
				at := slices.Index(expected.header, rowCol)
				if at < 0 {
					t.Fatalf("expected/matched.csv has no %s", rowCol)
				}
				var ids []int
				for _, r := range expected.rows {
					n, err := strconv.Atoi(r[at])
					if err != nil {
						t.Fatalf("expected/matched.csv: %s %q", rowCol, r[at])
					}
					ids = append(ids, n)
				}
				slices.Sort(ids)
				ids = slices.Compact(ids)
				input := readInput(t, filepath.Join(dir, specs[i].URI), specs[i].CSV)
				table := "matched_" + side
				got := readCSV(t, filepath.Join(out, table+".csv"))
				files[table] = got
				if want := append(slices.Clone(input.header), rowCol); !slices.Equal(got.header, want) {
					t.Errorf("%s header %v, want the input's %v", table, got.header, want)
					continue
				}
				if len(got.rows) != len(ids) {
					t.Errorf("%s has %d records, the expected pairs use %d: %v", table, len(got.rows), len(ids), ids)
					continue
				}
				for j, id := range ids {
					row, src := got.rows[j], input.rows[id-1]
					if row[len(row)-1] != strconv.Itoa(id) {
						t.Errorf("%s row %d: %s %s, want %d", table, j+1, rowCol, row[len(row)-1], id)
						continue
					}
					for k, v := range src {
						if !sameField(row[k], v) {
							t.Errorf("%s record %d, %s: %q, the input has %q", table, id, input.header[k], row[k], v)
						}
					}
				}
			}
			// Listed like every output, with the right rows and digests.
			listed := map[string]kalla.OutputFile{}
			for _, o := range sum.Outputs {
				listed[o.Name] = o
			}
			for table, rows := range map[string]int64{"matched_left": sum.MatchedLeftRecords, "matched_right": sum.MatchedRightRecords} {
				for _, f := range []string{"csv", "parquet"} {
					o, ok := listed[table+"."+f]
					if !ok {
						t.Errorf("summary.json does not list %s.%s", table, f)
						continue
					}
					if o.Rows != rows || o.Table != table {
						t.Errorf("%s: table %s, %d rows, summary counts %d matched records", o.Name, o.Table, o.Rows, rows)
					}
					if d := fileSHA256(t, filepath.Join(out, o.Name)); d != o.SHA256 {
						t.Errorf("%s: sha256 %s, summary says %s", o.Name, d, o.SHA256)
					}
				}
			}
			checkParquet(t, out, files)
		})
	}
}

// readInput reads a scenario's input CSV with encoding/csv, in the
// recipe's delimiter (a Windows export's byte-order mark left out).
func readInput(t *testing.T, path string, opts *kalla.CSVOptions) csvTable {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	r := csv.NewReader(f)
	if opts != nil && opts.Delimiter != "" {
		r.Comma = []rune(opts.Delimiter)[0]
	}
	recs, err := r.ReadAll()
	if err != nil || len(recs) == 0 {
		t.Fatalf("read %s: %v", path, err)
	}
	// A byte-order mark is not part of the first column's name.
	recs[0][0] = strings.TrimPrefix(recs[0][0], "\ufeff")
	return csvTable{header: recs[0], rows: recs[1:]}
}

// sameField reports whether Kalla's rendering of a field is the input's
// text, or the same number, or the same boolean (yes reads true), or the
// same time (Kalla writes a fraction of a second without its trailing
// zeros: 09:15:00.250 reads 09:15:00.25; 2026-1-5 reads 2026-01-05).
func sameField(got, in string) bool {
	if got == in {
		return true
	}
	a, ok1 := new(big.Rat).SetString(got)
	b, ok2 := new(big.Rat).SetString(strings.TrimSpace(in))
	if ok1 && ok2 {
		return a.Cmp(b) == 0
	}
	bools := map[string]string{"t": "true", "true": "true", "yes": "true", "f": "false", "false": "false", "no": "false"}
	if b, ok := bools[strings.ToLower(in)]; ok {
		return got == b
	}
	ta, ok1 := parseTime(got)
	tb, ok2 := parseTime(in)
	return ok1 && ok2 && ta.Equal(tb)
}

// parseTime reads a date or timestamp in ISO order, with one or two digits
// of month, day, hour, minute and second, as the CSV inputs write them.
func parseTime(s string) (time.Time, bool) {
	s = strings.Replace(s, "T", " ", 1)
	for _, layout := range []string{"2006-1-2 15:4:5.999999999", "2006-1-2 15:4", "2006-1-2"} {
		if t, err := time.Parse(layout, s); err == nil {
			return t, true
		}
	}
	return time.Time{}, false
}
