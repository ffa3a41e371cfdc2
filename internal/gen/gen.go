// Package gen writes synthetic invoices and payments with a known answer:
// which invoice each payment settles is decided while generating, so a
// reconciliation of the files can be checked against ground truth that was
// never computed by the engine. The demo and the benchmarks use it.
package gen

import (
	"bufio"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"time"

	"github.com/kalla-recon/kalla/internal/kalla"
)

// Spec sizes a data set. Shares are of the invoice count; the rest of the
// invoices are orphans (never paid).
type Spec struct {
	Invoices int
	Seed     uint64
	// ExactShare of invoices are paid exactly by one payment.
	ExactShare float64
	// ToleranceShare are paid by one payment within ±1.9% of the amount.
	ToleranceShare float64
	// SplitShare are paid by two payments of about half each, summing
	// exactly to the amount.
	SplitShare float64
	// StrayPayments is the number of payments that reference no invoice.
	StrayPayments int
}

// Standard returns the benchmark mix for n invoices: 60% exact, 15% within
// tolerance, 5% split into two halves, 20% orphans, and 0.2n payments that
// reference no invoice, which makes about 1.05 payments per invoice.
func Standard(n int) Spec {
	return Spec{Invoices: n, Seed: 42, ExactShare: 0.60, ToleranceShare: 0.15, SplitShare: 0.05, StrayPayments: n / 5}
}

// Truth is the ground truth of a generated data set.
type Truth struct {
	Invoices, Payments int
	Exact, Tolerance   int // invoices settled by one payment
	Split              int // invoices settled by two payments
	OrphanInvoices     int
	StrayPayments      int
}

// MatchedPairs is the number of (invoice, payment) pairs a correct
// reconciliation finds.
func (t Truth) MatchedPairs() int { return t.Exact + t.Tolerance + 2*t.Split }

// MatchedInvoices is the number of invoices a correct reconciliation matches.
func (t Truth) MatchedInvoices() int { return t.Exact + t.Tolerance + t.Split }

// Files names the written files.
type Files struct {
	Invoices, Payments string
}

var customers = []string{"Acme GmbH", "Globex Ltd", "Initech SA", "Umbrella plc", "Stark Industries", "Wayne Enterprises", "Soylent Corp", "Tyrell BV", "Müller & Söhne", "Café \"Le Zinc\""}

// Write generates the data set into dir as invoices.csv and payments.csv.
func Write(dir string, s Spec) (Files, Truth, error) {
	f := Files{Invoices: filepath.Join(dir, "invoices.csv"), Payments: filepath.Join(dir, "payments.csv")}
	var t Truth
	inv, err := os.Create(f.Invoices)
	if err != nil {
		return f, t, fmt.Errorf("create invoices: %w", err)
	}
	defer inv.Close()
	pay, err := os.Create(f.Payments)
	if err != nil {
		return f, t, fmt.Errorf("create payments: %w", err)
	}
	defer pay.Close()
	iw, pw := bufio.NewWriterSize(inv, 1<<20), bufio.NewWriterSize(pay, 1<<20)
	fmt.Fprintln(iw, "invoice_id,customer,amount,currency,issued_on")
	fmt.Fprintln(pw, "payment_id,reference_number,payer,paid_amount,paid_on")
	rng := rand.New(rand.NewPCG(s.Seed, s.Seed^0x9e3779b97f4a7c15))
	base := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	payID := 0
	payment := func(ref, payer string, cents int64, day time.Time) {
		payID++
		fmt.Fprintf(pw, "PAY-%08d,%s,%s,%s,%s\n", payID, ref, csvField(payer), money(cents), day.Format("2006-01-02"))
	}
	exactEnd := int(float64(s.Invoices) * s.ExactShare)
	tolEnd := exactEnd + int(float64(s.Invoices)*s.ToleranceShare)
	splitEnd := tolEnd + int(float64(s.Invoices)*s.SplitShare)
	for i := 0; i < s.Invoices; i++ {
		id := fmt.Sprintf("INV-%08d", i+1)
		cust := customers[rng.IntN(len(customers))]
		cents := 1000 + rng.Int64N(2_000_000) // 10.00 .. 20,010.00
		issued := base.AddDate(0, 0, rng.IntN(300))
		fmt.Fprintf(iw, "%s,%s,%s,EUR,%s\n", id, csvField(cust), money(cents), issued.Format("2006-01-02"))
		paid := issued.AddDate(0, 0, 1+rng.IntN(45))
		// Categories are assigned by position over a shuffled index so
		// that each kind is spread through the file.
		switch k := permute(i, s.Invoices, s.Seed); {
		case k < exactEnd:
			t.Exact++
			payment(id, cust, cents, paid)
		case k < tolEnd:
			t.Tolerance++
			// A deviation of 0.1% to 1.9%, either way, at least one cent.
			dev := cents * int64(10+rng.IntN(181)) / 10000
			if dev == 0 {
				dev = 1
			}
			if rng.IntN(2) == 0 {
				dev = -dev
			}
			payment(id, cust, cents+dev, paid)
		case k < splitEnd:
			t.Split++
			half := cents / 2
			payment(id, cust, half, paid)
			payment(id, cust, cents-half, paid.AddDate(0, 0, 7))
		default:
			t.OrphanInvoices++
		}
	}
	for j := 0; j < s.StrayPayments; j++ {
		t.StrayPayments++
		payment(fmt.Sprintf("REF-%08d", j+1), customers[rng.IntN(len(customers))], 1000+rng.Int64N(2_000_000), base.AddDate(0, 0, rng.IntN(340)))
	}
	t.Invoices, t.Payments = s.Invoices, payID
	if err := iw.Flush(); err != nil {
		return f, t, fmt.Errorf("write invoices: %w", err)
	}
	if err := pw.Flush(); err != nil {
		return f, t, fmt.Errorf("write payments: %w", err)
	}
	if err := inv.Close(); err != nil {
		return f, t, fmt.Errorf("close invoices: %w", err)
	}
	return f, t, pay.Close()
}

// permute maps i to a pseudo-random position in [0, n) without repeats
// (an affine permutation), so categories interleave through the file.
func permute(i, n int, seed uint64) int {
	if n <= 1 {
		return i
	}
	a := 7919 // a prime; skip to one coprime with n
	for gcd(a, n) != 1 {
		a += 2
	}
	return int((uint64(i)*uint64(a) + seed) % uint64(n))
}

func gcd(a, b int) int {
	for b != 0 {
		a, b = b, a%b
	}
	return a
}

func money(cents int64) string {
	return fmt.Sprintf("%d.%02d", cents/100, cents%100)
}

func csvField(s string) string {
	for _, r := range s {
		if r == ',' || r == '"' || r == '\n' {
			q := `"`
			for _, r := range s {
				if r == '"' {
					q += `""`
				} else {
					q += string(r)
				}
			}
			return q + `"`
		}
	}
	return s
}

// MatchSQL is the bundled recipe's match: a payment settles an invoice when
// it references it and the payments referencing that invoice sum to its
// amount within 2%. One payment or a split into several both qualify.
const MatchSQL = `SELECT l.invoice_id, r.payment_id, l.amount, r.paid_amount, t.paid_total
FROM left_src l
JOIN (SELECT reference_number, sum(paid_amount) AS paid_total
      FROM right_src GROUP BY reference_number) t
  ON t.reference_number = l.invoice_id
JOIN right_src r ON r.reference_number = l.invoice_id
WHERE tolerance_match(l.amount, t.paid_total, abs(l.amount) * 0.02)`

// Recipe returns the bundled invoice/payment recipe over the given files.
func Recipe(f Files) *kalla.Recipe {
	return &kalla.Recipe{
		RecipeID:         "invoice-payment-match",
		Name:             "Invoices against payments",
		Description:      "Each invoice is settled by the payments that reference it, alone or split, within 2%.",
		MatchSQL:         MatchSQL,
		MatchDescription: "payment.reference_number = invoice.invoice_id and the referencing payments sum to the invoice amount within 2%",
		Sources: kalla.Sources{
			Left:  kalla.SourceSpec{Alias: "invoices", Type: kalla.SourceCSV, URI: f.Invoices, PrimaryKey: []string{"invoice_id"}},
			Right: kalla.SourceSpec{Alias: "payments", Type: kalla.SourceCSV, URI: f.Payments, PrimaryKey: []string{"payment_id"}},
		},
	}
}
