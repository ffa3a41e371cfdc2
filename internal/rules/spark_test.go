package rules

import (
	"context"
	"errors"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/kalla-recon/kalla/internal/kalla"
)

// sparkSides are two sides as the Spark engine stages them (Spark types).
func sparkSides() (Side, Side) {
	cols := []kalla.Column{{Name: "id", EngineType: "STRING"}, {Name: "ref", EngineType: "STRING"}, {Name: "name", EngineType: "STRING"},
		{Name: "amount", EngineType: "DECIMAL(12,2)"}, {Name: "day", EngineType: "DATE"}, {Name: "at", EngineType: "TIMESTAMP_NTZ"}, {Name: "n", EngineType: "INT"}}
	return Side{Name: "left", Alias: "a", View: "left_src", RID: "__kalla_left_rid", Cols: cols, PK: []string{"id"}},
		Side{Name: "right", Alias: "b", View: "right_src", RID: "__kalla_right_rid", Cols: cols, PK: []string{"id"}}
}

// TestSparkRefuses checks that what Spark SQL cannot compute as DuckDB
// does (Jaro-Winkler) is refused when the rules are compiled for Spark, naming the rule,
// the condition and why, and that DuckDB compiles the same rules.
func TestSparkRefuses(t *testing.T) {
	cases := []struct{ name, rules, want string }{
		{"fuzzy", `[{"name": "payer", "conditions": [{"op": "eq", "left": "amount", "right": "amount"}, {"op": "fuzzy", "left": "name", "right": "name", "threshold": 0.9}]}]`,
			`rules[0] "payer".conditions[1]: fuzzy (Jaro-Winkler similarity) cannot run on the spark engine`},
	}
	l, r := sparkSides()
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			rec, err := kalla.ParseRecipe([]byte(recipeHead + `, "rules": ` + c.rules + `}`))
			if err != nil {
				t.Fatal(err)
			}
			_, err = Compile(Input{Rules: rec.Rules, Left: l, Right: r}, NewSpark(""))
			if err == nil || !strings.Contains(err.Error(), c.want) || kalla.ErrorCode(err) != kalla.EINVALID {
				t.Fatalf("got %v, want EINVALID with %q", err, c.want)
			}
			if _, err := Compile(Input{Rules: rec.Rules, Left: l, Right: r}, DuckDB); err != nil {
				t.Fatalf("DuckDB refuses it too: %v", err)
			}
		})
	}
}

// TestJavaRegexp checks the RE2 patterns rewritten for Spark against Go's
// regexp (RE2's semantics) on sample texts: Java's syntax, where it meets
// RE2's (explicit code points, groups, classes, repetition), reads the
// same as Go's, so the rewritten pattern must remove exactly what the
// original removes.
func TestJavaRegexp(t *testing.T) {
	texts := []string{"INV-001-PART2", "a-PART1\n", "x1\ny\nxy\r\ny", "vo v vv", "inv 17", "Ünïcödé-42", "a.b.c", "x\r\ny", "ΣΑΣ σας", "", "--PART9"}
	for _, p := range []string{`-PART[0-9]+\z`, `[^\p{L}\p{N}]`, `(?i)part`, `[[:alpha:]]+`, `\pN+`, `a.b`, `(?s)a.b`, `^\s+|\s+\z`, `-PART[0-9]+$`, `(?m)^x|y$`, `\bv\b|\Bo`, `(?P<x>[0-9]{2,3}?)`, `x*?y|z+`, `[^a-c]`, `\Qa.b\E`} {
		j, err := javaRegexp(p)
		if err != nil {
			t.Fatalf("%s: %v", p, err)
		}
		// Go reads \x{..}, (?:...), classes and repetition as Java does,
		// so the rewritten pattern, run by Go, shows what Java will do;
		// lookarounds (anchors) Go cannot read: TestSparkTextOnSpark
		// runs those on Spark.
		if strings.Contains(j, "(?<") || strings.Contains(j, "(?=") || strings.Contains(j, "(?!") {
			continue
		}
		want, got := regexp.MustCompile(p), regexp.MustCompile(j)
		for _, x := range texts {
			if a, b := want.ReplaceAllString(x, ""), got.ReplaceAllString(x, ""); a != b {
				t.Errorf("%s -> %s on %q: %q, rewritten %q", p, j, x, a, b)
			}
		}
	}
}

// TestSparkResolve checks that a Spark table's new version reads the
// versions its query names, not the names (which would be recursive), and
// leaves string literals alone.
func TestSparkResolve(t *testing.T) {
	d := NewSpark("")
	d.CreateTableAs("__kalla_edges", "SELECT 1 AS a")
	got := d.InsertInto("__kalla_edges", "SELECT a FROM __kalla_edges e WHERE '__kalla_edges' <> 'it\\'s __kalla_edges'")
	want := "CACHE LAZY TABLE `__kalla_edges__k2` AS SELECT * FROM `__kalla_edges__k1` UNION ALL SELECT a FROM __kalla_edges__k1 e WHERE '__kalla_edges' <> 'it\\'s __kalla_edges'"
	if got[0] != want {
		t.Fatalf("got  %s\nwant %s", got[0], want)
	}
	if got[1] != "CREATE OR REPLACE TEMPORARY VIEW `__kalla_edges` AS SELECT * FROM `__kalla_edges__k2`" {
		t.Fatalf("view: %s", got[1])
	}
}

// TestSparkScratchCutsLineage checks that with a scratch folder a version
// is written as Parquet and read back as a view of its files (a leaf
// plan), its query still reading the versions it names, and that a name
// with a quote stays one string literal.
func TestSparkScratchCutsLineage(t *testing.T) {
	d := NewSpark("file:///out/.kalla-scratch-x/")
	d.CreateTableAs("__kalla_edges", "SELECT 1 AS a")
	got := d.InsertInto("__kalla_edges", "SELECT a FROM __kalla_edges")
	want := []string{
		"INSERT OVERWRITE DIRECTORY 'file:///out/.kalla-scratch-x/__kalla_edges__k2' USING parquet SELECT * FROM `__kalla_edges__k1` UNION ALL SELECT a FROM __kalla_edges__k1",
		"CREATE OR REPLACE TEMPORARY VIEW `__kalla_edges__k2` USING parquet OPTIONS (path 'file:///out/.kalla-scratch-x/__kalla_edges__k2')",
		"CREATE OR REPLACE TEMPORARY VIEW `__kalla_edges` AS SELECT * FROM `__kalla_edges__k2`",
	}
	if !slices.Equal(got, want) {
		t.Fatalf("got\n  %s\nwant\n  %s", strings.Join(got, "\n  "), strings.Join(want, "\n  "))
	}
	q := NewSpark("s3a://b/it's").CreateTableAs("t", "SELECT 1 AS a")
	if !strings.Contains(q[0], `'s3a://b/it\'s/t__k1'`) {
		t.Fatalf("path not one literal: %s", q[0])
	}
}

// lazyDB fails the first query reading the candidates, as Spark does when
// a lazily cached table meets a value its query cannot cast.
type lazyDB struct{ SQLDB }

func (d lazyDB) Query(ctx context.Context, q string, each func(Row) error) error {
	if strings.Contains(q, edgesTable) {
		return errors.New("[CAST_INVALID_INPUT] The value 'ACME' of the type \"STRING\" cannot be cast to \"DATE\"\nJVM stack")
	}
	return d.SQLDB.Query(ctx, q, each)
}

// TestQueryErrorNamesRule checks that a data error met by a query (where
// Spark's lazy tables meet the data) is reported like a statement's:
// EINVALID, naming the rule, with the engine's first line only.
func TestQueryErrorNamesRule(t *testing.T) {
	d := newTestDB(t, "x,amount\nA,1\n", "x,amount\nA,1\n", []string{"x"}, []string{"x"}, 1)
	p := d.compile(`[{"name": "exact", "conditions": [{"op": "eq", "left": "x", "right": "x"}]}]`)
	err := p.Execute(t.Context(), lazyDB{SQLDB{Conn: d.conn}})
	if kalla.ErrorCode(err) != kalla.EINVALID || !strings.Contains(err.Error(), `rules[0] "exact"`) || !strings.Contains(err.Error(), "CAST_INVALID_INPUT") || strings.Contains(err.Error(), "JVM") {
		t.Fatalf("got %v, want EINVALID naming rules[0] \"exact\" with the first line of the error", err)
	}
}
