package ui

import (
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"

	"github.com/kalla-recon/kalla/internal/kalla"
)

var runIDPattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9-]{0,63}$`)

// runData is what the run page shows.
type runData struct {
	Run *kalla.RunRecord // URIs redacted
	// Files are the run's downloadable files, outputs then summary.json.
	Files []runFile
	Chart rateChart
	// Rules are the recipe's structured rules in words, none when it
	// matched by SQL.
	Rules []ruleText
	// Tables are the run's output tables with their downloads, in the
	// order the results tabs show them.
	Tables []runTable
	// Layout tells the results script which columns belong to which side
	// (JSON): the sources' column names and the column pairs the rules
	// compare.
	Layout string
	// Engines are the engines "Run again" may choose from, none when the
	// server has only one: it then repeats the run on the run's engine.
	Engines []string
	// Decisions is what people decided on the run's exceptions, nil
	// without an exceptions service.
	Decisions *decisionData
}

// runFile is one downloadable output of a completed run.
type runFile struct {
	Name, Table, Format, URL string
	Rows                     int64
	Bytes                    int64
	SHA256                   string
}

// runTable is one output table of a completed run: its tab and its
// downloads (the run's own files, then CSV and XLSX converted by the API
// when the run did not write them).
type runTable struct {
	Table, Label string
	Rows         int64
	Files        []runFile
	CSV, XLSX    string // URLs
}

// tableLabels names the output tables in words.
var tableLabels = map[string]string{
	"matched":         "Matched pairs",
	"unmatched_left":  "Unmatched left",
	"unmatched_right": "Unmatched right",
	"breaks":          "Breaks",
}

// resultsLayout is what the results script needs to lay out a matched
// pair as its two records: each side's column names and the column pairs
// the structured rules compare.
type resultsLayout struct {
	Left      []string    `json:"left"`
	Right     []string    `json:"right"`
	LeftKey   []string    `json:"left_key"`
	RightKey  []string    `json:"right_key"`
	Compared  [][2]string `json:"compared"`
	LeftName  string      `json:"left_name"`
	RightName string      `json:"right_name"`
}

// run shows one run: while it is queued or running, its live progress
// (the page's script follows the API's event stream: stage, rows staged
// per side, percent) and a cancel button; once completed, its counts, a
// match-rate chart, tabs of matched pairs and unmatched records with
// paging and search, and a download for every output file; when failed,
// the error in full. Errors: ENOTFOUND for an unknown run.
func (h *Handler) run(w http.ResponseWriter, r *http.Request) (*view, error) {
	id := r.PathValue("id")
	notFound := kalla.Errorf(kalla.ENOTFOUND, "no run has id %q", id)
	if !runIDPattern.MatchString(id) {
		return nil, notFound
	}
	rec, err := h.store.GetRun(r.Context(), id)
	if err != nil {
		if kalla.ErrorCode(err) == kalla.ENOTFOUND {
			return nil, notFound
		}
		return nil, err
	}
	d := runData{Run: rec.Redacted(), Rules: describeRules(rec.Recipe.Rules), Engines: h.engineChoice()}
	if s := rec.Summary; s != nil && rec.Status == kalla.RunCompleted {
		base := "/api/runs/" + rec.ID + "/files/"
		byTable := map[string]*runTable{}
		for _, t := range []string{"matched", "unmatched_left", "unmatched_right", "breaks"} {
			d.Tables = append(d.Tables, runTable{Table: t, Label: tableLabels[t], Rows: -1})
		}
		for i := range d.Tables {
			byTable[d.Tables[i].Table] = &d.Tables[i]
		}
		for _, o := range s.Outputs {
			// The Spark engine writes a folder of part files per table
			// ("matched.parquet/part-0000.parquet"): the name is escaped
			// as one path segment, the table's rows are its parts' sum, and
			// Spark's own bookkeeping files ("meta") are listed with the
			// checksums only.
			f := runFile{Name: o.Name, Table: o.Table, Format: o.Format, URL: base + url.PathEscape(o.Name), Rows: o.Rows, Bytes: o.Bytes, SHA256: o.SHA256}
			d.Files = append(d.Files, f)
			if t := byTable[o.Table]; t != nil && o.Format != "meta" {
				switch {
				case len(t.Files) == 0:
					t.Rows = o.Rows
				case o.Format == t.Files[0].Format:
					t.Rows += o.Rows // another part of the same copy
				}
				t.Files = append(t.Files, f)
			}
		}
		kept := d.Tables[:0]
		for _, t := range d.Tables {
			if len(t.Files) == 0 {
				continue // breaks: structured rules only
			}
			export := "/api/runs/" + rec.ID + "/export/" + t.Table
			t.XLSX = export + ".xlsx"
			t.CSV = export + ".csv"
			for _, f := range t.Files {
				if f.Format == "csv" {
					t.CSV = "" // the run's own CSV is listed with its files
				}
			}
			kept = append(kept, t)
		}
		d.Tables = kept
		d.Files = append(d.Files, runFile{Name: "summary.json", Format: "json", URL: base + "summary.json", Rows: -1})
		d.Chart = rateBars(s)
		d.Layout = layoutJSON(rec, s)
		d.Decisions = h.decisions(r.Context(), rec)
	}
	return &view{Page: "run.html", Title: "Run " + shortID(rec.ID), Nav: "runs", Data: d}, nil
}

// rateChart is the match-rate chart of a completed run: one bar per side,
// split into matched and unmatched records, drawn as inline SVG.
type rateChart struct {
	Bars []rateBar
}

// rateBar is one side's bar; widths are in the SVG's units (of barWidth).
type rateBar struct {
	Label            string
	Y                int
	Matched, Total   int64
	Rate             float64
	MatchedW, RestW  float64
	RestX            float64
	LabelY, CaptionY int
}

// barWidth is the width of a full bar in the chart's units.
const barWidth = 400

func rateBars(s *kalla.Summary) rateChart {
	var c rateChart
	for i, side := range []struct {
		label          string
		matched, total int64
		rate           float64
	}{
		{"Left · " + s.Sources.Left.Alias, s.MatchedLeftRecords, s.LeftCount, s.MatchRateLeft},
		{"Right · " + s.Sources.Right.Alias, s.MatchedRightRecords, s.RightCount, s.MatchRateRight},
	} {
		w := math.Round(side.rate*barWidth*10) / 10
		y := 22 + i*52
		c.Bars = append(c.Bars, rateBar{Label: side.label, Y: y, Matched: side.matched, Total: side.total, Rate: side.rate,
			MatchedW: w, RestW: barWidth - w, RestX: w, LabelY: y - 6, CaptionY: y + 13})
	}
	return c
}

// layoutJSON is the results layout of a completed run, as JSON.
func layoutJSON(rec *kalla.RunRecord, s *kalla.Summary) string {
	l := resultsLayout{Left: []string{}, Right: []string{}, Compared: [][2]string{},
		LeftKey: rec.Recipe.Sources.Left.PrimaryKey, RightKey: rec.Recipe.Sources.Right.PrimaryKey,
		LeftName: s.Sources.Left.Alias, RightName: s.Sources.Right.Alias}
	for _, c := range s.Sources.Left.Columns {
		l.Left = append(l.Left, c.Name)
	}
	for _, c := range s.Sources.Right.Columns {
		l.Right = append(l.Right, c.Name)
	}
	if s.Rules != nil {
		for _, b := range s.Rules.Breaks {
			l.Compared = append(l.Compared, [2]string{b.LeftColumn, b.RightColumn})
		}
	}
	b, err := json.Marshal(l)
	if err != nil {
		return "{}"
	}
	return string(b)
}

// ruleText is one structured rule in words.
type ruleText struct {
	Name, Pattern string
	Conditions    []string
	Notes         []string
}

// describeRules writes structured rules as sentences, so that the run page
// says how records were matched without showing JSON.
func describeRules(rules []kalla.Rule) []ruleText {
	var out []ruleText
	for _, r := range rules {
		t := ruleText{Name: r.Name, Pattern: r.Pattern}
		if t.Pattern == "" {
			t.Pattern = "1:1"
		}
		for _, c := range r.Conditions {
			t.Conditions = append(t.Conditions, describeCondition(c))
		}
		if r.MinScore != nil {
			t.Notes = append(t.Notes, fmt.Sprintf("pairs scoring below %g are dropped", *r.MinScore))
		}
		out = append(out, t)
	}
	return out
}

// describeCondition writes one condition in words: "left amount within
// 2% of right amount".
func describeCondition(c kalla.Condition) string {
	l, r := "left "+c.Left, "right "+c.Right
	var s string
	switch c.Op {
	case kalla.CondEq:
		s = l + " equals " + r
		if c.Truncate != "" {
			s += " (same " + c.Truncate + ")"
		}
	case kalla.CondTolerance:
		var within []string
		if c.Abs != "" {
			within = append(within, "±"+string(c.Abs))
		}
		if c.Pct != "" {
			pct := string(c.Pct)
			if f, err := strconv.ParseFloat(pct, 64); err == nil {
				pct = strconv.FormatFloat(f*100, 'f', -1, 64) + "%"
			}
			of := "left"
			if c.PctOf == "larger" {
				of = "the larger"
			}
			within = append(within, pct+" of "+of)
		}
		s = l + " equals " + r + " within " + strings.Join(within, " or ")
	case kalla.CondDateWithin:
		days := 0
		if c.Days != nil {
			days = *c.Days
		}
		switch c.Direction {
		case "after":
			s = fmt.Sprintf("%s falls 0 to %d days after %s", r, days, l)
		case "before":
			s = fmt.Sprintf("%s falls 0 to %d days before %s", r, days, l)
		default:
			s = fmt.Sprintf("%s is within %d days of %s", r, days, l)
		}
	case kalla.CondContains, kalla.CondStartsWith, kalla.CondEndsWith:
		verb := map[string]string{kalla.CondContains: "contains", kalla.CondStartsWith: "starts with", kalla.CondEndsWith: "ends with"}[c.Op]
		if c.Haystack == "left" {
			s = l + " " + verb + " " + r
		} else {
			s = r + " " + verb + " " + l
		}
	case kalla.CondFuzzy:
		s = l + " is similar to " + r
		if c.Threshold != nil {
			s += fmt.Sprintf(" (similarity at least %g)", *c.Threshold)
		}
	case kalla.CondGt, kalla.CondGte, kalla.CondLt, kalla.CondLte:
		verb := map[string]string{kalla.CondGt: "is greater than", kalla.CondGte: "is at least", kalla.CondLt: "is less than", kalla.CondLte: "is at most"}[c.Op]
		s = l + " " + verb + " " + r
	default:
		s = l + " " + c.Op + " " + r
	}
	var extra []string
	if len(c.Normalize) > 0 {
		extra = append(extra, "ignoring "+strings.Join(c.Normalize, ", "))
	}
	if c.StripLeft != "" {
		extra = append(extra, "left without "+c.StripLeft)
	}
	if c.StripRight != "" {
		extra = append(extra, "right without "+c.StripRight)
	}
	if len(extra) > 0 {
		s += " (" + strings.Join(extra, "; ") + ")"
	}
	return s
}
