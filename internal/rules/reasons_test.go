package rules

import (
	"slices"
	"testing"
)

// TestReasonsSkipBroadKeys (amounts here are DECIMAL(38,10), and differences
// keep that scale) checks that a rule whose key would compare too
// many pairs is not searched, and that the reason says so instead of
// claiming there is no counterpart.
func TestReasonsSkipBroadKeys(t *testing.T) {
	defer func(l int64) { nearLimit = l }(nearLimit)
	left := "id,cust,amount\nA1,K,10.00\nA2,K,20.00\n"
	right := "id,cust,amount\nB1,K,30.00\nB2,K,40.00\n"
	rules := `[{"name": "loose", "conditions": [{"op": "eq", "left": "cust", "right": "cust"}, {"op": "tolerance", "left": "amount", "right": "amount", "abs": 1}]}]`
	for _, c := range []struct {
		limit int64
		want  []string
	}{
		{100, []string{"0 | cust matches B1 but amount differs by 20.0000000000 > 1 | B1", "1 | cust matches B1 but amount differs by 10.0000000000 > 1 | B1"}},
		{3, []string{"0 | no candidate found; rule loose has too many candidates per record to search for the closest | ", "1 | no candidate found; rule loose has too many candidates per record to search for the closest | "}},
	} {
		nearLimit = c.limit
		d := newTestDB(t, left, right, []string{"id"}, []string{"id"}, 0)
		if err := d.compile(rules).Execute(t.Context(), SQLDB{d.conn}); err != nil {
			t.Fatal(err)
		}
		got := d.query("SELECT rid, reason, closest FROM " + ReasonLeft + " ORDER BY rid")
		if !slices.Equal(got, c.want) {
			t.Errorf("limit %d:\n  got  %q\n  want %q", c.limit, got, c.want)
		}
	}
}
