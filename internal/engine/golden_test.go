package engine_test

// Golden scenarios pin Kalla's reconciliation behaviour end to end: each
// folder under testdata/scenarios holds two small inputs, a recipe, and the
// answer worked out by hand from the inputs (never copied from a run), and
// each folder under testdata/errors holds a recipe that must fail, with the
// exit code and the words its message must contain. The runs go through
// cli.Main exactly as a user types `kalla run`, so the CLI, the recipe
// parser, the file connector and the engine are all under test.
//
// Layout of a scenario folder:
//
//	recipe.json                 the recipe, with URIs relative to the folder
//	left.csv|left.parquet       the inputs the recipe names
//	right.csv
//	README.md                   how the expected answer was worked out
//	expected/summary.json       the counts and warnings ({code, side, count}) only
//	expected/matched.csv        the identity columns of matched.csv only:
//	                            _left_<pk>..., _right_<pk>..., _left_row, _right_row
//	expected/unmatched_left.csv   full rows, as Kalla's CSV writer renders them
//	expected/unmatched_right.csv
//	expected/matched_columns.txt  optional: the full header of matched.csv, one per line
//
// A scenario whose recipe has rules (the rules_* folders) differs in three
// ways: its expected/matched.csv may add any of _rule, _score, _status after
// _right_row (compared by name); its unmatched rows end with _reason and
// _closest_candidate, compared like every other field; and its run also
// writes breaks.csv/.parquet, compared with expected/breaks.csv when that
// file exists. Large rules scenarios carry the generator and the plain SQL
// that computed their expectations (generate.py, expected.sql).
//
// Scenarios are also the examples of the rules reference, docs/rules.md: the
// ref_* folders were made for it, and TestRulesReference checks that every
// example shown there is its folder's files.
//
// An error folder holds recipe.json, its inputs and expected_error.txt: lines
// starting with # are comments, "exit N" gives the exit code, and every other
// non-empty line is a substring the message on stderr must contain.
//
// How outputs are compared:
//
//   - summary.json: the seven counts exactly; warnings as a multiset of
//     (code, side, count), since their order is not part of the contract and
//     their messages are prose.
//   - matched.csv: the identity columns, row by row in order (the contract
//     orders pairs by left row, then right row), after checking that they sit
//     at the end of the header just before _rule and _score, that every _rule
//     is match_sql and every _score is 1. The match SQL's own columns are only
//     checked when matched_columns.txt exists.
//   - unmatched_*.csv: both files are parsed with encoding/csv and compared
//     header and field by field, in order. Parsing first makes the comparison
//     blind to quoting style and line endings, which the writer may choose;
//     the field text is compared exactly, without trimming or numeric
//     normalisation, because the rendered text (10.50, 2026-01-05, 1.0, empty
//     for NULL) is what a user reads as evidence, and a change in it (say a
//     DECIMAL becoming a DOUBLE) is a change worth a failing test. One thing
//     the parse cannot see: an empty string and NULL both read as "".
//   - Parquet: every .parquet output is read back with DuckDB and must hold
//     the same columns and, cast to text, the same rows as its CSV twin.
//   - Integrity: every output listed in summary.json exists with the listed
//     size, row count and SHA-256; the folder holds exactly the six outputs and
//     summary.json, and no .partial file is left.
//
// Regenerate expectations with
//
//	go test ./internal/engine -run Golden -update
//
// which rewrites expected/ from actual output (but not from a run that fails
// or breaks the integrity checks). It copies whatever the engine wrote, bugs
// included, so every regenerated file must be reviewed by hand against the
// inputs and the README before it is kept. expected_error.txt is never
// rewritten: its substrings are chosen by hand.

import (
	"bytes"
	"crypto/sha256"
	"database/sql"
	"encoding/csv"
	"encoding/hex"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"

	_ "github.com/duckdb/duckdb-go/v2" // the "duckdb" driver, to read Parquet outputs back

	"github.com/kalla-recon/kalla/internal/cli"
	"github.com/kalla-recon/kalla/internal/engine"
	"github.com/kalla-recon/kalla/internal/kalla"
)

var update = flag.Bool("update", false, "rewrite the golden scenarios' expected files from actual output (then review them by hand against the inputs)")

const (
	scenariosDir = "testdata/scenarios"
	errorsDir    = "testdata/errors"
)

// updateHint ends every failed comparison with expected/.
const updateHint = "if the engine is right and the expectation wrong, regenerate with\n" +
	"\tgo test ./internal/engine -run Golden -update\n" +
	"and then review every regenerated file under internal/engine/testdata by hand against the scenario's inputs and README: " +
	"-update copies whatever the engine wrote, bugs included"

// tables are the outputs of a run, each written in both formats.
var tables = []string{"matched", "unmatched_left", "unmatched_right"}

// outputTables are the outputs of a scenario's run: a rules recipe also
// writes breaks.
func outputTables(rules []string) []string {
	if rules == nil {
		return tables
	}
	return append(slices.Clone(tables), "breaks")
}

// expectedSummary is the part of summary.json a scenario pins.
type expectedSummary struct {
	LeftCount           int64             `json:"left_count"`
	RightCount          int64             `json:"right_count"`
	MatchedCount        int64             `json:"matched_count"`
	MatchedLeftRecords  int64             `json:"matched_left_records"`
	MatchedRightRecords int64             `json:"matched_right_records"`
	UnmatchedLeftCount  int64             `json:"unmatched_left_count"`
	UnmatchedRightCount int64             `json:"unmatched_right_count"`
	Warnings            []expectedWarning `json:"warnings"`
	// Amounts, when a scenario pins them (worked out by hand), must be the
	// summary's exactly.
	Amounts *kalla.Amounts `json:"amounts,omitempty"`
}

// expectedWarning is a warning without its prose.
type expectedWarning struct {
	Code  string `json:"code"`
	Side  string `json:"side,omitempty"`
	Count int64  `json:"count"`
}

// String renders a warning for messages.
func (w expectedWarning) String() string {
	return fmt.Sprintf("{code: %s, side: %q, count: %d}", w.Code, w.Side, w.Count)
}

// csvTable is a parsed CSV file.
type csvTable struct {
	header []string
	rows   [][]string
}

// run is one finished `kalla run`.
type run struct {
	out            string
	code           int
	stdout, stderr string
}

// runKalla runs `kalla run` on a recipe into a fresh folder, the way a user
// does.
func runKalla(t *testing.T, recipe string, flags ...string) run {
	t.Helper()
	r := run{out: t.TempDir()}
	var stdout, stderr bytes.Buffer
	r.code = cli.Main(t.Context(), append([]string{"run", "--recipe", recipe, "--out", r.out, "--format", "parquet,csv", "--json"}, flags...),
		strings.NewReader(""), &stdout, &stderr)
	r.stdout, r.stderr = stdout.String(), stderr.String()
	return r
}

// caseDirs lists the case folders under dir.
func caseDirs(t *testing.T, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		if e.IsDir() {
			names = append(names, e.Name())
		}
	}
	if len(names) == 0 {
		t.Fatalf("no cases under %s", dir)
	}
	return names
}

// TestGoldenScenarios runs every scenario and compares its outputs with the
// hand-worked expectations.
func TestGoldenScenarios(t *testing.T) {
	for _, name := range caseDirs(t, scenariosDir) {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			dir := filepath.Join(scenariosDir, name)
			rules := scenarioRules(t, dir)
			r := runKalla(t, filepath.Join(dir, "recipe.json"))
			if r.code != 0 {
				t.Fatalf("kalla run exited %d (expected a completed run; -update cannot regenerate from a failed run):\n%s", r.code, r.stderr)
			}
			sum, out := readOutputs(t, r, rules)
			if !*update {
				// First the comparison that -update can regenerate, so the
				// hint is given only when it applies.
				compareExpected(t, dir, sum, out, rules)
				if t.Failed() {
					t.Error(updateHint)
				}
			}
			// Then what holds for every run whatever the expectation;
			// -update refuses to bless a run that breaks it.
			checkPrinted(t, r, sum)
			checkIntegrity(t, r.out, sum, out, rules)
			checkParquet(t, r.out, out)
			checkMatchedShape(t, out["matched"], rules)
			if *update && !t.Failed() {
				writeExpected(t, dir, r.out, sum, out, rules)
			}
		})
	}
}

// TestGoldenErrors runs every error case and checks the exit code, the
// message, and that the failed run left no output behind.
func TestGoldenErrors(t *testing.T) {
	for _, name := range caseDirs(t, errorsDir) {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			dir := filepath.Join(errorsDir, name)
			code, subs := readExpectedError(t, filepath.Join(dir, "expected_error.txt"))
			r := runKalla(t, filepath.Join(dir, "recipe.json"))
			if r.code != code {
				t.Errorf("exit code %d, want %d", r.code, code)
			}
			for _, s := range subs {
				if !strings.Contains(r.stderr, s) {
					t.Errorf("message lacks %q", s)
				}
			}
			if r.stdout != "" {
				t.Errorf("a failed run printed to stdout:\n%s", r.stdout)
			}
			entries, err := os.ReadDir(r.out)
			if err != nil {
				t.Fatal(err)
			}
			for _, e := range entries {
				t.Errorf("a failed run left %s in the output folder", e.Name())
			}
			if t.Failed() {
				t.Errorf("stderr was:\n%s\nexpected_error.txt is written by hand (-update does not touch it): fix the engine, or edit the file if the new message is better", r.stderr)
			}
		})
	}
}

// TestGoldenDeterministic runs scenarios twice and requires byte-identical
// outputs, so that the checksums in summary.json can serve as evidence.
func TestGoldenDeterministic(t *testing.T) {
	for _, name := range []string{"split_sum", "unicode_quoted", "parquet_left", "rules_ties", "rules_duplicates", "rules_best_choice"} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			recipe := filepath.Join(scenariosDir, name, "recipe.json")
			rules := scenarioRules(t, filepath.Join(scenariosDir, name))
			var digests [2]map[string]string
			var listed [2][]kalla.OutputFile
			for i := range digests {
				r := runKalla(t, recipe)
				if r.code != 0 {
					t.Fatalf("run %d exited %d:\n%s", i+1, r.code, r.stderr)
				}
				var sum kalla.Summary
				readJSON(t, filepath.Join(r.out, "summary.json"), &sum)
				listed[i] = sum.Outputs
				digests[i] = map[string]string{}
				for _, tb := range outputTables(rules) {
					for _, f := range []string{"csv", "parquet"} {
						name := tb + "." + f
						digests[i][name] = fileSHA256(t, filepath.Join(r.out, name))
					}
				}
			}
			for name, d := range digests[0] {
				if digests[1][name] != d {
					t.Errorf("%s differs between two runs of the same recipe on the same inputs: sha256 %s, then %s", name, d, digests[1][name])
				}
			}
			if !reflect.DeepEqual(listed[0], listed[1]) {
				t.Errorf("summary outputs differ between runs:\n%+v\n%+v", listed[0], listed[1])
			}
		})
	}
}

// readOutputs reads summary.json and the CSV outputs of a run.
func readOutputs(t *testing.T, r run, rules []string) (*kalla.Summary, map[string]csvTable) {
	t.Helper()
	var sum kalla.Summary
	readJSON(t, filepath.Join(r.out, "summary.json"), &sum)
	out := map[string]csvTable{}
	for _, tb := range outputTables(rules) {
		out[tb] = readCSV(t, filepath.Join(r.out, tb+".csv"))
	}
	return &sum, out
}

// checkPrinted checks the summary printed with --json against summary.json.
func checkPrinted(t *testing.T, r run, sum *kalla.Summary) {
	t.Helper()
	var printed kalla.Summary
	if err := json.Unmarshal([]byte(r.stdout), &printed); err != nil {
		t.Errorf("--json printed no summary: %v\n%s", err, r.stdout)
	} else if !reflect.DeepEqual(&printed, sum) {
		t.Errorf("the summary printed with --json differs from summary.json")
	}
	if sum.Status != "completed" {
		t.Errorf("summary status %q, want completed", sum.Status)
	}
}

// checkIntegrity checks the output folder against summary.json: exactly the
// expected files, no .partial left, and each output's size, rows and SHA-256
// as listed.
func checkIntegrity(t *testing.T, outDir string, sum *kalla.Summary, out map[string]csvTable, rules []string) {
	t.Helper()
	var outputs []string
	for _, tb := range outputTables(rules) {
		outputs = append(outputs, tb+".csv", tb+".parquet")
	}
	slices.Sort(outputs)
	want := append(slices.Clone(outputs), "summary.json")
	entries, err := os.ReadDir(outDir)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range entries {
		if strings.HasSuffix(e.Name(), ".partial") {
			t.Errorf("%s was left behind", e.Name())
		}
		got = append(got, e.Name())
	}
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Errorf("output folder holds %v, want %v", got, want)
	}
	var listed []string
	for _, o := range sum.Outputs {
		listed = append(listed, o.Name)
		path := filepath.Join(outDir, o.Name)
		st, err := os.Stat(path)
		if err != nil {
			t.Errorf("summary lists %s: %v", o.Name, err)
			continue
		}
		if st.Size() != o.Bytes {
			t.Errorf("%s: %d bytes, summary says %d", o.Name, st.Size(), o.Bytes)
		}
		if d := fileSHA256(t, path); d != o.SHA256 {
			t.Errorf("%s: sha256 %s, summary says %s", o.Name, d, o.SHA256)
		}
		if o.Format == "csv" {
			if n := int64(len(out[o.Table].rows)); n != o.Rows {
				t.Errorf("%s: %d rows, summary says %d", o.Name, n, o.Rows)
			}
		}
	}
	slices.Sort(listed)
	if !slices.Equal(listed, outputs) {
		t.Errorf("summary lists outputs %v, want %v", listed, outputs)
	}
	counts := map[string]int64{"matched": sum.MatchedCount, "unmatched_left": sum.UnmatchedLeftCount, "unmatched_right": sum.UnmatchedRightCount}
	for tb, n := range counts {
		if got := int64(len(out[tb].rows)); got != n {
			t.Errorf("%s.csv has %d rows, summary counts %d", tb, got, n)
		}
	}
	if sum.MatchedLeftRecords+sum.UnmatchedLeftCount != sum.LeftCount || sum.MatchedRightRecords+sum.UnmatchedRightCount != sum.RightCount {
		t.Errorf("summary counts do not add up: %v", summaryCounts(sum).counts())
	}
}

// checkParquet reads the Parquet twin of each CSV output in out back with
// DuckDB and requires the same columns and rows (cast to text, NULL as "").
func checkParquet(t *testing.T, outDir string, out map[string]csvTable) {
	t.Helper()
	db, err := sql.Open("duckdb", "")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	for _, tb := range slices.Sorted(maps.Keys(out)) {
		path := filepath.Join(outDir, tb+".parquet")
		src := "read_parquet(" + sqlString(path) + ")"
		rows, err := db.QueryContext(t.Context(), "SELECT column_name FROM (DESCRIBE SELECT * FROM "+src+")")
		if err != nil {
			t.Errorf("read %s.parquet: %v", tb, err)
			continue
		}
		var cols, sel []string
		for rows.Next() {
			var c string
			if err := rows.Scan(&c); err != nil {
				t.Fatal(err)
			}
			cols = append(cols, c)
			sel = append(sel, "CAST("+quoteIdent(c)+" AS VARCHAR)")
		}
		rows.Close()
		want := out[tb]
		if !slices.Equal(cols, want.header) {
			t.Errorf("%s.parquet has columns %v, %s.csv has %v", tb, cols, tb, want.header)
			continue
		}
		var got [][]string
		if len(sel) > 0 {
			rows, err = db.QueryContext(t.Context(), "SELECT "+strings.Join(sel, ", ")+" FROM "+src)
			if err != nil {
				t.Errorf("read %s.parquet: %v", tb, err)
				continue
			}
			for rows.Next() {
				vals := make([]sql.NullString, len(cols))
				ptrs := make([]any, len(cols))
				for i := range vals {
					ptrs[i] = &vals[i]
				}
				if err := rows.Scan(ptrs...); err != nil {
					t.Fatal(err)
				}
				row := make([]string, len(cols))
				for i, v := range vals {
					row[i] = v.String
				}
				got = append(got, row)
			}
			rows.Close()
		}
		if len(got) != len(want.rows) {
			t.Errorf("%s.parquet has %d rows, %s.csv has %d", tb, len(got), tb, len(want.rows))
			continue
		}
		for i := range got {
			if !slices.Equal(got[i], want.rows[i]) {
				t.Errorf("%s row %d: parquet %q, csv %q", tb, i+1, got[i], want.rows[i])
				break
			}
		}
	}
}

// scenarioRules returns the names of the scenario recipe's rules, or nil
// for a match_sql recipe.
func scenarioRules(t *testing.T, dir string) []string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(dir, "recipe.json"))
	if err != nil {
		t.Fatal(err)
	}
	rec, err := kalla.ParseRecipe(data)
	if err != nil {
		t.Fatalf("recipe: %v", err)
	}
	var names []string
	for _, r := range rec.Rules {
		names = append(names, r.Name)
	}
	return names
}

// extraColumns are the columns after _left_row, _right_row in matched.csv:
// _rule and _score, and for a rules recipe _status.
func extraColumns(rules []string) []string {
	if rules == nil {
		return []string{"_rule", "_score"}
	}
	return []string{"_rule", "_score", "_status"}
}

// checkMatchedShape checks what every matched.csv must satisfy whatever the
// scenario: _left_row, _right_row, _rule and _score (and for rules _status)
// close the header, and pairs are ordered by left row, then right row. With
// match_sql every _rule is match_sql and every _score is 1; with rules every
// _rule names a rule of the recipe, every _score is in [0, 1] and every
// _status is confirmed or suggested.
func checkMatchedShape(t *testing.T, m csvTable, rules []string) {
	t.Helper()
	tail := append([]string{"_left_row", "_right_row"}, extraColumns(rules)...)
	if len(m.header) < len(tail) || !slices.Equal(m.header[len(m.header)-len(tail):], tail) {
		t.Errorf("matched.csv header %v does not end with %v", m.header, tail)
		return
	}
	off := len(m.header) - len(tail)
	var prev [2]int
	for i, row := range m.rows {
		rule, score := row[off+2], row[off+3]
		s, err := strconv.ParseFloat(score, 64)
		switch {
		case rules == nil && rule != "match_sql":
			t.Errorf("matched row %d: _rule %q, want match_sql", i+1, rule)
		case rules == nil && (err != nil || s != 1):
			t.Errorf("matched row %d: _score %q, want 1", i+1, score)
		case rules != nil && !slices.Contains(rules, rule):
			t.Errorf("matched row %d: _rule %q is not one of the recipe's rules %v", i+1, rule, rules)
		case rules != nil && (err != nil || s < 0 || s > 1):
			t.Errorf("matched row %d: _score %q is not in [0, 1]", i+1, score)
		case rules != nil && row[off+4] != "confirmed" && row[off+4] != "suggested":
			t.Errorf("matched row %d: _status %q, want confirmed or suggested", i+1, row[off+4])
		}
		l, errL := strconv.Atoi(row[off])
		r, errR := strconv.Atoi(row[off+1])
		if errL != nil || errR != nil || l < 1 || r < 1 {
			t.Errorf("matched row %d: _left_row %q, _right_row %q are not row numbers", i+1, row[off], row[off+1])
			continue
		}
		if cur := [2]int{l, r}; i > 0 && (cur[0] < prev[0] || cur[0] == prev[0] && cur[1] < prev[1]) {
			t.Errorf("matched row %d (%d, %d) comes after (%d, %d): pairs must be ordered by left row, then right row", i+1, l, r, prev[0], prev[1])
		}
		prev = [2]int{l, r}
	}
}

// compareExpected compares a run's outputs with the scenario's expected/.
func compareExpected(t *testing.T, dir string, sum *kalla.Summary, out map[string]csvTable, rules []string) {
	t.Helper()
	exp := filepath.Join(dir, "expected")

	var want expectedSummary
	readJSON(t, filepath.Join(exp, "summary.json"), &want)
	got := summaryCounts(sum)
	if w := sortedWarnings(want.Warnings); !slices.Equal(w, got.Warnings) {
		t.Errorf("warnings:\n  got  %v\n  want %v", got.Warnings, w)
	}
	if g, w := got.counts(), want.counts(); g != w {
		t.Errorf("summary counts (left, right, pairs, matched left, matched right, unmatched left, unmatched right):\n  got  %v\n  want %v", g, w)
	}
	if want.Amounts != nil {
		g, _ := json.Marshal(sum.Amounts)
		w, _ := json.Marshal(want.Amounts)
		if string(g) != string(w) {
			t.Errorf("summary amounts:\n  got  %s\n  want %s", g, w)
		}
	}

	wantM := readCSV(t, filepath.Join(exp, "matched.csv"))
	checkExpectedMatched(t, wantM, want, rules)
	if gotM, ok := identityColumns(t, out["matched"], wantM.header, rules); ok {
		compareTables(t, "matched.csv (identity columns)", wantM, gotM)
	}
	if cols, err := os.ReadFile(filepath.Join(exp, "matched_columns.txt")); err == nil {
		if w := strings.Fields(string(cols)); !slices.Equal(out["matched"].header, w) {
			t.Errorf("matched.csv columns:\n  got  %v\n  want %v", out["matched"].header, w)
		}
	}
	for _, tb := range []string{"unmatched_left", "unmatched_right"} {
		wantU := readCSV(t, filepath.Join(exp, tb+".csv"))
		compareTables(t, tb+".csv", wantU, out[tb])
	}
	if _, err := os.Stat(filepath.Join(exp, "breaks.csv")); err == nil {
		compareTables(t, "breaks.csv", readCSV(t, filepath.Join(exp, "breaks.csv")), out["breaks"])
	}
	if n := int64(len(readCSV(t, filepath.Join(exp, "unmatched_left.csv")).rows)); n != want.UnmatchedLeftCount {
		t.Errorf("expected/unmatched_left.csv has %d rows but expected/summary.json says %d: the expectation contradicts itself", n, want.UnmatchedLeftCount)
	}
	if n := int64(len(readCSV(t, filepath.Join(exp, "unmatched_right.csv")).rows)); n != want.UnmatchedRightCount {
		t.Errorf("expected/unmatched_right.csv has %d rows but expected/summary.json says %d: the expectation contradicts itself", n, want.UnmatchedRightCount)
	}
}

// checkExpectedMatched catches mistakes in a hand-written expected
// matched.csv: its header must end with _left_row, _right_row (for a rules
// recipe optionally followed by _rule, _score, _status, in that order), its
// rows must be as many as matched_count, and its distinct row numbers must
// agree with the matched record counts.
func checkExpectedMatched(t *testing.T, m csvTable, s expectedSummary, rules []string) {
	t.Helper()
	n := slices.Index(m.header, "_right_row") + 1
	if rest := m.header[n:]; n < 4 || m.header[n-2] != "_left_row" || (rules == nil && len(rest) > 0) || !isSubsequence(rest, extraColumns(rules)) {
		t.Fatalf("expected/matched.csv header %v must be _left_<pk>..., _right_<pk>..., _left_row, _right_row (then, for rules, any of _rule, _score, _status in that order)", m.header)
	}
	left, right := map[string]bool{}, map[string]bool{}
	for _, row := range m.rows {
		left[row[n-2]], right[row[n-1]] = true, true
	}
	if int64(len(m.rows)) != s.MatchedCount || int64(len(left)) != s.MatchedLeftRecords || int64(len(right)) != s.MatchedRightRecords {
		t.Errorf("expected/matched.csv has %d pairs of %d left and %d right records, but expected/summary.json says %d, %d, %d: the expectation contradicts itself",
			len(m.rows), len(left), len(right), s.MatchedCount, s.MatchedLeftRecords, s.MatchedRightRecords)
	}
}

// identityColumns projects matched.csv onto the expected identity columns
// (and, for rules, the expected ones of _rule, _score, _status), after
// checking that the identity columns sit just before _rule and _score.
func identityColumns(t *testing.T, m csvTable, want []string, rules []string) (csvTable, bool) {
	t.Helper()
	extra := extraColumns(rules)
	var ids []string
	for _, c := range want {
		if !slices.Contains(extra, c) {
			ids = append(ids, c)
		}
	}
	tail := append(slices.Clone(ids), extra...)
	if len(m.header) < len(tail) || !slices.Equal(m.header[len(m.header)-len(tail):], tail) {
		t.Errorf("matched.csv header %v must end with %v", m.header, tail)
		return csvTable{}, false
	}
	off := len(m.header) - len(tail)
	idx := make([]int, len(want))
	for i, c := range want {
		if j := slices.Index(ids, c); j >= 0 {
			idx[i] = off + j
		} else {
			idx[i] = off + len(ids) + slices.Index(extra, c)
		}
	}
	p := csvTable{header: want}
	for _, row := range m.rows {
		r := make([]string, len(idx))
		for i, j := range idx {
			r[i] = row[j]
		}
		p.rows = append(p.rows, r)
	}
	return p, true
}

// isSubsequence reports whether a lists some of b's elements in b's order.
func isSubsequence(a, b []string) bool {
	for _, x := range a {
		i := slices.Index(b, x)
		if i < 0 {
			return false
		}
		b = b[i+1:]
	}
	return true
}

// compareTables compares two parsed CSV files field by field, in order, and
// reports the differing rows both in order and as a multiset difference.
func compareTables(t *testing.T, name string, want, got csvTable) {
	t.Helper()
	if !slices.Equal(got.header, want.header) {
		t.Errorf("%s header:\n  got  %q\n  want %q", name, got.header, want.header)
		return
	}
	if slices.EqualFunc(got.rows, want.rows, slices.Equal) {
		return
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%s differs (%d rows, want %d):\n", name, len(got.rows), len(want.rows))
	for i := range max(len(got.rows), len(want.rows)) {
		var g, w []string
		if i < len(got.rows) {
			g = got.rows[i]
		}
		if i < len(want.rows) {
			w = want.rows[i]
		}
		mark := " "
		if !slices.Equal(g, w) {
			mark = "!"
		}
		fmt.Fprintf(&b, "  %s row %d: got %s want %s\n", mark, i+1, csvLine(g), csvLine(w))
	}
	missing, extra := multisetDiff(want.rows, got.rows)
	for _, r := range missing {
		fmt.Fprintf(&b, "  - missing %s\n", csvLine(r))
	}
	for _, r := range extra {
		fmt.Fprintf(&b, "  + extra   %s\n", csvLine(r))
	}
	if len(missing) == 0 && len(extra) == 0 {
		b.WriteString("  same rows, different order\n")
	}
	t.Error(b.String())
}

// multisetDiff returns the rows of a not in b and of b not in a, counting
// repeats.
func multisetDiff(a, b [][]string) (onlyA, onlyB [][]string) {
	count := map[string]int{}
	for _, r := range b {
		count[csvLine(r)]++
	}
	for _, r := range a {
		k := csvLine(r)
		if count[k] > 0 {
			count[k]--
		} else {
			onlyA = append(onlyA, r)
		}
	}
	seen := map[string]int{}
	for _, r := range a {
		seen[csvLine(r)]++
	}
	for _, r := range b {
		k := csvLine(r)
		if seen[k] > 0 {
			seen[k]--
		} else {
			onlyB = append(onlyB, r)
		}
	}
	return onlyA, onlyB
}

// writeExpected rewrites a scenario's expected/ from a run (-update).
func writeExpected(t *testing.T, dir, outDir string, sum *kalla.Summary, out map[string]csvTable, rules []string) {
	t.Helper()
	exp := filepath.Join(dir, "expected")
	if err := os.MkdirAll(exp, 0o755); err != nil {
		t.Fatal(err)
	}
	s := summaryCounts(sum)
	var old expectedSummary
	if b, err := os.ReadFile(filepath.Join(exp, "summary.json")); err == nil && json.Unmarshal(b, &old) == nil && old.Amounts != nil {
		s.Amounts = sum.Amounts // pinned amounts stay pinned (review them by hand)
	}
	b, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(exp, "summary.json"), append(b, '\n'))

	var ids []string
	for _, k := range sum.Sources.Left.PrimaryKey {
		ids = append(ids, "_left_"+k)
	}
	for _, k := range sum.Sources.Right.PrimaryKey {
		ids = append(ids, "_right_"+k)
	}
	ids = append(ids, "_left_row", "_right_row")
	if rules != nil {
		// Keep the rule columns the scenario pins; by default the rule and
		// the status (a score is worked out by hand only where it matters).
		extras := []string{"_rule", "_status"}
		if old, err := os.ReadFile(filepath.Join(exp, "matched.csv")); err == nil {
			if recs, err := csv.NewReader(bytes.NewReader(old)).Read(); err == nil && slices.Contains(recs, "_right_row") {
				extras = recs[slices.Index(recs, "_right_row")+1:]
			}
		}
		ids = append(ids, extras...)
	}
	m, ok := identityColumns(t, out["matched"], ids, rules)
	if !ok {
		t.Fatal("cannot regenerate expected/matched.csv")
	}
	var buf bytes.Buffer
	w := csv.NewWriter(&buf)
	w.Write(m.header)
	w.WriteAll(m.rows)
	writeFile(t, filepath.Join(exp, "matched.csv"), buf.Bytes())

	if _, err := os.Stat(filepath.Join(exp, "matched_columns.txt")); err == nil {
		writeFile(t, filepath.Join(exp, "matched_columns.txt"), []byte(strings.Join(out["matched"].header, "\n")+"\n"))
	}
	for _, tb := range []string{"unmatched_left", "unmatched_right"} {
		data, err := os.ReadFile(filepath.Join(outDir, tb+".csv"))
		if err != nil {
			t.Fatal(err)
		}
		writeFile(t, filepath.Join(exp, tb+".csv"), data)
	}
	t.Logf("rewrote %s: review it by hand against the inputs before keeping it", exp)
}

// summaryCounts is the pinned part of a run's summary, warnings sorted.
func summaryCounts(s *kalla.Summary) expectedSummary {
	e := expectedSummary{
		LeftCount: s.LeftCount, RightCount: s.RightCount, MatchedCount: s.MatchedCount,
		MatchedLeftRecords: s.MatchedLeftRecords, MatchedRightRecords: s.MatchedRightRecords,
		UnmatchedLeftCount: s.UnmatchedLeftCount, UnmatchedRightCount: s.UnmatchedRightCount,
		Warnings: []expectedWarning{},
	}
	for _, w := range s.Warnings {
		e.Warnings = append(e.Warnings, expectedWarning{Code: w.Code, Side: w.Side, Count: w.Count})
	}
	e.Warnings = sortedWarnings(e.Warnings)
	return e
}

// counts lists the seven counts in the order of summary.json.
func (e expectedSummary) counts() [7]int64 {
	return [7]int64{e.LeftCount, e.RightCount, e.MatchedCount, e.MatchedLeftRecords, e.MatchedRightRecords, e.UnmatchedLeftCount, e.UnmatchedRightCount}
}

// sortedWarnings orders warnings by side, then code, since their order in
// summary.json is not part of the contract.
func sortedWarnings(ws []expectedWarning) []expectedWarning {
	out := append([]expectedWarning{}, ws...)
	slices.SortFunc(out, func(a, b expectedWarning) int {
		return strings.Compare(a.Side+"\x00"+a.Code, b.Side+"\x00"+b.Code)
	})
	return out
}

// readExpectedError reads expected_error.txt: the exit code and the
// substrings the message must contain.
func readExpectedError(t *testing.T, path string) (int, []string) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	code := -1
	var subs []string
	for _, line := range strings.Split(string(data), "\n") {
		line = strings.TrimSpace(line)
		switch {
		case line == "" || strings.HasPrefix(line, "#"):
		case strings.HasPrefix(line, "exit "):
			n, err := strconv.Atoi(strings.TrimSpace(strings.TrimPrefix(line, "exit ")))
			if err != nil {
				t.Fatalf("%s: bad exit line %q", path, line)
			}
			code = n
		default:
			subs = append(subs, line)
		}
	}
	if code < 1 || len(subs) == 0 {
		t.Fatalf("%s needs an \"exit N\" line (N >= 1) and at least one substring", path)
	}
	return code, subs
}

// readCSV parses a CSV file with a header row.
func readCSV(t *testing.T, path string) csvTable {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	recs, err := csv.NewReader(f).ReadAll()
	if err != nil {
		t.Fatalf("read %s: %v", path, err)
	}
	if len(recs) == 0 {
		t.Fatalf("%s has no header row", path)
	}
	return csvTable{header: recs[0], rows: recs[1:]}
}

// readJSON decodes a JSON file into v; an expected summary must not carry
// unknown (misspelt) fields.
func readJSON(t *testing.T, path string, v any) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	if _, ok := v.(*expectedSummary); ok {
		dec.DisallowUnknownFields()
	}
	if err := dec.Decode(v); err != nil {
		t.Fatalf("read %s: %v", path, err)
	}
}

// writeFile writes an expected file (-update).
func writeFile(t *testing.T, path string, data []byte) {
	t.Helper()
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
}

// fileSHA256 returns the hex SHA-256 of a file.
func fileSHA256(t *testing.T, path string) string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(h.Sum(nil))
}

// csvLine renders a row as one CSV line, for messages.
func csvLine(row []string) string {
	if row == nil {
		return "(none)"
	}
	var b bytes.Buffer
	w := csv.NewWriter(&b)
	w.Write(row)
	w.Flush()
	return strings.ReplaceAll(strings.TrimSuffix(b.String(), "\n"), "\n", `\n`)
}

// sqlString renders s as a DuckDB string literal (for our own temp paths).
func sqlString(s string) string { return "'" + strings.ReplaceAll(s, "'", "''") + "'" }

// quoteIdent renders s as a DuckDB identifier.
func quoteIdent(s string) string { return `"` + strings.ReplaceAll(s, `"`, `""`) + `"` }

// TestAmountsThroughPieces runs every scenario whose money totals are
// pinned with the open records told by sets in pieces (see rules.PiecesAbove),
// the path of sides above a few million rows: the totals must be the
// pinned ones, worked out by hand, and the files the same bytes as with
// the sets in variables. Not parallel: it sets a package knob.
func TestAmountsThroughPieces(t *testing.T) {
	n := 0
	files := func(sum *kalla.Summary) string {
		var fs []string
		for _, o := range sum.Outputs {
			fs = append(fs, fmt.Sprintf("%s %d %s", o.Name, o.Rows, o.SHA256))
		}
		return strings.Join(fs, "\n")
	}
	for _, name := range caseDirs(t, scenariosDir) {
		dir := filepath.Join(scenariosDir, name)
		var want expectedSummary
		readJSON(t, filepath.Join(dir, "expected", "summary.json"), &want)
		if want.Amounts == nil {
			continue
		}
		n++
		plain := runKalla(t, filepath.Join(dir, "recipe.json"))
		var plainSum kalla.Summary
		if err := json.Unmarshal([]byte(plain.stdout), &plainSum); plain.code != 0 || err != nil {
			t.Fatalf("%s: kalla run exited %d (%v): %s", name, plain.code, err, plain.stderr)
		}
		// Without a memory limit a rules recipe's totals are summed
		// beside the writes; under one, after them.
		for _, flags := range [][]string{nil, {"--memory-limit", "1GB"}} {
			restore := engine.SetPiecesAbove(-1)
			r := runKalla(t, filepath.Join(dir, "recipe.json"), flags...)
			restore()
			if r.code != 0 {
				t.Fatalf("%s %v: kalla run exited %d: %s", name, flags, r.code, r.stderr)
			}
			var sum kalla.Summary
			if err := json.Unmarshal([]byte(r.stdout), &sum); err != nil {
				t.Fatalf("%s %v: %v", name, flags, err)
			}
			g, _ := json.Marshal(sum.Amounts)
			w, _ := json.Marshal(want.Amounts)
			if string(g) != string(w) {
				t.Errorf("%s %v: amounts through pieces:\n  got  %s\n  want %s", name, flags, g, w)
			}
			if f, pf := files(&sum), files(&plainSum); f != pf {
				t.Errorf("%s %v: the files differ with the sets in pieces:\n%s\n  with variables:\n%s", name, flags, f, pf)
			}
		}
	}
	if n < 2 {
		t.Fatalf("only %d scenarios pin their amounts", n)
	}
}

// TestPiecesBesideSourceColumns runs a SQL recipe and a rules recipe whose
// sources have columns named like a set's pieces would be without Kalla's
// prefix (k, b, p), with every set in pieces: the scans that join the
// pieces to a side's rows must not find a column ambiguous. The unmatched
// records and the open totals are known: I2 and P3 are open. The rules
// recipe runs under a memory limit too, where its totals are summed after
// the writes rather than beside them.
func TestPiecesBesideSourceColumns(t *testing.T) {
	defer engine.SetPiecesAbove(-1)()
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{
		"left.csv":  "id,k,b,p,amount\nI1,K1,x,y,10.00\nI2,K2,x,y,20.00\n",
		"right.csv": "id,k,b,p,amount\nP1,K1,x,y,10.00\nP3,K3,x,y,5.00\n",
		"sql.json": `{"recipe_id": "sql", "match_sql": "SELECT l.id, r.id AS rid FROM left_src l JOIN right_src r ON r.k = l.k WHERE tolerance_match(l.amount, r.amount, 0.01)",
		  "sources": {"left": {"alias": "l", "uri": "left.csv", "primary_key": ["id"]}, "right": {"alias": "r", "uri": "right.csv", "primary_key": ["id"]}}}`,
		"rules.json": `{"recipe_id": "rules", "rules": [{"name": "k", "conditions": [{"op": "eq", "left": "k", "right": "k"}, {"op": "tolerance", "left": "amount", "right": "amount", "abs": 0.01}]}],
		  "sources": {"left": {"alias": "l", "uri": "left.csv", "primary_key": ["id"]}, "right": {"alias": "r", "uri": "right.csv", "primary_key": ["id"]}}}`})
	for _, run := range []struct {
		recipe string
		flags  []string
	}{{"sql.json", nil}, {"rules.json", nil}, {"rules.json", []string{"--memory-limit", "1GB"}}} {
		r := runKalla(t, filepath.Join(dir, run.recipe), run.flags...)
		recipe := strings.TrimSpace(run.recipe + " " + strings.Join(run.flags, " ")) // for the messages
		if r.code != 0 {
			t.Fatalf("%s: kalla run exited %d: %s", recipe, r.code, r.stderr)
		}
		for file, want := range map[string]string{"unmatched_left.csv": "I2", "unmatched_right.csv": "P3"} {
			tab := readCSV(t, filepath.Join(r.out, file))
			if len(tab.rows) != 1 || tab.rows[0][0] != want {
				t.Errorf("%s: %s holds %v, want %s alone", recipe, file, tab.rows, want)
			}
		}
		var sum kalla.Summary
		if err := json.Unmarshal([]byte(r.stdout), &sum); err != nil {
			t.Fatal(err)
		}
		if sum.Amounts == nil || len(sum.Amounts.Totals) != 1 || sum.Amounts.Totals[0].LeftOpen != "20.00" || sum.Amounts.Totals[0].RightOpen != "5.00" {
			t.Errorf("%s: amounts %+v, want 20.00 open on the left and 5.00 on the right", recipe, sum.Amounts)
		}
	}
}
