package file_test

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/kalla-recon/kalla/internal/file"
)

// TestCSVLateNumbers covers exact typing when the values that decide a
// numeric column's type come after the sniffer's sample (30,000 plain rows
// first; DuckDB's sniffer samples 20,480, and the load on guessed types
// guesses from the first 1,000): the type is the one the whole column calls
// for and the late value reads back with every digit, whether the value
// fits the guess ("money", "16 digits", blanks) or breaks it and the load
// falls back to measuring the column (the others).
func TestCSVLateNumbers(t *testing.T) {
	cases := []struct {
		name, first, late, want, wantLate string
	}{
		{"money", "%d.25", "-12.5", "DECIMAL(18,2)", "-12.50"},
		{"wider scale late", "%d.25", "1.005", "DECIMAL(18,3)", "1.005"},
		{"integers", "%d", "-99999999999999999", "BIGINT", "-99999999999999999"},
		{"fraction late", "%d", "7.5", "DECIMAL(18,1)", "7.5"},
		{"16 digits and a minus", "%d.25", "-9999999999999999.25", "DECIMAL(38,2)", "-9999999999999999.25"},
		{"16 digits", "%d.25", "9999999999999999.25", "DECIMAL(18,2)", "9999999999999999.25"},
		{"leading zero late", "%d", "007", "VARCHAR", "007"},
		{"padded late", "%d.5", " 3.5", "DECIMAL(18,1)", "3.5"},
		{"exponent late", "%d.5", "1e3", "DOUBLE", "1000.0"},
		{"blank late", "%d.50", "", "DECIMAL(18,2)", "<nil>"},
		// A value that is not a number makes the column text wherever it
		// is (the sniffer reads it so in its sample); it used to fail the
		// run past the sample, as a value that "looked numeric".
		{"text late", "%d.25", "n/a", "VARCHAR", "n/a"},
		{"NaN late", "%d.25", "NaN", "VARCHAR", "NaN"},
		{"plus sign late", "%d", "+5", "VARCHAR", "+5"},
		{"quoted empty late", "%d", `""`, "BIGINT", "<nil>"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var b strings.Builder
			b.WriteString("id,v\n")
			for i := 1; i <= 30000; i++ {
				fmt.Fprintf(&b, "%d,"+c.first+"\n", i, i)
			}
			fmt.Fprintf(&b, "30001,%s\n", c.late)
			s := open(t, writeFile(t, "g.csv", b.String()), file.Options{})
			if got := colTypes(t, s)["v"]; got != c.want {
				t.Fatalf("type %s, want %s", got, c.want)
			}
			rows, err := s.Sample(context.Background(), nil, 30001)
			if err != nil {
				t.Fatal(err)
			}
			if got := deref(rows[30000:])[0][1]; got != c.wantLate {
				t.Errorf("late value read back as %q, want %q", got, c.wantLate)
			}
		})
	}
}
