package file

import (
	"database/sql"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"

	_ "github.com/duckdb/duckdb-go/v2"
)

// numberTexts are values for the number tests: plain numbers and the
// near misses DuckDB would still read as numbers.
var numberTexts = []string{
	"0", "7", "-7", "12.5", "-0.25", "0.5", "1234567890.123", "9999999999999999.25", "100",
	"-0", "-0.0", "007", "00.5", "+5", " 5", "5 ", "5.", ".5", "-.5", "1e3", "1E3", "1.5e-1",
	"1_000", "1,5", "--5", "-", "12.345", "0x10", "NaN", "inf", "5\t",
}

// TestPlainDigits checks the hand-written reader against plainNumber, the
// pattern refineNumeric's measure uses in DuckDB, and its digit counts
// against the text's.
func TestPlainDigits(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	texts := append([]string(nil), numberTexts...)
	const alphabet = "0123456789-.+e 0"
	for range 20000 {
		b := make([]byte, 1+rng.IntN(6))
		for i := range b {
			b[i] = alphabet[rng.IntN(len(alphabet))]
		}
		texts = append(texts, string(b))
	}
	for _, v := range texts {
		intDigits, scale, ok := plainDigits([]byte(v))
		if want := plainRe.MatchString(v); ok != want {
			t.Fatalf("plainDigits(%q) ok = %v, plainNumber says %v", v, ok, want)
		}
		if !ok {
			continue
		}
		wantInt, wantScale := len(v), 0
		if dot := strings.IndexByte(v, '.'); dot >= 0 {
			wantInt, wantScale = dot, len(v)-dot-1
		}
		if intDigits != wantInt || scale != wantScale {
			t.Fatalf("plainDigits(%q) = %d, %d; want %d, %d", v, intDigits, scale, wantInt, wantScale)
		}
		// The row reader takes the same values, up to a delimiter.
		for _, rest := range []string{v, v + ",x", v + ","} {
			w := newNumWalk(',', []int{1})
			if n := w.number(0, []byte(rest)); n != len(v) {
				t.Fatalf("number(%q) read %d bytes, want %d", rest, n, len(v))
			}
			if st := w.stats[0]; !st.plain || !st.seen || st.intDigits != wantInt || st.scale != wantScale {
				t.Fatalf("number(%q): %+v", rest, st)
			}
		}
	}
	for _, v := range texts {
		if _, _, ok := plainDigits([]byte(v)); ok || v == "" || strings.Contains(v, ",") {
			continue
		}
		w := newNumWalk(',', []int{1})
		if n := w.number(0, []byte(v+",x")); n != len(v) || w.stats[0].plain {
			t.Fatalf("number(%q) read %d bytes, plain %v: want %d, not plain", v, n, w.stats[0].plain, len(v))
		}
	}
}

// TestNumberDelimiterInNumber: a delimiter that a plain number can hold (a
// point, a minus sign, a digit) ends the value where it stands, as DuckDB
// splits the row, not where the number's digits end.
func TestNumberDelimiterInNumber(t *testing.T) {
	for _, c := range []struct {
		delim      rune
		rest       string
		n          int
		plain      bool
		int, scale int
	}{
		{'.', "5.25", 1, true, 1, 0},
		{'.', "-5.x", 2, true, 2, 0},
		{'-', "12-3", 2, true, 2, 0},
		{'7', "1.5712", 3, true, 1, 1},
		{'.', "007.1", 3, false, 0, 0},
		{';', "5.25;x", 4, true, 1, 2},
	} {
		w := newNumWalk(c.delim, []int{1})
		n := w.number(0, []byte(c.rest))
		st := w.stats[0]
		if n != c.n || st.plain != c.plain || (c.plain && (st.intDigits != c.int || st.scale != c.scale)) {
			t.Errorf("delimiter %q, number(%q) = %d, %+v; want %d, plain %v, %d digits, scale %d", c.delim, c.rest, n, st, c.n, c.plain, c.int, c.scale)
		}
	}
}

// walkNumbers walks text cut into the given pieces, measuring cols, as
// fileScan does. The line walk's own answers must be those of a walk that
// measures nothing (its row count too, when it proves the keys distinct:
// a walk that measures nothing stops counting where the proof ends).
func walkNumbers(t *testing.T, text string, cols []int, cuts []int) ([]numStat, int64) {
	t.Helper()
	w := newLineWalk(',')
	w.nums = newNumWalk(',', cols)
	prev := 0
	for _, c := range append(cuts, len(text)) {
		buf := []byte(text[prev:c])
		w.feed(buf)
		for i := range buf {
			buf[i] = 'X' // the next read overwrites the buffer
		}
		prev = c
	}
	trailing, distinct, rows := w.end()
	if wt, wd, wr := walkAll(text, ",", cuts); wt != trailing || wd != distinct || (distinct && wr != rows) {
		t.Fatalf("measuring changed the line walk: trailing %v, distinct %v, %d rows; without: %v, %v, %d:\n%s", trailing, distinct, rows, wt, wd, wr, text)
	}
	return w.nums.end(rows), rows
}

// randomNumbersCSV is a file of columns id (sorted, or shuffled one file in
// three), amount, name and qty, with plain numbers and, by
// mode: nothing else (0), one near miss of numberTexts in amount, the n-th
// (1) or quoted (2), or now and then a quoted value, an empty quoted one,
// a quoted newline, a row short of fields or a blank line (3).
func randomNumbersCSV(rng *rand.Rand, n int) string {
	nl := "\n"
	if rng.IntN(3) == 0 {
		nl = "\r\n"
	}
	mode := n % 4
	oddly := func() bool { return mode == 3 && rng.IntN(12) == 0 }
	var b strings.Builder
	b.WriteString("id,amount,name,qty" + nl)
	rows := 1 + rng.IntN(30)
	miss := rng.IntN(rows)
	ids := make([]int, rows)
	for i := range ids {
		ids[i] = i
	}
	if n%3 == 0 {
		// Keys out of order: no proof of distinct keys, but the rows
		// are followed all the same.
		rng.Shuffle(rows, func(i, j int) { ids[i], ids[j] = ids[j], ids[i] })
	}
	for i := range rows {
		fmt.Fprintf(&b, "K%03d,", ids[i])
		switch {
		case mode == 1 && i == miss, mode == 2 && i == miss:
			v := numberTexts[(n/4)%len(numberTexts)]
			if mode == 2 || strings.ContainsAny(v, ",") {
				v = `"` + v + `"`
			}
			b.WriteString(v)
		case oddly():
			fmt.Fprintf(&b, `"%d.5"`, rng.IntN(100))
		case oddly():
			b.WriteString(`""`)
		case rng.IntN(8) == 0: // NULL
		default:
			fmt.Fprintf(&b, "%d.%0*d", rng.IntN(100000)-50000, 1+rng.IntN(3), rng.IntN(100))
		}
		switch {
		case oddly():
			b.WriteString(nl) // a row short of fields
			continue
		case oddly():
			b.WriteString(`,"a, b"`)
		case oddly():
			b.WriteString(`,"line` + nl + `break"`)
		case oddly():
			b.WriteString(`,"say ""hi"""`)
		default:
			b.WriteString(",plain")
		}
		fmt.Fprintf(&b, ",%d", rng.IntN(1000))
		if i < rows-1 || rng.IntN(4) > 0 {
			b.WriteString(nl)
		}
		if oddly() {
			b.WriteString(nl) // a blank line
		}
	}
	return b.String()
}

// TestNumbersMeasuredHoldInDuckDB walks random files, cut anywhere, and
// checks every column the walk calls all plain against DuckDB's own read
// of the file as text, with Kalla's reading options: as many rows as the
// walk counted, no value that is not a plain number, the same largest
// scale and integer digits, and some value. It also checks that plain
// files are proven, so that the test cannot pass by proving nothing.
func TestNumbersMeasuredHoldInDuckDB(t *testing.T) {
	db, err := sql.Open("duckdb", "")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	dir := t.TempDir()
	rng := rand.New(rand.NewPCG(7, 8))
	proven, checked, plainFiles := 0, 0, 0
	for n := range 800 {
		text := randomNumbersCSV(rng, n)
		var cuts []int
		for c := 0; c < len(text); c += 1 + rng.IntN(12) {
			cuts = append(cuts, c)
		}
		cols := []int{1, 3}
		got, rows := walkNumbers(t, text, cols, cuts)
		if whole, wholeRows := walkNumbers(t, text, cols, nil); fmt.Sprint(whole, wholeRows) != fmt.Sprint(got, rows) {
			t.Fatalf("file %d: cut into pieces the walk found %v (%d rows), whole %v (%d rows):\n%s", n, got, rows, whole, wholeRows, text)
		}
		if !strings.ContainsAny(text, `"`) && !strings.Contains(text, "\n\n") && !strings.Contains(text, "\n\r\n") {
			plainFiles++
		}
		if len(got) == 0 {
			continue
		}
		proven++
		path := filepath.Join(dir, fmt.Sprintf("f%d.csv", n))
		if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
		s := &Source{path: path}
		q := fmt.Sprintf(`SELECT count(*),
			count(*) FILTER (WHERE NOT regexp_full_match(amount, '%[1]s')), coalesce(max(CASE WHEN strpos(amount, '.') > 0 THEN strlen(amount) - strpos(amount, '.') ELSE 0 END), 0), coalesce(max(CASE WHEN strpos(amount, '.') > 0 THEN strpos(amount, '.') - 1 ELSE strlen(amount) END), 0), count(amount),
			count(*) FILTER (WHERE NOT regexp_full_match(qty, '%[1]s')), coalesce(max(CASE WHEN strpos(qty, '.') > 0 THEN strlen(qty) - strpos(qty, '.') ELSE 0 END), 0), coalesce(max(CASE WHEN strpos(qty, '.') > 0 THEN strpos(qty, '.') - 1 ELSE strlen(qty) END), 0), count(qty)
			FROM read_csv(?, %[2]s, columns = {'id': 'VARCHAR', 'amount': 'VARCHAR', 'name': 'VARCHAR', 'qty': 'VARCHAR'})`, plainNumber, s.csvOptions())
		var total int64
		var m [2][4]int64
		err := db.QueryRow(q, path).Scan(&total, &m[0][0], &m[0][1], &m[0][2], &m[0][3], &m[1][0], &m[1][1], &m[1][2], &m[1][3])
		if err != nil {
			// DuckDB refuses the file (a short row): then nothing is
			// loaded with the walk's types either.
			continue
		}
		if total != rows {
			continue // the load checks the rows and falls back
		}
		checked++
		for _, st := range got {
			k := map[int]int{1: 0, 3: 1}[st.index]
			if m[k][0] != 0 || m[k][1] != int64(st.scale) || m[k][2] != int64(st.intDigits) || m[k][3] == 0 {
				t.Fatalf("file %d: column %d measured %+v, DuckDB reads %d values not plain, scale %d, integer digits %d, %d values:\n%s",
					n, st.index, st, m[k][0], m[k][1], m[k][2], m[k][3], text)
			}
		}
	}
	if proven < plainFiles/2 || checked < proven*3/4 {
		t.Fatalf("proved %d files of 800 (%d without quotes or blank lines), %d of them checked against DuckDB", proven, plainFiles, checked)
	}
	t.Logf("proved %d of 800 files (%d without quotes or blank lines), checked %d against DuckDB", proven, plainFiles, checked)
}

// TestMeasuredLoad loads a file whose amounts the scan measured: the column
// is read as its type directly (the plan keeps the unmeasured one to fall
// back on), and when DuckDB reads another number of rows than the walk
// counted, the file is loaded again without the measured types, the same
// table as a load that measured nothing. The measured plan is made wrong
// there (a scale of 1), so that a load that kept it would show.
func TestMeasuredLoad(t *testing.T) {
	var b strings.Builder
	b.WriteString("id,amount,name\n")
	for i := range 3000 {
		fmt.Fprintf(&b, "K%05d,%d.%02d,n%d\n", i, i*7-5000, i%100, i)
	}
	b.WriteString("K99999,7.5,last\n")
	path := filepath.Join(t.TempDir(), "m.csv")
	if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	db, err := sql.Open("duckdb", "")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	conn, err := db.Conn(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	load := func(table string, spoil bool) *csvPlan {
		t.Helper()
		s, err := Open(t.Context(), path, Options{})
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		p, err := s.prepare(t.Context(), conn)
		if err != nil {
			t.Fatal(err)
		}
		if spoil {
			s.mu.Lock()
			p.measuredRows++
			p.readTypes[1] = "DECIMAL(18,1)"
			s.mu.Unlock()
		}
		if _, err := s.load(t.Context(), conn, table, nil); err != nil {
			t.Fatal(err)
		}
		return p
	}
	typeOf := func(table string) string {
		t.Helper()
		var typ string
		if err := conn.QueryRowContext(t.Context(), "SELECT data_type FROM information_schema.columns WHERE table_name = ? AND column_name = 'amount'", table).Scan(&typ); err != nil {
			t.Fatal(err)
		}
		return typ
	}
	p := load("measured", false)
	if p.unmeasured == nil || p.readTypes[1] != "DECIMAL(18,2)" {
		t.Fatalf("amount not measured: unmeasured plan %v, read as %s", p.unmeasured != nil, p.readTypes[1])
	}
	load("fallback", true)
	for _, table := range []string{"measured", "fallback"} {
		if got := typeOf(table); got != "DECIMAL(18,2)" {
			t.Errorf("%s: amount is %s, want DECIMAL(18,2)", table, got)
		}
	}
	var differ int64
	if err := conn.QueryRowContext(t.Context(), `SELECT count(*) FROM (SELECT * FROM measured EXCEPT ALL SELECT * FROM fallback UNION ALL (SELECT * FROM fallback EXCEPT ALL SELECT * FROM measured))`).Scan(&differ); err != nil {
		t.Fatal(err)
	}
	if differ != 0 {
		t.Errorf("the fallback load differs from the measured one in %d rows", differ)
	}
	var sum string
	if err := conn.QueryRowContext(t.Context(), "SELECT CAST(sum(amount) AS VARCHAR) FROM fallback").Scan(&sum); err != nil {
		t.Fatal(err)
	}
	var want int64 // in cents
	for i := range 3000 {
		c := int64(i*7-5000) * 100
		if c < 0 {
			c -= int64(i % 100)
		} else {
			c += int64(i % 100)
		}
		want += c
	}
	want += 750
	if wantText := fmt.Sprintf("%d.%02d", want/100, want%100); sum != wantText {
		t.Errorf("sum of amounts %s, want %s", sum, wantText)
	}
}
