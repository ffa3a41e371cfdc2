package file_test

import (
	"context"
	"database/sql"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kalla-recon/kalla/internal/file"
	"github.com/kalla-recon/kalla/internal/kalla"
)

// TestDeclaredExactTypes: a type the recipe's schema declares is never
// reached by rounding. DuckDB converts "10.005" to DECIMAL(12,2) as 10.01
// and "1.5" to BIGINT as 2, silently; Kalla refuses such a file, naming
// the column, the value and its row, and converts the values that fit
// exactly (trailing zeros, blanks, a decimal comma) to the declared type.
func TestDeclaredExactTypes(t *testing.T) {
	cases := []struct {
		name, content string
		csv           *kalla.CSVOptions
		schema        map[string]string
		want          []string // values read back; nil when refused
		err           string
	}{
		{"fits", "id,v\n1,10.5\n2,10.500\n3, 7 \n4,\n", nil, map[string]string{"v": "DECIMAL(12,2)"}, []string{"10.50", "10.50", "7.00", "<nil>"}, ""},
		{"one decimal too many", "id,v\n1,10.5\n2,20\n3,10.005\n4,3.1415\n", nil, map[string]string{"v": "DECIMAL(12,2)"}, nil,
			`column "v" is declared DECIMAL(12,2), which keeps 2 decimal(s), but 2 value(s) have more, the first "10.005" in row 3`},
		{"integer", "id,v\n1,2\n2,1.5\n", nil, map[string]string{"v": "BIGINT"}, nil, `the first "1.5" in row 2`},
		{"integer written with zero decimals", "id,v\n1,2.00\n2,3\n", nil, map[string]string{"v": "integer"}, []string{"2", "3"}, ""},
		{"bare DECIMAL keeps 3", "id,v\n1,1.2345\n", nil, map[string]string{"v": "DECIMAL"}, nil, "keeps 3 decimal(s)"},
		{"exponent", "id,v\n1,1.5e3\n", nil, map[string]string{"v": "DECIMAL(18,2)"}, nil, "exponent notation"},
		{"decimal comma", "id;v\n1;\"10,25\"\n2;\"3,5\"\n", &kalla.CSVOptions{Delimiter: ";", DecimalSeparator: ","}, map[string]string{"v": "NUMERIC(10,2)"}, []string{"10.25", "3.50"}, ""},
		{"decimal comma, too many", "id;v\n1;\"10,255\"\n", &kalla.CSVOptions{Delimiter: ";", DecimalSeparator: ","}, map[string]string{"v": "DECIMAL(10,2)"}, nil, `the first "10.255" in row 1`},
		{"not a number", "id,v\n1,abc\n", nil, map[string]string{"v": "DECIMAL(10,2)"}, nil, `column "v" is declared DECIMAL(10,2) but a value does not convert to it`},
		{"text and double stay as given", "id,v,w\n1,1.005,x\n", nil, map[string]string{"v": "DOUBLE", "w": "VARCHAR"}, []string{"1.005"}, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s := open(t, writeFile(t, "d.csv", c.content), file.Options{Schema: c.schema, CSV: c.csv})
			rows, err := s.Sample(context.Background(), nil, 10)
			if c.err != "" {
				if kalla.ErrorCode(err) != kalla.EINVALID || !strings.Contains(err.Error(), c.err) || !strings.Contains(err.Error(), "source ") {
					t.Fatalf("err = %v, want %s containing %q", err, kalla.EINVALID, c.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, r := range deref(rows) {
				got = append(got, r[1])
			}
			if strings.Join(got, "|") != strings.Join(c.want, "|") {
				t.Errorf("values %q, want %q", got, c.want)
			}
			for col, typ := range c.schema {
				if got := colTypes(t, s)[col]; !strings.EqualFold(got, typ) && !(typ == "integer" && got == "INTEGER") && !(strings.HasPrefix(typ, "NUMERIC") && got == "DECIMAL"+typ[len("NUMERIC"):]) {
					t.Errorf("column %s is %s, want %s", col, got, typ)
				}
			}
		})
	}
}

// TestDeclaredExactTypesParquet: a Parquet column converted by the schema
// to an exact type must survive the round trip: DECIMAL(18,3) 1.005 or
// DOUBLE 0.125 to DECIMAL(18,2) is refused, 0.1 and 2.50 are not.
func TestDeclaredExactTypesParquet(t *testing.T) {
	db, err := sql.Open("duckdb", "")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	dir := t.TempDir()
	write := func(name, sel string) string {
		p := filepath.Join(dir, name)
		if _, err := db.Exec("COPY (" + sel + ") TO '" + p + "' (FORMAT parquet)"); err != nil {
			t.Fatal(err)
		}
		return p
	}
	ok := write("ok.parquet", "SELECT 1 AS id, 0.1::DOUBLE AS d, 2.50::DECIMAL(18,3) AS e, '7.10' AS s")
	s := open(t, ok, file.Options{Schema: map[string]string{"d": "DECIMAL(18,2)", "e": "DECIMAL(18,2)", "s": "DECIMAL(18,1)"}})
	rows, err := s.Sample(context.Background(), nil, 10)
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(deref(rows)[0], "|"); got != "1|0.10|2.50|7.1" {
		t.Errorf("row %s", got)
	}
	for name, sel := range map[string]string{
		"decimal": "SELECT 1 AS id, 1.005::DECIMAL(18,3) AS e",
		"double":  "SELECT 1 AS id, 0.125::DOUBLE AS e",
		"text":    "SELECT 1 AS id, '0.125' AS e",
	} {
		s := open(t, write(name+".parquet", sel), file.Options{Schema: map[string]string{"e": "DECIMAL(18,2)"}})
		if _, err := s.Sample(context.Background(), nil, 10); kalla.ErrorCode(err) != kalla.EINVALID || !strings.Contains(err.Error(), `the first "`) || !strings.Contains(err.Error(), `row 1`) {
			t.Errorf("%s: err = %v", name, err)
		}
	}
}
