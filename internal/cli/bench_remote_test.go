package cli_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/kalla-recon/kalla/internal/gen"
	"github.com/kalla-recon/kalla/internal/kalla"
	"github.com/kalla-recon/kalla/internal/testenv"
)

// BenchmarkRunPostgresS3 runs `kalla run` on the 1M-invoice / 1.05M-payment
// benchmark set with the invoices in a Postgres table and the payments as a
// CSV object in S3, and, in the same run and alternating with it, the same
// reconciliation from local CSV files. Both answers are checked against the
// generator's ground truth; times, stage breakdowns and the ratio are
// printed, never asserted. Run with
//
//	go test -run '^$' -bench RunPostgresS3 -benchtime 1x ./internal/cli
func BenchmarkRunPostgresS3(b *testing.B) {
	n := 1_000_000
	if s := os.Getenv("KALLA_BENCH_INVOICES"); s != "" {
		fmt.Sscan(s, &n)
	}
	dir := b.TempDir()
	files, truth, err := gen.Write(dir, gen.Standard(n))
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()

	// Left side: the invoices in Postgres, loaded with COPY.
	pgURI := testenv.Postgres(b)
	conn, err := pgx.Connect(ctx, pgURI)
	if err != nil {
		b.Fatal(err)
	}
	if _, err := conn.Exec(ctx, `CREATE TABLE invoices (invoice_id text PRIMARY KEY, customer text, amount numeric(12,2), currency text, issued_on date)`); err != nil {
		b.Fatal(err)
	}
	f, err := os.Open(files.Invoices)
	if err != nil {
		b.Fatal(err)
	}
	if _, err := conn.PgConn().CopyFrom(ctx, f, `COPY invoices FROM STDIN WITH (FORMAT csv, HEADER true)`); err != nil {
		b.Fatal(err)
	}
	f.Close()
	conn.Exec(ctx, "VACUUM ANALYZE invoices")
	conn.Close(ctx)
	u, err := url.Parse(pgURI)
	if err != nil {
		b.Fatal(err)
	}
	q := u.Query()
	q.Set("table", "invoices")
	u.RawQuery = q.Encode()

	// Right side: the payments CSV in S3.
	s3 := testenv.S3(b)
	data, err := os.ReadFile(files.Payments)
	if err != nil {
		b.Fatal(err)
	}
	s3.Put(b, "payments.csv", data)
	b.Setenv("S3_ENDPOINT", s3.Endpoint)
	b.Setenv("S3_ACCESS_KEY", s3.AccessKey)
	b.Setenv("S3_SECRET_KEY", s3.SecretKey)
	b.Setenv("S3_REGION", s3.Region)

	write := func(name string, left, right string) string {
		rec := gen.Recipe(gen.Files{Invoices: left, Payments: right})
		rec.Sources.Left.Type, rec.Sources.Right.Type = "", ""
		bs, _ := json.Marshal(rec)
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, bs, 0o644); err != nil {
			b.Fatal(err)
		}
		return p
	}
	remote := write("remote.json", u.String(), s3.URI("payments.csv"))
	local := write("local.json", files.Invoices, files.Payments)

	run := func(recipe string) (time.Duration, kalla.Summary) {
		out := filepath.Join(b.TempDir(), "out")
		t0 := time.Now()
		code, stdout, stderr := runKalla(b, "run", "--recipe", recipe, "--out", out, "--json")
		d := time.Since(t0)
		if code != 0 {
			b.Fatalf("kalla run %s: exit %d: %s", filepath.Base(recipe), code, stderr)
		}
		var s kalla.Summary
		if err := json.Unmarshal([]byte(stdout), &s); err != nil {
			b.Fatal(err)
		}
		if s.MatchedCount != int64(truth.MatchedPairs()) || s.MatchedLeftRecords != int64(truth.MatchedInvoices()) ||
			s.UnmatchedLeftCount != int64(truth.OrphanInvoices) || s.UnmatchedRightCount != int64(truth.StrayPayments) {
			b.Fatalf("%s: wrong answer: %+v, truth %+v", filepath.Base(recipe), s, truth)
		}
		return d, s
	}
	reps := 3
	var rt, lt []time.Duration
	var last kalla.Summary
	b.ResetTimer()
	for i := 0; i < reps; i++ {
		d, s := run(remote)
		rt, last = append(rt, d), s
		d, _ = run(local)
		lt = append(lt, d)
	}
	b.StopTimer()
	med := func(ds []time.Duration) time.Duration {
		c := append([]time.Duration(nil), ds...)
		sort.Slice(c, func(i, j int) bool { return c[i] < c[j] })
		return c[len(c)/2]
	}
	fmt.Printf("kalla run, %d invoices (Postgres) vs %d payments (CSV in S3), answers checked against ground truth\n", truth.Invoices, truth.Payments)
	fmt.Printf("  postgres+s3  runs %v  median %v\n", rt, med(rt))
	fmt.Printf("  local csv    runs %v  median %v\n", lt, med(lt))
	fmt.Printf("  ratio postgres+s3 / local csv: %.2f\n", float64(med(rt))/float64(med(lt)))
	fmt.Printf("  stages (last postgres+s3 run):")
	for _, st := range last.Stages {
		fmt.Printf(" %s %dms", st.Name, st.DurationMS)
	}
	fmt.Println()
}
