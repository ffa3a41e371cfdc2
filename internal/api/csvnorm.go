package api

import (
	"bufio"
	"bytes"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"regexp"
	"strings"
	"time"
	"unicode/utf8"

	"golang.org/x/text/encoding/charmap"

	"github.com/kalla-recon/kalla/internal/kalla"
)

// uploadCSV are the CSV settings of an upload: what the client gave, and
// what Kalla detected from the start of the file. An upload read with
// settings other than Kalla's plain CSV (comma, decimal point, ISO dates,
// UTF-8) is stored normalised to plain CSV, so the registered source reads
// it as it is, exactly: "1.234,50" becomes 1234.50 by moving digits, never
// through a float.
type uploadCSV struct {
	Delimiter        string `json:"delimiter"`
	DecimalSeparator string `json:"decimal_separator"`
	DateFormat       string `json:"date_format,omitempty"`
	Encoding         string `json:"encoding"`
	// Detected holds what Kalla found in the file; a field the client
	// gave overrides it.
	Detected *uploadCSV `json:"detected,omitempty"`
	// DecimalColumns and DateColumns name the columns converted.
	DecimalColumns []string `json:"decimal_columns,omitempty"`
	DateColumns    []string `json:"date_columns,omitempty"`
}

// sniffBytes is how much of a file detection reads.
const sniffBytes = 64 << 10

// plain reports whether the settings read the file as Kalla's plain CSV.
func (o *uploadCSV) plain() bool {
	return o.Delimiter == "," && o.DecimalSeparator == "." && o.DateFormat == "" && o.Encoding == kalla.EncodingUTF8
}

var (
	decimalComma = regexp.MustCompile(`^-?(?:[0-9]{1,3}(?:\.[0-9]{3})+|[0-9]+)(?:,[0-9]+)?$`)
	dayFirst     = regexp.MustCompile(`^([0-9]{1,2})([./-])([0-9]{1,2})([./-])([0-9]{4})$`)
)

// detectCSV reads the start of a file and says which delimiter, decimal
// separator, date format and encoding it looks written with. A date
// format is detected only when the data settles it (a day above 12):
// 04/03/2026 alone is not guessed.
func detectCSV(head []byte) *uploadCSV {
	d := &uploadCSV{Delimiter: ",", DecimalSeparator: ".", Encoding: kalla.EncodingUTF8}
	if !utf8.Valid(head) {
		d.Encoding = kalla.EncodingWindows1252
		head, _ = charmap.Windows1252.NewDecoder().Bytes(head)
	}
	first, _, _ := bytes.Cut(head, []byte("\n"))
	best := 0
	for _, c := range []string{",", ";", "\t", "|"} {
		if n := bytes.Count(first, []byte(c)); n > best {
			best, d.Delimiter = n, c
		}
	}
	r := csv.NewReader(bytes.NewReader(head))
	r.Comma = []rune(d.Delimiter)[0]
	r.FieldsPerRecord = -1
	r.LazyQuotes = true
	var rows [][]string
	for len(rows) < 200 {
		rec, err := r.Read()
		if err != nil {
			break
		}
		rows = append(rows, rec)
	}
	if len(rows) < 2 {
		return d
	}
	if d.Delimiter != "," {
		for _, cols := range columnsOf(rows[1:]) {
			if allMatch(cols, decimalComma) && anyContains(cols, ",") {
				d.DecimalSeparator = ","
			}
		}
	}
	for _, cols := range columnsOf(rows[1:]) {
		if !allMatch(cols, dayFirst) {
			continue
		}
		sep := dayFirst.FindStringSubmatch(cols[0])[2]
		for _, v := range cols {
			m := dayFirst.FindStringSubmatch(v)
			switch {
			case atoi(m[1]) > 12:
				d.DateFormat = "%d" + sep + "%m" + sep + "%Y"
			case atoi(m[3]) > 12 && d.DateFormat == "":
				d.DateFormat = "%m" + sep + "%d" + sep + "%Y"
			}
		}
	}
	return d
}

func atoi(s string) int {
	n := 0
	for _, c := range s {
		n = 10*n + int(c-'0')
	}
	return n
}

// columnsOf returns each column's non-empty values.
func columnsOf(rows [][]string) [][]string {
	var out [][]string
	for _, r := range rows {
		for i, v := range r {
			for len(out) <= i {
				out = append(out, nil)
			}
			if v = strings.TrimSpace(v); v != "" {
				out[i] = append(out[i], v)
			}
		}
	}
	return out
}

func allMatch(vs []string, re *regexp.Regexp) bool {
	for _, v := range vs {
		if !re.MatchString(v) {
			return false
		}
	}
	return len(vs) > 0
}

func anyContains(vs []string, s string) bool {
	for _, v := range vs {
		if strings.Contains(v, s) {
			return true
		}
	}
	return false
}

// goLayout turns a strftime date format into a Go layout: %d.%m.%Y is
// 02.01.2006. Errors: EINVALID for a directive it does not know.
func goLayout(f string) (string, error) {
	var b strings.Builder
	for i := 0; i < len(f); i++ {
		if f[i] != '%' || i+1 == len(f) {
			b.WriteByte(f[i])
			continue
		}
		i++
		switch f[i] {
		case 'd':
			b.WriteString("02")
		case 'm':
			b.WriteString("01")
		case 'Y':
			b.WriteString("2006")
		case 'y':
			b.WriteString("06")
		case 'b':
			b.WriteString("Jan")
		default:
			return "", kalla.Errorf(kalla.EINVALID, "date format %q: %%%c is not known (use %%d, %%m, %%Y, %%y, %%b)", f, f[i])
		}
	}
	return b.String(), nil
}

// parseUploadCSV reads the settings a client gave in the form, checked.
func parseUploadCSV(delimiter, decimal, dateFormat, encoding string) (*uploadCSV, error) {
	o := &uploadCSV{Delimiter: delimiter, DecimalSeparator: decimal, DateFormat: strings.TrimSpace(dateFormat), Encoding: strings.ToLower(strings.TrimSpace(encoding))}
	if o.Delimiter == `\t` || strings.EqualFold(o.Delimiter, "tab") {
		o.Delimiter = "\t"
	}
	if o.Delimiter != "" && utf8.RuneCountInString(o.Delimiter) != 1 || o.Delimiter == "\"" || o.Delimiter == "\n" {
		return nil, kalla.Errorf(kalla.EINVALID, "the delimiter is one character, such as , or ; (got %q)", delimiter)
	}
	if o.DecimalSeparator != "" && o.DecimalSeparator != "." && o.DecimalSeparator != "," {
		return nil, kalla.Errorf(kalla.EINVALID, "the decimal separator is . or , (got %q)", decimal)
	}
	if o.Encoding != "" && !strings.Contains(strings.Join(kalla.CSVEncodings, " "), o.Encoding) {
		return nil, kalla.Errorf(kalla.EINVALID, "encoding %q is not supported (use %s)", encoding, strings.Join(kalla.CSVEncodings, ", "))
	}
	if o.DateFormat != "" {
		if _, err := goLayout(o.DateFormat); err != nil {
			return nil, err
		}
	}
	return o, nil
}

// settle fills the settings the client left empty with the detected ones.
func (o *uploadCSV) settle(d *uploadCSV) {
	if o.Delimiter == "" {
		o.Delimiter = d.Delimiter
	}
	if o.DecimalSeparator == "" {
		o.DecimalSeparator = d.DecimalSeparator
	}
	if o.DateFormat == "" {
		o.DateFormat = d.DateFormat
	}
	if o.Encoding == "" {
		o.Encoding = d.Encoding
	}
	o.Detected = d
}

// normalize copies a CSV file written with o's settings to plain CSV:
// comma-separated, UTF-8, decimal points, ISO dates. The columns converted
// are those whose values in the first sniffBytes all read as decimals with
// a comma (or as dates in o.DateFormat); a later value of such a column
// that does not is an error naming its line, column and value. Errors:
// EINVALID.
func (o *uploadCSV) normalize(dst io.Writer, src io.Reader, head []byte) error {
	if cm := map[string]*charmap.Charmap{kalla.EncodingLatin1: charmap.ISO8859_1, kalla.EncodingWindows1252: charmap.Windows1252}[o.Encoding]; cm != nil {
		src = cm.NewDecoder().Reader(src)
		head, _ = cm.NewDecoder().Bytes(head)
	} else if !validPrefix(head) {
		return kalla.Errorf(kalla.EINVALID, "the file is not valid UTF-8: choose its encoding (latin-1 or windows-1252)")
	}
	comma := []rune(o.Delimiter)[0]
	var layout string
	if o.DateFormat != "" {
		var err error
		if layout, err = goLayout(o.DateFormat); err != nil {
			return err
		}
	}
	// Which columns to convert, from the start of the file.
	hr := csv.NewReader(bytes.NewReader(head))
	hr.Comma, hr.FieldsPerRecord, hr.LazyQuotes = comma, -1, true
	var sample [][]string
	for len(sample) < 1000 {
		rec, err := hr.Read()
		if err != nil {
			break
		}
		sample = append(sample, rec)
	}
	if len(sample) > 1 && bytes.Count(head, []byte("\n")) >= len(sample) {
		sample = sample[:len(sample)-1] // the last record may be cut by the sniff
	}
	dec, date := map[int]bool{}, map[int]bool{}
	o.DecimalColumns, o.DateColumns = nil, nil
	if len(sample) > 1 {
		for i, vals := range columnsOf(sample[1:]) {
			if i >= len(sample[0]) {
				break
			}
			if o.DecimalSeparator == "," && allMatch(vals, decimalComma) && anyContains(vals, ",") {
				dec[i] = true
				o.DecimalColumns = append(o.DecimalColumns, sample[0][i])
			}
			if layout != "" && len(vals) > 0 && allDates(vals, layout) {
				date[i] = true
				o.DateColumns = append(o.DateColumns, sample[0][i])
			}
		}
	}
	r := csv.NewReader(bufio.NewReaderSize(src, 1<<16))
	r.Comma = comma
	r.ReuseRecord = true
	w := csv.NewWriter(dst)
	var header []string
	for line := 1; ; line++ {
		rec, err := r.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return kalla.Errorf(kalla.EINVALID, "the file does not read as CSV separated by %q: %v", o.Delimiter, err)
		}
		if line == 1 {
			header = append([]string(nil), rec...)
			if len(header) == 1 && o.Delimiter != ";" && strings.Contains(header[0], ";") {
				return kalla.Errorf(kalla.EINVALID, "the header %q is one column: the file looks separated by \";\", not %q", kalla.Excerpt(header[0]), o.Delimiter)
			}
		} else {
			for i, v := range rec {
				t := strings.TrimSpace(v)
				switch {
				case t == "":
				case dec[i]:
					if !decimalComma.MatchString(t) {
						return kalla.Errorf(kalla.EINVALID, "line %d, column %s: %q is not a number written with a decimal comma, as the rest of the column is", line, header[i], kalla.Excerpt(v))
					}
					rec[i] = strings.ReplaceAll(strings.ReplaceAll(t, ".", ""), ",", ".")
				case date[i]:
					d, err := time.Parse(layout, t)
					if err != nil {
						return kalla.Errorf(kalla.EINVALID, "line %d, column %s: %q is not a date written %s, as the rest of the column is", line, header[i], kalla.Excerpt(v), o.DateFormat)
					}
					rec[i] = d.Format("2006-01-02")
				}
			}
		}
		if err := w.Write(rec); err != nil {
			return fmt.Errorf("write normalised csv: %w", err)
		}
	}
	w.Flush()
	if err := w.Error(); err != nil {
		return fmt.Errorf("write normalised csv: %w", err)
	}
	return nil
}

func allDates(vs []string, layout string) bool {
	for _, v := range vs {
		if _, err := time.Parse(layout, v); err != nil {
			return false
		}
	}
	return true
}

// validPrefix reports whether head is valid UTF-8 but for a character cut
// at its end.
func validPrefix(head []byte) bool {
	for k := 0; k < 4 && k <= len(head); k++ {
		if utf8.Valid(head[:len(head)-k]) {
			return true
		}
	}
	return false
}
