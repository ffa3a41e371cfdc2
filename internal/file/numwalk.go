package file

import (
	"bytes"
	"strings"
)

// maxNumRest bounds the part of a row numWalk holds while the row arrives
// in pieces; a longer one ends the measure.
const maxNumRest = 1 << 16

// numWalk measures number columns as fileScan reads a CSV file, so that the
// load can read them as their exact type directly. Without it, a column the
// sniffer calls numeric is read as text and proven value by value in
// DuckDB (a regular expression per value, then a cast), because DuckDB's
// CSV reader rounds a number to the column's scale without a word ("1.005"
// into DECIMAL(18,2) is 1.01) and takes padded, signed or zero-led text
// ("007") as a number.
//
// It measures what refineNumeric's fast path (measurePlain) measures in
// DuckDB, over the same values: for each column it is given (the ones
// after the first whose sampled values are all plain numbers), whether
// every value is a plain number (see plainNumber) or empty (NULL), the
// largest scale and the largest count of integer digits, a minus sign
// counted as one. A column that is all plain then has exactly the type
// refineNumeric would give it, and DuckDB's parse of a plain number into
// that type is exact.
//
// The line walk drives it, row by row, with the rest of each row after its
// first field: the walk already finds every row's newline and first
// delimiter, so the measure costs one delimiter search per column before
// the last measured one and a look at each measured value. It holds only
// while the walk's rows are DuckDB's rows: the walk stops it where it can
// no longer follow them (see lineWalk: a stray quote, a blank line, a key
// too long or with a newline inside quotes), and at a row that goes on
// past a newline inside quotes. The load also checks that DuckDB read as many rows as
// were measured, and loads the file without the measured types when not.
type numWalk struct {
	delim byte
	// inNumber: the delimiter can be part of a plain number (a digit, a
	// minus sign or a point), so number cannot read a value's digits up
	// to it and searches for it first.
	inNumber bool
	cols     []int     // the columns measured, ascending, none the first
	stats    []numStat // per column of cols
	live     int       // columns of cols still all plain
	rows     int64     // data rows measured
	// part is a row's rest begun in the last read; partQuoted: it holds a
	// quote.
	part       []byte
	partQuoted bool
	off        bool // the measure ended: it proves nothing
}

// numStat is what numWalk found in one column.
type numStat struct {
	index int // the column's position in the header
	// plain: every value so far is a plain number or empty; seen: some
	// value is not empty.
	plain, seen bool
	// scale and intDigits are the largest over the values.
	scale, intDigits int
}

// newNumWalk measures the given columns (ascending positions after the
// first) of a file with the given delimiter; nil when there is none.
func newNumWalk(delim rune, cols []int) *numWalk {
	if len(cols) == 0 || cols[0] < 1 || delim >= 0x80 {
		return nil
	}
	w := &numWalk{delim: byte(delim), inNumber: strings.ContainsRune("-.0123456789", delim), cols: cols, live: len(cols)}
	for _, c := range cols {
		w.stats = append(w.stats, numStat{index: c, plain: true})
	}
	return w
}

// stop ends the measure: the rows can no longer be followed.
func (w *numWalk) stop() {
	w.off = true
	w.part = nil
}

// restPart takes the start of a data row's rest that goes on in the next
// read.
func (w *numWalk) restPart(r []byte, quoted bool) {
	if w.off {
		return
	}
	if len(w.part)+len(r) > maxNumRest {
		w.stop()
		return
	}
	w.part = append(w.part, r...)
	w.partQuoted = w.partQuoted || quoted
}

// rest takes a data row's rest: the bytes after its first field's
// delimiter, up to its newline, after what restPart held. nil (or only a
// carriage return) is a row with one field. quoted: r may hold a quote,
// which the line walk found well placed and closed by the row's end.
func (w *numWalk) rest(r []byte, quoted bool) {
	if w.off {
		return
	}
	if len(w.part) > 0 {
		if len(w.part)+len(r) > maxNumRest {
			w.stop()
			return
		}
		w.part = append(w.part, r...)
		r, quoted = w.part, quoted || w.partQuoted
		w.part, w.partQuoted = w.part[:0], false
	}
	w.rows++
	if n := len(r); n > 0 && r[n-1] == '\r' {
		r = r[:n-1]
	}
	if len(r) == 0 {
		w.missing(0)
		return
	}
	if quoted {
		w.fields(r)
		return
	}
	// No quote: the fields are between the delimiters. Each measured
	// field is read where it starts, up to the delimiter after it.
	col, start := 1, 0
	for k, c := range w.cols {
		for col < c {
			d := bytes.IndexByte(r[start:], w.delim)
			if d < 0 {
				w.missing(k)
				return
			}
			start += d + 1
			col++
		}
		start += w.number(k, r[start:])
		if start == len(r) {
			w.missing(k + 1)
			return
		}
		start, col = start+1, col+1
	}
}

// fields walks a rest that holds a quote field by field, as DuckDB reads
// it: a field that starts with a quote ends at the quote before the
// delimiter or the end, a doubled quote inside it being one quote. The
// line walk has checked that every quote is placed so (see quoteFits);
// what it did not see ends the measure.
func (w *numWalk) fields(r []byte) {
	col, k, i := 1, 0, 0
	for k < len(w.cols) {
		var v []byte
		next, quoted := 0, i < len(r) && r[i] == '"'
		if quoted {
			j := i + 1
			for {
				e := bytes.IndexByte(r[j:], '"')
				if e < 0 {
					w.stop()
					return
				}
				j += e
				if j+1 < len(r) && r[j+1] == '"' {
					j += 2
					continue
				}
				break
			}
			v, next = r[i+1:j], j+1
			if next < len(r) && r[next] != w.delim {
				w.stop()
				return
			}
		} else {
			next = indexFrom(r, i, w.delim)
			v = r[i:next]
		}
		if col == w.cols[k] {
			if quoted && len(v) == 0 {
				w.drop(k) // "": NULL or empty text, as a setting says
			} else if len(v) > 0 {
				w.value(k, v)
			}
			k++
		}
		if next == len(r) {
			w.missing(k)
			return
		}
		i, col = next+1, col+1
	}
}

// value measures v, a whole value of cols[k].
func (w *numWalk) value(k int, v []byte) {
	st := &w.stats[k]
	if !st.plain {
		return
	}
	intDigits, scale, ok := plainDigits(v)
	if !ok {
		w.drop(k)
		return
	}
	st.seen = true
	st.intDigits = max(st.intDigits, intDigits)
	st.scale = max(st.scale, scale)
}

// missing marks the columns from cols[k] on, which a row does not reach,
// as unproven (DuckDB refuses such a row anyway).
func (w *numWalk) missing(k int) {
	for ; k < len(w.stats); k++ {
		w.drop(k)
	}
}

// drop marks cols[k] as holding a value that is not a plain number, and
// ends the measure once no column is left.
func (w *numWalk) drop(k int) {
	if w.stats[k].plain {
		w.stats[k].plain = false
		if w.live--; w.live == 0 {
			w.stop()
		}
	}
}

// number measures the value of cols[k] that starts v and returns its
// length: up to the delimiter after it, or the end of v. A plain number
// is read in the pass that finds its end (plainAt): a search for the
// delimiter and a second walk over the value cost about a third more of
// gen's scan. Anything else ends at the delimiter found by search, and
// value judges it.
func (w *numWalk) number(k int, v []byte) int {
	if !w.inNumber {
		if n, ok := w.plainAt(k, v); ok {
			return n
		}
	}
	end := indexFrom(v, 0, w.delim)
	if end > 0 {
		w.value(k, v[:end])
	}
	return end
}

// plainAt reads the value of cols[k] that starts v when it is a plain
// number, as plainDigits reads one, or empty (NULL), up to the delimiter
// or the end of v: it measures the number and returns its length. ok is
// false for anything else, measured by nothing.
func (w *numWalk) plainAt(k int, v []byte) (n int, ok bool) {
	i := 0
	if i < len(v) && v[i] == '-' {
		i++
	}
	first := i
	for i < len(v) && v[i]-'0' <= 9 {
		i++
	}
	intEnd, scale := i, 0
	if i < len(v) && v[i] == '.' {
		i++
		f := i
		for i < len(v) && v[i]-'0' <= 9 {
			i++
		}
		if scale = i - f; scale == 0 {
			return 0, false // "5."
		}
	}
	if i < len(v) && v[i] != w.delim {
		return 0, false
	}
	if i == 0 {
		return 0, true // empty: NULL
	}
	if ints := intEnd - first; ints == 0 || (v[first] == '0' && (ints > 1 || (first == 1 && scale == 0))) {
		return 0, false // no integer digit (".5", "-"), a leading zero ("007"), or "-0"
	}
	if st := &w.stats[k]; st.plain {
		st.seen = true
		st.intDigits = max(st.intDigits, intEnd)
		st.scale = max(st.scale, scale)
	}
	return i, true
}

// plainDigits reports whether v is a plain number (plainNumber, without a
// regular expression) and, if so, its integer digits (a minus sign
// counted as one, as measurePlain counts them) and its scale.
func plainDigits(v []byte) (intDigits, scale int, ok bool) {
	if len(v) == 0 {
		return 0, 0, false
	}
	i := 0
	if v[0] == '-' {
		i = 1
	}
	switch {
	case i == len(v):
		return 0, 0, false
	case v[i] == '0':
		i++
		if i == len(v) {
			return i, 0, i == 1 // "0", but not "-0"
		}
		if v[i] != '.' {
			return 0, 0, false // a leading zero
		}
	case v[i] >= '1' && v[i] <= '9':
		i++
		for i < len(v) && v[i] >= '0' && v[i] <= '9' {
			i++
		}
	default:
		return 0, 0, false
	}
	if i == len(v) {
		return i, 0, true
	}
	if v[i] != '.' || i+1 == len(v) {
		return 0, 0, false
	}
	for _, c := range v[i+1:] {
		if c < '0' || c > '9' {
			return 0, 0, false
		}
	}
	return i, len(v) - i - 1, true
}

// end is told the file ended, after the line walk's end, which counted
// rows data rows. It returns the columns proven all plain (with at least
// one value); nothing when the measure ended early or did not see every
// row.
func (w *numWalk) end(rows int64) []numStat {
	if w == nil || w.off || len(w.part) > 0 || w.rows != rows {
		return nil
	}
	var proven []numStat
	for _, st := range w.stats {
		if st.plain && st.seen {
			proven = append(proven, st)
		}
	}
	return proven
}
