package duck

import (
	"strconv"
	"strings"
)

// sizeUnits are the units of a size as DuckDB reads and writes them, in
// lower case: KB..TB in powers of 1000, KiB..TiB in powers of 1024.
var sizeUnits = map[string]float64{
	"b": 1, "byte": 1, "bytes": 1,
	"kb": 1e3, "mb": 1e6, "gb": 1e9, "tb": 1e12,
	"kib": 1 << 10, "mib": 1 << 20, "gib": 1 << 30, "tib": 1 << 40,
}

// ParseSize reads a size in any of the forms DuckDB uses: a setting as a
// user writes it ("8GB", "512MiB"), as 1.5 prints one, rounded ("488.2
// MiB"), and as 2.0 prints one, as it was set ("7812KiB", "134217728B").
// A number, an optional space and a unit, in any case; false when s is
// not that. One reader for the engine's own limit, its out-of-memory
// messages and the server's memory budget, so that they cannot disagree
// on what DuckDB said.
func ParseSize(s string) (int64, bool) {
	t := strings.TrimSpace(s)
	i := strings.IndexFunc(t, func(r rune) bool { return (r < '0' || r > '9') && r != '.' })
	if i <= 0 {
		return 0, false
	}
	v, err := strconv.ParseFloat(t[:i], 64)
	unit := sizeUnits[strings.ToLower(strings.TrimSpace(t[i:]))]
	if err != nil || unit == 0 {
		return 0, false
	}
	return int64(v * unit), true
}
