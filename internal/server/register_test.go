package server_test

import (
	"bytes"
	"compress/gzip"
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

	_ "github.com/duckdb/duckdb-go/v2"

	"github.com/kalla-recon/kalla/internal/file"
	"github.com/kalla-recon/kalla/internal/kalla"
	"github.com/kalla-recon/kalla/internal/objstore"
	"github.com/kalla-recon/kalla/internal/server"
	"github.com/kalla-recon/kalla/internal/testenv"
)

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

// TestRegisterReadsOnlyTheStart registers and previews large files in S3
// through the API, with the S3 server behind a proxy that counts the bytes
// it sends: a 1M-row Parquet file (its footer and first row groups are
// read, and the unfiltered total is the footer's exact count) and a 2M-row
// gzip CSV file (its first 8 MiB decompressed), each several times what a
// preview may read.
func TestRegisterReadsOnlyTheStart(t *testing.T) {
	const rows = 1_000_000
	env := testenv.S3(t)
	dir := t.TempDir()
	db, err := sql.Open("duckdb", "")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	pq := filepath.Join(dir, "ledger.parquet")
	if _, err := db.Exec(fmt.Sprintf(`COPY (SELECT i AS id, CAST((i %% 1000) + 0.25 AS DECIMAL(18,2)) AS amount, md5(CAST(i AS VARCHAR)) AS memo
		FROM range(1, %d) t(i) ORDER BY i) TO '%s' (FORMAT parquet, ROW_GROUP_SIZE 65536)`, rows+1, pq)); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(pq)
	if err != nil {
		t.Fatal(err)
	}
	env.Put(t, "ledger.parquet", data)
	var csvText bytes.Buffer
	csvText.WriteString("id,amount,memo\n")
	for i := 1; i <= 2*rows; i++ {
		fmt.Fprintf(&csvText, "%d,%d.25,%x\n", i, i%1000, i*2654435761)
	}
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	zw.Write(csvText.Bytes())
	zw.Close()
	env.Put(t, "ledger.csv.gz", gz.Bytes())
	// What the first 8 MiB of text take compressed.
	var head bytes.Buffer
	zw = gzip.NewWriter(&head)
	zw.Write(csvText.Bytes()[:file.DefaultSampleBytes])
	zw.Close()

	target, _ := url.Parse(env.Endpoint)
	var served atomic.Int64
	proxy := httputil.NewSingleHostReverseProxy(target)
	proxy.Transport = countingTransport{n: &served}
	ps := httptest.NewServer(proxy)
	t.Cleanup(ps.Close)
	s := startServer(t, func(c *server.Config) {
		c.Sources.Remote.S3 = objstore.S3Config{Endpoint: ps.URL, Region: env.Region, AccessKey: env.AccessKey, SecretKey: env.SecretKey, PathStyle: true}
	})

	// At most the sample, the footer's read (64 KiB) and a size probe;
	// for the compressed file, the compressed bytes behind 8 MiB of text,
	// read by 1 MiB (one more for the decompressor's look-ahead).
	for _, tc := range []struct {
		alias, key, typ string
		size, most      int64
	}{
		{"pq", "ledger.parquet", "parquet", int64(len(data)), file.DefaultSampleBytes + 64<<10 + 1},
		{"gz", "ledger.csv.gz", "csv", int64(gz.Len()), int64(head.Len()) + 2<<20},
	} {
		if tc.size < 3*tc.most {
			t.Fatalf("%s: %d bytes is too small to tell a sample of at most %d bytes from the whole", tc.key, tc.size, tc.most)
		}
		served.Store(0)
		s.call("POST", "/api/sources", map[string]string{"alias": tc.alias, "uri": env.URI(tc.key), "source_type": tc.typ}, 200, nil)
		if n := served.Load(); n > tc.most {
			t.Errorf("registering %s (%d bytes) read %d bytes; want at most %d", tc.key, tc.size, n, tc.most)
		} else {
			t.Logf("registering %s read %d of %d bytes", tc.key, n, tc.size)
		}
		served.Store(0)
		var p scoped
		s.call("GET", "/api/sources/"+tc.alias+"/preview?limit=3", nil, 200, &p)
		if n := served.Load(); n > tc.most {
			t.Errorf("previewing %s read %d bytes; want at most %d", tc.key, n, tc.most)
		}
		if len(p.Rows) != 3 || *p.Rows[2][0] != "3" || *p.Rows[2][1] != "3.25" {
			t.Errorf("%s: first rows %v", tc.key, p.Rows)
		}
		if tc.typ == "parquet" && (p.TotalRows != rows || p.TotalKind != "exact") {
			t.Errorf("%s: total %d %s; want the footer's exact %d", tc.key, p.TotalRows, p.TotalKind, rows)
		}
		if tc.typ == "csv" && (p.TotalRows >= rows || p.TotalKind != "at_least") {
			t.Errorf("%s: total %d %s; want a lower bound from the sample", tc.key, p.TotalRows, p.TotalKind)
		}
	}

	// A recipe preview over both stages them from what their previews
	// read: no more bytes than the two previews.
	rec := kalla.Recipe{
		RecipeID: "pq-vs-gz",
		MatchSQL: "SELECT l.id AS left_id, r.id AS right_id FROM left_src l JOIN right_src r ON l.id = r.id AND l.amount = r.amount",
		Sources: kalla.Sources{
			Left:  kalla.SourceSpec{Alias: "pq", Type: kalla.SourceParquet, URI: env.URI("ledger.parquet"), PrimaryKey: []string{"id"}},
			Right: kalla.SourceSpec{Alias: "gz", Type: kalla.SourceCSV, URI: env.URI("ledger.csv.gz"), PrimaryKey: []string{"id"}},
		},
	}
	served.Store(0)
	var p preview
	s.call("POST", "/api/recipes/preview", map[string]any{"recipe": rec, "limit": 100}, 200, &p)
	if n, most := served.Load(), file.DefaultSampleBytes+64<<10+1+int64(head.Len())+2<<20; n > most {
		t.Errorf("the recipe preview read %d bytes; want at most %d", n, most)
	}
	if p.Left.Staged != 100 || p.Right.Staged != 100 || p.MatchedCount != 100 ||
		p.Left.Total != rows || p.Left.TotalKind != "exact" || p.Right.TotalKind != "at_least" || p.Right.Total >= 2*rows {
		t.Errorf("recipe preview: %+v", p)
	}
}
