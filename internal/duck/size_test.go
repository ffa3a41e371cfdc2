package duck

import "testing"

func TestParseSize(t *testing.T) {
	for in, want := range map[string]int64{
		"488.25 MiB": 511967232, "7812KiB": 7812 << 10, "134217728B": 134217728,
		"0 bytes": 0, "8GB": 8e9, "2tb": 2e12, " 1.5 GiB ": 3 << 29,
	} {
		if got, ok := ParseSize(in); !ok || got != want {
			t.Errorf("ParseSize(%q) = %d, %v; want %d", in, got, ok, want)
		}
	}
	for _, in := range []string{"", "GB", "8", "8XB", "-1GB", "1.2.3MB"} {
		if got, ok := ParseSize(in); ok {
			t.Errorf("ParseSize(%q) = %d, accepted", in, got)
		}
	}
}
