package kalla

import "testing"

func TestAmountColumns(t *testing.T) {
	src := Sources{Left: SourceSpec{Alias: "invoices"}, Right: SourceSpec{Alias: "payments"}}
	for _, tc := range []struct {
		name, sql string
		want      [2]string
		ok        bool
	}{
		{"views with aliases", "SELECT * FROM left_src l JOIN right_src r ON r.ref = l.id AND tolerance_match(l.amount, r.paid, 0.01)", [2]string{"amount", "paid"}, true},
		{"right first", "SELECT * FROM left_src AS a JOIN right_src AS b ON tolerance_match(b.paid, a.amount, 0.01)", [2]string{"amount", "paid"}, true},
		{"source aliases", "SELECT * FROM invoices JOIN payments ON tolerance_match(invoices.amount, payments.paid, 1)", [2]string{"amount", "paid"}, true},
		{"two tolerances: cannot tell", "SELECT * FROM left_src l JOIN right_src r ON tolerance_match(l.a, r.a, 1) AND tolerance_match(l.b, r.b, 1)", [2]string{}, false},
		{"a subquery's column: cannot tell", "SELECT * FROM left_src l JOIN (SELECT ref, sum(paid) AS t FROM right_src GROUP BY ref) t ON t.ref = l.id WHERE tolerance_match(l.amount, t.t, 1)", [2]string{}, false},
		{"same side twice: cannot tell", "SELECT * FROM left_src l JOIN right_src r ON tolerance_match(l.amount, l.other, 1)", [2]string{}, false},
		{"no tolerance", "SELECT * FROM left_src l JOIN right_src r ON l.amount = r.paid", [2]string{}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			spec, ok := AmountColumns(&Recipe{MatchSQL: tc.sql, Sources: src})
			if ok != tc.ok || spec.Column != tc.want {
				t.Errorf("got %v %v, want %v %v", spec.Column, ok, tc.want, tc.ok)
			}
		})
	}
}

func TestMakeAmounts(t *testing.T) {
	eur, usd := "EUR", "USD"
	got, err := MakeAmounts(AmountSpec{Column: [2]string{"a", "b"}}, []AmountSum{
		{Side: 0, Currency: &usd, Sum: "100.10"}, {Side: 0, Currency: &usd, Open: true, Sum: "0.10"},
		{Side: 1, Currency: &usd, Sum: "99.95"}, {Side: 1, Currency: &usd, Open: true, Sum: ""},
		{Side: 0, Currency: &eur, Sum: "0.30"}, {Side: 0, Currency: &eur, Open: true, Sum: "0.30"},
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(got.Totals) != 2 || *got.Totals[0].Currency != "EUR" {
		t.Fatalf("totals %+v", got.Totals)
	}
	u := got.Totals[1]
	if u.LeftMatched != "100.00" || u.LeftOpen != "0.10" || u.RightMatched != "99.95" || u.RightOpen != "0.00" || u.MatchedDifference != "0.05" {
		t.Errorf("USD %+v", u)
	}
	if e := got.Totals[0]; e.LeftMatched != "0.00" || e.LeftOpen != "0.30" || e.RightMatched != "0.00" {
		t.Errorf("EUR %+v", e)
	}
}
