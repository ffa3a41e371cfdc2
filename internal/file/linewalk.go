package file

import "bytes"

// maxKeyField bounds the first field lineWalk holds while a row arrives in
// pieces; a longer one ends the proof (no key is that long).
const maxKeyField = 4096

// lineWalk follows the lines of a CSV file as fileScan reads it, for two
// things DuckDB does not tell:
//
//   - whether a line ends with the delimiter (trailing): DuckDB reads
//     "1,a," under a two-column header as two fields, so such a file is
//     checked row by row afterwards;
//   - whether the first column's values are pairwise distinct (distinct):
//     each row's first field is compared with the last non-empty one, and
//     a file whose first fields all rise (or all fall) strictly, byte by
//     byte or by length first (keyOrder), has no value twice. Extracts
//     are usually sorted by their key, so this usually holds, and it
//     spares the engine its own search for repeated keys (a comparison of
//     neighbours that took 2.0 s and 7.1 s of 50M-row staging, the second
//     beside the other side's load, and a grouping when they are out of
//     order).
//
// The proof holds only for what DuckDB reads the same way. Rows end at a
// newline outside quotes (a doubled quote inside quotes is one quote
// character: it toggles twice); a quote that neither starts nor ends a
// field (x"y, which DuckDB reads as a character) ends the proof. A first
// field in quotes, as exports that quote every field write it, is
// compared by its value, the bytes between the quotes with each doubled
// quote made one (see quotedKey); a quote inside an unquoted first field
// ends the proof. The delimiter is one byte. An empty first field is NULL
// to DuckDB and skipped, as the key checks skip NULLs. A blank line ends
// the proof. And load trusts the
// proof only when DuckDB read as many rows as the walk counted
// (noteDistinct): a carriage return alone, which DuckDB may take for a
// line end, makes them differ.
//
// Once the proof fails the walk only looks at line ends, and once a
// trailing delimiter is found as well it stops.
//
// While the walk follows the rows it knows where each row's rest begins
// (after its first field) and ends, so it hands that rest to its numWalk,
// which measures the number columns without searching for the rows again.
// Keys out of order end the proof of distinct keys but, while its numWalk
// measures, not the following of the rows, which they do not disturb.
type lineWalk struct {
	d     []byte // the delimiter
	delim byte   // the delimiter, when it is one byte the proof can use
	// trailing: some line ends with the delimiter. tail holds the last
	// bytes read, for a line end whose bytes before it came in the last
	// read.
	trailing bool
	tail     []byte
	keys     bool  // the proof still holds
	rows     int64 // rows begun after the header
	// inKey: the current row's first field is still arriving (cur);
	// otherwise the rest of the row is skipped up to its newline.
	inKey bool
	// qkey: the first field is quoted and its closing quote has not come
	// (cur holds its value so far, doubled quotes made one); qpend: the
	// last read ended on a quote inside it, a closing one or the first of
	// a doubled one, as the next byte tells.
	qkey, qpend bool
	// quoted: the rest of the row being skipped is inside a quoted field,
	// where a newline does not end the row. closed: the last read ended
	// on a closing quote (see quoteFits).
	quoted, closed bool
	cur            []byte
	prev           []byte // the last key: in the read buffer, or buf once owned
	buf            []byte
	// have: prev holds a value; owned: prev is in buf.
	have, owned bool
	order       keyOrder // how the keys so far rose or fell
	// nums, when set, measures number columns from each data row's rest
	// while the walk follows the rows (see numWalk).
	nums *numWalk
}

func newLineWalk(delim rune) *lineWalk {
	return &lineWalk{d: []byte(string(delim)), delim: byte(delim), keys: delim < 0x80 && delim != '"' && delim != '\n' && delim != '\r', order: newKeyOrder()}
}

// feed takes the file's next bytes, each byte once, in order. A row costs
// it two IndexByte calls, one for its newline and one for the delimiter
// before it: a loop over the bytes would cost more than the rest of
// fileScan.
func (w *lineWalk) feed(b []byte) {
	defer w.keep(b)
	// p is where the walk is in b; q is the index of the next quote at or
	// after p and nl of the next newline, len(b) when there is none; nl
	// is -1 while not searched.
	p, q, nl := 0, len(b), -1
	if w.keys {
		q = indexFrom(b, 0, '"')
		if w.closed && len(b) > 0 {
			// The last read ended on a closing quote: what follows it.
			w.closed, w.keys = false, w.afterClose(b[0])
		}
	}
	for p < len(b) {
		if w.keys && !w.order.holds() && !w.measuring() {
			w.keys = false // keys out of order, and no number left to measure
		}
		if !w.keys {
			if w.nums != nil {
				w.nums.stop() // the rows are no longer followed
			}
			w.linesOnly(b, p)
			return
		}
		if nl < p {
			nl = indexFrom(b, p, '\n')
		}
		if !w.inKey {
			// The rest of a row (the header's, or a data row's after its
			// first field), up to the newline that begins the next.
			from, quotes := p, q < nl
			for q < nl && w.keys {
				w.keys = w.quoteFits(b, q)
				w.quoted = !w.quoted
				q = indexFrom(b, q+1, '"')
			}
			if !w.keys {
				continue
			}
			if w.nums != nil && w.rows > 0 {
				switch {
				case nl == len(b):
					w.nums.restPart(b[from:], quotes)
				case w.quoted:
					w.nums.stop() // a newline inside quotes: the row goes on
				default:
					w.nums.rest(b[from:nl], quotes)
				}
			}
			if nl == len(b) {
				return
			}
			w.lineEnd(b, nl)
			p = nl + 1
			if !w.quoted {
				w.begin()
			}
			continue
		}
		if w.qkey || (len(w.cur) == 0 && b[p] == '"') {
			// A quoted key: its value is between the quotes.
			if !w.qkey {
				w.qkey = true
				p++
			}
			done := false
			if p, done = w.quotedKey(b, p); !done || !w.keys {
				continue // the rest of it in the next read, or no proof
			}
			if q < p {
				q = indexFrom(b, p, '"')
			}
			continue
		}
		// The first field ends at the delimiter, or at the newline when
		// the row has one field, or goes on past b into the next read.
		end, rowEnd := nl, true
		if d := bytes.IndexByte(b[p:nl], w.delim); d >= 0 {
			end, rowEnd = p+d, false
		}
		if q < end || (rowEnd && len(w.cur) == 0 && (end == p || (end == p+1 && b[p] == '\r'))) {
			// A quote in the key, or a blank line (which DuckDB may skip
			// or read as a row: either way the rows are not the lines).
			w.keys = false
			continue
		}
		if end == len(b) {
			if len(w.cur)+len(b)-p > maxKeyField {
				w.keys = false
				continue
			}
			w.cur = append(w.cur, b[p:]...)
			return
		}
		w.key(b[p:end], rowEnd)
		p = end + 1 // q > end: b[end] is no quote
		if rowEnd && w.nums != nil {
			w.nums.rest(nil, false) // a row of one field
		}
		if rowEnd {
			w.lineEnd(b, end)
			w.begin()
		} else {
			w.inKey = false
		}
	}
}

// indexFrom is the index of the first c in b at or after i, len(b) when
// there is none.
func indexFrom(b []byte, i int, c byte) int {
	if n := bytes.IndexByte(b[i:], c); n >= 0 {
		return i + n
	}
	return len(b)
}

// quotedKey takes the bytes of a quoted key from b[p] on, after its
// opening quote: up to its closing quote, where it returns the position
// after it and done; or to the end of b (done false: the rest comes in the
// next read). A doubled quote is one quote character of the value, as
// DuckDB reads it. A newline or carriage return inside the key, an empty
// key ("", which DuckDB reads as NULL by a setting that could change) or
// anything but the delimiter or a line end after the closing quote ends
// the proof.
func (w *lineWalk) quotedKey(b []byte, p int) (next int, done bool) {
	if w.qpend {
		w.qpend = false
		if b[p] != '"' {
			return w.closeKey(b, p)
		}
		w.cur = append(w.cur, '"')
		p++
	}
	for {
		end := indexFrom(b, p, '"')
		seg := b[p:end]
		if bytes.ContainsAny(seg, "\r\n") || len(w.cur)+len(seg) > maxKeyField {
			w.keys = false
			return p, false
		}
		w.cur = append(w.cur, seg...)
		switch {
		case end == len(b):
			return len(b), false
		case end+1 == len(b):
			w.qpend = true
			return len(b), false
		case b[end+1] == '"':
			w.cur = append(w.cur, '"')
			p = end + 2
		default:
			return w.closeKey(b, end+1)
		}
	}
}

// closeKey ends a quoted key whose closing quote is just before b[p]:
// the key counts, and the row goes on at the delimiter's next byte, or at
// the line end, which the rest of the walk takes as any row's.
func (w *lineWalk) closeKey(b []byte, p int) (int, bool) {
	c := b[p]
	if c != w.delim && c != '\n' && c != '\r' {
		w.qkey, w.keys = false, false
		return p, false
	}
	if !w.quotedDone() {
		return p, false
	}
	if c == w.delim {
		return p + 1, true
	}
	return p, true
}

// quotedDone counts the quoted key just closed, or ends the proof when it
// is empty ("", see quotedKey).
func (w *lineWalk) quotedDone() bool {
	w.qkey = false
	if len(w.cur) == 0 {
		w.keys = false
		return false
	}
	w.key(nil, false)
	w.inKey = false
	return true
}

// quoteFits reports whether the quote at b[q] is one DuckDB reads as
// quoting, as the parity count assumes: an opening quote starts a field
// (after the delimiter, a newline, or the quote that closed a doubled
// one), a closing quote ends one (before the delimiter, a line end, or the
// other quote of a doubled one). A quote inside an unquoted field (x"y)
// is a character to DuckDB but would flip the count, so it ends the proof.
// A closing quote at the end of b is judged by the next read's first byte.
func (w *lineWalk) quoteFits(b []byte, q int) bool {
	if !w.quoted {
		var prev byte = '\n' // the file's first byte starts a field
		switch {
		case q > 0:
			prev = b[q-1]
		case len(w.tail) > 0:
			prev = w.tail[len(w.tail)-1]
		}
		return prev == w.delim || prev == '\n' || prev == '"'
	}
	if q+1 == len(b) {
		w.closed = true
		return true
	}
	return w.afterClose(b[q+1])
}

// afterClose reports whether c may follow a closing quote.
func (w *lineWalk) afterClose(c byte) bool {
	return c == w.delim || c == '\n' || c == '\r' || c == '"'
}

// linesOnly looks at the line ends in b from p on, once the proof failed,
// until one ends with the delimiter.
func (w *lineWalk) linesOnly(b []byte, p int) {
	for !w.trailing {
		i := bytes.IndexByte(b[p:], '\n')
		if i < 0 {
			return
		}
		w.lineEnd(b, p+i)
		p += i + 1
	}
}

// lineEnd looks at the line that b[i], a newline, ends: does it end with
// the delimiter (before a carriage return)? Its last bytes may have come
// in the last read.
func (w *lineWalk) lineEnd(b []byte, i int) {
	if w.trailing {
		return
	}
	if len(w.d) == 1 && i >= 2 {
		// The common case, without building the line's last bytes.
		c := b[i-1]
		if c == '\r' {
			c = b[i-2]
		}
		w.trailing = c == w.d[0]
		return
	}
	k := len(w.d) + 1
	var last []byte
	if i >= k {
		last = b[i-k : i]
	} else {
		var win [16]byte
		last = append(append(win[:0], w.tail...), b[:i]...)
	}
	w.trailing = bytes.HasSuffix(bytes.TrimSuffix(last, []byte("\r")), w.d)
}

// keep keeps the last bytes read for lineEnd, and copies the last key out
// of the read buffer, which the next read overwrites.
func (w *lineWalk) keep(b []byte) {
	k := len(w.d) + 1
	if len(b) >= k {
		w.tail = append(w.tail[:0], b[len(b)-k:]...)
	} else {
		w.tail = append(w.tail, b...)
		w.tail = w.tail[max(0, len(w.tail)-k):]
	}
	if w.have && !w.owned {
		w.buf = append(w.buf[:0], w.prev...)
		w.prev, w.owned = w.buf, true
	}
}

// measuring reports whether the numWalk still measures: keys out of order
// end the proof of distinct keys but not the walk's following of the rows,
// which the numbers still need.
func (w *lineWalk) measuring() bool { return w.nums != nil && !w.nums.off }

// begin starts a data row.
func (w *lineWalk) begin() {
	w.inKey = true
	w.cur = w.cur[:0]
	w.rows++
}

// key takes the end of the current row's first field: with the bytes held
// from earlier reads, its value, without the carriage return of a row
// that it ends.
func (w *lineWalk) key(rest []byte, rowEnd bool) {
	k := rest
	held := len(w.cur) > 0
	if held {
		w.cur = append(w.cur, rest...)
		k = w.cur
	}
	if rowEnd {
		k = bytes.TrimSuffix(k, []byte("\r"))
	}
	if len(k) == 0 {
		return // NULL to DuckDB, skipped as the key checks skip it
	}
	if w.have {
		w.order.next(bytes.Compare(k, w.prev), len(k), len(w.prev))
	}
	if held {
		w.buf = append(w.buf[:0], k...)
		w.prev, w.owned = w.buf, true
	} else {
		w.prev, w.owned = k, false // in the read buffer until keep
	}
	w.have = true
}

// end is told the file ended. It returns whether some line ends with the
// delimiter, the last one included, whether the first column is proven
// distinct, and how many data rows the file has: a last row without a
// newline counts; nothing after the last newline is no row.
func (w *lineWalk) end() (trailing, distinct bool, rows int64) {
	rows = w.rows
	if w.keys && w.qpend {
		// The file ends on the closing quote of a one-column row's key.
		w.qpend = false
		w.quotedDone()
	}
	if w.keys && w.inKey && !w.qkey {
		if len(w.cur) == 0 {
			rows-- // the file ends with a newline
		} else {
			w.key(nil, true)
		}
	}
	if w.nums != nil && w.keys && !w.inKey && !w.quoted && len(w.nums.part) > 0 {
		w.nums.rest(nil, false) // the last row, without a newline
	}
	return w.trailing || bytes.HasSuffix(w.tail, w.d), w.keys && w.order.holds() && !w.quoted && !w.qkey, rows
}

// keyOrder follows whether a sequence of keys rises strictly, or falls
// strictly, in either of two orders: byte by byte, and by length first
// (then byte by byte). A sequence that does so in any total order holds no
// value twice. The second order is the one of numbers written without
// leading zeros: INV-99999999 comes before INV-100000000 by length, after
// it byte by byte. gen's invoices and payments reach that at 100M rows,
// and without it each side's keys were searched for repeats by grouping
// (about 20 s a side under 8GB).
type keyOrder struct{ up, down, lenUp, lenDown bool }

// newKeyOrder is the order of a sequence of none or one key: every one holds.
func newKeyOrder() keyOrder { return keyOrder{true, true, true, true} }

// next takes the next key: c compares it with the key before it byte by
// byte (as bytes.Compare), n and prev are their lengths in bytes.
func (o *keyOrder) next(c, n, prev int) {
	o.up = o.up && c > 0
	o.down = o.down && c < 0
	if n != prev {
		c = n - prev
	}
	o.lenUp = o.lenUp && c > 0
	o.lenDown = o.lenDown && c < 0
}

// holds reports whether the keys so far rise or fall strictly in one order.
func (o keyOrder) holds() bool { return o.up || o.down || o.lenUp || o.lenDown }
