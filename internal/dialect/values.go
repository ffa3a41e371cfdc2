package dialect

import (
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// maxDecimalDigits bounds the digits of a normalized number. Postgres
// numeric holds far more, but no filter needs more, and the bound keeps an
// exponent like 1e999999999 from allocating a billion digits.
const maxDecimalDigits = 1000

// decimal is an exact decimal number: 100.10 is {false, "100", "1"}. intPart
// has no leading zeros (zero is ""), frac no trailing zeros, and zero is
// never negative, so equal numbers have equal decimals.
type decimal struct {
	neg           bool
	intPart, frac string
}

var (
	errNotNumber   = errors.New("is not a number")
	errNumberRange = fmt.Errorf("has more than %d digits", maxDecimalDigits)
)

// parseDecimal reads a decimal number: an optional sign, digits with an
// optional decimal point, and an optional exponent ("-1.5", ".5", "1e3",
// "100.10"). Nothing else is accepted: no spaces, no NaN or Infinity, no
// hexadecimal, no digit separators. It never goes through float64.
func parseDecimal(s string) (decimal, error) {
	var d decimal
	i := 0
	if i < len(s) && (s[i] == '+' || s[i] == '-') {
		d.neg = s[i] == '-'
		i++
	}
	start := i
	for i < len(s) && isDigit(s[i]) {
		i++
	}
	intDigits := s[start:i]
	var fracDigits string
	if i < len(s) && s[i] == '.' {
		i++
		fs := i
		for i < len(s) && isDigit(s[i]) {
			i++
		}
		fracDigits = s[fs:i]
	}
	if intDigits == "" && fracDigits == "" {
		return decimal{}, errNotNumber
	}
	exp := 0
	if i < len(s) && (s[i] == 'e' || s[i] == 'E') {
		i++
		es := i
		if i < len(s) && (s[i] == '+' || s[i] == '-') {
			i++
		}
		ds := i
		for i < len(s) && isDigit(s[i]) {
			i++
		}
		if i == ds {
			return decimal{}, errNotNumber
		}
		e, err := strconv.Atoi(s[es:i])
		if err != nil || e > maxDecimalDigits || e < -maxDecimalDigits {
			return decimal{}, errNumberRange
		}
		exp = e
	}
	if i != len(s) {
		return decimal{}, errNotNumber
	}
	if len(intDigits)+len(fracDigits) > 4*maxDecimalDigits {
		return decimal{}, errNumberRange
	}
	// Shift the decimal point by exp over the digit string.
	digits := intDigits + fracDigits
	point := len(intDigits) + exp
	switch {
	case point < 0:
		digits = strings.Repeat("0", -point) + digits
		point = 0
	case point > len(digits):
		digits += strings.Repeat("0", point-len(digits))
	}
	d.intPart = strings.TrimLeft(digits[:point], "0")
	d.frac = strings.TrimRight(digits[point:], "0")
	if len(d.intPart)+len(d.frac) > maxDecimalDigits {
		return decimal{}, errNumberRange
	}
	if d.intPart == "" && d.frac == "" {
		d.neg = false
	}
	return d, nil
}

func isDigit(c byte) bool { return '0' <= c && c <= '9' }

// String renders the number as plain decimal text without exponent, which
// every dialect's decimal input accepts: "100.1", "-0.05", "0".
func (d decimal) String() string {
	var b strings.Builder
	if d.neg {
		b.WriteByte('-')
	}
	if d.intPart == "" {
		b.WriteByte('0')
	} else {
		b.WriteString(d.intPart)
	}
	if d.frac != "" {
		b.WriteByte('.')
		b.WriteString(d.frac)
	}
	return b.String()
}

// integral reports whether the number has no fractional part.
func (d decimal) integral() bool { return d.frac == "" }

// fitsInt64 reports whether the number is an integer in int64's range.
func (d decimal) fitsInt64() bool {
	if !d.integral() {
		return false
	}
	_, err := strconv.ParseInt(d.String(), 10, 64)
	return err == nil
}

// fitsInt128 reports whether the number is an integer in the range of a
// signed 128-bit integer (DuckDB HUGEINT).
func (d decimal) fitsInt128() bool {
	const maxInt128 = "170141183460469231731687303715884105727"
	if !d.integral() {
		return false
	}
	limit := maxInt128
	if d.neg {
		limit = "170141183460469231731687303715884105728"
	}
	if len(d.intPart) != len(limit) {
		return len(d.intPart) < len(limit)
	}
	return d.intPart <= limit
}

// precision returns the DECIMAL(p, s) that holds the number exactly.
func (d decimal) precision() (p, s int) {
	s = len(d.frac)
	p = max(len(d.intPart)+s, 1)
	return p, s
}

// parseBool reads the boolean spellings every dialect's boolean input
// accepts, case-insensitively.
func parseBool(s string) (bool, bool) {
	switch strings.ToLower(s) {
	case "true", "t", "yes", "y", "1":
		return true, true
	case "false", "f", "no", "n", "0":
		return false, true
	}
	return false, false
}

var (
	dateRE = regexp.MustCompile(`^([0-9]{4})-([0-9]{2})-([0-9]{2})$`)
	// timestampRE: a date, then optionally a time (T or space, hh:mm,
	// optional :ss, optional fraction), then optionally a zone (Z, ±hh,
	// ±hh:mm, ±hhmm) when there is a time.
	timestampRE = regexp.MustCompile(`^([0-9]{4})-([0-9]{2})-([0-9]{2})` +
		`(?:[T ]([0-9]{2}):([0-9]{2})(?::([0-9]{2})(?:\.([0-9]{1,9}))?)?` +
		`(Z|[+-][0-9]{2}(?::?[0-9]{2})?)?)?$`)
)

// validDate reports whether y-m-d is a real calendar date in years 1..9999.
func validDate(y, m, d string) bool {
	yi, _ := strconv.Atoi(y)
	mi, _ := strconv.Atoi(m)
	di, _ := strconv.Atoi(d)
	if yi < 1 || mi < 1 || mi > 12 || di < 1 {
		return false
	}
	t := time.Date(yi, time.Month(mi), di, 0, 0, 0, 0, time.UTC)
	return t.Day() == di && int(t.Month()) == mi
}

// normalizeDate checks an ISO 8601 calendar date (YYYY-MM-DD) and returns it.
func normalizeDate(s string) (string, error) {
	m := dateRE.FindStringSubmatch(s)
	if m == nil {
		return "", errors.New("is not a date in the form YYYY-MM-DD")
	}
	if !validDate(m[1], m[2], m[3]) {
		return "", errors.New("is not a calendar date")
	}
	return s, nil
}

// normalizeTimestamp checks an ISO 8601 timestamp and returns it as
// "YYYY-MM-DD HH:MM:SS[.ffffff][+HH:MM]", the form all three dialects read.
// A zone is accepted only when withZone is set: comparing a timestamp
// without time zone to an instant would silently drop the offset.
// Fractions beyond microseconds are refused, since each server rounds or
// truncates them in its own way.
func normalizeTimestamp(s string, withZone bool) (string, error) {
	m := timestampRE.FindStringSubmatch(s)
	if m == nil {
		return "", errors.New("is not a timestamp in the form YYYY-MM-DD[ HH:MM[:SS[.ffffff]]]" + zoneHint(withZone))
	}
	if !validDate(m[1], m[2], m[3]) {
		return "", errors.New("is not a calendar date")
	}
	hh, mm, ss, frac, zone := m[4], m[5], m[6], strings.TrimRight(m[7], "0"), m[8]
	if hh == "" {
		hh, mm = "00", "00"
	}
	if ss == "" {
		ss = "00"
	}
	h, _ := strconv.Atoi(hh)
	mi, _ := strconv.Atoi(mm)
	se, _ := strconv.Atoi(ss)
	if h > 23 || mi > 59 || se > 59 {
		return "", errors.New("has a time of day out of range")
	}
	if len(frac) > 6 {
		return "", errors.New("has more than 6 fractional digits of a second")
	}
	out := m[1] + "-" + m[2] + "-" + m[3] + " " + hh + ":" + mm + ":" + ss
	if frac != "" {
		out += "." + frac
	}
	if zone != "" {
		if !withZone {
			return "", errors.New("has a time zone offset, but the column is a timestamp without time zone")
		}
		if zone == "Z" {
			zone = "+00:00"
		}
		zh, zm := zone[1:3], "00"
		if rest := strings.TrimPrefix(zone[3:], ":"); rest != "" {
			zm = rest
		}
		zhi, _ := strconv.Atoi(zh)
		zmi, _ := strconv.Atoi(zm)
		if zhi > 15 || zmi > 59 {
			return "", errors.New("has a time zone offset out of range")
		}
		out += zone[:1] + zh + ":" + zm
	}
	return out, nil
}

func zoneHint(withZone bool) string {
	if withZone {
		return " with an optional offset (Z, +HH:MM)"
	}
	return ""
}

var uuidRE = regexp.MustCompile(`^[0-9a-fA-F]{8}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{12}$`)

// normalizeUUID checks a UUID (hyphenated or 32 hex digits) and returns it
// lowercase and hyphenated.
func normalizeUUID(s string) (string, bool) {
	if !uuidRE.MatchString(s) {
		return "", false
	}
	h := strings.ToLower(strings.ReplaceAll(s, "-", ""))
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:32], true
}

// validJSON reports whether s is one JSON value.
func validJSON(s string) bool { return json.Valid([]byte(s)) }

// checkLikePattern refuses a pattern that ends in an unpaired backslash:
// Postgres and DuckDB reject it at query time and MySQL silently treats it
// as a literal, so Kalla rejects it up front in every dialect.
func checkLikePattern(p string) error {
	escaped := false
	for i := 0; i < len(p); i++ {
		if escaped {
			escaped = false
			continue
		}
		if p[i] == '\\' {
			escaped = true
		}
	}
	if escaped {
		return errors.New(`ends with the escape character \ (write \\ for a literal backslash)`)
	}
	return nil
}
