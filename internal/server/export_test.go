package server_test

import (
	"bytes"
	"encoding/csv"
	"math/big"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/xuri/excelize/v2"

	"github.com/kalla-recon/kalla/internal/kalla"
)

// TestResultsExportAndSort downloads each output table of a completed run
// as CSV and XLSX and checks them against the pages the results endpoint
// serves (same header, same rows, same text; NULL empty; in XLSX amounts
// are numbers, keys text), and sorts a table by a column both ways.
func TestResultsExportAndSort(t *testing.T) {
	s := startServer(t, nil)
	id := s.startRun(map[string]any{"recipe": smallRecipe()})
	r := s.waitRun(id, 60*time.Second, "completion", func(r run) bool { return r.Status.Done() })
	if r.Status != kalla.RunCompleted {
		t.Fatalf("run: %s %q", r.Status, r.Error)
	}
	type page struct {
		Columns   []kalla.Column `json:"columns"`
		Rows      [][]*string    `json:"rows"`
		TotalRows int64          `json:"total_rows"`
	}
	for _, table := range []string{"matched", "unmatched_left", "unmatched_right"} {
		var p page
		for off := 0; off == 0 || int64(off) < p.TotalRows; off += 1000 {
			var next page
			s.call("GET", "/api/runs/"+id+"/results/"+table+"?limit=1000&offset="+strconv.Itoa(off), nil, 200, &next)
			p.Columns, p.TotalRows, p.Rows = next.Columns, next.TotalRows, append(p.Rows, next.Rows...)
		}
		if int64(len(p.Rows)) != p.TotalRows || p.TotalRows == 0 {
			t.Fatalf("%s: read %d of %d rows", table, len(p.Rows), p.TotalRows)
		}
		want := [][]string{{}}
		for _, c := range p.Columns {
			want[0] = append(want[0], c.Name)
		}
		for _, row := range p.Rows {
			var rec []string
			for _, v := range row {
				if v == nil {
					rec = append(rec, "")
				} else {
					rec = append(rec, *v)
				}
			}
			want = append(want, rec)
		}

		code, body := s.do("GET", "/api/runs/"+id+"/export/"+table+".csv", nil)
		if code != 200 {
			t.Fatalf("%s.csv: %d %s", table, code, body)
		}
		got, err := csv.NewReader(bytes.NewReader(body)).ReadAll()
		if err != nil {
			t.Fatalf("%s.csv: %v", table, err)
		}
		if !equalRows(got, want) {
			t.Errorf("%s.csv differs from the results pages: first rows %q, want %q", table, head(got), head(want))
		}

		code, body = s.do("GET", "/api/runs/"+id+"/export/"+table+".xlsx", nil)
		if code != 200 {
			t.Fatalf("%s.xlsx: %d %s", table, code, body)
		}
		f, err := excelize.OpenReader(bytes.NewReader(body))
		if err != nil {
			t.Fatalf("%s.xlsx: %v", table, err)
		}
		cells, err := f.GetRows(table, excelize.Options{RawCellValue: true})
		if err != nil {
			t.Fatalf("%s.xlsx: %v", table, err)
		}
		for i := range cells { // GetRows drops trailing empty cells
			for len(cells[i]) < len(want[0]) {
				cells[i] = append(cells[i], "")
			}
		}
		if !equalNumbers(cells, want) {
			t.Errorf("%s.xlsx differs from the results pages: first rows %q, want %q", table, head(cells), head(want))
		}
		// An amount is a number cell, a key a text cell.
		for col, name := range want[0] {
			if name != "amount" && name != "invoice_id" {
				continue
			}
			cell, _ := excelize.CoordinatesToCellName(col+1, 2)
			typ, err := f.GetCellType(table, cell)
			if err != nil {
				t.Fatal(err)
			}
			if isNum := typ == excelize.CellTypeNumber || typ == excelize.CellTypeUnset; isNum != (name == "amount") {
				t.Errorf("%s.xlsx: %s cell %s has type %v", table, name, cell, typ)
			}
		}
		f.Close()
	}
	s.wantError("GET", "/api/runs/"+id+"/export/matched.pdf", nil, 400, kalla.EINVALID, "matched.csv")
	s.wantError("GET", "/api/runs/"+id+"/export/everything.csv", nil, 400, kalla.EINVALID, "unmatched_left")
	s.wantError("GET", "/api/runs/"+id+"/export/breaks.csv", nil, 404, kalla.ENOTFOUND, "structured rules")

	// Sorting by amount, both ways: decimals in order, ties in file order.
	for _, order := range []string{"asc", "desc"} {
		var p page
		s.call("GET", "/api/runs/"+id+"/results/unmatched_left?limit=1000&sort=amount&order="+order, nil, 200, &p)
		col := -1
		for i, c := range p.Columns {
			if c.Name == "amount" {
				col = i
			}
		}
		for i := 1; i < len(p.Rows); i++ {
			a, _ := new(big.Rat).SetString(*p.Rows[i-1][col])
			b, _ := new(big.Rat).SetString(*p.Rows[i][col])
			if c := a.Cmp(b); (order == "asc" && c > 0) || (order == "desc" && c < 0) {
				t.Fatalf("sorted %s: %s before %s", order, *p.Rows[i-1][col], *p.Rows[i][col])
			}
		}
	}
	s.wantError("GET", "/api/runs/"+id+"/results/matched?sort=nope", nil, 400, kalla.EINVALID, `no column "nope"`)
	s.wantError("GET", "/api/runs/"+id+"/results/matched?sort=amount&order=up", nil, 400, kalla.EINVALID, "asc or desc")
}

func equalRows(a, b [][]string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if strings.Join(a[i], "\x00") != strings.Join(b[i], "\x00") {
			return false
		}
	}
	return true
}

// equalNumbers is equalRows where two cells that are equal numbers (12.50
// and 12.5) are equal.
func equalNumbers(a, b [][]string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if len(a[i]) != len(b[i]) {
			return false
		}
		for j := range a[i] {
			if a[i][j] == b[i][j] {
				continue
			}
			x, ok1 := new(big.Rat).SetString(a[i][j])
			y, ok2 := new(big.Rat).SetString(b[i][j])
			if !ok1 || !ok2 || x.Cmp(y) != 0 {
				return false
			}
		}
	}
	return true
}

func head(rows [][]string) [][]string { return rows[:min(3, len(rows))] }
