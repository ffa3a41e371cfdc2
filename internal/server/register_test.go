package server_test

import (
	"bytes"
	"database/sql"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
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
	// The 2M-row CSV text is written by DuckDB and compressed by gzip(1):
	// formatting and deflating its 66 MB in this process took over a
	// minute of a core under the race detector. Its lines are those of
	// fmt's "%d,%d.25,%x" (checked on the first and last ones below).
	csvPath := filepath.Join(dir, "ledger.csv")
	if _, err := db.Exec(fmt.Sprintf(`COPY (SELECT i AS id, CAST(i %% 1000 AS VARCHAR) || '.25' AS amount, printf('%%x', i * 2654435761) AS memo
		FROM range(1, %d) t(i) ORDER BY i) TO '%s' (FORMAT csv, HEADER)`, 2*rows+1, csvPath)); err != nil {
		t.Fatal(err)
	}
	checkLedgerLines(t, csvPath, 2*rows)
	gz := gzipFile(t, csvPath, -1)
	env.Put(t, "ledger.csv.gz", gz)
	// What the first 8 MiB of text take compressed.
	head := gzipFile(t, csvPath, file.DefaultSampleBytes)

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
		{"gz", "ledger.csv.gz", "csv", int64(len(gz)), int64(len(head)) + 2<<20},
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
	if n, most := served.Load(), file.DefaultSampleBytes+64<<10+1+int64(len(head))+2<<20; n > most {
		t.Errorf("the recipe preview read %d bytes; want at most %d", n, most)
	}
	if p.Left.Staged != 100 || p.Right.Staged != 100 || p.MatchedCount != 100 ||
		p.Left.Total != rows || p.Left.TotalKind != "exact" || p.Right.TotalKind != "at_least" || p.Right.Total >= 2*rows {
		t.Errorf("recipe preview: %+v", p)
	}
}

// checkLedgerLines checks that the CSV DuckDB wrote for
// TestRegisterReadsOnlyTheStart has the header and, on its first thousand
// lines and its last, exactly the text fmt gives row i: "%d,%d.25,%x" of
// i, i%1000 and i*2654435761.
func checkLedgerLines(t *testing.T, path string, rows int) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	lines := bytes.Split(bytes.TrimSuffix(b, []byte("\n")), []byte("\n"))
	if len(lines) != rows+1 || string(lines[0]) != "id,amount,memo" {
		t.Fatalf("%s: %d lines, header %q; want %d rows under id,amount,memo", path, len(lines), lines[0], rows)
	}
	for i := 1; i <= rows; i++ {
		if i == 1001 {
			i = rows
		}
		if want := fmt.Sprintf("%d,%d.25,%x", i, i%1000, i*2654435761); string(lines[i]) != want {
			t.Fatalf("%s line %d: %q, want %q", path, i, lines[i], want)
		}
	}
}

// gzipFile compresses the first n bytes of a file (all of it when n < 0)
// with gzip(1) at its default level, which is compress/gzip's.
func gzipFile(t *testing.T, path string, n int64) []byte {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var in io.Reader = f
	if n >= 0 {
		in = io.LimitReader(f, n)
	}
	cmd := exec.Command("gzip", "-c", "-n")
	cmd.Stdin = in
	var out, errs bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errs
	if err := cmd.Run(); err != nil {
		t.Fatalf("gzip %s: %v %s", path, err, errs.String())
	}
	return out.Bytes()
}
