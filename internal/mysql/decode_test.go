package mysql

import (
	"math/big"
	"testing"
	"time"
)

func TestParseDecimal(t *testing.T) {
	for _, tc := range []struct {
		in    string
		scale int
		want  string
		ok    bool
	}{
		{"100.10", 2, "10010", true},
		{"-42.50", 2, "-4250", true},
		{"0.30", 2, "30", true},
		{"7", 2, "700", true},
		{"1.5", 3, "1500", true},
		{"1.005", 2, "", false},
		{"1.500", 1, "15", true},
		{"12345678901234567890123456789012345678", 0, "12345678901234567890123456789012345678", true},
		{"-1234567890123456789.0123456789", 10, "-12345678901234567890123456789", true},
		{"abc", 2, "", false},
		{"", 2, "", false},
	} {
		var b big.Int
		err := parseDecimal([]byte(tc.in), tc.scale, &b)
		if (err == nil) != tc.ok || (tc.ok && b.String() != tc.want) {
			t.Errorf("parseDecimal(%q, %d) = %s, %v; want %s (ok %v)", tc.in, tc.scale, b.String(), err, tc.want, tc.ok)
		}
	}
}

func TestParseDateTime(t *testing.T) {
	for _, tc := range []struct {
		in       string
		withTime bool
		want     time.Time
		ok       bool
	}{
		{"2024-02-29", false, time.Date(2024, 2, 29, 0, 0, 0, 0, time.UTC), true},
		{"2023-02-29", false, time.Time{}, false},
		{"0000-00-00", false, time.Time{}, false},
		{"2024-00-10", false, time.Time{}, false},
		{"2024-01-31 10:00:00", true, time.Date(2024, 1, 31, 10, 0, 0, 0, time.UTC), true},
		{"2024-01-31 10:00:00.123456", true, time.Date(2024, 1, 31, 10, 0, 0, 123456000, time.UTC), true},
		{"2024-01-31 10:00:00.5", true, time.Date(2024, 1, 31, 10, 0, 0, 500000000, time.UTC), true},
		{"0000-00-00 00:00:00", true, time.Time{}, false},
		{"2024-01-31 24:00:00", true, time.Time{}, false},
	} {
		got, err := parseDateTime([]byte(tc.in), tc.withTime)
		if (err == nil) != tc.ok || (tc.ok && !got.Equal(tc.want)) {
			t.Errorf("parseDateTime(%q) = %v, %v; want %v (ok %v)", tc.in, got, err, tc.want, tc.ok)
		}
	}
}

func TestParseTable(t *testing.T) {
	for _, tc := range []struct{ in, db, table string }{
		{"payments", "", "payments"},
		{"billing.payments", "billing", "payments"},
		{"`my.db`.`tab``q`", "my.db", "tab`q"},
	} {
		d, tb, err := parseTable(tc.in)
		if err != nil || d != tc.db || tb != tc.table {
			t.Errorf("parseTable(%q) = %q, %q, %v", tc.in, d, tb, err)
		}
	}
	for _, bad := range []string{"", "a.", "a.b.c", "`open"} {
		if _, _, err := parseTable(bad); err == nil {
			t.Errorf("parseTable(%q) accepted", bad)
		}
	}
}
