package ui

import (
	"fmt"
	"strings"
	"testing"

	"github.com/kalla-recon/kalla/internal/kalla"
)

func sample(cols []string, types []string, rows ...[]string) Sample {
	s := Sample{}
	for i, c := range cols {
		s.Columns = append(s.Columns, kalla.Column{Name: c, DataType: types[i]})
	}
	for _, r := range rows {
		var row []*string
		for _, v := range r {
			if v == "NULL" {
				row = append(row, nil)
				continue
			}
			row = append(row, &v)
		}
		s.Rows = append(s.Rows, row)
	}
	return s
}

// invoicesAndPayments is a small sample in the shape of internal/gen's.
func invoicesAndPayments() (Sample, Sample) {
	var inv, pay [][]string
	customers := []string{"Acme GmbH", "Globex Ltd", "Initech SA"}
	for i := 1; i <= 30; i++ {
		amount := fmt.Sprintf("%d.%02d", 100+i*37, i%100)
		inv = append(inv, []string{fmt.Sprintf("INV-%08d", i), customers[i%3], amount, "EUR", fmt.Sprintf("2026-01-%02d", i%28+1)})
		if i%5 != 0 { // every fifth invoice unpaid
			pay = append(pay, []string{fmt.Sprintf("PAY-%08d", i), fmt.Sprintf("INV-%08d", i), customers[i%3], amount, fmt.Sprintf("2026-02-%02d", i%28+1)})
		}
	}
	return sample([]string{"invoice_id", "customer", "amount", "currency", "issued_on"}, []string{"VARCHAR", "VARCHAR", "DECIMAL(18,2)", "VARCHAR", "DATE"}, inv...),
		sample([]string{"payment_id", "reference_number", "payer", "paid_amount", "paid_on"}, []string{"VARCHAR", "VARCHAR", "VARCHAR", "DECIMAL(18,2)", "DATE"}, pay...)
}

func find(pairs []Pair, l, r string) (Pair, bool) {
	for _, p := range pairs {
		if p.Left == l && p.Right == r {
			return p, true
		}
	}
	return Pair{}, false
}

func TestSuggest(t *testing.T) {
	inv, pay := invoicesAndPayments()
	pairs := Suggest(inv, pay)
	if len(pairs) == 0 || pairs[0].Left != "invoice_id" || pairs[0].Right != "reference_number" {
		t.Fatalf("best pair: %+v", pairs)
	}
	best := pairs[0]
	if best.Shared != 24 || best.LeftDistinct != 30 || best.RightDistinct != 24 || len(best.Examples) != 3 || best.Examples[0] != "INV-00000001" {
		t.Errorf("evidence of the best pair: %+v", best)
	}
	if !strings.Contains(strings.Join(best.Evidence, "; "), "24 of 24 sampled values also on the other side") {
		t.Errorf("evidence text: %q", best.Evidence)
	}
	amount, ok := find(pairs, "amount", "paid_amount")
	if !ok || !amount.Measure || amount.NameScore < 0.8 || amount.Score >= best.Score {
		t.Errorf("amount / paid_amount: %+v (found %v)", amount, ok)
	}
	who, ok := find(pairs, "customer", "payer")
	if !ok || who.Score >= amount.Score || !strings.Contains(strings.Join(who.Evidence, "; "), "category") {
		t.Errorf("customer / payer: %+v (found %v)", who, ok)
	}
	if p, ok := find(pairs, "currency", "payment_id"); ok {
		t.Errorf("unrelated pair suggested: %+v", p)
	}
	for i := 1; i < len(pairs); i++ {
		if pairs[i].Score > pairs[i-1].Score {
			t.Errorf("pairs not best first: %v then %v", pairs[i-1], pairs[i])
		}
	}
}

func TestSuggestValuesAndNames(t *testing.T) {
	for _, c := range []struct {
		name        string
		left, right Sample
		want        []string // "left/right" pairs expected, best first
	}{
		{"numbers compare by value",
			sample([]string{"total"}, []string{"DECIMAL(18,2)"}, []string{"100.50"}, []string{"7.00"}),
			sample([]string{"amt"}, []string{"DOUBLE"}, []string{"100.5"}, []string{"7"}),
			[]string{"total/amt"}},
		{"text ignores case and spaces",
			sample([]string{"ref"}, []string{"VARCHAR"}, []string{" abc-1"}, []string{"ABC-2"}),
			sample([]string{"reference"}, []string{"TEXT"}, []string{"ABC-1"}, []string{"abc-2 "}),
			[]string{"ref/reference"}},
		{"alike names of one kind, no shared values",
			sample([]string{"InvoiceNo", "created"}, []string{"VARCHAR", "DATE"}, []string{"A", "2026-01-01"}),
			sample([]string{"invoice_no", "amount"}, []string{"VARCHAR", "INTEGER"}, []string{"B", "5"}),
			[]string{"InvoiceNo/invoice_no"}},
		{"alike names of different kinds are not enough",
			sample([]string{"amount"}, []string{"DECIMAL(10,2)"}, []string{"1.00"}),
			sample([]string{"amount"}, []string{"DATE"}, []string{"2026-01-01"}),
			nil},
		{"nulls and empty samples",
			sample([]string{"a"}, []string{"VARCHAR"}, []string{"NULL"}),
			Sample{},
			nil},
	} {
		t.Run(c.name, func(t *testing.T) {
			var got []string
			for _, p := range Suggest(c.left, c.right) {
				got = append(got, p.Left+"/"+p.Right)
			}
			if strings.Join(got, ",") != strings.Join(c.want, ",") {
				t.Errorf("got %v, want %v", got, c.want)
			}
		})
	}
}

func TestNameScore(t *testing.T) {
	for _, c := range []struct {
		a, b     string
		min, max float64
	}{
		{"invoice_id", "InvoiceID", 1, 1},
		{"amount", "paid_amount", 0.8, 0.95},
		{"invoice_no", "invoice_number", 0.6, 0.99},
		{"issued_on", "paid_on", 0, 0.49},
		{"customer", "payer", 0, 0.3},
		{"", "x", 0, 0},
	} {
		if got := nameScore(c.a, c.b); got < c.min || got > c.max {
			t.Errorf("nameScore(%q, %q) = %v, want in [%v, %v]", c.a, c.b, got, c.min, c.max)
		}
	}
}
