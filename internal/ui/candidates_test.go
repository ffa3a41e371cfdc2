package ui

import (
	"testing"

	"github.com/kalla-recon/kalla/internal/kalla"
)

// TestRelated: a record offered for a manual match says why: named as the
// closest candidate (either way), sharing the key, or of the same amount
// (compared as decimals, so 50 is 50.00).
func TestRelated(t *testing.T) {
	it := &kalla.ExceptionItem{Key: "I5", Amount: "100.00", Reason: "exact: reference matches P5 but amount differs", Closest: "P6 (amount 99.00)"}
	for _, c := range []struct {
		o    kalla.ExceptionItem
		want string
	}{
		{kalla.ExceptionItem{Key: "P6", Amount: "99.00"}, "closest candidate"},
		{kalla.ExceptionItem{Key: "P7", Amount: "1", Closest: "I5"}, "closest candidate"},
		{kalla.ExceptionItem{Key: "P5", Amount: "91.00"}, "shares the key"},
		{kalla.ExceptionItem{Key: "I5", Amount: "3"}, "shares the key"},
		{kalla.ExceptionItem{Key: "P9", Amount: "100"}, "same amount"},
		{kalla.ExceptionItem{Key: "P9", Amount: "100.01"}, ""},
		{kalla.ExceptionItem{Key: "P9", Amount: ""}, ""},
	} {
		if got := related(it, &c.o); got != c.want {
			t.Errorf("%s %s: %q, want %q", c.o.Key, c.o.Amount, got, c.want)
		}
	}
}

// TestQueueFilterAsAPIQuery: the queue's form becomes the service's filter
// (status open unless chosen, "any" for none, the difference bound parsed,
// a bound that is not a number refused naming the field) and that filter
// the API's query string the bulk actions page through, so the script
// selects what the page lists.
func TestQueueFilterAsAPIQuery(t *testing.T) {
	for _, c := range []struct {
		name string
		form queueForm
		want string
		err  string
	}{
		{"bulk accept under a difference", queueForm{Run: "R1", Kind: "suggested", Rule: "tolerance", Diff: "0.05", Status: "open"},
			"kind=suggested&max_difference=0.05&rule=tolerance&run_id=R1&status=open", ""},
		{"any status", queueForm{Side: "left", Min: " 10 ", Max: "1e3", Status: "any", Reason: "a&b"},
			"max_amount=1000&min_amount=10&reason=a%26b&side=left", ""},
		{"not a number", queueForm{Diff: "small"}, "", `the largest difference "small" is not a number`},
	} {
		t.Run(c.name, func(t *testing.T) {
			f, err := c.form.filter()
			if c.err != "" {
				if err == nil || kalla.ErrorMessage(err) != c.err {
					t.Fatalf("error %v, want %q", err, c.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := apiQuery(f); got != c.want {
				t.Errorf("apiQuery = %s, want %s", got, c.want)
			}
		})
	}
}
