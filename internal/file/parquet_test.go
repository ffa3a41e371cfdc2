package file_test

import (
	"context"
	"database/sql"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	_ "github.com/duckdb/duckdb-go/v2"

	"github.com/kalla-recon/kalla/internal/connector"
	"github.com/kalla-recon/kalla/internal/file"
	"github.com/kalla-recon/kalla/internal/kalla"
	"github.com/kalla-recon/kalla/internal/objstore"
	"github.com/kalla-recon/kalla/internal/testenv"
)

// Rows of the generated Parquet file: row i (from 1) has amount
// (i % 1000) + 0.25 (DECIMAL(18,2)), category "c" + i%7 and a memo that
// does not compress away.
const parquetRows = 200_000

// writeLedgerParquet writes the ledger file with DuckDB, in row groups of
// 8,192 rows, and returns its path and size.
func writeLedgerParquet(t *testing.T) (string, int64) {
	t.Helper()
	db, err := sql.Open("duckdb", "")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	p := filepath.Join(t.TempDir(), "ledger.parquet")
	q := fmt.Sprintf(`COPY (SELECT i AS id, CAST((i %% 1000) + 0.25 AS DECIMAL(18,2)) AS amount, 'c' || (i %% 7) AS category,
		md5(CAST(i AS VARCHAR)) AS memo FROM range(1, %d) t(i) ORDER BY i) TO '%s' (FORMAT parquet, ROW_GROUP_SIZE 8192)`, parquetRows+1, p)
	if _, err := db.Exec(q); err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(p)
	if err != nil {
		t.Fatal(err)
	}
	return p, st.Size()
}

// checkParquetPreview previews src (a sample of budget bytes) and checks
// its columns, rows and totals against the generating formula.
func checkParquetPreview(t *testing.T, src *file.Source) {
	t.Helper()
	ctx := context.Background()
	cols, err := src.Columns(ctx)
	if err != nil {
		t.Fatalf("columns: %v", err)
	}
	types := map[string]string{}
	for _, c := range cols {
		types[c.Name] = c.DataType
	}
	if types["id"] != "BIGINT" || types["amount"] != "DECIMAL(18,2)" || types["category"] != "VARCHAR" {
		t.Errorf("column types %v: want the file's own (amount DECIMAL(18,2))", types)
	}
	// No filter: the footer's count, exact.
	p, err := connector.Load(ctx, src, "ledger", nil, 5)
	if err != nil {
		t.Fatalf("preview: %v", err)
	}
	if p.TotalRows != parquetRows || p.TotalKind != connector.TotalExact || p.PreviewRows != 5 {
		t.Errorf("unfiltered preview: %d rows, total %d %s; want 5 rows of an exact %d", p.PreviewRows, p.TotalRows, p.TotalKind, parquetRows)
	}
	for i, row := range p.Rows {
		if want := fmt.Sprintf("%d|%d.25", i+1, (i+1)%1000); *row[0]+"|"+*row[1] != want {
			t.Errorf("row %d: %s|%s, want %s", i, *row[0], *row[1], want)
		}
	}
	// A filter on a dictionary column (which may carry a Bloom filter) and
	// an amount: matched in the sample, labelled a lower bound.
	filters := []kalla.Filter{
		{Column: "category", Op: kalla.OpEq, Values: []kalla.Scalar{{Text: "c3"}}},
		{Column: "amount", Op: kalla.OpGte, Values: []kalla.Scalar{{Text: "900", IsNumber: true}}},
	}
	p, err = connector.Load(ctx, src, "ledger", filters, 20)
	if err != nil {
		t.Fatalf("filtered preview: %v", err)
	}
	// Ground truth: ids with i%7 == 3 and i%1000 >= 900, in order.
	var want []string
	exact := 0
	for i := 1; i <= parquetRows; i++ {
		if i%7 == 3 && i%1000 >= 900 {
			if len(want) < 20 {
				want = append(want, fmt.Sprint(i))
			}
			exact++
		}
	}
	if p.TotalKind != connector.TotalAtLeast || p.TotalRows < 20 || p.TotalRows >= int64(exact) || len(p.Rows) != 20 {
		t.Errorf("filtered preview: %d rows, total %d %s; want 20 rows and a lower bound under %d", len(p.Rows), p.TotalRows, p.TotalKind, exact)
	}
	for i, row := range p.Rows {
		if i < len(want) && *row[0] != want[i] {
			t.Errorf("filtered row %d: id %s, want %s", i, *row[0], want[i])
		}
	}
	// Asked for, the exact count reads the whole file.
	p, err = connector.LoadWith(ctx, src, "ledger", filters, 20, connector.LoadOptions{ExactTotal: true})
	if err != nil || p.TotalRows != int64(exact) || p.TotalKind != connector.TotalExact {
		t.Errorf("exact filtered total: %+v, %v; want %d", p, err, exact)
	}
}

const parquetBudget = 1 << 20

// maxParquetRead is the most a preview may read: the row groups within the
// budget, the footer read (its last 64 KiB) and the one-byte size probe.
const maxParquetRead = parquetBudget + 64<<10 + 1

func TestParquetPreviewLocal(t *testing.T) {
	path, size := writeLedgerParquet(t)
	if size < 4*parquetBudget {
		t.Fatalf("the file is %d bytes: too small to tell a sample from the whole", size)
	}
	src := open(t, path, file.Options{SampleBytes: parquetBudget})
	if whole, err := src.Whole(context.Background()); err != nil || whole {
		t.Fatalf("Whole = %v, %v; want a sample", whole, err)
	}
	checkParquetPreview(t, src)

	// A budget larger than the file: the sample is every row group, and
	// a filtered total is exact.
	all := open(t, path, file.Options{SampleBytes: size})
	p, err := connector.Load(context.Background(), all, "ledger", []kalla.Filter{{Column: "category", Op: kalla.OpEq, Values: []kalla.Scalar{{Text: "c3"}}}}, 1)
	if want := int64(0); err != nil || p.TotalKind != connector.TotalExact {
		t.Errorf("whole sample: %+v, %v", p, err)
	} else {
		for i := 1; i <= parquetRows; i++ {
			if i%7 == 3 {
				want++
			}
		}
		if p.TotalRows != want {
			t.Errorf("whole sample: total %d, want %d", p.TotalRows, want)
		}
	}
}

// rangeServer serves path over TLS with Range support, counting the bytes
// written.
func rangeServer(t *testing.T, path string) (*httptest.Server, *atomic.Int64) {
	t.Helper()
	var served atomic.Int64
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f, err := os.Open(path)
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		defer f.Close()
		http.ServeContent(&countingWriter{ResponseWriter: w, n: &served}, r, filepath.Base(path), time.Time{}, f)
	}))
	t.Cleanup(srv.Close)
	return srv, &served
}

type countingWriter struct {
	http.ResponseWriter
	n *atomic.Int64
}

func (c *countingWriter) Write(p []byte) (int, error) {
	k, err := c.ResponseWriter.Write(p)
	c.n.Add(int64(k))
	return k, err
}

func httpsFetcher(srv *httptest.Server) *objstore.Fetcher {
	u, _ := url.Parse(srv.URL)
	return objstore.NewFetcher(objstore.FetcherConfig{AllowHTTP: []string{u.Host}, RootCAs: srv.Client().Transport.(*http.Transport).TLSClientConfig.RootCAs})
}

func TestParquetPreviewHTTPS(t *testing.T) {
	path, size := writeLedgerParquet(t)
	srv, served := rangeServer(t, path)
	src := open(t, srv.URL+"/ledger.parquet", file.Options{Fetcher: httpsFetcher(srv), SampleBytes: parquetBudget})
	if _, err := src.Columns(context.Background()); err != nil {
		t.Fatalf("columns: %v", err)
	}
	if n := served.Load(); n > maxParquetRead {
		t.Fatalf("reading the columns of a %d-byte file took %d bytes from the server; want at most %d", size, n, maxParquetRead)
	} else {
		t.Logf("columns and sample: %d of %d bytes served", n, size)
	}
	checkParquetPreview(t, src) // its exact count fetches the rest
}

// countingTransport counts the response bytes that pass through a proxy.
type countingTransport struct{ n *atomic.Int64 }

func (c countingTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	resp, err := http.DefaultTransport.RoundTrip(r)
	if err == nil {
		resp.Body = &countingBody{ReadCloser: resp.Body, n: c.n}
	}
	return resp, err
}

type countingBody struct {
	io.ReadCloser
	n *atomic.Int64
}

func (c *countingBody) Read(p []byte) (int, error) {
	k, err := c.ReadCloser.Read(p)
	c.n.Add(int64(k))
	return k, err
}

func TestParquetPreviewS3(t *testing.T) {
	env := testenv.S3(t)
	path, size := writeLedgerParquet(t)
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	env.Put(t, "ledger.parquet", data)
	// The S3 server behind a proxy that counts what it sends.
	target, _ := url.Parse(env.Endpoint)
	var served atomic.Int64
	proxy := httputil.NewSingleHostReverseProxy(target)
	proxy.Transport = countingTransport{n: &served}
	ps := httptest.NewServer(proxy)
	t.Cleanup(ps.Close)
	f := objstore.NewFetcher(objstore.FetcherConfig{S3: objstore.S3Config{Endpoint: ps.URL, Region: env.Region, AccessKey: env.AccessKey, SecretKey: env.SecretKey, PathStyle: true}})
	src := open(t, env.URI("ledger.parquet"), file.Options{Fetcher: f, SampleBytes: parquetBudget})
	if _, err := src.Columns(context.Background()); err != nil {
		t.Fatalf("columns: %v", err)
	}
	if n := served.Load(); n > maxParquetRead {
		t.Fatalf("reading the columns of a %d-byte object took %d bytes from S3; want at most %d", size, n, maxParquetRead)
	} else {
		t.Logf("columns and sample: %d of %d bytes served", n, size)
	}
	if n, err := src.Count(context.Background(), nil); err != nil || n != parquetRows {
		t.Errorf("unfiltered count: %d, %v; want %d from the footer", n, err, parquetRows)
	}
	if n := served.Load(); n > maxParquetRead {
		t.Errorf("the unfiltered count read more: %d bytes", n)
	}
	checkParquetPreview(t, src)
}

// TestParquetPreviewNoRanges: an https:// server that ignores Range has
// the file fetched whole, once, and previewed from all of it: exact totals.
func TestParquetPreviewNoRanges(t *testing.T) {
	path, size := writeLedgerParquet(t)
	var gets atomic.Int64
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		gets.Add(1)
		// Served without its Range header: a 200 with the whole file.
		http.ServeFile(w, &http.Request{Method: r.Method, URL: r.URL, Header: http.Header{}}, path)
	}))
	t.Cleanup(srv.Close)
	src := open(t, srv.URL+"/ledger.parquet", file.Options{Fetcher: httpsFetcher(srv), SampleBytes: parquetBudget})
	if got := colTypes(t, src); got["amount"] != "DECIMAL(18,2)" {
		t.Errorf("types: %v", got)
	}
	filters := []kalla.Filter{{Column: "category", Op: kalla.OpEq, Values: []kalla.Scalar{{Text: "c3"}}}}
	p, err := connector.Load(context.Background(), src, "ledger", filters, 5)
	want := int64(0)
	for i := 1; i <= parquetRows; i++ {
		if i%7 == 3 {
			want++
		}
	}
	if err != nil || p.TotalRows != want || p.TotalKind != connector.TotalExact || *p.Rows[0][0] != "3" {
		t.Errorf("preview of the whole file: %+v, %v; want an exact %d", p, err, want)
	}
	// The probe that found no ranges, then one whole fetch.
	if n := gets.Load(); n != 2 {
		t.Errorf("%d requests for a %d-byte file; want the probe and one fetch", n, size)
	}
}
