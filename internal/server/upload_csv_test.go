package server_test

import (
	"bytes"
	"encoding/json"
	"mime/multipart"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kalla-recon/kalla/internal/kalla"
)

// uploadForm is a multipart body: the fields first, then the file.
func uploadForm(t *testing.T, name, body string, fields map[string]string) ([]byte, string) {
	t.Helper()
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	for k, v := range fields {
		if err := mw.WriteField(k, v); err != nil {
			t.Fatal(err)
		}
	}
	fw, err := mw.CreateFormFile("file", name)
	if err != nil {
		t.Fatal(err)
	}
	fw.Write([]byte(body))
	mw.Close()
	return buf.Bytes(), mw.FormDataContentType()
}

// TestUploadCSVSettings: a ";"-separated file with decimal commas and
// day-first dates is detected as such, checked without being kept, then
// stored normalised so the source reads exact decimals and real dates; a
// file that contradicts its settings is refused and leaves nothing.
func TestUploadCSVSettings(t *testing.T) {
	s := startServer(t, nil)
	const file = "id;amount;paid_on\nP1;1.234,50;15.01.2024\nP2;0,29;31.01.2024\nP3;12345678901,123456789;01.02.2024\n"
	post := func(body []byte, ctype string) (int, []byte) {
		req := s.request("POST", "/api/uploads", body)
		req.Header.Set("Content-Type", ctype)
		resp, err := s.client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var b bytes.Buffer
		b.ReadFrom(resp.Body)
		return resp.StatusCode, b.Bytes()
	}
	type answer struct {
		URI       string         `json:"uri"`
		Columns   []kalla.Column `json:"columns"`
		RowCount  int64          `json:"row_count"`
		Rows      [][]*string    `json:"rows"`
		CheckOnly bool           `json:"check_only"`
		CSV       struct {
			Delimiter, DecimalSeparator, DateFormat, Encoding string
			Detected                                          *struct {
				Delimiter        string `json:"delimiter"`
				DecimalSeparator string `json:"decimal_separator"`
				DateFormat       string `json:"date_format"`
			} `json:"detected"`
		} `json:"csv"`
	}
	uploads := func() int {
		es, _ := os.ReadDir(filepath.Join(s.dataDir, "uploads"))
		return len(es)
	}

	body, ctype := uploadForm(t, "payments.csv", file, map[string]string{"check_only": "true"})
	st, b := post(body, ctype)
	var a answer
	if err := json.Unmarshal(b, &a); st != 200 || err != nil {
		t.Fatalf("check: %d %s", st, b)
	}
	if d := a.CSV.Detected; d == nil || d.Delimiter != ";" || d.DecimalSeparator != "," || d.DateFormat != "%d.%m.%Y" {
		t.Errorf("detected %+v", a.CSV.Detected)
	}
	if !a.CheckOnly || a.URI != "" || uploads() != 0 {
		t.Errorf("a check kept something: %s (%d uploads)", b, uploads())
	}

	body, ctype = uploadForm(t, "payments.csv", file, map[string]string{"delimiter": ";", "decimal_separator": ",", "date_format": "%d.%m.%Y"})
	st, b = post(body, ctype)
	if err := json.Unmarshal(b, &a); st != 201 || err != nil {
		t.Fatalf("upload: %d %s", st, b)
	}
	names := kalla.ColumnNames(a.Columns)
	if len(a.Columns) != 3 || a.RowCount != 3 || !strings.HasPrefix(strings.ToUpper(a.Columns[1].DataType), "DECIMAL") || a.Columns[2].DataType != "DATE" {
		t.Fatalf("columns %s %+v, %d rows", names, a.Columns, a.RowCount)
	}
	var got []string
	for _, r := range a.Rows {
		// Exact decimals, whatever scale the reader chose.
		got = append(got, strings.TrimRight(*r[1], "0")+" "+*r[2])
	}
	if strings.Join(got, "|") != "1234.5 2024-01-15|0.29 2024-01-31|12345678901.123456789 2024-02-01" {
		t.Errorf("rows read %q", got)
	}
	s.call("POST", "/api/sources", map[string]string{"alias": "semi", "uri": a.URI}, 200, nil)

	// A value the column's settings cannot read: refused, nothing left.
	before := uploads()
	bad := file + "P4;12.5;01.03.2024\n"
	body, ctype = uploadForm(t, "bad.csv", bad, map[string]string{"delimiter": ";", "decimal_separator": ","})
	st, b = post(body, ctype)
	if st != 400 || !strings.Contains(string(b), `line 5, column amount: \"12.5\" is not a number written with a decimal comma`) {
		t.Errorf("bad upload: %d %s", st, b)
	}
	if uploads() != before {
		t.Errorf("a refused upload left a folder behind")
	}
}

// TestUploadDetectsEncoding: a ";"-separated export written in
// Windows-1252 (as Excel writes one) is detected as such, shown in the
// check's answer, and stored so that the source reads its names as
// written: "Müller", "Café Zoë", never mojibake or a refusal.
func TestUploadDetectsEncoding(t *testing.T) {
	s := startServer(t, nil)
	// ü is 0xFC, é 0xE9, ë 0xEB in Windows-1252: not UTF-8.
	const file = "payment_id;payer;amount\nP1;M\xfcller GmbH;1.234,50\nP2;Caf\xe9 Zo\xeb;12,00\n"
	post := func(fields map[string]string) (int, map[string]any) {
		body, ctype := uploadForm(t, "payers.csv", file, fields)
		req := s.request("POST", "/api/uploads", body)
		req.Header.Set("Content-Type", ctype)
		resp, err := s.client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var a map[string]any
		if err := json.NewDecoder(resp.Body).Decode(&a); err != nil {
			t.Fatal(err)
		}
		return resp.StatusCode, a
	}
	st, a := post(map[string]string{"check_only": "true"})
	det, _ := a["csv"].(map[string]any)["detected"].(map[string]any)
	if st != 200 || det == nil || det["encoding"] != "windows-1252" || det["delimiter"] != ";" {
		t.Fatalf("check: %d %v", st, a)
	}
	st, a = post(nil)
	if st != 201 {
		t.Fatalf("upload: %d %v", st, a)
	}
	got, _ := json.Marshal(a["rows"])
	if !strings.Contains(string(got), `"Müller GmbH"`) || !strings.Contains(string(got), `"Café Zoë"`) || !strings.Contains(string(got), `"1234.50"`) {
		t.Errorf("rows read %s", got)
	}
}
