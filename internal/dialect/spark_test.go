package dialect

import "testing"

// TestSparkQuoting checks Spark's identifier and literal quoting on the
// characters that could end them early (rules/sparktest reads literals
// back from Spark itself).
func TestSparkQuoting(t *testing.T) {
	for in, want := range map[string]string{"a": "`a`", "a`b": "`a``b`", "x\x00y": "`xy`", "": "``"} {
		if got := SparkQuoteIdent(in); got != want {
			t.Errorf("SparkQuoteIdent(%q) = %s, want %s", in, got, want)
		}
	}
	for in, want := range map[string]string{"a": "'a'", "it's": `'it\'s'`, `a\b`: `'a\\b'`, `\'`: `'\\\''`, "x\x00": "'x'"} {
		if got := SparkQuoteString(in); got != want {
			t.Errorf("SparkQuoteString(%q) = %s, want %s", in, got, want)
		}
	}
}
