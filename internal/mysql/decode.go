package mysql

import (
	"database/sql/driver"
	"encoding/hex"
	"errors"
	"fmt"
	"math"
	"math/big"
	"strconv"
	"time"

	"github.com/duckdb/duckdb-go/v2"
)

var (
	errZeroDate = errors.New("zero date")
	errBadValue = errors.New("malformed value")
)

// decoder turns one column's text values into the Go values DuckDB's
// appender accepts for the column's EngineType. It keeps scratch state and
// so belongs to one goroutine; a value is valid until the next value of
// the column is decoded or raw is reused, which is enough for the
// appender, which copies each value as it is appended.
type decoder struct {
	kind  kind
	width uint8
	scale int
	big   big.Int
	uuid  [16]byte
	// dec is a duckdb.Decimal pointing at big, boxed once (see package
	// postgres): decoding a decimal allocates nothing.
	dec driver.Value
	// dates caches boxed dates (direct-mapped by the date's digits): a
	// date column repeats few values, and boxing a time.Time allocates.
	dates *[dateCacheSize]cachedDate
}

const dateCacheSize = 4096

type cachedDate struct {
	text [10]byte
	v    driver.Value
}

// decode converts one value; raw is nil for NULL.
func (d *decoder) decode(raw []byte) (driver.Value, error) {
	if raw == nil {
		return nil, nil
	}
	switch d.kind {
	case kText:
		return raw, nil
	case kInt:
		v, err := strconv.ParseInt(string(raw), 10, 64)
		if err != nil {
			return nil, errBadValue
		}
		return v, nil
	case kUint:
		v, err := strconv.ParseUint(string(raw), 10, 64)
		if err != nil {
			return nil, errBadValue
		}
		return v, nil
	case kFloat32:
		v, err := strconv.ParseFloat(string(raw), 32)
		if err != nil {
			return nil, errBadValue
		}
		return float32(v), nil
	case kFloat64:
		v, err := strconv.ParseFloat(string(raw), 64)
		if err != nil {
			return nil, errBadValue
		}
		return v, nil
	case kDecimal:
		if err := parseDecimal(raw, d.scale, &d.big); err != nil {
			return nil, err
		}
		if d.dec == nil {
			d.dec = duckdb.Decimal{Width: d.width, Scale: uint8(d.scale), Value: &d.big}
		}
		return d.dec, nil
	case kDate:
		return d.date(raw)
	case kDateTime:
		return parseDateTime(raw, true)
	case kUUID:
		if len(raw) != 36 || raw[8] != '-' || raw[13] != '-' || raw[18] != '-' || raw[23] != '-' {
			return nil, errBadValue
		}
		var h [32]byte
		copy(h[0:8], raw[0:8])
		copy(h[8:12], raw[9:13])
		copy(h[12:16], raw[14:18])
		copy(h[16:20], raw[19:23])
		copy(h[20:32], raw[24:36])
		if _, err := hex.Decode(d.uuid[:], h[:]); err != nil {
			return nil, errBadValue
		}
		return d.uuid[:], nil
	}
	return nil, fmt.Errorf("no decoder for kind %d", d.kind)
}

// date decodes a DATE through the cache of boxed dates.
func (d *decoder) date(raw []byte) (driver.Value, error) {
	if len(raw) != 10 {
		return parseDateTime(raw, false)
	}
	h := uint(0)
	for _, c := range raw {
		h = h*31 + uint(c)
	}
	if d.dates == nil {
		d.dates = new([dateCacheSize]cachedDate)
	}
	c := &d.dates[h%dateCacheSize]
	if c.v != nil && string(c.text[:]) == string(raw) {
		return c.v, nil
	}
	t, err := parseDateTime(raw, false)
	if err != nil {
		return nil, err
	}
	copy(c.text[:], raw)
	c.v = t
	return c.v, nil
}

// parseDecimal reads MySQL's decimal text ("-42.50") into dst as an
// unscaled integer at scale ("-4250" at scale 2). More fractional digits
// than scale is an error, never rounded.
func parseDecimal(raw []byte, scale int, dst *big.Int) error {
	neg := false
	s := raw
	if len(s) > 0 && (s[0] == '-' || s[0] == '+') {
		neg = s[0] == '-'
		s = s[1:]
	}
	intPart, frac := s, []byte(nil)
	for i, c := range s {
		if c == '.' {
			intPart, frac = s[:i], s[i+1:]
			break
		}
	}
	if len(intPart) == 0 && len(frac) == 0 {
		return errBadValue
	}
	for len(frac) > scale {
		if frac[len(frac)-1] != '0' {
			return errors.New("has more fractional digits than its column's scale")
		}
		frac = frac[:len(frac)-1]
	}
	if digits := len(intPart) + scale; digits <= 18 {
		var acc int64
		for _, c := range intPart {
			if c < '0' || c > '9' {
				return errBadValue
			}
			acc = acc*10 + int64(c-'0')
		}
		for i := range scale {
			acc *= 10
			if i < len(frac) {
				c := frac[i]
				if c < '0' || c > '9' {
					return errBadValue
				}
				acc += int64(c - '0')
			}
		}
		if neg {
			acc = -acc
		}
		dst.SetInt64(acc)
		return nil
	}
	buf := make([]byte, 0, len(intPart)+scale+1)
	if neg {
		buf = append(buf, '-')
	}
	buf = append(buf, intPart...)
	buf = append(buf, frac...)
	for range scale - len(frac) {
		buf = append(buf, '0')
	}
	if _, ok := dst.SetString(string(buf), 10); !ok {
		return errBadValue
	}
	return nil
}

// parseDateTime reads "YYYY-MM-DD" or "YYYY-MM-DD hh:mm:ss[.ffffff]" as a
// UTC time, refusing zero and partial dates, which time.Date would
// silently move to another day.
func parseDateTime(raw []byte, withTime bool) (time.Time, error) {
	num := func(b []byte) (int, bool) {
		n := 0
		for _, c := range b {
			if c < '0' || c > '9' {
				return 0, false
			}
			n = n*10 + int(c-'0')
		}
		return n, len(b) > 0
	}
	if len(raw) < 10 || raw[4] != '-' || raw[7] != '-' {
		return time.Time{}, errBadValue
	}
	y, ok1 := num(raw[0:4])
	mo, ok2 := num(raw[5:7])
	d, ok3 := num(raw[8:10])
	if !ok1 || !ok2 || !ok3 {
		return time.Time{}, errBadValue
	}
	if mo < 1 || mo > 12 || d < 1 || d > daysIn(y, mo) {
		return time.Time{}, errZeroDate
	}
	var h, mi, sec, nsec int
	if withTime && len(raw) > 10 {
		if len(raw) < 19 || raw[10] != ' ' || raw[13] != ':' || raw[16] != ':' {
			return time.Time{}, errBadValue
		}
		var ok bool
		if h, ok = num(raw[11:13]); !ok || h > 23 {
			return time.Time{}, errBadValue
		}
		if mi, ok = num(raw[14:16]); !ok || mi > 59 {
			return time.Time{}, errBadValue
		}
		if sec, ok = num(raw[17:19]); !ok || sec > 59 {
			return time.Time{}, errBadValue
		}
		if len(raw) > 19 {
			if raw[19] != '.' || len(raw) > 26 {
				return time.Time{}, errBadValue
			}
			f, ok := num(raw[20:])
			if !ok {
				return time.Time{}, errBadValue
			}
			nsec = f * int(math.Pow10(9-(len(raw)-20)))
		}
	} else if len(raw) != 10 {
		return time.Time{}, errBadValue
	}
	return time.Date(y, time.Month(mo), d, h, mi, sec, nsec, time.UTC), nil
}

func daysIn(y, m int) int {
	return time.Date(y, time.Month(m)+1, 0, 0, 0, 0, 0, time.UTC).Day()
}
