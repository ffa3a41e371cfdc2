package rules

import (
	"strings"
	"testing"

	"github.com/kalla-recon/kalla/internal/kalla"
)

const recipeHead = `{"recipe_id": "t", "sources": {"left": {"alias": "a", "uri": "l.csv", "primary_key": ["id"]}, "right": {"alias": "b", "uri": "r.csv", "primary_key": ["id"]}}`

// TestRecipeRuleProblems checks that ParseRecipe rejects malformed rules with
// a message naming the rule, the condition and what to change.
func TestRecipeRuleProblems(t *testing.T) {
	cases := []struct{ name, tail, want string }{
		{"neither", `}`, `"match_sql" is required`},
		{"both", `, "match_sql": "SELECT 1", "rules": [{"name": "r", "conditions": [{"op": "eq", "left": "x", "right": "y"}]}]}`, `either "match_sql" or "rules"`},
		{"no name", `, "rules": [{"conditions": [{"op": "eq", "left": "x", "right": "y"}]}]}`, `rules[0].name is required`},
		{"same name", `, "rules": [{"name": "r", "conditions": [{"op": "eq", "left": "x", "right": "y"}]}, {"name": "R", "conditions": [{"op": "eq", "left": "x", "right": "y"}]}]}`, `another rule has the same name`},
		{"bad pattern", `, "rules": [{"name": "r", "pattern": "2:2", "conditions": [{"op": "eq", "left": "x", "right": "y"}]}]}`, `pattern "2:2"`},
		{"no conditions", `, "rules": [{"name": "r", "conditions": []}]}`, `needs at least one condition`},
		{"unknown op", `, "rules": [{"name": "r", "conditions": [{"op": "like", "left": "x", "right": "y"}]}]}`, `op "like" is not an operator`},
		{"no column", `, "rules": [{"name": "r", "conditions": [{"op": "eq", "left": "x"}]}]}`, `left and right name the columns`},
		{"tolerance empty", `, "rules": [{"name": "r", "conditions": [{"op": "tolerance", "left": "x", "right": "y"}]}]}`, `tolerance needs abs`},
		{"pct too big", `, "rules": [{"name": "r", "conditions": [{"op": "tolerance", "left": "x", "right": "y", "pct": 2}]}]}`, `it must be below 1`},
		{"negative abs", `, "rules": [{"name": "r", "conditions": [{"op": "tolerance", "left": "x", "right": "y", "abs": -1}]}]}`, `plain non-negative number`},
		{"pct_of", `, "rules": [{"name": "r", "conditions": [{"op": "tolerance", "left": "x", "right": "y", "pct": 0.1, "pct_of": "right"}]}]}`, `pct_of "right"`},
		{"days", `, "rules": [{"name": "r", "conditions": [{"op": "date_within", "left": "x", "right": "y"}]}]}`, `date_within needs days`},
		{"direction", `, "rules": [{"name": "r", "conditions": [{"op": "date_within", "left": "x", "right": "y", "days": 1, "direction": "later"}]}]}`, `direction "later"`},
		{"fuzzy threshold", `, "rules": [{"name": "r", "conditions": [{"op": "eq", "left": "k", "right": "k"}, {"op": "fuzzy", "left": "x", "right": "y"}]}]}`, `fuzzy needs threshold`},
		{"only fuzzy", `, "rules": [{"name": "r", "conditions": [{"op": "fuzzy", "left": "x", "right": "y", "threshold": 0.9}]}]}`, `needs an eq, tolerance or date_within condition`},
		{"normalize tolerance", `, "rules": [{"name": "r", "conditions": [{"op": "tolerance", "left": "x", "right": "y", "abs": 1, "normalize": ["trim"]}]}]}`, `normalize, strip_left and strip_right apply only`},
		{"bad normalize", `, "rules": [{"name": "r", "conditions": [{"op": "eq", "left": "x", "right": "y", "normalize": ["upper"]}]}]}`, `normalize "upper"`},
		{"bad regexp", `, "rules": [{"name": "r", "conditions": [{"op": "eq", "left": "x", "right": "y", "strip_right": "(["}]}]}`, `strip_right: error parsing regexp`},
		{"truncate", `, "rules": [{"name": "r", "conditions": [{"op": "eq", "left": "x", "right": "y", "truncate": "decade"}]}]}`, `truncate "decade"`},
		{"grouped without sum", `, "rules": [{"name": "r", "pattern": "1:N", "conditions": [{"op": "eq", "left": "x", "right": "y"}]}]}`, `needs an eq condition (the group key) and a tolerance`},
		{"grouped contains", `, "rules": [{"name": "r", "pattern": "N:1", "conditions": [{"op": "eq", "left": "x", "right": "y"}, {"op": "tolerance", "left": "a", "right": "a", "abs": 1}, {"op": "contains", "left": "x", "right": "y"}]}]}`, `contains cannot compare groups in a N:1 rule`},
		{"min_score", `, "rules": [{"name": "r", "min_score": 1.5, "conditions": [{"op": "eq", "left": "x", "right": "y"}]}]}`, `min_score must be between 0 and 1`},
		{"haystack", `, "rules": [{"name": "r", "conditions": [{"op": "eq", "left": "k", "right": "k"}, {"op": "contains", "left": "x", "right": "y", "haystack": "both"}]}]}`, `haystack "both"`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := kalla.ParseRecipe([]byte(recipeHead + c.tail))
			if err == nil {
				t.Fatal("no error")
			}
			if kalla.ErrorCode(err) != kalla.EINVALID {
				t.Errorf("code %s, want invalid", kalla.ErrorCode(err))
			}
			if !strings.Contains(err.Error(), c.want) {
				t.Errorf("error %q lacks %q", err, c.want)
			}
		})
	}
	// A YAML recipe with rules reads the same.
	r, err := kalla.ParseRecipe([]byte("recipe_id: y\nsources:\n  left: {alias: a, uri: l.csv, primary_key: [id]}\n  right: {alias: b, uri: r.csv, primary_key: [id]}\nrules:\n  - name: tol\n    conditions:\n      - {op: eq, left: id, right: ref}\n      - {op: tolerance, left: amt, right: amt, pct: 0.02, abs: 0.05}\n"))
	if err != nil {
		t.Fatal(err)
	}
	if c := r.Rules[0].Conditions[1]; c.Pct.String() != "0.02" || c.Abs.String() != "0.05" {
		t.Errorf("YAML tolerance read as pct %q abs %q", c.Pct, c.Abs)
	}
}

// TestCompileProblems checks the errors that need the sources' columns.
func TestCompileProblems(t *testing.T) {
	d := newTestDB(t, "id,ref,amount,d\nA,R,1.50,2026-01-01\n", "id,ref,amount,d\nB,R,1.50,2026-01-01\n", []string{"id"}, []string{"id"}, 0)
	cases := []struct{ rules, want string }{
		{`[{"name": "r", "conditions": [{"op": "eq", "left": "reff", "right": "ref"}]}]`, `rules[0] "r".conditions[0].left: lefts has no column "reff" (columns: id, ref, amount, d)`},
		{`[{"name": "r", "conditions": [{"op": "eq", "left": "ref", "right": "ref"}, {"op": "tolerance", "left": "d", "right": "amount", "abs": 1}]}]`, `tolerance compares amounts, but d is DATE`},
		{`[{"name": "r", "conditions": [{"op": "date_within", "left": "amount", "right": "d", "days": 1}]}]`, `date_within compares dates, but amount is DECIMAL(38,10)`},
		{`[{"name": "r", "conditions": [{"op": "eq", "left": "amount", "right": "amount", "truncate": "month"}]}]`, `truncate applies to dates`},
	}
	for _, c := range cases {
		rec := recipeHead + `, "rules": ` + c.rules + `}`
		r, err := kalla.ParseRecipe([]byte(rec))
		if err != nil {
			t.Fatalf("%s: %v", c.rules, err)
		}
		_, err = Compile(Input{Rules: r.Rules, Left: d.left, Right: d.right}, DuckDB)
		if err == nil || !strings.Contains(err.Error(), c.want) || kalla.ErrorCode(err) != kalla.EINVALID {
			t.Errorf("%s:\n  got  %v\n  want %q", c.rules, err, c.want)
		}
	}
}
