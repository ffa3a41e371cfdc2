package file_test

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/kalla-recon/kalla/internal/file"
)

// TestCSVLateNumbers covers exact typing when the values that decide a
// numeric column's type come after the sniffer's sample (30,000 plain rows
// first; DuckDB's sniffer samples 20,480, and the load on guessed types
// guesses from the first 1,000): the type is the one the whole column calls
// for and the late value reads back with every digit, whether the value
// fits the guess ("money", "16 digits", blanks) or breaks it and the load
// falls back to measuring the column (the others).
func TestCSVLateNumbers(t *testing.T) {
	cases := []struct {
		name, first, late, want, wantLate string
	}{
		{"money", "%d.25", "-12.5", "DECIMAL(18,2)", "-12.50"},
		{"wider scale late", "%d.25", "1.005", "DECIMAL(18,3)", "1.005"},
		{"integers", "%d", "-99999999999999999", "BIGINT", "-99999999999999999"},
		{"fraction late", "%d", "7.5", "DECIMAL(18,1)", "7.5"},
		{"16 digits and a minus", "%d.25", "-9999999999999999.25", "DECIMAL(38,2)", "-9999999999999999.25"},
		{"16 digits", "%d.25", "9999999999999999.25", "DECIMAL(18,2)", "9999999999999999.25"},
		{"leading zero late", "%d", "007", "VARCHAR", "007"},
		{"padded late", "%d.5", " 3.5", "DECIMAL(18,1)", "3.5"},
		{"exponent late", "%d.5", "1e3", "DOUBLE", "1000.0"},
		{"blank late", "%d.50", "", "DECIMAL(18,2)", "<nil>"},
		// A value that is not a number makes the column text wherever it
		// is (the sniffer reads it so in its sample); it used to fail the
		// run past the sample, as a value that "looked numeric".
		{"text late", "%d.25", "n/a", "VARCHAR", "n/a"},
		{"NaN late", "%d.25", "NaN", "VARCHAR", "NaN"},
		{"plus sign late", "%d", "+5", "VARCHAR", "+5"},
		{"quoted empty late", "%d", `""`, "BIGINT", "<nil>"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var b strings.Builder
			b.WriteString("id,v\n")
			for i := 1; i <= 30000; i++ {
				fmt.Fprintf(&b, "%d,"+c.first+"\n", i, i)
			}
			fmt.Fprintf(&b, "30001,%s\n", c.late)
			s := open(t, writeFile(t, "g.csv", b.String()), file.Options{})
			if got := colTypes(t, s)["v"]; got != c.want {
				t.Fatalf("type %s, want %s", got, c.want)
			}
			rows, err := s.Sample(context.Background(), nil, 30001)
			if err != nil {
				t.Fatal(err)
			}
			if got := deref(rows[30000:])[0][1]; got != c.wantLate {
				t.Errorf("late value read back as %q, want %q", got, c.wantLate)
			}
		})
	}
}

// TestCSVLateMisfits covers a date, timestamp or boolean column whose value
// that breaks the type comes after the sniffer's sample (30,000 fitting rows
// first): the column is read as text with every value as written, as the
// Spark engine types it from the whole column, instead of failing the
// load; the other columns keep their types. A type the recipe's schema
// gives is the user's word: a value that does not fit it is still an error
// naming the line.
func TestCSVLateMisfits(t *testing.T) {
	cases := []struct {
		name, first, late, want, wantLate string
	}{
		{"date", "2024-01-%02d", "2024-02-30", "VARCHAR", "2024-02-30"},
		{"date fits", "2024-01-%02d", "2024-02-29", "DATE", "2024-02-29"},
		{"timestamp", "2024-01-%02d 10:00:00", "yesterday", "VARCHAR", "yesterday"},
		{"boolean", "", "maybe", "VARCHAR", "maybe"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			first := func(i int) string {
				if c.first == "" {
					return []string{"true", "false"}[i%2]
				}
				return fmt.Sprintf(c.first, i%28+1)
			}
			var b strings.Builder
			b.WriteString("id,v,w,n\n")
			for i := 1; i <= 30000; i++ {
				fmt.Fprintf(&b, "%d,%s,%s,%d\n", i, first(i), []string{"true", "false"}[i%2], i)
			}
			// w breaks too, later still: a second pass makes it text.
			fmt.Fprintf(&b, "30001,%s,false,1\n30002,%s,unknown,2\n", c.late, first(1))
			s := open(t, writeFile(t, "g.csv", b.String()), file.Options{})
			types := colTypes(t, s)
			if types["v"] != c.want || types["w"] != "VARCHAR" || types["n"] != "BIGINT" {
				t.Fatalf("types v %s, w %s, n %s; want %s, VARCHAR, BIGINT", types["v"], types["w"], types["n"], c.want)
			}
			rows, err := s.Sample(context.Background(), nil, 30002)
			if err != nil {
				t.Fatal(err)
			}
			late := deref(rows[30000:])
			if late[0][1] != c.wantLate || late[0][2] != "false" || late[1][2] != "unknown" {
				t.Errorf("late rows read back as %q, want v %q and w false, unknown", late, c.wantLate)
			}
		})
	}
	t.Run("declared", func(t *testing.T) {
		var b strings.Builder
		b.WriteString("id,v\n")
		for i := 1; i <= 30000; i++ {
			fmt.Fprintf(&b, "%d,2024-01-%02d\n", i, i%28+1)
		}
		b.WriteString("30001,2024-02-30\n")
		s := open(t, writeFile(t, "g.csv", b.String()), file.Options{Schema: map[string]string{"v": "DATE"}})
		_, err := s.Columns(context.Background())
		if err == nil || !strings.Contains(err.Error(), "30002") || !strings.Contains(err.Error(), "2024-02-30") {
			t.Fatalf("a declared DATE with 2024-02-30 on line 30002: err = %v, want an error naming the line and value", err)
		}
	})
}

// TestCSVLongFractions: DuckDB's TIMESTAMP holds microseconds and cut a
// seventh decimal of a second silently (SQL Server's datetime2 and .NET
// write seven). A timestamp column with such a value anywhere, even
// across the scanner's 1 MiB reads, is text with every digit, as on the
// Spark engine; a timestamp column with at most six decimals stays a
// timestamp when the seven digits are in another column.
func TestCSVLongFractions(t *testing.T) {
	row := func(i int, ts, note string) string {
		return fmt.Sprintf("%d,2024-01-%02d 10:00:%02d%s,%s\n", i, i%28+1, i%60, ts, note)
	}
	cases := []struct {
		name   string
		file   func() string
		want   string // type of ts
		row    int    // a row whose ts reads back as wantTS
		wantTS string
	}{
		{"early", func() string { return "id,ts,note\n" + row(1, ".1234567", "a") + row(2, ".5", "b") }, "VARCHAR", 0, "2024-01-02 10:00:01.1234567"},
		{"late", func() string {
			var b strings.Builder
			b.WriteString("id,ts,note\n")
			for i := 1; i <= 30000; i++ {
				b.WriteString(row(i, ".123456", "x"))
			}
			b.WriteString(row(30001, ".9999999", "y"))
			return b.String()
		}, "VARCHAR", 30000, "2024-01-14 10:00:01.9999999"},
		{"other column", func() string {
			return "id,ts,note\n" + row(1, ".123456", "logged at 10:00:01.1234567") + row(2, "", "b")
		}, "TIMESTAMP", 0, "2024-01-02 10:00:01.123456"},
		{"across reads", func() string {
			var b strings.Builder
			b.WriteString("id,ts,note\n")
			for i := 1; b.Len() < 1<<20-100; i++ {
				b.WriteString(row(i, "", "x"))
			}
			// The point of the last row's time falls two bytes before the
			// end of the scanner's first 1 MiB read.
			last := "99999,2024-01-01 10:00:00.1234567,y\n"
			pad := 1<<20 - 2 - b.Len() - strings.Index(last, ".")
			b.WriteString(fmt.Sprintf("99998,2024-01-01 10:00:00,%s\n", strings.Repeat("p", pad-len("99998,2024-01-01 10:00:00,\n"))))
			b.WriteString(last)
			return b.String()
		}, "VARCHAR", -1, "2024-01-01 10:00:00.1234567"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			data := c.file()
			if c.row < 0 && strings.Index(data, ".1234567") != 1<<20-2 {
				t.Fatalf("the point is at byte %d, want %d", strings.Index(data, ".1234567"), 1<<20-2)
			}
			s := open(t, writeFile(t, "t.csv", data), file.Options{})
			if got := colTypes(t, s)["ts"]; got != c.want {
				t.Fatalf("ts typed %s, want %s", got, c.want)
			}
			rows, err := s.Sample(context.Background(), nil, 1<<20)
			if err != nil {
				t.Fatal(err)
			}
			r := c.row
			if r < 0 {
				r = len(rows) - 1
			}
			if got := deref(rows[r : r+1])[0][1]; got != c.wantTS {
				t.Errorf("ts of row %d read back as %q, want %q", r+1, got, c.wantTS)
			}
		})
	}
}
