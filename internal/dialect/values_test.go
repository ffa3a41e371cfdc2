package dialect

import (
	"strings"
	"testing"

	"github.com/kalla-recon/kalla/internal/kalla"
)

func TestParseDecimal(t *testing.T) {
	tests := []struct {
		in, want string // want "" means rejected
		p, s     int
	}{
		{"100.10", "100.1", 4, 1},
		{"0100.100", "100.1", 4, 1},
		{"-0", "0", 1, 0},
		{"-0.000", "0", 1, 0},
		{"+5", "5", 1, 0},
		{".5", "0.5", 1, 1},
		{"5.", "5", 1, 0},
		{"0.005", "0.005", 3, 3},
		{"1e3", "1000", 4, 0},
		{"1.5E+3", "1500", 4, 0},
		{"12.5e-3", "0.0125", 4, 4},
		{"-1e-2", "-0.01", 2, 2},
		{"123456789012345678901234567890.123456789", "123456789012345678901234567890.123456789", 39, 9},
		{"", "", 0, 0},
		{"-", "", 0, 0},
		{".", "", 0, 0},
		{"1e", "", 0, 0},
		{"e5", "", 0, 0},
		{" 1", "", 0, 0},
		{"1 ", "", 0, 0},
		{"1_000", "", 0, 0},
		{"0x10", "", 0, 0},
		{"NaN", "", 0, 0},
		{"Infinity", "", 0, 0},
		{"1e1001", "", 0, 0},
		{"1e-1001", "", 0, 0},
		{"1e99999999999999999999", "", 0, 0},
		{"1" + strings.Repeat("0", 1000), "", 0, 0},
		{"0." + strings.Repeat("0", 998) + "1", "0." + strings.Repeat("0", 998) + "1", 999, 999},
	}
	for _, tc := range tests {
		d, err := parseDecimal(tc.in)
		if tc.want == "" {
			if err == nil {
				t.Errorf("parseDecimal(%q) = %s, want error", tc.in, d)
			}
			continue
		}
		if err != nil {
			t.Errorf("parseDecimal(%q): %v", tc.in, err)
			continue
		}
		if d.String() != tc.want {
			t.Errorf("parseDecimal(%q) = %s, want %s", tc.in, d, tc.want)
		}
		if p, s := d.precision(); p != tc.p || s != tc.s {
			t.Errorf("parseDecimal(%q).precision() = %d,%d, want %d,%d", tc.in, p, s, tc.p, tc.s)
		}
	}
}

func TestDecimalRanges(t *testing.T) {
	tests := []struct {
		in           string
		i64, i128    bool
		wantIntegral bool
	}{
		{"9223372036854775807", true, true, true},
		{"9223372036854775808", false, true, true},
		{"-9223372036854775808", true, true, true},
		{"170141183460469231731687303715884105727", false, true, true},
		{"170141183460469231731687303715884105728", false, false, true},
		{"-170141183460469231731687303715884105728", false, true, true},
		{"-170141183460469231731687303715884105729", false, false, true},
		{"1000000000000000000000000000000000000000", false, false, true},
		{"1.5", false, false, false},
	}
	for _, tc := range tests {
		d, err := parseDecimal(tc.in)
		if err != nil {
			t.Fatal(err)
		}
		if d.fitsInt64() != tc.i64 || d.fitsInt128() != tc.i128 || d.integral() != tc.wantIntegral {
			t.Errorf("%s: int64 %v int128 %v integral %v", tc.in, d.fitsInt64(), d.fitsInt128(), d.integral())
		}
	}
}

func TestNormalizeTimestamp(t *testing.T) {
	tests := []struct {
		in       string
		withZone bool
		want     string // "" means rejected
	}{
		{"2024-01-31", false, "2024-01-31 00:00:00"},
		{"2024-01-31T10:00", false, "2024-01-31 10:00:00"},
		{"2024-01-31 10:00:05", false, "2024-01-31 10:00:05"},
		{"2024-01-31 10:00:05.120000", false, "2024-01-31 10:00:05.12"},
		{"2024-01-31 10:00:05.000000000", false, "2024-01-31 10:00:05"},
		{"2024-01-31 10:00:05.123456", false, "2024-01-31 10:00:05.123456"},
		{"2024-01-31 10:00:05.1234567", false, ""},
		{"2024-01-31T10:00Z", true, "2024-01-31 10:00:00+00:00"},
		{"2024-01-31T10:00:00-05", true, "2024-01-31 10:00:00-05:00"},
		{"2024-01-31T10:00:00+0530", true, "2024-01-31 10:00:00+05:30"},
		{"2024-01-31T10:00:00+05:30", true, "2024-01-31 10:00:00+05:30"},
		{"2024-01-31T10:00:00+05:30", false, ""},
		{"2024-01-31T10:00:00+16", true, ""},
		{"2024-01-31Z", true, ""},
		{"2024-02-29 00:00", false, "2024-02-29 00:00:00"},
		{"2023-02-29 00:00", false, ""},
		{"2024-13-01", false, ""},
		{"0000-01-01", false, ""},
		{"2024-01-31 23:59:60", false, ""},
		{"2024-01-31 24:00", false, ""},
		{"2024-01-31 10", false, ""},
		{"2024-1-31", false, ""},
		{"today", false, ""},
		{"2024-01-31'; --", false, ""},
	}
	for _, tc := range tests {
		got, err := normalizeTimestamp(tc.in, tc.withZone)
		if tc.want == "" {
			if err == nil {
				t.Errorf("normalizeTimestamp(%q, %v) = %q, want error", tc.in, tc.withZone, got)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("normalizeTimestamp(%q, %v) = %q, %v; want %q", tc.in, tc.withZone, got, err, tc.want)
		}
	}
}

func TestClassify(t *testing.T) {
	tests := []struct {
		d    Dialect
		col  kalla.Column
		want class
	}{
		{Postgres, kalla.Column{DataType: "character varying(20)"}, classText},
		{Postgres, kalla.Column{DataType: "numeric(12,2)"}, classDecimal},
		{Postgres, kalla.Column{DataType: "NUMERIC"}, classDecimal},
		{Postgres, kalla.Column{DataType: "timestamp(3) with time zone"}, classTimestampTZ},
		{Postgres, kalla.Column{DataType: "timestamp without time zone"}, classTimestamp},
		{Postgres, kalla.Column{DataType: "double precision"}, classFloat},
		{Postgres, kalla.Column{DataType: "integer[]"}, classOther},
		{Postgres, kalla.Column{DataType: "ARRAY"}, classOther},
		{Postgres, kalla.Column{DataType: "USER-DEFINED"}, classOther},
		{Postgres, kalla.Column{DataType: "interval"}, classOther},
		{Postgres, kalla.Column{DataType: "tinyint(1)"}, classInteger},
		{MySQL, kalla.Column{DataType: "int(11) unsigned zerofill"}, classInteger},
		{MySQL, kalla.Column{DataType: "bigint unsigned"}, classInteger},
		{MySQL, kalla.Column{DataType: "tinyint(1)"}, classInteger},
		{MySQL, kalla.Column{DataType: "datetime(6)"}, classTimestamp},
		{MySQL, kalla.Column{DataType: "timestamp with time zone"}, classTimestamp},
		{MySQL, kalla.Column{DataType: "enum('a','b')"}, classText},
		{MySQL, kalla.Column{DataType: "longtext"}, classText},
		{MySQL, kalla.Column{DataType: "year"}, classOther},
		{DuckDB, kalla.Column{DataType: "text", EngineType: "DECIMAL(18,2)"}, classDecimal},
		{DuckDB, kalla.Column{DataType: "BIGINT"}, classInteger},
		{DuckDB, kalla.Column{EngineType: "TIMESTAMP_NS"}, classTimestamp},
		{DuckDB, kalla.Column{EngineType: "TIMESTAMP WITH TIME ZONE"}, classTimestampTZ},
		{DuckDB, kalla.Column{EngineType: "STRUCT(a INTEGER)"}, classOther},
		{DuckDB, kalla.Column{EngineType: "INTEGER[3]"}, classOther},
		{DuckDB, kalla.Column{EngineType: "HUGEINT"}, classInteger},
		{DuckDB, kalla.Column{EngineType: "JSON"}, classJSON},
	}
	for _, tc := range tests {
		if got := tc.d.classify(tc.col).class; got != tc.want {
			t.Errorf("%s %+v: class %d, want %d", tc.d, tc.col, got, tc.want)
		}
	}
	if !MySQL.classify(kalla.Column{DataType: "tinyint(1)"}).boolInt || MySQL.classify(kalla.Column{DataType: "tinyint(4)"}).boolInt {
		t.Error("MySQL tinyint(1) is BOOLEAN, tinyint(4) is not")
	}
}

func TestCheckLikePattern(t *testing.T) {
	for p, ok := range map[string]bool{
		``: true, `%`: true, `a\%`: true, `a\\`: true, `\`: false, `a\\\`: false, `é\`: false, `\é`: true,
	} {
		if err := checkLikePattern(p); (err == nil) != ok {
			t.Errorf("checkLikePattern(%q) = %v", p, err)
		}
	}
}
