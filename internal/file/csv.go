package file

import (
	"bufio"
	"bytes"
	"context"
	"database/sql"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/kalla-recon/kalla/internal/connector"
	"github.com/kalla-recon/kalla/internal/dialect"
	"github.com/kalla-recon/kalla/internal/kalla"
)

// csvPlan is what was learned about a CSV file before loading it.
type csvPlan struct {
	header []string
	// readTypes are the types DuckDB parses each column as; numeric
	// columns are read as VARCHAR and refined after loading.
	readTypes []string
	numeric   []bool
	// declared are the columns the schema gives an exact number type:
	// read as VARCHAR too, and converted once proven to fit.
	declared []declaredExact
	// guess is, per numeric column, the exact type the first rows of the
	// file call for and the pattern every value must match for that type
	// to be the one refineNumeric would choose; nil when some numeric
	// column has no guess (see guessNumeric).
	guess []numericGuess
	// sniffed marks the columns read as a type the sniffer chose from its
	// sample (a date, a timestamp, a boolean), which a later value may
	// not fit: such a column is then read as text (see execLoad).
	sniffed []bool
	// stamps are the timestamp columns read as text because the file
	// writes some time with more than six decimals of a second, which
	// DuckDB's TIMESTAMP would cut (see refineStamps).
	stamps []stampCol
	// firstDistinct: the file scan (fileScan) proved the first column's
	// values distinct, provided the load reads dataLines rows (see
	// lineWalk); dataLines is -1 for a plan on the first rows (see
	// assumedFound), whose proof counts them.
	firstDistinct bool
	dataLines     int64
	// unmeasured, when set, is this plan without the exact types the file
	// scan measured for some numeric columns (see withNumbers), which hold
	// only if DuckDB reads measuredRows rows.
	unmeasured   *csvPlan
	measuredRows int64
}

// withNumbers is p with the numeric columns the file scan measured as all
// plain numbers read as their exact type (see numWalk), which they then need no
// proof or measure in DuckDB for, and p kept as its unmeasured plan; or p
// itself when no such column is numeric. A column whose values need a
// DOUBLE (more than 38 digits) keeps its usual path.
func (p *csvPlan) withNumbers(found scanFound, sample [][]string) *csvPlan {
	q := *p
	q.readTypes, q.numeric, q.sniffed = slices.Clone(p.readTypes), slices.Clone(p.numeric), slices.Clone(p.sniffed)
	measured := false
	for _, n := range found.numbers {
		i := n.index
		if i >= len(q.numeric) || !q.numeric[i] {
			continue
		}
		typ := exactType(int64(n.scale), int64(n.intDigits), false)
		if typ == "DOUBLE" {
			continue
		}
		q.readTypes[i], q.numeric[i], q.sniffed[i] = typ, false, false
		measured = true
	}
	if !measured {
		return p
	}
	q.guess = guessNumeric(q.numeric, sample)
	q.unmeasured, q.measuredRows = p, found.dataLines
	return &q
}

// plainColumns are the positions of the columns after the first whose
// values in sample are all plain numbers or empty, with at least one
// number (numWalk measures the rest of each row after its first field).
func plainColumns(width int, sample [][]string) []int {
	var cols []int
	for i := 1; i < width; i++ {
		seen := false
		for _, rec := range sample {
			if rec[i] == "" {
				continue
			}
			if _, _, ok := plainDigits([]byte(rec[i])); !ok {
				seen = false
				break
			}
			seen = true
		}
		if seen {
			cols = append(cols, i)
		}
	}
	return cols
}

// stampCol is a column the sniffer typed as a timestamp, read as text.
type stampCol struct {
	index int
	typ   string
}

// numericGuess is the type a numeric column is loaded as directly, and
// the pattern that proves it: a value that does not match it (a wider
// scale, a padded or signed value, a leading zero) makes the load fail
// and the column is measured the slow way.
type numericGuess struct {
	typ, pattern string
}

func (s *Source) delimiter() rune {
	if s.opts.CSV != nil && s.opts.CSV.Delimiter != "" {
		r, _ := utf8.DecodeRuneInString(s.opts.CSV.Delimiter)
		return r
	}
	return ','
}

// typeCandidates are the types the sniffer may choose. DOUBLE is only a
// marker for "numeric with a fraction": such columns are re-typed exactly.
const typeCandidates = "['BOOLEAN', 'BIGINT', 'DOUBLE', 'DATE', 'TIMESTAMP', 'VARCHAR']"

// csvOptions are the read_csv settings shared by sniffing and loading: Kalla
// reads strictly and never lets DuckDB guess the dialect.
func (s *Source) csvOptions() string {
	o := fmt.Sprintf("header = true, delim = %s, quote = '\"', escape = '\"', strict_mode = true, null_padding = false, ignore_errors = false",
		dialect.DuckDB.QuoteString(string(s.delimiter())))
	if c := s.opts.CSV; c != nil {
		if c.DateFormat != "" {
			o += ", dateformat = " + dialect.DuckDB.QuoteString(c.DateFormat)
		}
		if c.TimestampFormat != "" {
			o += ", timestampformat = " + dialect.DuckDB.QuoteString(c.TimestampFormat)
		}
		if c.DecimalSeparator == "," {
			o += ", decimal_separator = ','"
		}
	}
	return o
}

// isoFormat reports whether a sniffed date or timestamp format is ISO 8601,
// the only one Kalla reads without being told.
func isoFormat(f string) bool {
	return f == "" || strings.HasPrefix(f, "%Y-%m-%d")
}

// prepare checks the file and learns its header and column types, proven
// against the whole file before it returns.
func (s *Source) prepare(ctx context.Context, x execer) (*csvPlan, error) {
	p, _, err := s.prepareFor(ctx, x, false)
	return p, err
}

// prepareFor is prepare; with deferred set, the plan it returns rests on
// the file's first rows (see assumedFound) and the scan that proves it
// runs in the background: proof proves it (nil when the plan was proven
// already). A deferred plan is not kept for other loads until proven.
func (s *Source) prepareFor(ctx context.Context, x execer, deferred bool) (p *csvPlan, proof *planProof, err error) {
	s.mu.Lock()
	p = s.plan
	s.mu.Unlock()
	if p != nil {
		return p, nil, nil
	}
	header, sample, err := s.checkHeader()
	if err != nil {
		return nil, nil, err
	}
	// A header that is one column here but splits evenly on another
	// delimiter, as the first row does, is a file with that delimiter:
	// read as one text column it would match nothing, silently.
	if len(header) == 1 && (s.opts.CSV == nil || s.opts.CSV.Delimiter == "") {
		if hint := s.delimiterHint(); hint != "" {
			return nil, nil, kalla.Errorf(kalla.EINVALID, "source %s: the header is one column, %q; %s", s.name(), header[0], hint)
		}
	}
	// The whole file is scanned while DuckDB sniffs it, or, for a
	// deferred plan, in the background once the file is loaded.
	var numCols []int // the columns to measure: see numWalk
	if s.opts.CSV == nil || s.opts.CSV.DecimalSeparator != "," {
		numCols = plainColumns(len(header), sample)
	}
	sc := s.newFileScan(numCols)
	var pp *planProof // the deferred scan, until the proof takes it over
	var wait func() error
	if deferred {
		pp = newProof(ctx, s, sc)
		defer func() {
			if proof == nil {
				pp.quit()
			}
		}()
		wait = func() error { return pp.wait(ctx) }
	} else {
		done := make(chan struct{})
		go func() {
			for !sc.step(ctx) {
			}
			close(done)
		}()
		wait = func() error { <-done; return nil } // the scan stops on ctx too
	}
	var raw string
	var dateFmt, tsFmt sql.NullString
	// The sniffer reads rows from the start until it has its sample,
	// buffer after buffer; with DuckDB's default buffer (32 MB) it parsed
	// the whole first buffer on every core, about 50 ms of CPU for a 50 MB
	// file, to sample the same 20,480 rows a 2 MB buffer yields.
	q := "SELECT CAST(to_json(Columns) AS VARCHAR), DateFormat, TimestampFormat FROM sniff_csv(?, " + s.csvOptions() + ", buffer_size = 2097152, auto_type_candidates = " + typeCandidates + ")"
	err = x.QueryRowContext(ctx, q, s.path).Scan(&raw, &dateFmt, &tsFmt)
	if err != nil || !deferred {
		// A NUL byte or text that is not UTF-8 is the first thing to
		// report, whatever DuckDB made of it.
		if werr := wait(); werr != nil {
			return nil, nil, werr
		}
		if sc.err != nil {
			return nil, nil, sc.err
		}
	}
	if err != nil {
		if ctx.Err() != nil {
			return nil, nil, ctx.Err()
		}
		return nil, nil, s.locateError(err)
	}
	var sniffed []struct{ Name, Type string }
	if err := json.Unmarshal([]byte(raw), &sniffed); err != nil {
		return nil, nil, fmt.Errorf("read sniffer result: %w", err)
	}
	// build is the plan for what the scan found.
	build := func(found scanFound) (*csvPlan, error) {
		if found.trailingDelim {
			// Some line ends with the delimiter; DuckDB drops that empty last
			// field, so Go's reader checks every row's field count.
			if err := s.locateError(nil); err != nil {
				return nil, err
			}
		}
		if len(sniffed) != len(header) {
			if err := s.locateError(nil); err != nil {
				return nil, err
			}
			return nil, kalla.Errorf(kalla.EINVALID, "source %s: the header has %d columns but DuckDB read %d; check the delimiter and quoting", s.name(), len(header), len(sniffed))
		}
		p := &csvPlan{header: header, readTypes: make([]string, len(header)), numeric: make([]bool, len(header)), sniffed: make([]bool, len(header)),
			firstDistinct: found.firstDistinct, dataLines: found.dataLines}
		given := func(f func(*kalla.CSVOptions) string) bool { return s.opts.CSV != nil && f(s.opts.CSV) != "" }
		guessedDate := !isoFormat(dateFmt.String) && !given(func(c *kalla.CSVOptions) string { return c.DateFormat })
		guessedTS := !isoFormat(tsFmt.String) && !given(func(c *kalla.CSVOptions) string { return c.TimestampFormat })
		for i, c := range sniffed {
			switch c.Type {
			case "BIGINT", "DOUBLE", "INTEGER", "SMALLINT", "TINYINT", "HUGEINT", "FLOAT":
				p.readTypes[i], p.numeric[i] = "VARCHAR", true
			case "DATE":
				if p.readTypes[i] = c.Type; guessedDate {
					p.readTypes[i] = "VARCHAR" // a guessed non-ISO date order: see CSVOptions
				}
			case "TIMESTAMP", "TIMESTAMP WITH TIME ZONE":
				switch p.readTypes[i] = c.Type; {
				case guessedTS:
					p.readTypes[i] = "VARCHAR"
				case found.longFraction:
					p.readTypes[i] = "VARCHAR"
					p.stamps = append(p.stamps, stampCol{i, c.Type})
				}
			default:
				p.readTypes[i] = c.Type
			}
			p.sniffed[i] = p.readTypes[i] != "VARCHAR" // numbers are read as text
		}
		cols := make([]kalla.Column, len(header))
		for i, h := range header {
			cols[i] = kalla.Column{Name: h}
		}
		for name, typ := range s.opts.Schema {
			i := kalla.FindColumn(cols, name)
			if i < 0 {
				return nil, kalla.Errorf(kalla.EINVALID, "source %s: schema names column %q, which the file does not have (columns: %s)", s.name(), name, kalla.ColumnNames(cols))
			}
			p.readTypes[i], p.numeric[i], p.sniffed[i] = typ, false, false
			p.stamps = slices.DeleteFunc(p.stamps, func(c stampCol) bool { return c.index == i })
			if scale, ok := kalla.ExactScale(typ); ok {
				p.readTypes[i] = "VARCHAR"
				p.declared = append(p.declared, declaredExact{name: p.header[i], typ: typ, scale: scale})
			}
		}
		if s.opts.CSV == nil || s.opts.CSV.DecimalSeparator != "," {
			p.guess = guessNumeric(p.numeric, sample)
			p = p.withNumbers(found, sample)
		}
		return p, nil
	}
	if !deferred {
		p, err := build(sc.found)
		if err != nil {
			return nil, nil, err
		}
		s.mu.Lock()
		s.plan = p
		s.mu.Unlock()
		return p, nil, nil
	}
	pp.assumed = assumedFound(sample, numCols, s.delimiter())
	if p, err = build(pp.assumed); err != nil {
		// Refused for what the scan does not change (the columns DuckDB
		// read, the schema): as a proving prepare refuses it, after
		// what the scan found.
		if werr := wait(); werr != nil {
			return nil, nil, werr
		}
		if sc.err != nil {
			return nil, nil, sc.err
		}
		return nil, nil, err
	}
	pp.build = build
	return p, pp, nil
}

// sampleRows is how many rows after the header checkHeader keeps for
// guessNumeric.
const sampleRows = 1000

// checkHeader rejects what DuckDB would read leniently at the top of the
// file: an empty file, a header with blank or repeated names. It returns
// the header and up to sampleRows rows after it (fewer when a row does not
// parse: the sample is only a guess, DuckDB reads and checks the file).
func (s *Source) checkHeader() ([]string, [][]string, error) {
	f, err := os.Open(s.path)
	if err != nil {
		return nil, nil, kalla.WrapError(kalla.EUNAVAILABLE, err, "source %s: cannot open file", s.name())
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, nil, kalla.WrapError(kalla.EUNAVAILABLE, err, "source %s: cannot stat file", s.name())
	}
	if st.Size() == 0 {
		return nil, nil, kalla.Errorf(kalla.EINVALID, "source %s: the file is empty: a CSV source needs at least a header row", s.name())
	}
	r := csv.NewReader(bufio.NewReader(f))
	r.Comma = s.delimiter()
	header, err := r.Read()
	if err != nil {
		return nil, nil, kalla.Errorf(kalla.EINVALID, "source %s: cannot read the header row: %v", s.name(), err)
	}
	if len(header) > 0 {
		header[0] = strings.TrimPrefix(header[0], "\ufeff")
	}
	seen := map[string]int{}
	for i, h := range header {
		if strings.TrimSpace(h) == "" {
			return nil, nil, kalla.Errorf(kalla.EINVALID, "source %s: header column %d has no name", s.name(), i+1)
		}
		if j, dup := seen[strings.ToLower(h)]; dup {
			return nil, nil, kalla.Errorf(kalla.EINVALID, "source %s: header names column %q twice (columns %d and %d)", s.name(), h, j+1, i+1)
		}
		seen[strings.ToLower(h)] = i
	}
	// The rows after the header, read while the file is open anyway.
	var sample [][]string
	for len(sample) < sampleRows {
		rec, err := r.Read()
		if err != nil || len(rec) != len(header) {
			break
		}
		sample = append(sample, rec)
	}
	return header, sample, nil
}

// guessNumeric guesses, from the sample rows, the exact type of each
// numeric column (numeric[i]) that refineNumeric would choose from the
// whole column, with the pattern that holds for every value exactly when
// the guess is that choice: BIGINT when the sample has no fraction,
// DECIMAL(18, s) for the sample's largest scale s. Like measurePlain,
// the pattern accepts only plainly written numbers and counts a minus
// sign as a digit; it bounds the scale by s (so the column's largest
// scale is the sample's) and the digits by 18. It returns nil when some
// numeric column has no guess (a sample value not plainly written, more
// than 18 digits, no value in the sample): the load then takes the slow
// path for every column.
func guessNumeric(numeric []bool, sample [][]string) []numericGuess {
	guess := make([]numericGuess, len(numeric))
	any := false
	for i, num := range numeric {
		if !num {
			continue
		}
		any = true
		scale, seen := 0, false
		for _, rec := range sample {
			v := rec[i]
			if v == "" {
				continue // NULL
			}
			if !plainRe.MatchString(v) {
				return nil
			}
			seen = true
			intDigits, sc := len(v), 0
			if dot := strings.IndexByte(v, '.'); dot >= 0 {
				intDigits, sc = dot, len(v)-dot-1
			}
			if intDigits+sc > 18 {
				return nil
			}
			scale = max(scale, sc)
		}
		if !seen || scale > 15 {
			return nil
		}
		guess[i] = numericGuess{typ: "BIGINT", pattern: guessPattern(0)}
		if scale > 0 {
			guess[i] = numericGuess{typ: fmt.Sprintf("DECIMAL(18,%d)", scale), pattern: guessPattern(scale)}
		}
	}
	if !any {
		return nil
	}
	return guess
}

// guessPattern is the pattern a value of a column guessed BIGINT (scale 0)
// or DECIMAL(18, scale) must match in full: a plain number (see
// plainNumber) of at most 18 digits, a minus sign counted as one, and at
// most scale decimals.
//
// Each branch starts with its own character and no two ways through it
// read the same text, so RE2 matches it in one pass: 69 ns a value against
// 96 ns for the same language written as four alternatives, two of them
// starting with a minus and two with a zero (8M amounts on one thread),
// the cost the load pays for every value of such a column.
// TestGuessPatternLanguage checks it against that form.
func guessPattern(scale int) string {
	if scale == 0 {
		return `-[1-9][0-9]{0,16}|[1-9][0-9]{0,17}|0`
	}
	d := 18 - scale // integer digits, a minus sign counted as one
	return fmt.Sprintf(`-(?:[1-9][0-9]{0,%[2]d}(?:\.[0-9]{1,%[3]d})?|0\.[0-9]{1,%[3]d})|[1-9][0-9]{0,%[1]d}(?:\.[0-9]{1,%[3]d})?|0(?:\.[0-9]{1,%[3]d})?`, d-1, d-2, scale)
}

// plainRe is plainNumber for Go.
var plainRe = regexp.MustCompile(`^(?:` + plainNumber + `)$`)

// fileScan reads the whole file once, one read at a time (step), for what
// DuckDB would read silently: a NUL byte (never valid CSV text; DuckDB
// reads it as a space) and bytes that are not UTF-8 (the file is in
// another encoding), each named with its line. Its lineWalk reports
// whether a line ends with the delimiter and whether the first column is
// distinct, and measures the numbers of the columns numCols gives (the
// ones that look numeric in the first rows: see numWalk). Lines are
// counted only once something is found. It stops when ctx is done. It
// runs while DuckDB sniffs the file, or in the background (see
// background), changing threads between reads.
type fileScan struct {
	s       *Source
	f       *os.File
	buf     []byte
	off     int64 // file offset of buf[0]
	carry   int   // bytes kept at the start of buf from the last read
	checked int   // of those, how many are already known to be UTF-8
	// The lines are walked as they arrive (see lineWalk): a line that
	// ends with the delimiter, and whether the first column is distinct;
	// and its numWalk measures the columns that look numeric.
	lines *lineWalk
	// found and err are the result once step has returned true.
	found scanFound
	err   error
}

func (s *Source) newFileScan(numCols []int) *fileScan {
	lines := newLineWalk(s.delimiter())
	lines.nums = newNumWalk(s.delimiter(), numCols)
	return &fileScan{s: s, lines: lines}
}

// step reads the next part of the file; true when the scan is over, its
// result in found and err.
func (sc *fileScan) step(ctx context.Context) (done bool) {
	s := sc.s
	fail := func(err error) bool {
		sc.err = err
		if sc.f != nil {
			sc.f.Close()
		}
		return true
	}
	if sc.f == nil {
		f, err := os.Open(s.path)
		if err != nil {
			return fail(kalla.WrapError(kalla.EUNAVAILABLE, err, "source %s: cannot open file", s.name()))
		}
		sc.f, sc.buf = f, make([]byte, 1<<20)
	}
	if err := ctx.Err(); err != nil {
		return fail(err)
	}
	buf, carry, checked := sc.buf, sc.carry, sc.checked
	n, rerr := sc.f.Read(buf[carry:])
	b := buf[:carry+n]
	sc.lines.feed(b[carry:])
	if i := bytes.IndexByte(b, 0); i >= 0 {
		line, lerr := s.lineAt(sc.off + int64(i))
		if lerr != nil {
			return fail(lerr)
		}
		return fail(kalla.Errorf(kalla.EINVALID, "source %s: line %d contains a NUL byte: the file is binary or not UTF-8 text", s.name(), line))
	}
	// A rune cut by the end of the buffer is kept for the next read.
	valid := len(b)
	if rerr != io.EOF {
		for k := 1; k <= utf8.UTFMax-1 && k <= len(b); k++ {
			if utf8.RuneStart(b[len(b)-k]) {
				if !utf8.FullRune(b[len(b)-k:]) {
					valid = len(b) - k
				}
				break
			}
		}
	}
	if !utf8.Valid(b[checked:valid]) {
		i := checked
		for i < valid {
			r, size := utf8.DecodeRune(b[i:valid])
			if r == utf8.RuneError && size <= 1 {
				break
			}
			i += size
		}
		line, lerr := s.lineAt(sc.off + int64(i))
		if lerr != nil {
			return fail(lerr)
		}
		return fail(kalla.Errorf(kalla.EINVALID, "source %s: line %d is not UTF-8 text (byte 0x%02X): Kalla reads CSV as UTF-8; %s", s.name(), line, b[i], encodingHint))
	}
	found := &sc.found
	found.longFraction = found.longFraction || longFraction(b)
	if rerr == io.EOF {
		found.trailingDelim, found.firstDistinct, found.dataLines = sc.lines.end()
		found.numbers = sc.lines.nums.end(found.dataLines)
		sc.f.Close()
		return true
	}
	if rerr != nil {
		return fail(kalla.WrapError(kalla.EUNAVAILABLE, rerr, "source %s: read file", s.name()))
	}
	// Keep the cut rune, and the last bytes so that a time's ":ss."
	// and its seven decimals are seen together across two reads (the
	// line walk keeps its own). The bytes kept for that were checked
	// with this read (they may start inside a multi-byte rune: alone
	// they are not UTF-8); a cut rune was not.
	cut := len(b) - valid
	keep := min(max(cut, longFractionLen-1), len(b))
	copy(buf, b[len(b)-keep:])
	sc.off += int64(len(b) - keep)
	sc.carry = keep
	sc.checked = keep - cut
	return false
}

// scanFound is what fileScan found that the sniffer does not tell.
type scanFound struct {
	// trailingDelim: some line ends with the delimiter.
	trailingDelim bool
	// longFraction: some time of day is written with more than six
	// decimals of a second (SQL Server's datetime2 and .NET write seven).
	longFraction bool
	// firstDistinct: no two data lines have the same first field, as
	// DuckDB reads it (see lineWalk), provided DuckDB reads dataLines rows.
	firstDistinct bool
	dataLines     int64
	// numbers are the measured columns whose values are all plain
	// numbers, provided DuckDB reads dataLines rows (see numWalk).
	numbers []numStat
}

// longFractionLen is the length of the shortest text longFraction looks
// for: ":ss." and seven digits.
const longFractionLen = 11

// longFraction reports whether b holds a colon, two digits, a point and
// seven digits: a time with more than six decimals. It walks the colons,
// which a file without times has none of (gen's payments: no cost beyond
// one search), and checks the bytes after each. It is only a hint that a
// timestamp column may need its text (refineStamps decides per column).
func longFraction(b []byte) bool {
	digit := func(c byte) bool { return c >= '0' && c <= '9' }
	for i := bytes.IndexByte(b, ':'); i >= 0; {
		if i+longFractionLen <= len(b) && digit(b[i+1]) && digit(b[i+2]) && b[i+3] == '.' {
			n := 0
			for n < 7 && digit(b[i+4+n]) {
				n++
			}
			if n == 7 {
				return true
			}
		}
		j := bytes.IndexByte(b[i+1:], ':')
		if j < 0 {
			return false
		}
		i += j + 1
	}
	return false
}

// refineStamps types the timestamp columns read as text because the file
// writes a time with more than six decimals somewhere: a column with such
// a value, or one that is not a timestamp, stays text, every digit kept
// (DuckDB's TIMESTAMP holds microseconds and cut the rest silently; the
// Spark engine reads such a column as text too); the others get the type
// the sniffer chose, as if read as it.
func (s *Source) refineStamps(ctx context.Context, x execer, table string, p *csvPlan) error {
	if len(p.stamps) == 0 {
		return nil
	}
	sel := make([]string, len(p.stamps))
	for k, c := range p.stamps {
		col := dialect.DuckDB.QuoteIdent(p.header[c.index])
		sel[k] = fmt.Sprintf("count(*) FILTER (WHERE regexp_matches(%[1]s, ':[0-9][0-9]\\.[0-9]{7}') OR (TRY_CAST(%[1]s AS %[2]s) IS NULL AND %[1]s IS NOT NULL))", col, c.typ)
	}
	n := make([]int64, len(p.stamps))
	ptrs := make([]any, len(n))
	for k := range n {
		ptrs[k] = &n[k]
	}
	if err := x.QueryRowContext(ctx, "SELECT "+strings.Join(sel, ", ")+" FROM "+table).Scan(ptrs...); err != nil {
		return fmt.Errorf("measure timestamps: %w", err)
	}
	for k, c := range p.stamps {
		if n[k] > 0 {
			continue
		}
		col := dialect.DuckDB.QuoteIdent(p.header[c.index])
		if _, err := x.ExecContext(ctx, fmt.Sprintf("ALTER TABLE %s ALTER %s TYPE %s", table, col, c.typ)); err != nil {
			return fmt.Errorf("type timestamp column: %w", err)
		}
	}
	return nil
}

// lineAt is the 1-based line number of byte offset pos of the file.
func (s *Source) lineAt(pos int64) (int, error) {
	f, err := os.Open(s.path)
	if err != nil {
		return 0, kalla.WrapError(kalla.EUNAVAILABLE, err, "source %s: cannot open file", s.name())
	}
	defer f.Close()
	line := 1
	buf := make([]byte, 1<<20)
	for pos > 0 {
		n, err := f.Read(buf[:min(int64(len(buf)), pos)])
		line += bytes.Count(buf[:n], []byte{'\n'})
		pos -= int64(n)
		if err != nil {
			return 0, kalla.WrapError(kalla.EUNAVAILABLE, err, "source %s: read file", s.name())
		}
	}
	return line, nil
}

// locateError explains a CSV that DuckDB refused, finding the first bad line
// with Go's strict reader; DuckDB's sniffer errors do not say where. With a
// nil duckErr it returns nil when Go finds nothing wrong either.
func (s *Source) locateError(duckErr error) error {
	f, err := os.Open(s.path)
	if err == nil {
		defer f.Close()
		r := csv.NewReader(bufio.NewReaderSize(f, 1<<20))
		r.Comma = s.delimiter()
		r.ReuseRecord = true
		r.FieldsPerRecord = -1 // counted here, to say how many and why
		width := -1
		for {
			rec, err := r.Read()
			if err == io.EOF {
				break
			}
			if err != nil {
				var pe *csv.ParseError
				if errors.As(err, &pe) {
					return kalla.Errorf(kalla.EINVALID, "source %s: %s", s.name(), s.csvProblem(pe))
				}
				return kalla.Errorf(kalla.EINVALID, "source %s: %v", s.name(), err)
			}
			if width < 0 {
				width = len(rec)
				continue
			}
			if len(rec) != width {
				line, _ := r.FieldPos(0)
				return kalla.Errorf(kalla.EINVALID, "source %s: line %d: %s", s.name(), line, s.fieldCountProblem(rec, width))
			}
		}
	}
	if duckErr == nil {
		return nil
	}
	return kalla.WrapError(kalla.EINVALID, cleanDuckErr(duckErr), "source %s: cannot read CSV", s.name())
}

// fieldCountProblem says how a row's field count differs from the
// header's, and what likely caused it.
func (s *Source) fieldCountProblem(rec []string, width int) string {
	msg := fmt.Sprintf("the row has %d fields but the header has %d", len(rec), width)
	if len(rec) > width && rec[len(rec)-1] == "" {
		msg += fmt.Sprintf("; the line ends with the delimiter %q, which makes an extra empty field: remove it, or add a column to the header", string(s.delimiter()))
	}
	if hint := s.delimiterHint(); hint != "" {
		msg += "; " + hint
	}
	return msg
}

// csvProblem explains a parse error of Go's reader.
func (s *Source) csvProblem(pe *csv.ParseError) string {
	if errors.Is(pe.Err, csv.ErrQuote) {
		if line, char, ok := s.openQuote(pe.StartLine); ok {
			return fmt.Sprintf("line %d, character %d: the quoted field that opens here has no closing quote (or a quote inside it is not doubled)", line, char)
		}
		return fmt.Sprintf("line %d: extraneous or missing \" in a quoted field (column %d)", pe.StartLine, pe.Column)
	}
	if errors.Is(pe.Err, csv.ErrBareQuote) {
		return fmt.Sprintf("line %d: bare \" in an unquoted field (column %d): quote the field and double the quote", pe.StartLine, pe.Column)
	}
	return fmt.Sprintf("line %d: %v", pe.StartLine, pe.Err)
}

// openQuote finds where the quoted field that Go's reader could not close
// opens, reading the record that starts on line start: the last quote that
// opened a field before the record went wrong. char counts characters
// (runes) from 1.
func (s *Source) openQuote(start int) (line, char int, ok bool) {
	f, err := os.Open(s.path)
	if err != nil {
		return 0, 0, false
	}
	defer f.Close()
	r := bufio.NewReaderSize(f, 1<<20)
	line, char = 1, 0
	for line < start {
		if _, err := r.ReadBytes('\n'); err != nil {
			return 0, 0, false
		}
		line++
	}
	d := s.delimiter()
	fieldStart, inQuote := true, false
	var openLine, openChar int
	for {
		c, _, err := r.ReadRune()
		if err != nil { // the end of the file inside the quoted field
			return openLine, openChar, inQuote
		}
		char++
		switch {
		case inQuote && c == '"':
			next, _, err := r.ReadRune()
			switch {
			case err != nil || next == d || next == '\n' || next == '\r':
				inQuote = false // a closing quote
				if err == nil {
					r.UnreadRune()
				}
			case next == '"':
				char++ // a doubled quote inside the field
			default:
				return openLine, openChar, true // a quote that neither closes nor is doubled
			}
		case inQuote:
			if c == '\n' {
				line, char = line+1, 0
			}
		case c == '\n':
			return 0, 0, false // the record ended without the error
		case fieldStart && c == '"':
			inQuote, openLine, openChar = true, line, char
		}
		fieldStart = !inQuote && c == d
	}
}

// delimiterHint suggests another delimiter when the header line and the
// first data row split on it into the same number (at least two) of
// fields while they do not on the delimiter in use, as a file written with
// ";" (decimal commas) read as comma-separated does. "" when none does.
func (s *Source) delimiterHint() string {
	f, err := os.Open(s.path)
	if err != nil {
		return ""
	}
	defer f.Close()
	br := bufio.NewReader(io.LimitReader(f, 1<<20))
	var lines [2]string
	for i := range lines {
		l, err := br.ReadString('\n')
		lines[i] = strings.TrimRight(strings.TrimPrefix(l, "\ufeff"), "\r\n")
		if err != nil {
			break
		}
	}
	if lines[1] == "" {
		return ""
	}
	split := func(l string, d rune) int {
		r := csv.NewReader(strings.NewReader(l))
		r.Comma, r.LazyQuotes, r.FieldsPerRecord = d, true, -1
		rec, err := r.Read()
		if err != nil {
			return -1
		}
		return len(rec)
	}
	cur := s.delimiter()
	if h := split(lines[0], cur); h > 1 && h == split(lines[1], cur) {
		return "" // the delimiter in use fits
	}
	for _, d := range []rune{';', ',', '\t', '|'} {
		if d == cur {
			continue
		}
		if h := split(lines[0], d); h >= 2 && h == split(lines[1], d) {
			q := strconv.Quote(string(d)) // also a JSON string for these four
			return fmt.Sprintf(`the header and the first data row both split into %d fields on %s: if that is the file's delimiter, set "csv": {"delimiter": %s} in the source`, h, q, q)
		}
	}
	return ""
}

// loadCSV creates table from the file and returns its columns and the
// plan it loaded with. When x is a sink that takes proofs now
// (connector.Prover), the plan rests on the file's first rows, the scan
// that proves it runs in the background and the sink gets its proof; a
// load on such a plan that fails is made again on the proven plan, so
// that it fails as a proven load does, with the same message.
func (s *Source) loadCSV(ctx context.Context, x execer, table string) ([]kalla.Column, *csvPlan, error) {
	prover, _ := x.(connector.Prover)
	p, proof, err := s.prepareFor(ctx, x, prover != nil && prover.Proves())
	if err != nil {
		return nil, nil, err
	}
	cols, err := s.loadMeasured(ctx, x, table, p)
	if proof == nil {
		return cols, p, err
	}
	if err == nil {
		var n int64
		if err := x.QueryRowContext(ctx, "SELECT count(*) FROM "+table).Scan(&n); err != nil {
			proof.stop()
			return nil, nil, fmt.Errorf("count loaded rows: %w", err)
		}
		// The scan begins once the file is loaded, not beside the load:
		// at 1M that was as fast (1.615 s against 1.634 s a run, ten
		// alternations), and beside a load it can only compete with it
		// (a load that spills waits on the disk, and an idle-class
		// thread runs then).
		proof.begin()
		prover.Prove(func(ctx context.Context) error { return proof.prove(ctx, n) })
		return cols, p, nil
	}
	if ctx.Err() != nil {
		proof.stop()
		return nil, nil, ctx.Err()
	}
	exact, err := proof.exact(ctx)
	if err != nil {
		return nil, nil, err
	}
	if _, err := x.ExecContext(ctx, "DROP TABLE IF EXISTS "+table); err != nil {
		return nil, nil, fmt.Errorf("drop table of a load on the first rows: %w", err)
	}
	cols, err = s.loadMeasured(ctx, x, table, exact)
	return cols, exact, err
}

// loadMeasured creates table from the file as plan p says, with the
// number types its scan measured when they hold (see withNumbers).
func (s *Source) loadMeasured(ctx context.Context, x execer, table string, p *csvPlan) ([]kalla.Column, error) {
	cols, err := s.loadPlan(ctx, x, table, p)
	if p.unmeasured == nil || ctx.Err() != nil {
		return cols, err
	}
	if err == nil {
		if p.measuredRows < 0 {
			return cols, nil // measured on the first rows: its proof counts the rows
		}
		// The measured types hold for the lines numWalk walked; DuckDB
		// must have read them as its rows.
		var n int64
		if err := x.QueryRowContext(ctx, "SELECT count(*) FROM "+table).Scan(&n); err != nil {
			return nil, fmt.Errorf("count loaded rows: %w", err)
		}
		if n == p.measuredRows {
			return cols, nil
		}
	}
	// DuckDB read other rows than the walk's lines, or the load failed: a
	// measured column that does not read as its type can only mean other
	// rows, and any other error comes again from the unmeasured load,
	// which reports it as it always did.
	if _, err := x.ExecContext(ctx, "DROP TABLE IF EXISTS "+table); err != nil {
		return nil, fmt.Errorf("drop table of a measured load: %w", err)
	}
	return s.loadPlan(ctx, x, table, p.unmeasured)
}

// loadPlan creates table from the file as plan p says.
func (s *Source) loadPlan(ctx context.Context, x execer, table string, p *csvPlan) ([]kalla.Column, error) {
	typed := false // the numeric columns hold their exact types already
	if p.guess != nil {
		// The guessed types, proven value by value while the file loads:
		// one pass instead of loading text, measuring it and converting
		// it. On gen's 1M invoices at rest: 0.32 s against 0.32 + 0.085 +
		// 0.057 s (DuckDB's own DECIMAL parse in read_csv took 0.40 s).
		var repl []string
		for i, g := range p.guess {
			if g.typ == "" {
				continue
			}
			c := dialect.DuckDB.QuoteIdent(p.header[i])
			repl = append(repl, fmt.Sprintf("CASE WHEN %[1]s IS NULL OR regexp_full_match(%[1]s, %[2]s) THEN CAST(%[1]s AS %[3]s) ELSE error(%[4]s) END AS %[1]s",
				c, dialect.DuckDB.QuoteString(g.pattern), g.typ, dialect.DuckDB.QuoteString(guessMissed)))
		}
		err := s.execLoad(ctx, x, table, p, "CREATE TABLE "+table+" AS SELECT * REPLACE ("+strings.Join(repl, ", ")+")")
		switch {
		case err == nil:
			typed = true
		case ctx.Err() != nil:
			return nil, ctx.Err()
		case !strings.Contains(err.Error(), guessMissed):
			return nil, s.loadError(err)
		default:
			// A value the guess does not hold: measure the whole column.
			if _, err := x.ExecContext(ctx, "DROP TABLE IF EXISTS "+table); err != nil {
				return nil, fmt.Errorf("drop guessed table: %w", err)
			}
		}
	}
	if !typed {
		if err := s.execLoad(ctx, x, table, p, "CREATE TABLE "+table+" AS SELECT *"); err != nil {
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			return nil, s.loadError(err)
		}
		if err := s.refineNumeric(ctx, x, table, p); err != nil {
			return nil, err
		}
	}
	if err := s.refineStamps(ctx, x, table, p); err != nil {
		return nil, err
	}
	if err := s.convertDeclared(ctx, x, table, p.declared, nil); err != nil {
		return nil, err
	}
	return describe(ctx, x, table)
}

// execLoad runs a load, create followed by FROM read_csv of the file with
// the plan's column types. A value past the sniffer's sample (20,480 rows)
// that does not fit its column's sniffed type, a date, a timestamp or a
// boolean, makes that column text and the load runs again, one column at a
// time: the whole column decides its type, as it does for numbers here
// and for every column on the Spark engine, instead of the run failing on
// line 25,000 of a file whose column was never all dates. A column whose
// type the recipe's schema gives keeps failing: that is the user's word.
func (s *Source) execLoad(ctx context.Context, x execer, table string, p *csvPlan, create string) error {
	for {
		// The plan is shared by concurrent loads of the source: each
		// load reads it, and widens it, under the lock.
		s.mu.Lock()
		types, sniffed := slices.Clone(p.readTypes), slices.Clone(p.sniffed)
		s.mu.Unlock()
		var spec strings.Builder
		spec.WriteString("{")
		for i, h := range p.header {
			if i > 0 {
				spec.WriteString(", ")
			}
			spec.WriteString(dialect.DuckDB.QuoteString(h) + ": " + dialect.DuckDB.QuoteString(types[i]))
		}
		spec.WriteString("}")
		_, err := x.ExecContext(ctx, create+" FROM read_csv(?, "+s.csvOptions()+", columns = "+spec.String()+")", s.path)
		if err == nil || ctx.Err() != nil {
			return err
		}
		i := misfit(err, p.header, sniffed)
		if i < 0 {
			return err
		}
		s.mu.Lock()
		p.readTypes[i], p.sniffed[i] = "VARCHAR", false
		s.mu.Unlock()
		if _, err := x.ExecContext(ctx, "DROP TABLE IF EXISTS "+table); err != nil {
			return fmt.Errorf("drop table of a failed load: %w", err)
		}
	}
}

// misfitRe finds the column in DuckDB's error for a CSV value that does not
// convert to the column's type.
var misfitRe = regexp.MustCompile(`(?m)^Column (.+) is being converted as type `)

// misfit returns the column a load error is about when the load read it
// as a type the sniffer chose, or -1.
func misfit(err error, header []string, sniffed []bool) int {
	msg := err.Error()
	if !strings.Contains(msg, "Conversion Error") {
		return -1
	}
	m := misfitRe.FindStringSubmatch(msg)
	if m == nil {
		return -1
	}
	for i, h := range header {
		if h == m[1] && sniffed[i] {
			return i
		}
	}
	return -1
}

// guessMissed is the error a load on guessed numeric types raises for a
// value the guess does not hold.
const guessMissed = "kalla: numeric guess missed"

// loadError turns a DuckDB error while loading the file into the user's
// terms.
func (s *Source) loadError(err error) error {
	if strings.Contains(err.Error(), "Could not convert") || strings.Contains(err.Error(), "Conversion Error") {
		return kalla.WrapError(kalla.EINVALID, cleanDuckErr(err), "source %s: a value does not fit its column's type (override it with the recipe's schema)", s.name())
	}
	return s.locateError(err)
}

// refineNumeric converts the numeric columns (loaded as text) to the
// narrowest exact type that holds every value: BIGINT when no value has a
// fraction, DECIMAL(18|38, scale) otherwise, DOUBLE only for values written
// in exponent notation or too wide for DECIMAL(38).
func (s *Source) refineNumeric(ctx context.Context, x execer, table string, p *csvPlan) error {
	var idx []int
	for i, num := range p.numeric {
		if num {
			idx = append(idx, i)
		}
	}
	if s.opts.CSV != nil && s.opts.CSV.DecimalSeparator == "," && len(idx)+len(p.declared) > 0 {
		// Numbers written with a decimal comma: the comma becomes a point,
		// in the text, before the exact conversion below (and of the
		// declared columns after it).
		var set []string
		for _, i := range idx {
			c := dialect.DuckDB.QuoteIdent(p.header[i])
			set = append(set, c+" = replace("+c+", ',', '.')")
		}
		for _, d := range p.declared {
			c := dialect.DuckDB.QuoteIdent(d.name)
			set = append(set, c+" = replace("+c+", ',', '.')")
		}
		if _, err := x.ExecContext(ctx, "UPDATE "+table+" SET "+strings.Join(set, ", ")); err != nil {
			return fmt.Errorf("read decimal commas: %w", err)
		}
	}
	if len(idx) == 0 {
		return nil
	}
	// The measure runs over every value, so it uses the cheapest string
	// functions that are still exact. Blanks around a value can only make
	// the scale or digit count larger (a wider type, never a lost digit),
	// except for spotting leading zeros: if any value is padded, measure
	// again on trimmed values.
	var notNumbers []int64
	measure := func(trimmed bool) ([]int64, []int64, []bool, []bool, []bool, error) {
		var sel []string
		for _, i := range idx {
			c := dialect.DuckDB.QuoteIdent(p.header[i])
			if trimmed {
				c = "trim(" + c + ")"
			}
			sel = append(sel,
				fmt.Sprintf("coalesce(max(CASE WHEN strpos(%[1]s, '.') > 0 THEN strlen(%[1]s) - strpos(%[1]s, '.') ELSE 0 END), 0)", c),
				fmt.Sprintf("coalesce(max(CASE WHEN strpos(%[1]s, '.') > 0 THEN strpos(%[1]s, '.') - 1 ELSE strlen(%[1]s) END), 0)", c),
				fmt.Sprintf("coalesce(bool_or(contains(%[1]s, 'e') OR contains(%[1]s, 'E')), false)", c),
				fmt.Sprintf(`coalesce(bool_or(strlen(%[1]s) > 1 AND (starts_with(%[1]s, '0') OR starts_with(%[1]s, '-0') OR starts_with(%[1]s, '+0'))
					AND NOT (starts_with(%[1]s, '0.') OR starts_with(%[1]s, '-0.') OR starts_with(%[1]s, '+0.'))), false)`, c),
				fmt.Sprintf("coalesce(bool_or(starts_with(%[1]s, ' ') OR ends_with(%[1]s, ' ') OR contains(%[1]s, chr(9))), false)", c),
				fmt.Sprintf("count(*) FILTER (WHERE NOT regexp_full_match(%s, '%s'))", c, kalla.NumberPattern))
		}
		n := len(idx)
		scale, intDigits := make([]int64, n), make([]int64, n)
		expo, zeros, padded := make([]bool, n), make([]bool, n), make([]bool, n)
		notNumbers = make([]int64, n)
		vals := make([]any, 0, 6*n)
		for k := range idx {
			vals = append(vals, &scale[k], &intDigits[k], &expo[k], &zeros[k], &padded[k], &notNumbers[k])
		}
		if err := x.QueryRowContext(ctx, "SELECT "+strings.Join(sel, ", ")+" FROM "+table).Scan(vals...); err != nil {
			return nil, nil, nil, nil, nil, fmt.Errorf("measure numeric columns: %w", err)
		}
		return scale, intDigits, expo, zeros, padded, nil
	}
	scale, intDigits, canonical, err := measurePlain(ctx, x, table, p, idx)
	if err != nil {
		return err
	}
	n := len(idx)
	expo, zeros, padded := make([]bool, n), make([]bool, n), make([]bool, n)
	if !canonical {
		if scale, intDigits, expo, zeros, padded, err = measure(false); err != nil {
			return err
		}
	}
	if slices.Contains(padded, true) {
		if scale, intDigits, expo, zeros, _, err = measure(true); err != nil {
			return err
		}
	}
	for k, i := range idx {
		if zeros[k] {
			// Leading zeros ("00123") mark a code, not a number: keep the text.
			continue
		}
		if notNumbers != nil && notNumbers[k] > 0 {
			// A value that is not a number (NaN, "+5", "n/a") where the
			// sniffer's sample had none: the column is text, as it is
			// when the sniffer sees such a value, and as Spark types it.
			continue
		}
		typ := exactType(scale[k], intDigits[k], expo[k])
		// CAST accepts blanks around a number itself.
		q := fmt.Sprintf("ALTER TABLE %s ALTER %s TYPE %s", table, dialect.DuckDB.QuoteIdent(p.header[i]), typ)
		if _, err := x.ExecContext(ctx, q); err != nil {
			return kalla.WrapError(kalla.EINVALID, cleanDuckErr(err), "source %s: column %q looked numeric but a value is not a number (override its type with the recipe's schema)", s.name(), p.header[i])
		}
	}
	return nil
}

// exactType is the type of a numeric column whose values have at most
// scale decimals and intDigits integer digits (a minus sign counted as
// one), expo when some value has an exponent: the narrowest exact type,
// BIGINT or DECIMAL(18, s) when they fit, DOUBLE beyond DECIMAL's 38
// digits.
func exactType(scale, intDigits int64, expo bool) string {
	switch digits := intDigits + scale; {
	case expo || digits > 38:
		return "DOUBLE"
	case scale == 0 && intDigits <= 18:
		return "BIGINT"
	case digits <= 18:
		return fmt.Sprintf("DECIMAL(18,%d)", scale)
	default:
		return fmt.Sprintf("DECIMAL(38,%d)", scale)
	}
}

// plainNumber matches a number written the plain way: an optional minus,
// no leading zero (but "0" and "0.5"), digits, an optional fraction. "-0" is
// left out because the full measure reads it as a code with a leading zero.
// It is written so that RE2 reads it in one pass (see guessPattern).
const plainNumber = `-(?:[1-9][0-9]*(?:\.[0-9]+)?|0\.[0-9]+)|[1-9][0-9]*(?:\.[0-9]+)?|0(?:\.[0-9]+)?`

// measurePlain is the fast path of refineNumeric: when every value of the
// numeric columns is a plain number (no blanks, exponent, sign or leading
// zero), their scale and integer digits are all the full measure would
// find, at about half its cost. canonical is false when some value is not
// plain, and then the full measure must run.
func measurePlain(ctx context.Context, x execer, table string, p *csvPlan, idx []int) (scale, intDigits []int64, canonical bool, err error) {
	var sel []string
	for _, i := range idx {
		c := dialect.DuckDB.QuoteIdent(p.header[i])
		sel = append(sel,
			fmt.Sprintf("count(*) FILTER (WHERE NOT regexp_full_match(%s, '%s'))", c, plainNumber),
			fmt.Sprintf("coalesce(max(strlen(%[1]s) - strpos(%[1]s, '.')) FILTER (WHERE strpos(%[1]s, '.') > 0), 0)", c),
			fmt.Sprintf("coalesce(max(CASE WHEN strpos(%[1]s, '.') > 0 THEN strpos(%[1]s, '.') - 1 ELSE strlen(%[1]s) END), 0)", c))
	}
	n := len(idx)
	odd := make([]int64, n)
	scale, intDigits = make([]int64, n), make([]int64, n)
	vals := make([]any, 0, 3*n)
	for k := range idx {
		vals = append(vals, &odd[k], &scale[k], &intDigits[k])
	}
	if err := x.QueryRowContext(ctx, "SELECT "+strings.Join(sel, ", ")+" FROM "+table).Scan(vals...); err != nil {
		return nil, nil, false, fmt.Errorf("measure numeric columns: %w", err)
	}
	for _, o := range odd {
		if o > 0 {
			return nil, nil, false, nil
		}
	}
	return scale, intDigits, true, nil
}

// parseDescribe reads the JSON list made by describe.
func parseDescribe(raw string) ([]kalla.Column, error) {
	var rows []struct {
		Name string `json:"name"`
		Type string `json:"type"`
		Null string `json:"null"`
	}
	if err := json.Unmarshal([]byte(raw), &rows); err != nil {
		return nil, fmt.Errorf("read column list: %w", err)
	}
	cols := make([]kalla.Column, len(rows))
	for i, r := range rows {
		cols[i] = kalla.Column{Name: r.Name, DataType: r.Type, EngineType: r.Type, Nullable: r.Null != "NO"}
	}
	return cols, nil
}
