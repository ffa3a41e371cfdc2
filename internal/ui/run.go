package ui

import (
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
}

// runFile is one downloadable output of a completed run.
type runFile struct {
	Name, Table, Format, URL string
	Rows                     int64
	Bytes                    int64
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
		for _, o := range s.Outputs {
			d.Files = append(d.Files, runFile{Name: o.Name, Table: o.Table, Format: o.Format, URL: base + o.Name, Rows: o.Rows, Bytes: o.Bytes})
		}
		d.Files = append(d.Files, runFile{Name: "summary.json", Format: "json", URL: base + "summary.json", Rows: -1})
		d.Chart = rateBars(s)
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
