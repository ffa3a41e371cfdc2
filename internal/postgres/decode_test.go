package postgres

import (
	"encoding/binary"
	"errors"
	"testing"

	"github.com/duckdb/duckdb-go/v2"
)

// numericBytes encodes a numeric in Postgres's binary format.
func numericBytes(weight int16, sign uint16, dscale int16, digits ...uint16) []byte {
	b := make([]byte, 8+2*len(digits))
	binary.BigEndian.PutUint16(b[0:], uint16(len(digits)))
	binary.BigEndian.PutUint16(b[2:], uint16(weight))
	binary.BigEndian.PutUint16(b[4:], sign)
	binary.BigEndian.PutUint16(b[6:], uint16(dscale))
	for i, d := range digits {
		binary.BigEndian.PutUint16(b[8+2*i:], d)
	}
	return b
}

func TestDecodeNumeric(t *testing.T) {
	for _, tc := range []struct {
		name  string
		raw   []byte
		scale int
		want  string // unscaled integer at scale
		err   error
	}{
		{"100.10 at 2", numericBytes(0, 0, 2, 100, 1000), 2, "10010", nil},
		{"0.30 at 2", numericBytes(-1, 0, 2, 3000), 2, "30", nil},
		{"-42.50 at 2", numericBytes(0, numericNeg, 2, 42, 5000), 2, "-4250", nil},
		{"0 at 2", numericBytes(0, 0, 2), 2, "0", nil},
		{"15000 at 2", numericBytes(1, 0, 2, 1, 5000), 2, "1500000", nil},
		{"1.005 at 2 refused", numericBytes(0, 0, 3, 1, 50), 2, "", errors.New("digits")},
		{"1.005 at 9", numericBytes(0, 0, 3, 1, 50), 9, "1005000000", nil},
		{"beyond int64", numericBytes(6, 0, 0, 12, 3456, 7890, 1234, 5678, 9012, 3456), 2, "1234567890123456789012345600", nil},
		{"38 digits negative", numericBytes(6, numericNeg, 10, 1234, 5678, 9012, 3456, 7890, 1234, 5678, 123, 4567, 8900), 10, "-12345678901234567890123456780123456789", nil},
		{"NaN", numericBytes(0, numericNaN, 0), 2, "", errNaN},
		{"Infinity", numericBytes(0, numericPInf, 0), 2, "", errInf},
		{"truncated", []byte{0, 2, 0, 0, 0, 0, 0, 2, 0, 1}, 2, "", errors.New("bytes")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := newDecoder(plan{kind: kNumeric, width: 38, scale: tc.scale})
			v, err := d.decode(tc.raw)
			if tc.err != nil {
				if err == nil {
					t.Fatalf("decoded %v, want an error", v)
				}
				if errors.Is(tc.err, errNaN) || errors.Is(tc.err, errInf) {
					if !errors.Is(err, tc.err) {
						t.Fatalf("error %v, want %v", err, tc.err)
					}
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			dec := v.(duckdb.Decimal)
			if dec.Value.String() != tc.want || int(dec.Scale) != tc.scale {
				t.Fatalf("decoded %s at scale %d, want %s at %d", dec.Value, dec.Scale, tc.want, tc.scale)
			}
		})
	}
}

func TestParseTable(t *testing.T) {
	for _, tc := range []struct{ in, schema, table string }{
		{"invoices", "", "invoices"},
		{"billing.invoices", "billing", "invoices"},
		{`"My.Schema"."Tab ""q"""`, "My.Schema", `Tab "q"`},
		{`billing."Invoices"`, "billing", "Invoices"},
	} {
		s, tb, err := parseTable(tc.in)
		if err != nil || s != tc.schema || tb != tc.table {
			t.Errorf("parseTable(%q) = %q, %q, %v; want %q, %q", tc.in, s, tb, err, tc.schema, tc.table)
		}
	}
	for _, bad := range []string{"", ".", "a.", ".b", "a.b.c", `"open`, `"a"b`} {
		if _, _, err := parseTable(bad); err == nil {
			t.Errorf("parseTable(%q) accepted", bad)
		}
	}
}
