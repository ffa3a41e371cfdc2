package engine_test

import (
	"fmt"
	"testing"

	"github.com/kalla-recon/kalla/internal/engine"
)

// TestReadComparisons: the column pairs a match SQL compares are read with
// DuckDB's parser, through table aliases, the views' and the recipe's
// names, ON and WHERE; anything else is reported as unread, never guessed.
func TestReadComparisons(t *testing.T) {
	for _, c := range []struct {
		name, sql     string
		pairs, unread string
	}{
		{"readme", "SELECT l.invoice_id, r.payment_id FROM left_src l JOIN right_src r ON l.invoice_id = r.reference_number AND tolerance_match(l.amount, r.paid_amount, 0.02)",
			"[{eq invoice_id reference_number } {tolerance amount paid_amount 0.02}]", "[]"},
		{"right first, aliases, where", "SELECT * FROM payments AS p, invoices i WHERE p.ref = i.id AND tolerance_match(p.amt, i.total, 1) AND i.currency = p.currency",
			"[{eq id ref } {tolerance total amt 1} {eq currency currency }]", "[]"},
		{"or and functions unread", "SELECT * FROM left_src l JOIN right_src r ON (l.a = r.b OR l.c = r.d) AND lower(l.e) = lower(r.f) AND l.g = r.h",
			"[{eq g h }]", "[((l.a = r.b) OR (l.c = r.d)) (lower(l.e) = lower(r.f))]"},
		{"tolerance not constant", "SELECT * FROM left_src l JOIN right_src r ON l.k = r.k AND tolerance_match(l.x, r.y, l.x * 0.01)",
			"[{eq k k }]", "[tolerance_match(l.x, r.y, (l.x * 0.01))]"},
		{"using", "SELECT * FROM left_src JOIN right_src USING (k)", "[{eq k k }]", "[]"},
		{"same side", "SELECT * FROM left_src l JOIN right_src r ON l.a = l.b AND l.k = r.k", "[{eq k k }]", "[(l.a = l.b)]"},
	} {
		t.Run(c.name, func(t *testing.T) {
			mc, err := engine.ReadComparisons(t.Context(), c.sql, "invoices", "payments")
			if err != nil {
				t.Fatal(err)
			}
			if got := fmt.Sprint(mc.Pairs); got != c.pairs {
				t.Errorf("pairs %s, want %s", got, c.pairs)
			}
			if got := fmt.Sprint(mc.Unread); got != c.unread {
				t.Errorf("unread %s, want %s", got, c.unread)
			}
		})
	}
	if _, err := engine.ReadComparisons(t.Context(), "SELEC nothing", "a", "b"); err == nil {
		t.Error("a SQL that does not parse: no error")
	}
}
