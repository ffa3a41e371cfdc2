package postgres

import (
	"database/sql/driver"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"math/big"
	"time"

	"github.com/duckdb/duckdb-go/v2"
)

// Postgres's binary formats count from 2000-01-01 UTC.
const (
	pgEpochDays   = 10957                       // days from 1970-01-01 to 2000-01-01
	pgEpochMicros = pgEpochDays * 86400 * 1e6   // the same in microseconds
	secondsPerDay = 86400                       // for date arithmetic
	numericNaN    = 0xC000                      // numeric sign word of NaN
	numericPInf   = 0xD000                      // of +Infinity
	numericNInf   = 0xF000                      // of -Infinity
	numericNeg    = 0x4000                      // of a negative number
	maxInt64Div10 = math.MaxInt64 / 10          // overflow guard
	maxInt64Div1e = math.MaxInt64 / 10000       // overflow guard
	minPgTimeUs   = math.MinInt64               // -infinity timestamp
	maxPgTimeUs   = math.MaxInt64               // infinity timestamp
	minPgDate     = math.MinInt32               // -infinity date
	maxPgDate     = math.MaxInt32               // infinity date
	errNaN        = decodeErrorText("NaN")      // numeric NaN
	errInf        = decodeErrorText("infinity") // date, timestamp or numeric infinity
)

type decodeErrorText string

func (e decodeErrorText) Error() string { return string(e) }

// decoder turns one column's binary values into the Go values DuckDB's
// appender accepts for the column's EngineType. It keeps scratch state
// (a big.Int for decimals) and so belongs to one goroutine.
type decoder struct {
	kind  kind
	width uint8
	scale int
	big   big.Int
	tmp   big.Int
	// dec is a duckdb.Decimal pointing at big, boxed once: the appender
	// reads the value as it is appended, so one box serves every row and
	// decoding a decimal allocates nothing.
	dec driver.Value
	// dates caches boxed dates by day number (direct-mapped): a date
	// column repeats few values, and boxing a time.Time allocates.
	dates *[dateCacheSize]cachedDate
}

const dateCacheSize = 4096

type cachedDate struct {
	days int32
	v    driver.Value
}

// newDecoder returns the decoder of a column staged as p describes.
func newDecoder(p plan) decoder {
	return decoder{kind: p.kind, width: uint8(p.width), scale: p.scale}
}

// decode converts one value; raw is nil for NULL. Text and UUID values are
// raw itself and a decimal's digits live in the decoder, so a value is valid
// only until raw is reused or the next value of the column is decoded: the
// appender copies each value as it is appended, which is all Stage needs.
func (d *decoder) decode(raw []byte) (driver.Value, error) {
	if raw == nil {
		return nil, nil
	}
	switch d.kind {
	case kText:
		// DuckDB's appender copies []byte into VARCHAR as it does string.
		return raw, nil
	case kInt8:
		if len(raw) != 8 {
			return nil, lengthError(raw, 8)
		}
		return int64(binary.BigEndian.Uint64(raw)), nil
	case kInt4:
		if len(raw) != 4 {
			return nil, lengthError(raw, 4)
		}
		return int32(binary.BigEndian.Uint32(raw)), nil
	case kInt2:
		if len(raw) != 2 {
			return nil, lengthError(raw, 2)
		}
		return int16(binary.BigEndian.Uint16(raw)), nil
	case kFloat8:
		if len(raw) != 8 {
			return nil, lengthError(raw, 8)
		}
		return math.Float64frombits(binary.BigEndian.Uint64(raw)), nil
	case kFloat4:
		if len(raw) != 4 {
			return nil, lengthError(raw, 4)
		}
		return math.Float32frombits(binary.BigEndian.Uint32(raw)), nil
	case kBool:
		if len(raw) != 1 {
			return nil, lengthError(raw, 1)
		}
		return raw[0] != 0, nil
	case kDate:
		if len(raw) != 4 {
			return nil, lengthError(raw, 4)
		}
		days := int32(binary.BigEndian.Uint32(raw))
		if days == maxPgDate || days == minPgDate {
			return nil, errInf
		}
		if d.dates == nil {
			d.dates = new([dateCacheSize]cachedDate)
		}
		c := &d.dates[uint32(days)%dateCacheSize]
		if c.v == nil || c.days != days {
			c.days, c.v = days, time.Unix((int64(days)+pgEpochDays)*secondsPerDay, 0).UTC()
		}
		return c.v, nil
	case kTimestamp, kTimestampTZ:
		if len(raw) != 8 {
			return nil, lengthError(raw, 8)
		}
		us := int64(binary.BigEndian.Uint64(raw))
		if us == maxPgTimeUs || us == minPgTimeUs {
			return nil, errInf
		}
		return time.UnixMicro(us + pgEpochMicros).UTC(), nil
	case kUUID:
		if len(raw) != 16 {
			return nil, lengthError(raw, 16)
		}
		// The appender takes a UUID's 16 bytes as []byte.
		return raw, nil
	case kNumeric:
		if err := d.numeric(raw); err != nil {
			return nil, err
		}
		if d.dec == nil {
			d.dec = duckdb.Decimal{Width: d.width, Scale: uint8(d.scale), Value: &d.big}
		}
		return d.dec, nil
	}
	return nil, fmt.Errorf("no decoder for kind %d", d.kind)
}

func lengthError(raw []byte, want int) error {
	return fmt.Errorf("binary value has %d bytes, want %d", len(raw), want)
}

var pow10 = func() [19]int64 {
	var p [19]int64
	p[0] = 1
	for i := 1; i < len(p); i++ {
		p[i] = p[i-1] * 10
	}
	return p
}()

// numeric decodes a binary numeric into d.big as an unscaled integer at
// d.scale: 100.10 at scale 2 is 10010. A value with more fractional digits
// than d.scale is an error, never rounded.
//
// The format: int16 ndigits, int16 weight, uint16 sign, int16 dscale, then
// ndigits base-10000 digits; the value is the sum of digit[i] *
// 10000^(weight-i).
func (d *decoder) numeric(raw []byte) error {
	if len(raw) < 8 {
		return fmt.Errorf("binary numeric has %d bytes", len(raw))
	}
	ndigits := int(binary.BigEndian.Uint16(raw[0:]))
	weight := int(int16(binary.BigEndian.Uint16(raw[2:])))
	sign := binary.BigEndian.Uint16(raw[4:])
	switch sign {
	case numericNaN:
		return errNaN
	case numericPInf, numericNInf:
		return errInf
	}
	if len(raw) != 8+2*ndigits {
		return fmt.Errorf("binary numeric has %d bytes for %d digits", len(raw), ndigits)
	}
	// Decimal exponent of the last base-10000 digit, shifted by the scale.
	exp := 4*(weight-(ndigits-1)) + d.scale
	var acc int64
	fast := true
	for i := range ndigits {
		dg := int64(binary.BigEndian.Uint16(raw[8+2*i:]))
		if acc > (math.MaxInt64-dg)/10000 {
			fast = false
			break
		}
		acc = acc*10000 + dg
	}
	if fast {
		switch {
		case ndigits == 0:
			acc = 0
		case exp >= 0:
			for ; exp > 0; exp-- {
				if acc > maxInt64Div10 {
					fast = false
					break
				}
				acc *= 10
			}
		default:
			for ; exp < 0; exp++ {
				if acc%10 != 0 {
					return errors.New("has more fractional digits than its column's scale")
				}
				acc /= 10
			}
		}
	}
	if fast {
		if sign == numericNeg {
			acc = -acc
		}
		d.big.SetInt64(acc)
		return nil
	}
	// Slow path for values beyond int64 (DECIMAL wider than 18 digits).
	exp = 4*(weight-(ndigits-1)) + d.scale
	d.big.SetInt64(0)
	ten4 := big.NewInt(10000)
	for i := range ndigits {
		d.big.Mul(&d.big, ten4)
		d.big.Add(&d.big, d.tmp.SetInt64(int64(binary.BigEndian.Uint16(raw[8+2*i:]))))
	}
	switch {
	case exp > 0:
		d.big.Mul(&d.big, d.tmp.Exp(big.NewInt(10), big.NewInt(int64(exp)), nil))
	case exp < 0:
		var rem big.Int
		d.big.QuoRem(&d.big, d.tmp.Exp(big.NewInt(10), big.NewInt(int64(-exp)), nil), &rem)
		if rem.Sign() != 0 {
			return errors.New("has more fractional digits than its column's scale")
		}
	}
	if sign == numericNeg {
		d.big.Neg(&d.big)
	}
	return nil
}
