package exceptions_test

import (
	"bytes"
	"context"
	"encoding/csv"
	"fmt"
	"strings"
	"testing"

	"github.com/xuri/excelize/v2"

	"github.com/kalla-recon/kalla/internal/exceptions"
	"github.com/kalla-recon/kalla/internal/kalla"
)

// TestSheetRoundTrip exports a run's open items, fills in decisions as a
// person would in a spreadsheet, and imports them: a sheet with an unknown
// id, a stale row and a forbidden action is refused row by row with
// nothing applied; the corrected sheet applies every row. Then the same
// through XLSX.
func TestSheetRoundTrip(t *testing.T) {
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			e := setup(t, b.newURL(t))
			ctx := context.Background()
			var buf bytes.Buffer
			if err := e.svc.Export(ctx, exceptions.Filter{RunID: e.runID}, "csv", &buf); err != nil {
				t.Fatal(err)
			}
			rows, err := csv.NewReader(&buf).ReadAll()
			if err != nil {
				t.Fatal(err)
			}
			col := func(name string) int {
				for i, c := range exceptions.SheetColumns {
					if c == name {
						return i
					}
				}
				t.Fatalf("no column %s", name)
				return -1
			}
			// 10 open items, then the totals per status, side and
			// currency, by hand: invoices I5 100.00 + I7 1500.00 + I8
			// 50.00 EUR and I9 2000.00 USD; payments P5 91.00 + P8a 30.00
			// + P8b 20.00 EUR and P9 1999.00 USD; the two suggested pairs
			// I3/P3 and I4/P4 (no currency found for pairs): left 100.00 +
			// 100.00, right 97.00 + 92.00, differences -3.00 + -8.00.
			if len(rows) != 16 || strings.Join(rows[0], ",") != strings.Join(exceptions.SheetColumns, ",") {
				t.Fatalf("export: %d rows, header %v", len(rows), rows[0])
			}
			var totals []string
			for _, r := range rows[11:] {
				totals = append(totals, strings.Join([]string{r[col("kind")], r[col("status")], r[col("side")], r[col("currency")], r[col("key")], r[col("amount")], r[col("right_amount")], r[col("difference")]}, " "))
			}
			if want := []string{"total open left EUR 3 items 1650.00  ", "total open left USD 1 items 2000.00  ",
				"total open pair  2 items 200.00 189.00 -11.00", "total open right EUR 3 items 141.00  ", "total open right USD 1 items 1999.00  "}; strings.Join(totals, "\n") != strings.Join(want, "\n") {
				t.Fatalf("totals:\n%s\nwant\n%s", strings.Join(totals, "\n"), strings.Join(want, "\n"))
			}
			byKey := map[string][]string{}
			for _, r := range rows[1:] {
				byKey[r[col("key")]] = r
			}
			set := func(key, decision, code, group string) {
				r := byKey[key]
				r[col("decision")], r[col("code")], r[col("group")] = decision, code, group
			}
			set("I3", "accept", "", "")
			set("I5", "resolve", "bank fee", "")
			set("I8", "match", "", "g1")
			set("P8a", "match", "", "g1")
			set("P8b", "match", "", "g1")
			set("I4", "approve", "", "") // not pending: refused
			// Someone comments on I9 meanwhile: its row is stale.
			act(t, e, as("zoe", kalla.RolePreparer), exceptions.ActionRequest{Action: exceptions.ActComment, Note: "looking", Items: []int64{e.items["I9"].ID}})
			set("I9", "comment", "", "")
			byKey["I9"][col("note")] = "ok"
			bad := append([][]string{}, rows...)
			unknown := append([]string{}, rows[1]...)
			unknown[col("id")], unknown[col("decision")] = "999999", "reject"
			bad = append(bad, unknown)
			res, err := e.svc.Import(as("ann", kalla.RoleApprover), "", strings.NewReader(toCSV(bad)))
			wantCode(t, err, kalla.EINVALID)
			if res == nil || res.Applied {
				t.Fatalf("refused import: %+v", res)
			}
			refused := map[int64]string{}
			for _, r := range res.Rows {
				if r.Status == "refused" {
					refused[r.ID] = r.Code
				}
			}
			if refused[e.items["I4"].ID] != kalla.ECONFLICT || refused[e.items["I9"].ID] != kalla.ECONFLICT || refused[999999] != kalla.ENOTFOUND || len(refused) != 3 {
				t.Fatalf("refused rows %v: %+v", refused, res.Rows)
			}
			if it, _ := e.st.GetException(ctx, e.items["I3"].ID); it.Status != kalla.ExcOpen {
				t.Fatalf("a refused import applied I3: %+v", it)
			}
			// Corrected: the bad rows cleared, the stale one re-exported.
			set("I4", "", "", "")
			set("I9", "", "", "")
			res, err = e.svc.Import(as("ann", kalla.RoleApprover), "", strings.NewReader(toCSV(rows)))
			if err != nil || !res.Applied {
				t.Fatalf("import: %v %+v", err, res)
			}
			if it, _ := e.st.GetException(ctx, e.items["P8b"].ID); it.Status != kalla.ExcMatched || it.MatchGroup == "" {
				t.Fatalf("P8b after import: %+v", it)
			}
			// XLSX: export what is still open, resolve I7 as a bank fee.
			buf.Reset()
			if err := e.svc.Export(ctx, exceptions.Filter{RunID: e.runID}, "xlsx", &buf); err != nil {
				t.Fatal(err)
			}
			f, err := excelize.OpenReader(bytes.NewReader(buf.Bytes()))
			if err != nil {
				t.Fatal(err)
			}
			xr, _ := f.GetRows("exceptions")
			if len(xr) != 6 { // header + I7, I9, P5, P9, I4
				t.Fatalf("xlsx rows: %d %v", len(xr), xr)
			}
			tr, _ := f.GetRows(exceptions.TotalsSheet)
			if got, want := fmt.Sprint(tr), "[[status side currency count amount right_amount difference] [open left EUR 1 1500.00] [open left USD 1 2000.00] [open pair  1 100.00 92.00 -8.00] [open right EUR 1 91.00] [open right USD 1 1999.00]]"; got != want {
				t.Fatalf("totals sheet:\n%s\nwant\n%s", got, want)
			}
			for i, r := range xr[1:] {
				if r[col("key")] == "I7" {
					a, _ := excelize.CoordinatesToCellName(col("decision")+1, i+2)
					c, _ := excelize.CoordinatesToCellName(col("code")+1, i+2)
					f.SetCellValue("exceptions", a, "resolve")
					f.SetCellValue("exceptions", c, "bank fee")
				}
			}
			var out bytes.Buffer
			f.Write(&out)
			res, err = e.svc.Import(ctx, "lead", &out)
			if err != nil || !res.Applied {
				t.Fatalf("xlsx import: %v %+v", err, res)
			}
			if it, _ := e.st.GetException(ctx, e.items["I7"].ID); it.Status != kalla.ExcResolved || it.DecidedBy != "lead" {
				t.Fatalf("I7 after xlsx import: %+v", it)
			}
			if v, err := e.svc.Verify(ctx); err != nil || !v.OK {
				t.Fatalf("verify: %+v %v", v, err)
			}
		})
	}
}

func toCSV(rows [][]string) string {
	var b bytes.Buffer
	w := csv.NewWriter(&b)
	w.WriteAll(rows)
	return b.String()
}
