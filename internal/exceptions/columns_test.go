package exceptions

import (
	"encoding/json"
	"testing"

	"github.com/kalla-recon/kalla/internal/kalla"
)

// TestSideColumns pins how a side's key, amount, currency and date columns
// are chosen: from the rules' conditions, else by name (SQL recipes).
func TestSideColumns(t *testing.T) {
	spec := func(pk ...string) kalla.SourceSpec { return kalla.SourceSpec{PrimaryKey: pk} }
	rules := kalla.Recipe{Sources: kalla.Sources{Left: spec("invoice_id"), Right: spec("payment_id", "line")},
		Rules: []kalla.Rule{{Name: "r", Conditions: []kalla.Condition{
			{Op: "eq", Left: "cur", Right: "currency"},
			{Op: "tolerance", Left: "total_due", Right: "paid", Abs: json.Number("0.5")},
			{Op: "date_within", Left: "issued", Right: "booked"}}}}}
	sql := kalla.Recipe{MatchSQL: "SELECT 1", Sources: kalla.Sources{Left: spec("id"), Right: spec("id")}}
	for _, c := range []struct {
		name string
		r    *kalla.Recipe
		side string
		have []string
		want columns
	}{
		{"rules left", &rules, "left", nil, columns{key: []string{"invoice_id"}, amount: "total_due", currency: "cur", date: "issued"}},
		{"rules right", &rules, "right", nil, columns{key: []string{"payment_id", "line"}, amount: "paid", currency: "currency", date: "booked"}},
		{"sql by name", &sql, "left", []string{"id", "_reason", "net_value", "Amount", "value_date", "CCY"},
			columns{key: []string{"id"}, amount: "Amount", currency: "CCY", date: "value_date"}},
		{"sql contains", &sql, "right", []string{"id", "total_amt", "memo"}, columns{key: []string{"id"}, amount: "total_amt"}},
		{"sql nothing", &sql, "right", []string{"id", "memo"}, columns{key: []string{"id"}}},
	} {
		got := sideColumns(c.r, c.side, c.have)
		if got.amount != c.want.amount || got.currency != c.want.currency || got.date != c.want.date || len(got.key) != len(c.want.key) {
			t.Errorf("%s: %+v, want %+v", c.name, got, c.want)
		}
	}
	if tol := Tolerance(&rules); tol.FloatString(2) != "0.50" {
		t.Errorf("tolerance %s", tol.FloatString(2))
	}
	if d, _ := difference("100.005", "99.995"); d != "-0.01" {
		t.Errorf("difference %s", d)
	}
}
