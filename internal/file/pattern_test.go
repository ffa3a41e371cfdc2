package file

import (
	"fmt"
	"math/rand/v2"
	"regexp"
	"strings"
	"testing"
)

// TestGuessPatternLanguage checks that the one-pass patterns the load and
// the measure use accept exactly the texts their plain four-way forms
// accept (the forms Kalla used before, easier to read): every text over
// the characters that matter up to five long, and 200,000 random ones up
// to 24 long, for BIGINT and every scale a guess can have.
func TestGuessPatternLanguage(t *testing.T) {
	type pair struct {
		name     string
		got, old *regexp.Regexp
	}
	full := func(p string) *regexp.Regexp { return regexp.MustCompile(`^(?:` + p + `)$`) }
	pairs := []pair{
		{"plainNumber", full(plainNumber), full(`-?[1-9][0-9]*(\.[0-9]+)?|-?0\.[0-9]+|0`)},
		{"BIGINT", full(guessPattern(0)), full(`[1-9][0-9]{0,17}|-[1-9][0-9]{0,16}|0`)},
	}
	for scale := 1; scale <= 15; scale++ {
		d := 18 - scale
		pairs = append(pairs, pair{fmt.Sprintf("DECIMAL(18,%d)", scale), full(guessPattern(scale)),
			full(fmt.Sprintf(`[1-9][0-9]{0,%[1]d}(\.[0-9]{1,%[3]d})?|-[1-9][0-9]{0,%[2]d}(\.[0-9]{1,%[3]d})?|-?0\.[0-9]{1,%[3]d}|0`, d-1, d-2, scale))})
	}
	const alphabet = "-01.9+ e"
	var texts []string
	var grow func(prefix string, n int)
	grow = func(prefix string, n int) {
		texts = append(texts, prefix)
		if n == 0 {
			return
		}
		for _, c := range alphabet {
			grow(prefix+string(c), n-1)
		}
	}
	grow("", 5)
	r := rand.New(rand.NewPCG(1, 2))
	for range 200_000 {
		b := make([]byte, r.IntN(25))
		for i := range b {
			if r.IntN(4) == 0 {
				b[i] = alphabet[r.IntN(len(alphabet))]
			} else {
				b[i] = byte('0' + r.IntN(10))
			}
		}
		texts = append(texts, string(b))
	}
	// Lengths at the digit limits of each scale, with and without a
	// minus and a fraction.
	for n := 14; n <= 20; n++ {
		digits := "1" + strings.Repeat("0", n-1)
		for _, s := range []string{digits, "-" + digits, digits + ".5", "-" + digits + ".55", "0." + digits, "-0." + digits} {
			texts = append(texts, s)
		}
	}
	for _, p := range pairs {
		accepted := 0
		for _, s := range texts {
			g, o := p.got.MatchString(s), p.old.MatchString(s)
			if g != o {
				t.Errorf("%s: %q: one-pass form %v, plain form %v", p.name, s, g, o)
			}
			if g {
				accepted++
			}
		}
		if accepted < 100 {
			t.Errorf("%s accepted only %d texts: the test's texts miss the language", p.name, accepted)
		}
	}
}
