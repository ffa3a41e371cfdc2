package ui

import (
	"encoding/json"
	"math"
	"net/http"
	"regexp"

	"github.com/kalla-recon/kalla/internal/kalla"
)

var runIDPattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9-]{0,63}$`)

// runData is what the run page shows.
type runData struct {
	Run *kalla.RunRecord // URIs redacted
	// Files are the run's downloadable files, outputs then summary.json.
	Files []runFile
	Chart rateChart
	// RulesJSON is the recipe's structured rules, "" when it matched by SQL.
	RulesJSON string
	// Tables are the run's output tables with their downloads, in the
	// order the results tabs show them.
	Tables []runTable
	// Layout tells the results script which columns belong to which side
	// (JSON): the sources' column names and the column pairs the rules
	// compare.
	Layout string
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
	d := runData{Run: rec.Redacted(), RulesJSON: rulesJSON(rec.Recipe)}
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
			f := runFile{Name: o.Name, Table: o.Table, Format: o.Format, URL: base + o.Name, Rows: o.Rows, Bytes: o.Bytes, SHA256: o.SHA256}
			d.Files = append(d.Files, f)
			if t := byTable[o.Table]; t != nil {
				t.Files, t.Rows = append(t.Files, f), o.Rows
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
