package engine

import (
	"strings"
	"testing"
)

// TestCheckSaysWhatIsWrong: a column that does not exist is named as
// written with the nearest real one (not advice about aggregation), and a
// match that compares every record with every record is warned about.
func TestCheckSaysWhatIsWrong(t *testing.T) {
	f := newSandboxFixture(t)
	for _, c := range []struct {
		name, sql, problem, warning string
	}{
		{"qualified unknown column", "SELECT l.id, r.id FROM left_src l JOIN right_src r ON l.idd = r.ref", "unknown column `l.idd`; did you mean `id`?", ""},
		{"a column of the other side", "SELECT l.id, r.id FROM left_src l JOIN right_src r ON l.ref = r.id", "unknown column `l.ref` (`ref` is a column of right_src)", ""},
		{"a near column of its own side", "SELECT l.id, r.id FROM left_src l JOIN right_src r ON l.id = r.ref AND l.amount = r.amont", "unknown column `r.amont`; did you mean `amount`?", ""},
		{"a longer name on its own side", "SELECT l.id, r.id FROM left_src l JOIN right_src r ON l.id = r.re", "unknown column `r.re`; did you mean `ref`?", ""},
		{"unqualified unknown column", "SELECT l.id, r.id FROM left_src l JOIN right_src r ON reff = l.id", "unknown column `reff`; did you mean `ref`?", ""},
		{"cross join", "SELECT l.id, r.id FROM left_src l, right_src r", "", "a cross join"},
		{"no equality", "SELECT l.id, r.id FROM left_src l JOIN right_src r ON tolerance_match(l.amount, r.amount, 1)", "", "no equality to join on"},
		{"a join on a reference", "SELECT l.id, r.id FROM left_src l JOIN right_src r ON l.id = r.ref", "", ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			l, r := f.sources(t)
			chk, err := f.open(t, Options{}).CheckRecipe(t.Context(), f.recipe(c.sql), l, r, [2]error{})
			if err != nil {
				t.Fatal(err)
			}
			switch {
			case c.problem != "":
				if len(chk.Problems) != 1 || !strings.Contains(chk.Problems[0], c.problem) {
					t.Errorf("problems %q, want one containing %q", chk.Problems, c.problem)
				}
			case !chk.OK():
				t.Errorf("problems %q, want none", chk.Problems)
			}
			switch {
			case c.warning != "":
				if len(chk.Warnings) != 1 || !strings.Contains(chk.Warnings[0], c.warning) {
					t.Errorf("warnings %q, want one containing %q", chk.Warnings, c.warning)
				}
			case len(chk.Warnings) > 0:
				t.Errorf("warnings %q, want none", chk.Warnings)
			}
		})
	}
}
