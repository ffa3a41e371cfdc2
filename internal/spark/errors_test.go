package spark_test

import (
	"bufio"
	"bytes"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/kalla-recon/kalla/internal/cli"
)

const errorCases = "../engine/testdata/errors"

// sparkWording maps, per error case, the words of expected_error.txt that
// are DuckDB's own to Spark's words for the same fault; everything else in
// the file must appear as it is.
var sparkWording = map[string]map[string]string{
	// A text that is not a date: DuckDB says "Conversion Error", Spark
	// names its error class.
	"rules_not_a_date": {"Conversion Error": "CAST_INVALID_INPUT"},
	// A zero divisor: Spark names its error class and its own way out.
	"division_by_zero": {
		"Division by zero in expression":                   "DIVIDE_BY_ZERO",
		"Use TRY(...) to return NULL for this expression.": "try_divide",
	},
}

// sparkCannot lists, per error case, the words of expected_error.txt that
// Spark cannot give, and why. The case still runs: the same exit code,
// every other word, nothing written.
var sparkCannot = map[string]map[string]string{
	// Spark's CSV reader (FAILFAST) names the file of a malformed record
	// but not its line, and Kalla cannot look: the cluster's executors
	// read the sources, never the Kalla process (which may not even see
	// the path).
	"ragged_row":     {"line 4": "Spark names the file, not the line"},
	"unclosed_quote": {"line 3": "Spark names the file, not the line"},
	"both_sides_bad": {"line 3": "Spark names the file, not the line"},
	// Spark's DIVIDE_BY_ZERO message, as Kalla passes it on, names no
	// expression.
	"division_by_zero": {"instalments": "Spark's message names no expression"},
}

// TestErrorsBothEngines runs every error case of the engine's golden tests
// (internal/engine/testdata/errors, which TestGoldenErrors runs on DuckDB)
// with `kalla run --engine spark`, as a user types it, and requires what
// DuckDB gives: the same exit code (hence the same error code), a message
// with the same substrings (sparkWording lists the few that are an
// engine's own words), nothing on stdout and nothing left in the output
// folder.
func TestErrorsBothEngines(t *testing.T) {
	rem := remote(t)
	ents, err := os.ReadDir(errorCases)
	if err != nil {
		t.Fatal(err)
	}
	for _, ent := range ents {
		name := ent.Name()
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			dir := filepath.Join(errorCases, name)
			code, subs := expectedError(t, filepath.Join(dir, "expected_error.txt"))
			out := t.TempDir()
			var stdout, stderr bytes.Buffer
			got := cli.Main(t.Context(), []string{"run", "--recipe", filepath.Join(dir, "recipe.json"), "--out", out, "--engine", "spark", "--spark-remote", rem},
				strings.NewReader(""), &stdout, &stderr)
			if got != code {
				t.Errorf("exit code %d, want %d", got, code)
			}
			for _, s := range subs {
				if w, ok := sparkWording[name][s]; ok {
					s = w
				}
				if why, ok := sparkCannot[name][s]; ok {
					t.Logf("not on Spark: %q (%s)", s, why)
					continue
				}
				if !strings.Contains(stderr.String(), s) {
					t.Errorf("message lacks %q", s)
				}
			}
			if stdout.Len() > 0 {
				t.Errorf("a failed run printed to stdout:\n%s", stdout.String())
			}
			if ents, _ := os.ReadDir(out); len(ents) > 0 {
				t.Errorf("a failed run left %d entries in the output folder", len(ents))
			}
			if t.Failed() {
				t.Logf("stderr:\n%s", stderr.String())
			}
		})
	}
}

// expectedError reads an expected_error.txt: "exit N" and the substrings
// (comments start with #).
func expectedError(t *testing.T, path string) (int, []string) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	code := -1
	var subs []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		switch {
		case line == "", strings.HasPrefix(line, "#"):
		case strings.HasPrefix(line, "exit "):
			if code, err = strconv.Atoi(strings.TrimPrefix(line, "exit ")); err != nil {
				t.Fatalf("%s: %v", path, err)
			}
		default:
			subs = append(subs, line)
		}
	}
	if code < 0 {
		t.Fatalf("%s: no exit line", path)
	}
	return code, subs
}
