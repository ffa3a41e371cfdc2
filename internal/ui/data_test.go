package ui_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/csv"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/kalla-recon/kalla/internal/gen"
)

// dataset is generated invoices and payments with their ground truth,
// which the generator decided while writing them, not Kalla.
type dataset struct {
	dir   string
	files gen.Files
	truth gen.Truth
}

// newDataset writes n invoices and their payments into a temporary folder.
func newDataset(t *testing.T, n int) dataset {
	t.Helper()
	d := dataset{dir: t.TempDir()}
	var err error
	if d.files, d.truth, err = gen.Write(d.dir, gen.Standard(n)); err != nil {
		t.Fatalf("generate data: %v", err)
	}
	return d
}

// readCSV reads a CSV file into records keyed by header.
func readCSV(t *testing.T, path string) []map[string]string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	all, err := csv.NewReader(f).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	out := make([]map[string]string, 0, len(all)-1)
	for _, row := range all[1:] {
		rec := map[string]string{}
		for i, h := range all[0] {
			rec[h] = row[i]
		}
		out = append(out, rec)
	}
	return out
}

// countWhere counts the records for which keep holds.
func countWhere(recs []map[string]string, keep func(map[string]string) bool) int64 {
	var n int64
	for _, r := range recs {
		if keep(r) {
			n++
		}
	}
	return n
}

func atof(t *testing.T, s string) float64 {
	t.Helper()
	f, err := strconv.ParseFloat(s, 64)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

// orphanInvoice returns an invoice no payment references: a record every
// correct reconciliation leaves unmatched.
func orphanInvoice(t *testing.T, d dataset) string {
	t.Helper()
	refs := map[string]bool{}
	for _, p := range readCSV(t, d.files.Payments) {
		refs[p["reference_number"]] = true
	}
	for _, inv := range readCSV(t, d.files.Invoices) {
		if !refs[inv["invoice_id"]] {
			return inv["invoice_id"]
		}
	}
	t.Fatal("the data set has no unpaid invoice")
	return ""
}

// fmtInt writes n as the UI does: 1,234.
func fmtInt(n int64) string {
	s := strconv.FormatInt(n, 10)
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	return b.String()
}

// apiCall calls the server's API directly (not through the browser) and
// decodes the answer into out; it returns the status.
func apiCall(t *testing.T, base, token, method, path string, body, out any) int {
	t.Helper()
	var r io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			t.Fatal(err)
		}
		r = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, base+path, r)
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := (&http.Client{Timeout: 60 * time.Second}).Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if out != nil && len(b) > 0 {
		if err := json.Unmarshal(b, out); err != nil {
			t.Fatalf("%s %s: decode %s: %v", method, path, b, err)
		}
	}
	return resp.StatusCode
}

// apiError is the body of an API error.
type apiError struct {
	Error struct {
		Code    string `json:"code"`
		Message string `json:"message"`
	} `json:"error"`
}

// waitFile waits for a finished download (no .crdownload beside it) and
// returns its SHA-256.
func waitFile(t *testing.T, path string, timeout time.Duration) string {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		b, err := os.ReadFile(path)
		partial, _ := filepath.Glob(filepath.Join(filepath.Dir(path), "*.crdownload"))
		if err == nil && len(partial) == 0 {
			sum := sha256.Sum256(b)
			return hex.EncodeToString(sum[:])
		}
		if time.Now().After(deadline) {
			entries, _ := os.ReadDir(filepath.Dir(path))
			var names []string
			for _, e := range entries {
				names = append(names, e.Name())
			}
			t.Fatalf("download %s did not arrive in %s (folder holds %v)", filepath.Base(path), timeout, names)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
