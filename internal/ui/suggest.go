package ui

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"unicode"

	"github.com/kalla-recon/kalla/internal/kalla"
)

// This file holds the recipe builder's column-pair suggestions. It is kept
// small and on its own: `kalla recipe suggest` (issue 6) may replace it.

// Sample is one side's columns and sample rows, as the API's preview and
// load-scoped return them (values as text, nil for NULL).
type Sample struct {
	Columns []kalla.Column `json:"columns"`
	Rows    [][]*string    `json:"rows"`
}

// Pair is a suggested pair of columns, one per side, that may identify
// the same record, with the evidence for it.
type Pair struct {
	Left  string `json:"left"`
	Right string `json:"right"`
	// Score orders the suggestions, in [0, 1].
	Score float64 `json:"score"`
	// NameScore is how alike the two names are, in [0, 1].
	NameScore float64 `json:"name_score"`
	// Shared counts distinct sample values found on both sides, out of
	// LeftDistinct and RightDistinct; Examples lists a few of them.
	Shared        int      `json:"shared"`
	LeftDistinct  int      `json:"left_distinct"`
	RightDistinct int      `json:"right_distinct"`
	Examples      []string `json:"examples"`
	// Measure is set when both columns hold fractional numbers (amounts):
	// they rarely identify a record alone and usually match within a
	// tolerance rather than exactly.
	Measure bool `json:"measure"`
	// Evidence says in words why the pair is suggested.
	Evidence []string `json:"evidence"`
}

// Suggestion thresholds: a pair needs names this alike, or this share of
// the smaller side's distinct values in common.
const (
	minNameScore   = 0.5
	minShare       = 0.05
	maxSuggestions = 12
	maxExamples    = 3
)

// Suggest proposes column pairs between two samples: pairs whose names are
// alike (invoice_id / invoice_no, amount / paid_amount) and pairs whose
// sample values overlap (invoice_id / reference_number both holding
// INV-00000042), best first. Values compare as trimmed, case-folded text,
// numbers by value (100.50 = 100.5). Pairs of columns of different kinds
// (a number and a date) are not proposed on their names alone, and pairs
// of amounts rank below identifiers: equal amounts are weaker evidence of
// the same record than equal references.
func Suggest(left, right Sample) []Pair {
	lv, rv := distinctValues(left), distinctValues(right)
	lrows, rrows := nonNullRows(left), nonNullRows(right)
	var out []Pair
	for i, lc := range left.Columns {
		for j, rc := range right.Columns {
			p := Pair{Left: lc.Name, Right: rc.Name, NameScore: nameScore(lc.Name, rc.Name),
				LeftDistinct: len(lv[i]), RightDistinct: len(rv[j])}
			small, big := lv[i], rv[j]
			if len(big) < len(small) {
				small, big = big, small
			}
			var shared []string
			for v, orig := range small {
				if _, ok := big[v]; ok {
					shared = append(shared, orig)
				}
			}
			sort.Strings(shared)
			p.Shared = len(shared)
			share := 0.0
			if len(small) > 0 {
				share = float64(len(shared)) / float64(len(small))
			}
			// Values shared by a column of few distinct values (a
			// customer name, a currency) say little about identity.
			card := min(ratio(len(lv[i]), lrows[i]), ratio(len(rv[j]), rrows[j]))
			overlap := share * math.Sqrt(card)
			sameKind := kind(lc.DataType) == kind(rc.DataType)
			p.Measure = measure(lc.DataType) && measure(rc.DataType)
			switch {
			case p.NameScore >= minNameScore && sameKind:
			case share >= minShare && p.Shared > 0:
			default:
				continue
			}
			p.Examples = shared[:min(len(shared), maxExamples)]
			if p.NameScore >= minNameScore {
				p.Evidence = append(p.Evidence, fmt.Sprintf("names alike (%.0f%%)", p.NameScore*100))
			}
			if p.Shared > 0 {
				p.Evidence = append(p.Evidence, fmt.Sprintf("%d of %d sampled values also on the other side, e.g. %s",
					p.Shared, len(small), strings.Join(quoteAll(p.Examples), ", ")))
			}
			if !sameKind {
				p.Evidence = append(p.Evidence, fmt.Sprintf("types differ (%s, %s)", lc.DataType, rc.DataType))
			}
			if p.Measure {
				p.Evidence = append(p.Evidence, "amounts: compare within a tolerance")
			}
			if p.Shared > 0 && card < 0.5 {
				p.Evidence = append(p.Evidence, "few distinct values: a category rather than an identifier")
			}
			p.Score = 0.4*p.NameScore + 0.6*overlap
			switch {
			case p.Measure:
				p.Score *= 0.6
			case !sameKind:
				p.Score *= 0.8
			}
			p.Score = float64(int(p.Score*1000+0.5)) / 1000
			out = append(out, p)
		}
	}
	sort.SliceStable(out, func(a, b int) bool {
		if out[a].Score != out[b].Score {
			return out[a].Score > out[b].Score
		}
		if out[a].Left != out[b].Left {
			return out[a].Left < out[b].Left
		}
		return out[a].Right < out[b].Right
	})
	return out[:min(len(out), maxSuggestions)]
}

// quoteAll puts each value in typographic quotes, which values rarely
// hold, so they read as written.
func quoteAll(vs []string) []string {
	out := make([]string, len(vs))
	for i, v := range vs {
		out[i] = "“" + v + "”"
	}
	return out
}

// distinctValues returns, per column, its sample's distinct non-empty
// values: normalised value to the first value written that way.
func distinctValues(s Sample) []map[string]string {
	out := make([]map[string]string, len(s.Columns))
	for i := range out {
		out[i] = map[string]string{}
	}
	for _, row := range s.Rows {
		for i, v := range row {
			if i >= len(out) || v == nil {
				continue
			}
			if n := normValue(*v); n != "" {
				if _, seen := out[i][n]; !seen {
					out[i][n] = strings.TrimSpace(*v)
				}
			}
		}
	}
	return out
}

// nonNullRows counts, per column, the sample rows with a value.
func nonNullRows(s Sample) []int {
	out := make([]int, len(s.Columns))
	for _, row := range s.Rows {
		for i, v := range row {
			if i < len(out) && v != nil && strings.TrimSpace(*v) != "" {
				out[i]++
			}
		}
	}
	return out
}

func ratio(a, b int) float64 {
	if b == 0 {
		return 0
	}
	return float64(a) / float64(b)
}

// normValue folds a value for comparison: trimmed, lower case, and a
// number written in its shortest form, so 100.50 and 100.5 are one value.
func normValue(v string) string {
	v = strings.TrimSpace(v)
	if f, err := strconv.ParseFloat(v, 64); err == nil && strings.IndexFunc(v, unicode.IsLetter) < 0 {
		return strconv.FormatFloat(f, 'f', -1, 64)
	}
	return strings.ToLower(v)
}

// kind is the family of a column type: number, date/time, or text.
func kind(dataType string) string {
	t := strings.ToLower(dataType)
	switch {
	case strings.Contains(t, "int"), strings.Contains(t, "dec"), strings.Contains(t, "num"),
		strings.Contains(t, "double"), strings.Contains(t, "float"), strings.Contains(t, "real"):
		return "number"
	case strings.Contains(t, "date"), strings.Contains(t, "time"):
		return "time"
	}
	return "text"
}

// measure reports whether a column type holds fractional numbers.
func measure(dataType string) bool {
	t := strings.ToLower(dataType)
	return strings.Contains(t, "dec") || strings.Contains(t, "num") || strings.Contains(t, "double") ||
		strings.Contains(t, "float") || strings.Contains(t, "real") || strings.Contains(t, "money")
}

// nameScore is how alike two column names are, in [0, 1]: 1 for the same
// name ignoring case and separators, at least 0.6 when they share a word
// of three or more letters (amount / paid_amount), otherwise the Dice
// coefficient of their letter pairs.
func nameScore(a, b string) float64 {
	na, nb := normName(a), normName(b)
	if na == "" || nb == "" {
		return 0
	}
	if na == nb {
		return 1
	}
	score := dice(na, nb)
	wa, wb := words(a), words(b)
	for w := range wa {
		if len(w) >= 3 && wb[w] && !genericWords[w] {
			score = max(score, 0.6+0.4*dice(na, nb))
		}
	}
	return float64(int(score*1000+0.5)) / 1000
}

// genericWords say little about what a column holds.
var genericWords = map[string]bool{"the": true, "num": true, "key": true, "code": true, "date": true, "name": true, "type": true}

func normName(s string) string {
	var b strings.Builder
	for _, c := range strings.ToLower(s) {
		if unicode.IsLetter(c) || unicode.IsDigit(c) {
			b.WriteRune(c)
		}
	}
	return b.String()
}

// words splits a column name at separators and case changes.
func words(s string) map[string]bool {
	out := map[string]bool{}
	var cur []rune
	flush := func() {
		if len(cur) > 0 {
			out[strings.ToLower(string(cur))] = true
			cur = cur[:0]
		}
	}
	prev := rune(0)
	for _, c := range s {
		switch {
		case !unicode.IsLetter(c) && !unicode.IsDigit(c):
			flush()
		case unicode.IsUpper(c) && unicode.IsLower(prev):
			flush()
			cur = append(cur, c)
		default:
			cur = append(cur, c)
		}
		prev = c
	}
	flush()
	return out
}

// dice is the Dice coefficient of two strings' letter pairs.
func dice(a, b string) float64 {
	pairs := func(s string) map[string]int {
		m := map[string]int{}
		r := []rune(s)
		for i := 0; i+1 < len(r); i++ {
			m[string(r[i:i+2])]++
		}
		return m
	}
	pa, pb := pairs(a), pairs(b)
	total, common := 0, 0
	for _, n := range pa {
		total += n
	}
	for p, n := range pb {
		total += n
		common += min(n, pa[p])
	}
	if total == 0 {
		return 0
	}
	return 2 * float64(common) / float64(total)
}

// suggestRequest is the body of POST /ui/suggest.
type suggestRequest struct {
	Left  Sample `json:"left"`
	Right Sample `json:"right"`
}

// suggest answers the builder's request for column pairs: the browser
// sends the two samples it loaded through the API, the server compares
// them. Errors: EINVALID for a body that is not two samples.
func (h *Handler) suggest(r *http.Request) (any, error) {
	var req suggestRequest
	dec := json.NewDecoder(r.Body)
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return nil, kalla.Errorf(kalla.EINVALID, "the samples are larger than %d bytes", mbe.Limit)
		}
		return nil, kalla.Errorf(kalla.EINVALID, "send {\"left\": {\"columns\", \"rows\"}, \"right\": {…}}: %v", err)
	}
	pairs := Suggest(req.Left, req.Right)
	if pairs == nil {
		pairs = []Pair{}
	}
	return map[string]any{"pairs": pairs}, nil
}
