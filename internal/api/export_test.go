package api

import "testing"

// TestXLSXValue: a number cell only where a spreadsheet's double holds the
// decimal exactly as written; text otherwise, so that no digit is lost.
func TestXLSXValue(t *testing.T) {
	s := func(v string) *string { return &v }
	for _, c := range []struct {
		in      *string
		numeric bool
		want    any
	}{
		{nil, true, nil},
		{s("12.50"), true, 12.5},
		{s("-0.30"), true, -0.3},
		{s("1234567.50"), true, 1234567.5},
		{s("3.00"), true, 3.0},
		{s("0.00"), true, 0.0},
		{s("12345678901.123456789"), true, "12345678901.123456789"}, // more digits than a double keeps
		{s("9007199254740993"), true, "9007199254740993"},           // 2^53 + 1
		{s("1e+20"), true, "1e+20"},
		{s("INV-1"), false, "INV-1"},
		{s("42"), false, "42"}, // a text column stays text
	} {
		got := xlsxValue(c.in, c.numeric)
		if got != c.want {
			t.Errorf("xlsxValue(%v, %v) = %#v, want %#v", c.in, c.numeric, got, c.want)
		}
	}
}
