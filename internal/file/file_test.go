package file_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kalla-recon/kalla/internal/connector"
	"github.com/kalla-recon/kalla/internal/file"
	"github.com/kalla-recon/kalla/internal/kalla"
)

func writeFile(t *testing.T, name, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func open(t *testing.T, path string, opts file.Options) *file.Source {
	t.Helper()
	s, err := file.Open(context.Background(), path, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func colTypes(t *testing.T, s *file.Source) map[string]string {
	t.Helper()
	cols, err := s.Columns(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	m := map[string]string{}
	for _, c := range cols {
		m[c.Name] = c.DataType
	}
	return m
}

func TestCSVTypeInference(t *testing.T) {
	var b strings.Builder
	b.WriteString("id,code,amount,wide,sci,issued,flag,note\n")
	// More rows than DuckDB's sniffer samples, so late values are only seen
	// by Kalla's own pass over the whole column.
	for i := 1; i <= 25000; i++ {
		fmt.Fprintf(&b, "%d,%05d,%d.50,1.5,1e3,2026-01-%02d,true,n%d\n", i, i, i, i%28+1, i)
	}
	b.WriteString("25001,00001,0.30,12345678901.123456789,2.5e-7,2026-02-01,false,\"quoted, with comma\"\n")
	b.WriteString("25002,12,1.005,0.1,3,2026-02-02,false,last\n")
	s := open(t, writeFile(t, "t.csv", b.String()), file.Options{})
	got := colTypes(t, s)
	want := map[string]string{
		"id":     "BIGINT",
		"code":   "VARCHAR",       // leading zeros: a code, not a number
		"amount": "DECIMAL(18,3)", // 1.005 seen late: scale 3, no rounding
		"wide":   "DECIMAL(38,9)", // 11 integer digits + 9 decimals
		"sci":    "DOUBLE",        // exponent notation
		"issued": "DATE",
		"flag":   "BOOLEAN",
		"note":   "VARCHAR",
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("column %s: type %s, want %s", k, got[k], v)
		}
	}
	f := func(col, op, v string) kalla.Filter {
		return kalla.Filter{Column: col, Op: kalla.Op(op), Values: []kalla.Scalar{{Text: v, IsNumber: true}}}
	}
	// Exact values survive: the late 1.005 and the 9-decimal value.
	rows, err := s.Sample(context.Background(), []kalla.Filter{f("id", "gte", "25001")}, 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != 2 || *rows[0][3] != "12345678901.123456789" || *rows[1][2] != "1.005" || *rows[0][2] != "0.300" {
		t.Errorf("rows = %v", deref(rows))
	}
	n, err := s.Count(context.Background(), []kalla.Filter{f("amount", "lte", "1.005")})
	if err != nil || n != 2 {
		t.Errorf("count amount <= 1.005 = %d, %v; want 2", n, err)
	}
}

// TestCSVPlainNumbers covers files whose numbers are all written plainly,
// which Kalla measures on a faster path: the types must be those the full
// measure gives (checked by hand), with the widest value seen late.
func TestCSVPlainNumbers(t *testing.T) {
	var b strings.Builder
	b.WriteString("id,small,money,huge\n")
	for i := 1; i <= 25000; i++ {
		fmt.Fprintf(&b, "%d,-%d,%d.5,%d\n", i, i%7+1, i, i)
	}
	b.WriteString("25001,0,-0.25,1234567890123456789\n")
	b.WriteString("25002,123456789012345678,3.125,0\n")
	s := open(t, writeFile(t, "plain.csv", b.String()), file.Options{})
	got := colTypes(t, s)
	want := map[string]string{
		"id":    "BIGINT",
		"small": "BIGINT",        // 18 digits fit
		"money": "DECIMAL(18,3)", // 3.125 seen late
		"huge":  "DECIMAL(38,0)", // 19 digits: wider than BIGINT's 18
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("column %s: type %s, want %s", k, got[k], v)
		}
	}
	// "-0" is not plain: it takes the full measure, which keeps a value
	// with a leading zero as text.
	s = open(t, writeFile(t, "minus0.csv", "id,v\n1,5\n2,-0\n"), file.Options{})
	if got := colTypes(t, s); got["v"] != "VARCHAR" {
		t.Errorf("column v with -0: type %s, want VARCHAR", got["v"])
	}
}

func deref(rows [][]*string) [][]string {
	out := make([][]string, len(rows))
	for i, r := range rows {
		for _, v := range r {
			if v == nil {
				out[i] = append(out[i], "<nil>")
			} else {
				out[i] = append(out[i], *v)
			}
		}
	}
	return out
}

func TestCSVSchemaOverride(t *testing.T) {
	p := writeFile(t, "o.csv", "id,amount\n1,10\n2,20.5\n")
	s := open(t, p, file.Options{Schema: map[string]string{"id": "VARCHAR", "amount": "DECIMAL(12,4)"}})
	got := colTypes(t, s)
	if got["id"] != "VARCHAR" || got["amount"] != "DECIMAL(12,4)" {
		t.Errorf("types = %v", got)
	}
	s2 := open(t, p, file.Options{Schema: map[string]string{"nope": "VARCHAR"}})
	if _, err := s2.Columns(context.Background()); err == nil || !strings.Contains(err.Error(), `schema names column "nope"`) {
		t.Errorf("unknown schema column: %v", err)
	}
}

func TestCSVStrictErrors(t *testing.T) {
	many := "id,name\n" + strings.Repeat("1,a\n", 30) + "2,b,c\n"
	// 3 MB of rows before the NUL byte: its line is counted across reads.
	deepNUL := "id,name\n" + strings.Repeat("1,abcdefghijklmnopqrstuvwxyz\n", 100_000) + "2,a\x00b\n"
	cases := []struct {
		name, content, want string
	}{
		{"empty", "", "the file is empty"},
		{"nul", "id,name\n1,a\x00b\n", "line 2 contains a NUL byte"},
		{"nul deep", deepNUL, "line 100002 contains a NUL byte"},
		{"nul in header", "id,na\x00me\n1,a\n", "line 1 contains a NUL byte"},
		{"ragged", "id,name\n1,a\n2,b,c\n", "line 3: the row has 3 fields but the header has 2"},
		{"ragged late", many, "line 32: the row has 3 fields but the header has 2"},
		{"unclosed quote", "id,name\n1,\"abc\n2,d\n", "line 2"},
		{"duplicate header", "id,ID\n1,2\n", `names column "ID" twice`},
		{"blank header", "id,\n1,2\n", "header column 2 has no name"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s := open(t, writeFile(t, "bad.csv", c.content), file.Options{})
			_, err := s.Columns(context.Background())
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("error = %v, want it to contain %q", err, c.want)
			}
			if !strings.Contains(err.Error(), "bad.csv") {
				t.Errorf("error does not name the file: %v", err)
			}
		})
	}
}

func TestOpenErrors(t *testing.T) {
	_, err := file.Open(context.Background(), "/no/such/file.csv", file.Options{})
	if kalla.ErrorCode(err) != kalla.ENOTFOUND || !strings.Contains(err.Error(), "does not exist") {
		t.Errorf("missing file: %v", err)
	}
	_, err = file.Open(context.Background(), "s3://b/k.csv", file.Options{})
	if kalla.ErrorCode(err) != kalla.EINVALID {
		t.Errorf("remote without fetcher: %v", err)
	}
	_, err = file.Open(context.Background(), t.TempDir()+"/x.xlsx", file.Options{})
	if kalla.ErrorCode(err) != kalla.EINVALID {
		t.Errorf("unknown type: %v", err)
	}
	// A file:// URI takes no parameters; a plain path has none to take.
	dir := t.TempDir()
	if err := os.WriteFile(dir+"/a.csv", []byte("x\n1\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, uri := range []string{"file://" + dir + "/a.csv?header=false", "file://" + dir + "/a.csv#x", "file://" + dir + "/a.csv?"} {
		_, err = file.Open(context.Background(), uri, file.Options{})
		if kalla.ErrorCode(err) != kalla.EINVALID || !strings.Contains(err.Error(), "take no parameters") {
			t.Errorf("Open(%s): %v, want EINVALID naming the parameters", uri, err)
		}
		if err := file.CheckURI(uri); kalla.ErrorCode(err) != kalla.EINVALID {
			t.Errorf("CheckURI(%s): %v", uri, err)
		}
	}
	if err := file.CheckURI("file://" + dir + "/a.csv"); err != nil {
		t.Errorf("CheckURI of a plain file URI: %v", err)
	}
}

func TestCSVBOMAndDelimiter(t *testing.T) {
	s := open(t, writeFile(t, "semi.csv", "\ufeffid;amount\n1;2.50\n"), file.Options{CSV: &kalla.CSVOptions{Delimiter: ";"}})
	got := colTypes(t, s)
	if got["id"] != "BIGINT" || got["amount"] != "DECIMAL(18,2)" {
		t.Errorf("types = %v", got)
	}
}

// TestCSVDatesNotGuessed: dates in a non-ISO order are text unless the
// recipe says the format; 04/03/2026 must not silently become a date.
func TestCSVDatesNotGuessed(t *testing.T) {
	content := "id,d,ts\n1,04/03/2026,03/04/2026 10:00:00\n2,05/06/2026,2026-06-05\n"
	p := writeFile(t, "d.csv", content)
	got := colTypes(t, open(t, p, file.Options{}))
	if got["d"] != "VARCHAR" {
		t.Errorf("ambiguous date column typed %s, want VARCHAR", got["d"])
	}
	s := open(t, p, file.Options{CSV: &kalla.CSVOptions{DateFormat: "%d/%m/%Y"}})
	if got := colTypes(t, s); got["d"] != "DATE" {
		t.Errorf("with date_format: %s, want DATE", got["d"])
	}
	rows, err := s.Sample(context.Background(), nil, 5)
	if err != nil || *rows[0][1] != "2026-03-04" {
		t.Errorf("day-first date read as %v, %v", deref(rows), err)
	}
	iso := open(t, writeFile(t, "iso.csv", "id,d\n1,2026-04-03\n"), file.Options{})
	if got := colTypes(t, iso); got["d"] != "DATE" {
		t.Errorf("ISO date typed %s, want DATE", got["d"])
	}
}

// TestCSVSniffBeyondFirstBuffer: the sniffer reads 2 MB buffers, and must
// still sample its 20,480 rows when they span several: a text value at
// row 15,000 (about 7.5 MB in) keeps the column text.
func TestCSVSniffBeyondFirstBuffer(t *testing.T) {
	var b strings.Builder
	b.WriteString("id,amount,pad\n")
	pad := strings.Repeat("x", 500)
	for i := range 20_000 {
		v := fmt.Sprintf("%d.5", i)
		if i == 15_000 {
			v = "n/a"
		}
		fmt.Fprintf(&b, "%d,%s,%s\n", i, v, pad)
	}
	got := colTypes(t, open(t, writeFile(t, "wide.csv", b.String()), file.Options{}))
	if got["amount"] != "VARCHAR" {
		t.Errorf("amount typed %s, want VARCHAR (the sniffer missed row 15,000)", got["amount"])
	}
}

// TestPreviewReadsOnlyTheSample checks that previewing a CSV file larger
// than the sample reads only its start: a malformed row far beyond the
// sample does not stop the preview, whose total is labelled a lower bound,
// while counting exactly (and staging) reads the whole file and finds it.
func TestPreviewReadsOnlyTheSample(t *testing.T) {
	var b strings.Builder
	b.WriteString("id,amount,memo\n")
	for i := 1; i <= 20000; i++ {
		fmt.Fprintf(&b, "%d,%d.%02d,\"row, %d\"\n", i, i%500, i%100, i)
	}
	b.WriteString("20001,1.00,\"unclosed\n")
	path := writeFile(t, "big.csv", b.String())
	ctx := context.Background()
	src := open(t, path, file.Options{SampleBytes: 64 << 10})

	if whole, err := src.Whole(ctx); err != nil || whole {
		t.Fatalf("Whole = %v, %v; want a sample", whole, err)
	}
	if got := colTypes(t, src); got["id"] != "BIGINT" || !strings.HasPrefix(got["amount"], "DECIMAL") {
		t.Errorf("types from the sample: %v", got)
	}
	gte := []kalla.Filter{{Column: "amount", Op: kalla.OpGte, Values: []kalla.Scalar{{Text: "400", IsNumber: true}}}}
	p, err := connector.Load(ctx, src, "big", gte, 50)
	if err != nil {
		t.Fatalf("preview: %v", err)
	}
	if p.PreviewRows != 50 || p.TotalKind != connector.TotalAtLeast || p.TotalRows < 50 || p.TotalRows > 20000/5 {
		t.Errorf("preview: %d rows, total %d %s; want 50 rows and a lower bound", p.PreviewRows, p.TotalRows, p.TotalKind)
	}
	if *p.Rows[0][0] != "400" || *p.Rows[0][2] != "row, 400" {
		t.Errorf("first row in scope: %v", p.Rows[0])
	}
	// The exact count reads the whole file, and meets the bad row.
	_, err = connector.LoadWith(ctx, src, "big", gte, 50, connector.LoadOptions{ExactTotal: true})
	if kalla.ErrorCode(err) != kalla.EINVALID || !strings.Contains(err.Error(), "20002") {
		t.Errorf("exact count of a file with a bad row on line 20002: %v", err)
	}

	// A file within the sample is read whole: its total is exact.
	small := open(t, writeFile(t, "small.csv", "id,amount\n1,2.50\n2,3.00\n"), file.Options{SampleBytes: 64 << 10})
	p, err = connector.Load(ctx, small, "small", nil, 1)
	if err != nil || p.TotalRows != 2 || p.TotalKind != connector.TotalExact {
		t.Errorf("small file: %+v, %v", p, err)
	}
}

// TestOpenRefusesPartialFiles: a file Kalla is still writing (an upload, an
// output) cannot be opened, by its own name or through a link.
func TestOpenRefusesPartialFiles(t *testing.T) {
	dir := t.TempDir()
	final := filepath.Join(dir, "ledger.csv")
	partial := kalla.PartialPath(final)
	if err := os.WriteFile(partial, []byte("id\n1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(dir, "link.csv")
	if err := os.Symlink(partial, link); err != nil {
		t.Fatal(err)
	}
	for _, uri := range []string{partial, "file://" + partial, link} {
		src, err := file.Open(context.Background(), uri, file.Options{Type: kalla.SourceCSV})
		if err == nil {
			src.Close()
			t.Fatalf("Open(%s) read a partial file", uri)
		}
		if kalla.ErrorCode(err) != kalla.EINVALID || !errors.Is(err, kalla.ErrPartialFile) {
			t.Errorf("Open(%s): %v (code %s)", uri, err, kalla.ErrorCode(err))
		}
	}
}

// TestCSVDecimalComma: with decimal_separator ",", amounts written 1234,50
// are exact decimals (0,30 - 0,29 stays 0.01), and a decimal comma with a
// comma delimiter is refused by the recipe's own check.
func TestCSVDecimalComma(t *testing.T) {
	s := open(t, writeFile(t, "eu.csv", "id;amount;qty\n1;1234,50;3\n2;0,29;4\n3;12345678901,123456789;5\n"),
		file.Options{CSV: &kalla.CSVOptions{Delimiter: ";", DecimalSeparator: ","}})
	got := colTypes(t, s)
	if got["amount"] != "DECIMAL(38,9)" || got["qty"] != "BIGINT" {
		t.Errorf("types = %v", got)
	}
	spec := kalla.SourceSpec{Alias: "eu", URI: "eu.csv", PrimaryKey: []string{"id"}, CSV: &kalla.CSVOptions{DecimalSeparator: ","}}
	rec := kalla.Recipe{RecipeID: "x", MatchSQL: "SELECT * FROM left_src l JOIN right_src r ON l.id = r.id", Sources: kalla.Sources{Left: spec, Right: spec}}
	rec.Sources.Right.Alias = "eu2"
	if err := rec.Validate(); err == nil || !strings.Contains(err.Error(), "a decimal comma needs another delimiter") {
		t.Errorf("decimal comma with a comma delimiter: %v", err)
	}
}
