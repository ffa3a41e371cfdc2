package file_test

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"fmt"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"

	"github.com/klauspost/compress/zstd"

	"github.com/kalla-recon/kalla/internal/connector"
	"github.com/kalla-recon/kalla/internal/file"
	"github.com/kalla-recon/kalla/internal/kalla"
	"github.com/kalla-recon/kalla/internal/objstore"
	"github.com/kalla-recon/kalla/internal/testenv"
)

// compressedRows is the row count of the compressed ledger: row i has
// amount (i % 500).(i % 100) and a memo that compresses poorly, so that
// the file stays several MiB compressed.
const compressedRows = 250_000

func ledgerCSV() []byte {
	var b bytes.Buffer
	b.WriteString("id,amount,memo\n")
	for i := 1; i <= compressedRows; i++ {
		fmt.Fprintf(&b, "%d,%d.%02d,%x\n", i, i%500, i%100, sha256.Sum256([]byte(fmt.Sprint(i))))
	}
	return b.Bytes()
}

func gzipped(t *testing.T, data []byte) []byte {
	t.Helper()
	var b bytes.Buffer
	w := gzip.NewWriter(&b)
	if _, err := w.Write(data); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func zstded(t *testing.T, data []byte) []byte {
	t.Helper()
	w, err := zstd.NewWriter(nil)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	return w.EncodeAll(data, nil)
}

const compressedBudget = 256 << 10

// checkCompressedPreview previews a compressed ledger from its first
// compressedBudget bytes and checks it against the generating formula;
// then the exact count decompresses all of it.
func checkCompressedPreview(t *testing.T, src *file.Source) {
	t.Helper()
	ctx := context.Background()
	if whole, err := src.Whole(ctx); err != nil || whole {
		t.Fatalf("Whole = %v, %v; want a sample", whole, err)
	}
	if got := colTypes(t, src); got["id"] != "BIGINT" || got["amount"] != "DECIMAL(18,2)" || got["memo"] != "VARCHAR" {
		t.Errorf("types from the sample: %v", got)
	}
	gte := []kalla.Filter{{Column: "amount", Op: kalla.OpGte, Values: []kalla.Scalar{{Text: "450", IsNumber: true}}}}
	p, err := connector.Load(ctx, src, "ledger", gte, 30)
	if err != nil {
		t.Fatalf("preview: %v", err)
	}
	// The sample holds about 256 KiB / 82 bytes of rows, a tenth of them
	// in scope.
	if p.PreviewRows != 30 || p.TotalKind != connector.TotalAtLeast || p.TotalRows < 30 || p.TotalRows > compressedBudget/80/10+1 {
		t.Errorf("preview: %d rows, total %d %s; want 30 rows and a lower bound from the sample", p.PreviewRows, p.TotalRows, p.TotalKind)
	}
	for k, row := range p.Rows {
		i := 450 + (k/50)*500 + k%50 // the k-th id with i % 500 >= 450
		if want := fmt.Sprintf("%d|%d.%02d", i, i%500, i%100); *row[0]+"|"+*row[1] != want {
			t.Errorf("row %d: %s|%s, want %s", k, *row[0], *row[1], want)
		}
	}
	p, err = connector.LoadWith(ctx, src, "ledger", gte, 30, connector.LoadOptions{ExactTotal: true})
	if err != nil || p.TotalRows != compressedRows/10 || p.TotalKind != connector.TotalExact {
		t.Errorf("exact total: %+v, %v; want %d", p, err, compressedRows/10)
	}
}

func TestCompressedCSVPreviewLocal(t *testing.T) {
	data := ledgerCSV()
	for name, packed := range map[string][]byte{"ledger.csv.gz": gzipped(t, data), "ledger.csv.zst": zstded(t, data)} {
		t.Run(name, func(t *testing.T) {
			p := filepath.Join(t.TempDir(), name)
			if err := os.WriteFile(p, packed, 0o644); err != nil {
				t.Fatal(err)
			}
			tmp := t.TempDir()
			src := open(t, p, file.Options{SampleBytes: compressedBudget, TempDir: tmp})
			checkCompressedPreview(t, src)
			src.Close()
			if left, _ := os.ReadDir(tmp); len(left) != 0 {
				t.Errorf("Close left %d files in the temporary folder", len(left))
			}
		})
	}
	// A small file is its own sample: exact totals.
	p := filepath.Join(t.TempDir(), "small.csv.gz")
	if err := os.WriteFile(p, gzipped(t, []byte("id,amount\n1,2.50\n2,3.00\n")), 0o644); err != nil {
		t.Fatal(err)
	}
	pv, err := connector.Load(context.Background(), open(t, p, file.Options{}), "small", nil, 1)
	if err != nil || pv.TotalRows != 2 || pv.TotalKind != connector.TotalExact || *pv.Rows[0][1] != "2.50" {
		t.Errorf("small compressed file: %+v, %v", pv, err)
	}
	// Not compressed as named, or compressed in a way Kalla cannot read.
	bad := filepath.Join(t.TempDir(), "bad.csv.gz")
	if err := os.WriteFile(bad, []byte("id\n1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := open(t, bad, file.Options{}).Columns(context.Background()); kalla.ErrorCode(err) != kalla.EINVALID || !containsAll(err.Error(), "bad.csv.gz", "gzip") {
		t.Errorf("a .gz file that is not gzip: %v", err)
	}
	xz := filepath.Join(t.TempDir(), "x.csv.xz")
	if err := os.WriteFile(xz, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := file.Open(context.Background(), xz, file.Options{Type: kalla.SourceCSV}); kalla.ErrorCode(err) != kalla.EINVALID || !containsAll(err.Error(), ".xz", "gzip (.gz)") {
		t.Errorf("an .xz file: %v", err)
	}
}

func containsAll(s string, subs ...string) bool {
	for _, sub := range subs {
		if !bytes.Contains([]byte(s), []byte(sub)) {
			return false
		}
	}
	return true
}

// maxCompressedRead is the most a compressed preview may read remotely:
// one ranged read of 1 MiB (the sample's compressed bytes are fewer) and
// the one-byte size probe.
const maxCompressedRead = 1<<20 + 1

func TestCompressedCSVPreviewHTTPS(t *testing.T) {
	packed := gzipped(t, ledgerCSV())
	if len(packed) < 4*maxCompressedRead {
		t.Fatalf("the file is %d bytes compressed: too small to tell a sample from the whole", len(packed))
	}
	p := filepath.Join(t.TempDir(), "ledger.csv.gz")
	if err := os.WriteFile(p, packed, 0o644); err != nil {
		t.Fatal(err)
	}
	srv, served := rangeServer(t, p)
	src := open(t, srv.URL+"/ledger.csv.gz", file.Options{Fetcher: httpsFetcher(srv), SampleBytes: compressedBudget})
	if _, err := src.Columns(context.Background()); err != nil {
		t.Fatalf("columns: %v", err)
	}
	if n := served.Load(); n > maxCompressedRead {
		t.Fatalf("reading the columns of a %d-byte file took %d bytes from the server; want at most %d", len(packed), n, maxCompressedRead)
	} else {
		t.Logf("columns and sample: %d of %d bytes served", n, len(packed))
	}
	checkCompressedPreview(t, src)
}

func TestCompressedCSVPreviewS3(t *testing.T) {
	env := testenv.S3(t)
	packed := gzipped(t, ledgerCSV())
	env.Put(t, "ledger.csv.gz", packed)
	target, _ := url.Parse(env.Endpoint)
	var served atomic.Int64
	proxy := httputil.NewSingleHostReverseProxy(target)
	proxy.Transport = countingTransport{n: &served}
	ps := httptest.NewServer(proxy)
	t.Cleanup(ps.Close)
	f := objstore.NewFetcher(objstore.FetcherConfig{S3: objstore.S3Config{Endpoint: ps.URL, Region: env.Region, AccessKey: env.AccessKey, SecretKey: env.SecretKey, PathStyle: true}})
	src := open(t, env.URI("ledger.csv.gz"), file.Options{Fetcher: f, SampleBytes: compressedBudget})
	if _, err := src.Columns(context.Background()); err != nil {
		t.Fatalf("columns: %v", err)
	}
	if n := served.Load(); n > maxCompressedRead {
		t.Fatalf("reading the columns of a %d-byte object took %d bytes from S3; want at most %d", len(packed), n, maxCompressedRead)
	} else {
		t.Logf("columns and sample: %d of %d bytes served", n, len(packed))
	}
	checkCompressedPreview(t, src)
}

// TestRemoteEncodedCSV: a remote CSV in another encoding is transcoded
// both when a preview reads its start and when a run reads it whole (it
// was opened by transcoding a local path that a remote file does not
// have, and its sample was read as UTF-8).
func TestRemoteEncodedCSV(t *testing.T) {
	var b bytes.Buffer
	b.WriteString("id,name,amount\n")
	for i := range 40000 {
		fmt.Fprintf(&b, "%d,caf\xe9 %d,%d.50\n", i, i, i)
	}
	p := filepath.Join(t.TempDir(), "latin.csv")
	if err := os.WriteFile(p, b.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	srv, served := rangeServer(t, p)
	opts := file.Options{Fetcher: httpsFetcher(srv), SampleBytes: 64 << 10, TempDir: t.TempDir(),
		CSV: &kalla.CSVOptions{Encoding: kalla.EncodingLatin1}}
	src := open(t, srv.URL+"/latin.csv", opts)
	pv, err := connector.Load(context.Background(), src, "latin", nil, 3)
	if err != nil {
		t.Fatalf("preview: %v", err)
	}
	if got := *pv.Rows[2][1]; got != "café 2" {
		t.Errorf("preview read %q, want %q", got, "café 2")
	}
	if n := served.Load(); n >= int64(b.Len()) {
		t.Errorf("the preview took %d of %d bytes: the whole file", n, b.Len())
	}
	whole := open(t, srv.URL+"/latin.csv", opts)
	n, err := whole.Count(context.Background(), []kalla.Filter{{Column: "name", Op: kalla.OpEq, Values: []kalla.Scalar{{Text: "café 39999"}}}})
	if err != nil {
		t.Fatalf("read whole: %v", err)
	}
	if n != 1 {
		t.Errorf("the whole file has %d rows named café 39999, want 1", n)
	}
	all, err := whole.Count(context.Background(), nil)
	if err != nil || all != 40000 {
		t.Errorf("the whole file counts %d rows (%v), want 40000", all, err)
	}
}
