package file

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"

	_ "github.com/duckdb/duckdb-go/v2"

	"github.com/kalla-recon/kalla/internal/connector"
	"github.com/kalla-recon/kalla/internal/kalla"
)

// walk feeds text to a lineWalk in the given pieces.
func walk(text string, cuts []int) (bool, int64) {
	_, distinct, rows := walkAll(text, ",", cuts)
	return distinct, rows
}

// walkAll feeds text to a lineWalk over delim in the given pieces.
func walkAll(text, delim string, cuts []int) (trailing, distinct bool, rows int64) {
	w := newLineWalk([]rune(delim)[0])
	prev := 0
	for _, c := range append(cuts, len(text)) {
		// Each piece in a buffer of its own, overwritten after the
		// feed as fileScan's next read overwrites its buffer.
		buf := []byte(text[prev:c])
		w.feed(buf)
		for i := range buf {
			buf[i] = 'X'
		}
		prev = c
	}
	return w.end()
}

func TestLineWalkKeys(t *testing.T) {
	cases := []struct {
		name, text string
		distinct   bool
		rows       int64
	}{
		{"rising", "id,x\nA,1\nB,2\nC,3\n", true, 3},
		{"falling", "id,x\nC,1\nB,2\nA,3\n", true, 3},
		{"repeat", "id,x\nA,1\nB,2\nB,3\n", false, 3},
		{"distinct but unordered is not proven", "id,x\nA,1\nC,2\nB,3\n", false, 3},
		{"prefix rises", "id,x\nA,1\nAA,2\nAB,3\n", true, 3},
		{"empty keys are NULL, skipped", "id,x\nA,1\n,2\nB,3\n,4\n", true, 4},
		{"only empty keys", "id,x\n,1\n,2\n", true, 2},
		{"quoted fields after the key, newline and doubled quote inside", "id,x,y\nA,\"one\ntwo\",1\nB,\"say \"\"hi\"\"\",2\nC,\"\",3\n", true, 3},
		{"a quoted field with a comma and a newline at its end", "id,x\nA,\"a,\n\"\nB,1\n", true, 2},
		{"quoted header", "\"id\",\"x\"\nA,1\nB,2\n", true, 2},
		{"header with a quoted newline", "id,\"x\ny\"\nA,1\nB,2\n", true, 2},
		{"quoted key", "id,x\n\"A\",1\nB,2\n", true, 2},
		{"quoted keys, sorted", "id,x\n\"A\",1\n\"B\",2\n\"C\",3\n", true, 3},
		{"quoted keys, repeated", "id,x\n\"A\",1\n\"A\",2\n", false, 2},
		{"a quoted and an unquoted key of the same value", "id,x\n\"A\",1\nA,2\n", false, 2},
		{"a quoted key is compared by its value", "id,x\n\"B\",1\nA,2\n", true, 2},
		{"doubled quotes in keys", "id,x\n\"A\"\"1\",1\n\"A\"\"2\",2\n", true, 2},
		{"doubled quotes making keys equal", "id,x\n\"A\"\"\",1\n\"A\"\"\",2\n", false, 2},
		{"a delimiter inside quoted keys", "id,x\n\"A,1\",1\n\"A,2\",2\n", true, 2},
		{"a quoted key, then quoted fields", "id,x\n\"A\",\"x,\ny\"\n\"B\",\"\"\n", true, 2},
		{"one quoted column, CRLF", "id\r\n\"A\"\r\n\"B\"\r\n", true, 2},
		{"one quoted column, no newline at the end", "id\n\"A\"\n\"B\"", true, 2},
		{"one quoted column, last repeats without newline", "id\n\"A\"\n\"A\"", false, 2},
		{"an empty quoted key ends the proof", "id,x\n\"\",1\nB,2\n", false, 2},
		{"a newline inside a quoted key ends the proof", "id,x\n\"A\nB\",1\nC,2\n", false, 2},
		{"text after a quoted key's closing quote", "id,x\n\"A\"b,1\nB,2\n", false, 2},
		{"an unterminated quoted key", "id,x\nA,1\n\"B,2\n", false, 2},
		{"an unterminated one-column quoted key", "id\nA\n\"B", false, 2},
		{"a quote inside an unquoted field", "id,x\nA,x\"y\nB,z\n", false, 2},
		{"a stray quote, then a quoted newline: the lines are not DuckDB's rows", "id,x,y\nA,x\"y,\"multi\nC,z\",1\nA,w,2\n", false, 2},
		{"text after a closing quote", "id,x\nA,\"a\"b\nB,1\n", false, 2},
		{"doubled quotes at a field's edges", "id,x\nA,\"\"\"q\"\"\"\nB,2\n", true, 2},
		{"a closing quote before CRLF", "id,x\r\nA,\"q\"\r\nB,2\r\n", true, 2},
		{"quote inside a key", "id,x\nA\"b,1\nB,2\n", false, 2},
		{"one column, CRLF", "id\r\nA\r\nB\r\n", true, 2},
		{"one column, CR kept out of the key", "id\r\nA\r\nA\r\n", false, 2},
		{"CRLF", "id,x\r\nA,1\r\nB,2\r\n", true, 2},
		{"no newline at the end", "id,x\nA,1\nB,2", true, 2},
		{"one column, no newline at the end", "id\nA\nB", true, 2},
		{"one column, last repeats without newline", "id\nA\nA", false, 2},
		{"header only", "id,x\n", true, 0},
		{"header only, no newline", "id,x", true, 0},
		{"empty file", "", true, 0},
		{"blank line", "id,x\nA,1\n\nB,2\n", false, 3},
		{"blank line, CRLF", "id,x\r\nA,1\r\n\r\nB,2\r\n", false, 3},
		{"blank line at the end", "id,x\nA,1\nB,2\n\n", false, 3},
		{"an empty first field is NULL, not a blank line", "id,x\nA,1\n,\nB,2\n", true, 3},
		{"unbalanced quote", "id,x\nA,\"open\nB,2\n", false, 1},
		{"bytes compare, not letters", "id,x\nZ,1\na,2\n", true, 2},
		{"numbers without leading zeros rise by length first", "id,x\nK8,1\nK9,2\nK10,3\nK11,4\n", true, 4},
		{"and fall by length first", "id,x\nK11,1\nK10,2\nK9,3\n", true, 3},
		{"by length first, a repeat", "id,x\nK9,1\nK10,2\nK10,3\n", false, 3},
		{"by length first, then back", "id,x\nK9,1\nK10,2\nK8,3\n", false, 3},
		{"rising by length first where the bytes fall", "id,x\nA,1\nB,2\nAA,3\n", true, 3},
		{"one order for the whole file: falling, then rising", "id,x\nB,1\nA,2\nAA,3\n", false, 3},
		{"quoted keys by length first", "id,x\n\"9\",1\n\"10\",2\n", true, 2},
		{"unicode keys", "id,x\nÄ,1\nÖ,2\nÜ,3\n", true, 3},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			distinct, rows := walk(c.text, nil)
			if distinct != c.distinct || (c.distinct && rows != c.rows) {
				t.Fatalf("whole: distinct %v, rows %d; want %v, %d", distinct, rows, c.distinct, c.rows)
			}
			// Cut anywhere, and into single bytes: the same answer.
			for i := 0; i <= len(c.text); i++ {
				if d, r := walk(c.text, []int{i}); d != distinct || (d && r != rows) {
					t.Fatalf("cut at %d: distinct %v, rows %d; whole: %v, %d", i, d, r, distinct, rows)
				}
			}
			var each []int
			for i := 1; i < len(c.text); i++ {
				each = append(each, i)
			}
			if d, r := walk(c.text, each); d != distinct || (d && r != rows) {
				t.Fatalf("byte by byte: distinct %v, rows %d; whole: %v, %d", d, r, distinct, rows)
			}
		})
	}
}

// randomCSV writes rows of three fields whose first field is a key from
// keys (or empty), with fields after it quoted at random, holding commas,
// doubled quotes and newlines. It returns the text, the number of rows
// and the keys in order (empty for NULL).
func randomCSV(rng *rand.Rand, keys []string, crlf bool) string {
	nl := "\n"
	if crlf {
		nl = "\r\n"
	}
	var b strings.Builder
	b.WriteString("id,name,amount" + nl)
	for _, k := range keys {
		// A key with a quote or a comma is quoted, its quotes doubled;
		// others are quoted at random (an empty one never: "" ends the
		// proof).
		if strings.ContainsAny(k, `",`) || (k != "" && rng.IntN(3) == 0) {
			k = `"` + strings.ReplaceAll(k, `"`, `""`) + `"`
		}
		b.WriteString(k + ",")
		switch rng.IntN(4) {
		case 0:
			b.WriteString("plain")
		case 1:
			b.WriteString(`"a, b"`)
		case 2:
			b.WriteString(`"say ""hi""` + nl + `next line"`)
		default:
			b.WriteString(`""`)
		}
		b.WriteString("," + fmt.Sprint(rng.IntN(100)) + nl)
	}
	return b.String()
}

// TestLineWalkKeysRandom compares the walk with what it must find on files of
// known rows: distinct exactly when the non-empty keys rise or fall
// strictly, and one row per record, however the file is cut into reads.
func TestLineWalkKeysRandom(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for n := range 2000 {
		count := rng.IntN(12)
		keys := make([]string, count)
		for i := range keys {
			if rng.IntN(8) > 0 {
				keys[i] = fmt.Sprintf("K%s%02d", []string{"", `"`, ","}[rng.IntN(3)], rng.IntN(20))
			}
		}
		switch rng.IntN(3) {
		case 0:
			// Mostly sorted ones, where the proof holds.
			for i := range keys {
				if keys[i] != "" {
					keys[i] = fmt.Sprintf("K%s%03d", []string{"", `"`, ","}[rng.IntN(3)], i*(1+rng.IntN(2)))
				}
			}
		case 1:
			// Numbers without leading zeros, which rise by length
			// first, not byte by byte, across 9 to 10 and 99 to 100.
			for i := range keys {
				if keys[i] != "" {
					keys[i] = fmt.Sprintf("K%s%d", []string{"", `"`, ","}[rng.IntN(3)], 6+i*(1+rng.IntN(15)))
				}
			}
		}
		text := randomCSV(rng, keys, rng.IntN(2) == 0)
		var seen []string
		for _, k := range keys {
			if k != "" {
				seen = append(seen, k)
			}
		}
		// The orders, by their definitions: byte by byte, and by
		// length first.
		shortlex := func(a, b string) bool { return len(a) < len(b) || (len(a) == len(b) && a < b) }
		up, down, lenUp, lenDown := true, true, true, true
		for i := 1; i < len(seen); i++ {
			up = up && seen[i] > seen[i-1]
			down = down && seen[i] < seen[i-1]
			lenUp = lenUp && shortlex(seen[i-1], seen[i])
			lenDown = lenDown && shortlex(seen[i], seen[i-1])
		}
		want := up || down || lenUp || lenDown
		var cuts []int
		for p := rng.IntN(7) + 1; p < len(text); p += rng.IntN(7) + 1 {
			cuts = append(cuts, p)
		}
		distinct, rows := walk(text, cuts)
		if distinct != want || (distinct && rows != int64(count)) {
			t.Fatalf("file %d, keys %q: distinct %v, rows %d; want %v, %d\n%s", n, keys, distinct, rows, want, count, text)
		}
	}
}

// duckSink stages into a DuckDB connection and takes note of a distinct
// column, as the engine's sink does.
type duckSink struct {
	conn     *sql.Conn
	distinct string
}

func (s *duckSink) Table() string { return `"t"` }
func (s *duckSink) ExecContext(ctx context.Context, q string, args ...any) (sql.Result, error) {
	return s.conn.ExecContext(ctx, q, args...)
}
func (s *duckSink) QueryRowContext(ctx context.Context, q string, args ...any) *sql.Row {
	return s.conn.QueryRowContext(ctx, q, args...)
}
func (s *duckSink) Append(context.Context, []kalla.Column, func(connector.RowWriter) error) (int64, error) {
	return 0, errors.New("a file source does not append")
}
func (s *duckSink) NoteDistinct(column string) { s.distinct = column }

// stageNoted stages the CSV text through Source.Stage into a new DuckDB
// table "t" and returns the connection and the column the source noted.
func stageNoted(t *testing.T, text string, filters []kalla.Filter) (*sql.Conn, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "f.csv")
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	src, err := Open(t.Context(), path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { src.Close() })
	db, err := sql.Open("duckdb", "")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	conn, err := db.Conn(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	sink := &duckSink{conn: conn}
	if _, err := src.Stage(t.Context(), filters, sink); err != nil {
		t.Fatalf("stage: %v\n%s", err, text)
	}
	return conn, sink.distinct
}

// TestDistinctNotedHoldsInDuckDB stages files through the real load and
// checks every claim against DuckDB's own count of the staged column: a
// column noted distinct has as many distinct values as non-NULL ones.
// Sorted keys are noted, quoted ones too; repeated and typed ones are not.
func TestDistinctNotedHoldsInDuckDB(t *testing.T) {
	fixed := []struct {
		name, text string
		noted      bool
	}{
		{"sorted text keys", "id,name\nA-1,x\nA-2,\"y, z\"\nA-3,\"line\nbreak\"\n", true},
		{"falling keys, CRLF", "id,name\r\nC,x\r\nB,y\r\nA,z\r\n", true},
		{"NULL keys among sorted ones", "id,name\nA,x\n,y\nB,z\n,w\n", true},
		{"repeated key", "id,name\nA,x\nB,y\nB,z\n", false},
		{"unsorted distinct keys: DuckDB checks them", "id,name\nB,x\nA,y\nC,z\n", false},
		{"a number key is typed, not text", "id,name\n1,x\n2,y\n10,z\n", false},
		{"a quoted key", "id,name\n\"A\",x\nB,y\n", true},
		{"quoted keys with doubled quotes and commas", "id,name\n\"A\"\"1\",x\n\"A,2\",y\n\"B\",z\n", true},
		{"a quoted and an unquoted key of the same value", "id,name\n\"A\",x\nA,y\n", false},
		{"an empty quoted key", "id,name\n\"\",x\nA,y\n", false},
		{"blank line inside", "id,name\nA,x\n\nB,y\n", false},
		{"blank line at the end", "id,name\nA,x\nB,y\n\n", false},
		{"one column", "id\nA\nB\nC\n", true},
		{"stray quotes inside unquoted fields", "id,name\nA,x\"y\nA,z\"w\nC,v\n", false},
		{"key padded with blanks stays as written", "id,name\n A,x\nA,y\nA ,z\n", true},
		{"numbered keys without leading zeros, by length first", "id,name\nINV-9,x\nINV-10,y\nINV-11,z\n", true},
		{"numbered keys without leading zeros, one repeated", "id,name\nINV-9,x\nINV-10,y\nINV-10,z\n", false},
	}
	for _, c := range fixed {
		t.Run(c.name, func(t *testing.T) {
			conn, noted := stageNoted(t, c.text, nil)
			if (noted != "") != c.noted {
				t.Errorf("noted %q, want noted %v", noted, c.noted)
			}
			checkNoted(t, conn, noted, c.text)
		})
	}
	t.Run("filters keep the claim", func(t *testing.T) {
		conn, noted := stageNoted(t, "id,name\nA,x\nB,y\nC,x\n", []kalla.Filter{{Column: "name", Op: kalla.OpEq, Values: []kalla.Scalar{{Text: "x"}}}})
		if noted != "id" {
			t.Errorf("noted %q, want id", noted)
		}
		checkNoted(t, conn, noted, "filtered")
	})
	rng := rand.New(rand.NewPCG(3, 4))
	for n := range 60 {
		keys := make([]string, 1+rng.IntN(30))
		for i := range keys {
			switch {
			case rng.IntN(10) == 0:
			case n%4 == 0:
				keys[i] = fmt.Sprintf("R%03d", i)
			case n%4 == 2:
				keys[i] = fmt.Sprintf("R%d", 5+i) // by length first past R9
			default:
				keys[i] = fmt.Sprintf("R%03d", rng.IntN(40))
			}
		}
		text := randomCSV(rng, keys, n%3 == 0)
		conn, noted := stageNoted(t, text, nil)
		checkNoted(t, conn, noted, text)
	}
}

// checkNoted fails when DuckDB finds a repeat in a column noted distinct.
func checkNoted(t *testing.T, conn *sql.Conn, noted, text string) {
	t.Helper()
	if noted == "" {
		return
	}
	var values, distinct int64
	q := fmt.Sprintf(`SELECT count(%[1]s), count(DISTINCT %[1]s) FROM "t"`, `"`+noted+`"`)
	if err := conn.QueryRowContext(t.Context(), q).Scan(&values, &distinct); err != nil {
		t.Fatal(err)
	}
	if values != distinct {
		t.Fatalf("column %q noted distinct, but DuckDB holds %d values, %d distinct:\n%s", noted, values, distinct, text)
	}
}

// TestLineWalkTrailing checks the trailing delimiter the walk reports,
// with the key proof alive or failed before it, cut anywhere.
func TestLineWalkTrailing(t *testing.T) {
	cases := []struct {
		name, text, delim string
		trailing          bool
	}{
		{"none", "a,b\n1,2\n", ",", false},
		{"data line", "a,b\n1,2,\n3,4\n", ",", true},
		{"CRLF", "a,b\r\n1,2,\r\n", ",", true},
		{"last line without newline", "a,b\n1,2,", ",", true},
		{"header", "a,b,\n1,2\n", ",", true},
		{"inside quotes, as a line", "a,b\n1,\"x,\ny\"\n", ",", true},
		{"after the proof failed on order", "id,x\nB,1\nA,2\nC,3\nD,4,\n", ",", true},
		{"after a quoted key", "id,x\n\"q\",1\nB,2,\n", ",", true},
		{"after the proof failed after a quoted key", "id,x\n\"q\"r,1\nB,2,\n", ",", true},
		{"a CR alone is not a line end", "a,b\n1,2,\r3,4\n", ",", false},
		{"semicolon", "a;b\n1;2;\n", ";", true},
		{"two-byte delimiter", "a¦b\n1¦2¦\n", "¦", true},
		{"two-byte delimiter, none", "a¦b\n1¦2\n", "¦", false},
		{"two-byte delimiter, CRLF", "a¦b\r\n1¦2¦\r\n", "¦", true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			for i := 0; i <= len(c.text); i++ {
				if got, _, _ := walkAll(c.text, c.delim, []int{i}); got != c.trailing {
					t.Fatalf("cut at %d: trailing %v, want %v", i, got, c.trailing)
				}
			}
			var each []int
			for i := 1; i < len(c.text); i++ {
				each = append(each, i)
			}
			if got, _, _ := walkAll(c.text, c.delim, each); got != c.trailing {
				t.Fatalf("byte by byte: trailing %v, want %v", got, c.trailing)
			}
		})
	}
}
