package server_test

import (
	"encoding/csv"
	"math/big"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/kalla-recon/kalla/internal/kalla"
)

// recordsPage is a page of matched pairs with their two records.
type recordsPage struct {
	Columns   []kalla.Column `json:"columns"`
	Rows      [][]*string    `json:"rows"`
	TotalRows int64          `json:"total_rows"`
	Records   *struct {
		Left, Right struct {
			Columns []kalla.Column `json:"columns"`
			Rows    [][]*string    `json:"rows"`
		}
	} `json:"records"`
	RecordsNote string `json:"records_note"`
}

// TestMatchedRecordsPages reads the matched pairs of a server run with
// their two whole records (issue 14) and checks them against the inputs as
// encoding/csv reads them: each pair's left record is the input row its
// _left_row names, field for field, and the same on the right. A search
// for a customer name (a column of the invoices, not of the pairs) finds
// exactly the pairs whose invoice has it; sorting by a record's column
// orders the pairs by it; an unknown record column is refused.
func TestMatchedRecordsPages(t *testing.T) {
	s := startServer(t, nil)
	id := s.startRun(map[string]any{"recipe": smallRecipe()})
	r := s.waitRun(id, 60*time.Second, "completion", func(r run) bool { return r.Status.Done() })
	if r.Status != kalla.RunCompleted {
		t.Fatalf("run: %s %q", r.Status, r.Error)
	}
	inputs := [2][][]string{readInputCSV(t, small.Invoices), readInputCSV(t, small.Payments)}
	var all recordsPage
	for off := 0; off == 0 || int64(off) < all.TotalRows; off += 1000 {
		var p recordsPage
		s.call("GET", "/api/runs/"+id+"/results/matched?limit=1000&offset="+strconv.Itoa(off), nil, 200, &p)
		if p.Records == nil {
			t.Fatalf("a server run's matched page has no records: %q", p.RecordsNote)
		}
		if len(p.Records.Left.Rows) != len(p.Rows) || len(p.Records.Right.Rows) != len(p.Rows) {
			t.Fatalf("%d pairs, %d left and %d right records", len(p.Rows), len(p.Records.Left.Rows), len(p.Records.Right.Rows))
		}
		if off == 0 {
			all = p
			continue
		}
		all.Rows = append(all.Rows, p.Rows...)
		all.Records.Left.Rows = append(all.Records.Left.Rows, p.Records.Left.Rows...)
		all.Records.Right.Rows = append(all.Records.Right.Rows, p.Records.Right.Rows...)
	}
	if int64(len(all.Rows)) != all.TotalRows || all.TotalRows == 0 {
		t.Fatalf("read %d of %d pairs", len(all.Rows), all.TotalRows)
	}
	col := func(cols []kalla.Column, name string) int {
		i := slices.IndexFunc(cols, func(c kalla.Column) bool { return c.Name == name })
		if i < 0 {
			t.Fatalf("no column %s in %v", name, cols)
		}
		return i
	}
	sides := [2]struct {
		row  int
		recs [][]*string
		cols []kalla.Column
	}{
		{col(all.Columns, "_left_row"), all.Records.Left.Rows, all.Records.Left.Columns},
		{col(all.Columns, "_right_row"), all.Records.Right.Rows, all.Records.Right.Columns},
	}
	for i, sd := range sides {
		header := inputs[i][0]
		if len(sd.cols) != len(header) {
			t.Fatalf("side %d: record columns %v, the input has %v", i, sd.cols, header)
		}
		for j, pair := range all.Rows {
			n, err := strconv.Atoi(*pair[sd.row])
			if err != nil || n < 1 || n >= len(inputs[i]) {
				t.Fatalf("pair %d: row number %v", j, *pair[sd.row])
			}
			in := inputs[i][n]
			for k, c := range sd.cols {
				got := ""
				if v := sd.recs[j][k]; v != nil {
					got = *v
				}
				if c.Name != header[k] || !sameNumberOrText(got, in[k]) {
					t.Fatalf("pair %d, side %d, %s: %q, input row %d has %s=%q", j, i, c.Name, got, n, header[k], in[k])
				}
			}
		}
	}

	// "Wayne": a customer name, in no column of the pairs.
	cust := col(all.Records.Left.Columns, "customer")
	want := 0
	for _, rec := range all.Records.Left.Rows {
		if rec[cust] != nil && strings.Contains(strings.ToLower(*rec[cust]), "wayne") {
			want++
		}
	}
	if want == 0 {
		t.Fatal("the generated data has no Wayne among matched invoices")
	}
	var found recordsPage
	s.call("GET", "/api/runs/"+id+"/results/matched?limit=1000&q="+url.QueryEscape("Wayne"), nil, 200, &found)
	if found.TotalRows != int64(want) || len(found.Rows) != want {
		t.Errorf("searching Wayne: %d pairs (%d rows), want %d", found.TotalRows, len(found.Rows), want)
	}
	for _, rec := range found.Records.Left.Rows {
		if !strings.Contains(*rec[cust], "Wayne") {
			t.Errorf("searching Wayne found %q", *rec[cust])
		}
	}

	// Sorted by the left record's amount, descending.
	var sorted recordsPage
	s.call("GET", "/api/runs/"+id+"/results/matched?limit=1000&sort=left.amount&order=desc", nil, 200, &sorted)
	amt := col(sorted.Records.Left.Columns, "amount")
	for i := 1; i < len(sorted.Rows); i++ {
		a, _ := new(big.Rat).SetString(*sorted.Records.Left.Rows[i-1][amt])
		b, _ := new(big.Rat).SetString(*sorted.Records.Left.Rows[i][amt])
		if a.Cmp(b) < 0 {
			t.Fatalf("sorted by left.amount desc: %s before %s", a, b)
		}
	}
	s.wantError("GET", "/api/runs/"+id+"/results/matched?sort=left.nope", nil, 400, kalla.EINVALID, `no column "left.nope"`)
}

// readInputCSV reads a generated input file with encoding/csv.
func readInputCSV(t *testing.T, path string) [][]string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	recs, err := csv.NewReader(f).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	return recs
}

// sameNumberOrText reports whether a value read back is the input's text or
// the same number.
func sameNumberOrText(got, in string) bool {
	if got == in {
		return true
	}
	a, ok1 := new(big.Rat).SetString(got)
	b, ok2 := new(big.Rat).SetString(in)
	return ok1 && ok2 && a.Cmp(b) == 0
}
