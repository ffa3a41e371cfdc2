package engine_test

// The rules reference (docs/rules.md) shows its examples as fenced blocks
//
//	```example <scenario>
//	-- rules --
//	[ ...the recipe's rules... ]
//	-- left.csv --
//	...
//	-- expected/matched.csv --
//	...
//	```
//
// Each names a golden scenario folder under testdata/scenarios, which
// TestGoldenScenarios runs through the real engine against its hand-worked
// expected files. TestRulesReference holds the document to those folders,
// so that the reference cannot say one thing while the tests pin another.

import (
	"bufio"
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/kalla-recon/kalla/internal/kalla"
)

const referenceDoc = "../../docs/rules.md"

// docExample is one example block of the reference.
type docExample struct {
	scenario string
	line     int
	sections map[string]string // "rules" or a path in the scenario folder
	order    []string
}

var sectionLine = regexp.MustCompile(`^-- (\S+) --$`)

// readExamples parses the reference's example blocks.
func readExamples(t *testing.T, path string) []docExample {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []docExample
	var cur *docExample
	var section string
	var body []string
	flush := func() {
		if cur != nil && section != "" {
			cur.sections[section] = strings.Join(body, "\n")
		}
		section, body = "", nil
	}
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		switch {
		case cur == nil && strings.HasPrefix(line, "```example"):
			name := strings.TrimSpace(strings.TrimPrefix(line, "```example"))
			if name == "" {
				t.Fatalf("%s:%d: an example block must name its scenario folder: ```example <folder>", path, n)
			}
			cur = &docExample{scenario: name, line: n, sections: map[string]string{}}
		case cur != nil && line == "```":
			flush()
			out = append(out, *cur)
			cur = nil
		case cur != nil:
			if m := sectionLine.FindStringSubmatch(line); m != nil {
				flush()
				section = m[1]
				if _, dup := cur.sections[section]; dup || slices.Contains(cur.order, section) {
					t.Fatalf("%s:%d: section %s shown twice", path, n, section)
				}
				cur.order = append(cur.order, section)
				continue
			}
			if section == "" {
				t.Fatalf("%s:%d: text before the first -- <file> -- line of an example", path, n)
			}
			body = append(body, line)
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	if cur != nil {
		t.Fatalf("%s:%d: example block not closed", path, cur.line)
	}
	return out
}

// TestRulesReference checks every example of docs/rules.md against its
// scenario folder: the rules shown are the recipe's rules, and every file
// shown (inputs and expected answer) is the folder's file, character for
// character. An example must show its rules, both inputs and at least one
// expected output; the recipe must be complete as shown (sources invoices
// and payments keyed by their first column, nothing else set), and every
// ref_* scenario, made for the reference, must appear in it.
func TestRulesReference(t *testing.T) {
	examples := readExamples(t, referenceDoc)
	if len(examples) == 0 {
		t.Fatalf("%s has no example blocks", referenceDoc)
	}
	shown := map[string]bool{}
	for _, ex := range examples {
		where := referenceDoc + ":" + strconv.Itoa(ex.line) + " (" + ex.scenario + ")"
		shown[ex.scenario] = true
		dir := filepath.Join(scenariosDir, ex.scenario)
		data, err := os.ReadFile(filepath.Join(dir, "recipe.json"))
		if err != nil {
			t.Errorf("%s: no scenario folder for this example: %v", where, err)
			continue
		}
		for _, need := range []string{"rules", "left.csv", "right.csv"} {
			if _, ok := ex.sections[need]; !ok {
				t.Errorf("%s: the example does not show %s", where, need)
			}
		}
		if !slices.ContainsFunc(ex.order, func(s string) bool { return strings.HasPrefix(s, "expected/") }) {
			t.Errorf("%s: the example shows no answer (an expected/ file)", where)
		}
		checkShownRecipe(t, where, dir, data, ex.sections["rules"])
		for _, name := range ex.order {
			if name == "rules" {
				continue
			}
			if filepath.IsAbs(name) || strings.Contains(name, "..") {
				t.Errorf("%s: section %s is not a file of the scenario folder", where, name)
				continue
			}
			file, err := os.ReadFile(filepath.Join(dir, filepath.FromSlash(name)))
			if err != nil {
				t.Errorf("%s: shows %s, which the scenario folder lacks: %v", where, name, err)
				continue
			}
			if got, want := ex.sections[name], strings.TrimRight(string(file), "\n"); got != want {
				t.Errorf("%s: %s as shown differs from the scenario's file:\n--- document\n%s\n--- %s\n%s", where, name, got, filepath.Join(dir, name), want)
			}
		}
	}
	for _, name := range caseDirs(t, scenariosDir) {
		if strings.HasPrefix(name, "ref_") && !shown[name] {
			t.Errorf("scenario %s was made for the rules reference but %s shows no example of it", name, referenceDoc)
		}
	}
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(readme), "(docs/rules.md)") {
		t.Errorf("README.md does not link to docs/rules.md")
	}
}

// checkShownRecipe checks the rules an example shows against the recipe,
// and that nothing else in the recipe would change what the example does.
func checkShownRecipe(t *testing.T, where, dir string, data []byte, rules string) {
	t.Helper()
	var raw struct {
		Rules json.RawMessage `json:"rules"`
	}
	if err := json.Unmarshal(data, &raw); err != nil {
		t.Errorf("%s: recipe.json: %v", where, err)
		return
	}
	var want, got any
	if err := json.Unmarshal(raw.Rules, &want); err != nil || want == nil {
		t.Errorf("%s: the recipe has no rules: %v", where, err)
		return
	}
	if err := json.Unmarshal([]byte(rules), &got); err != nil {
		t.Errorf("%s: the rules shown are not JSON: %v", where, err)
		return
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("%s: the rules shown differ from the recipe's:\n--- document\n%s\n--- recipe\n%s", where, rules, raw.Rules)
	}
	rec, err := kalla.ParseRecipe(data)
	if err != nil {
		t.Errorf("%s: %v", where, err)
		return
	}
	for _, sd := range []struct {
		spec  kalla.SourceSpec
		alias string
		file  string
	}{{rec.Sources.Left, "invoices", "left.csv"}, {rec.Sources.Right, "payments", "right.csv"}} {
		s := sd.spec
		head := readCSV(t, filepath.Join(dir, sd.file)).header
		if s.Alias != sd.alias || s.URI != sd.file || len(head) == 0 || !slices.Equal(s.PrimaryKey, head[:1]) ||
			s.Type != "" || s.Schema != nil || s.Filters != nil || s.CSV != nil {
			t.Errorf("%s: the recipe's source %s is not as the reference says every example's is (alias %s, uri %s, keyed by its first column, no other setting)",
				where, s.Alias, sd.alias, sd.file)
		}
	}
}
