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
