package server_test

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/kalla-recon/kalla/internal/dbpool"
	"github.com/kalla-recon/kalla/internal/kalla"
	"github.com/kalla-recon/kalla/internal/recon"
	"github.com/kalla-recon/kalla/internal/testenv"
)

// bigTableRows sizes the Postgres table that a run stages while the test
// cuts its connection: big enough that staging lasts well over the moment
// it takes to notice the first rows and terminate the backend.
const bigTableRows = 1_500_000

// bigTable creates the table big (id, ref, amount, note) in a fresh
// Postgres database and returns the database's URI.
func bigTable(t *testing.T) string {
	t.Helper()
	pg := testenv.Postgres(t)
	t0 := time.Now()
	pgExec(t, pg,
		`CREATE TABLE big (id bigint, ref text, amount numeric(12,2), note text)`,
		fmt.Sprintf(`INSERT INTO big SELECT i, 'INV-' || lpad(i::text, 8, '0'), (i %% 100000) / 100.0, md5(i::text) FROM generate_series(1, %d) i`, bigTableRows),
		`ANALYZE big`)
	t.Logf("created %d rows in %s", bigTableRows, time.Since(t0).Round(time.Millisecond))
	return pg
}

// terminateReaders ends every other session on the database at uri, as a
// database restart or an administrator would, and returns how many.
func terminateReaders(t *testing.T, uri string) int {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, uri)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	var n int
	err = conn.QueryRow(ctx, `SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity
		WHERE datname = current_database() AND pid <> pg_backend_pid()`).Scan(&n)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// TestSourceLostMidRun cuts a run's connection to its Postgres source while
// it stages the table: the run fails with a reason naming the source and
// the broken connection, and the server keeps answering. A second run of
// the same recipe, cancelled while staging, stops at once: cancelling
// stops the source read, not only DuckDB.
func TestSourceLostMidRun(t *testing.T) {
	pg := bigTable(t)
	s := startServer(t, nil)
	rec := &kalla.Recipe{
		RecipeID: "pg-big",
		MatchSQL: "SELECT l.id, r.invoice_id FROM left_src l JOIN right_src r ON l.ref = r.invoice_id",
		Sources: kalla.Sources{
			Left:  kalla.SourceSpec{Alias: "big", URI: withTable(pg, "big"), PrimaryKey: []string{"id"}},
			Right: kalla.SourceSpec{Alias: "invoices", URI: small.Invoices, PrimaryKey: []string{"invoice_id"}},
		},
	}
	id := s.startRun(map[string]any{"recipe": rec})
	r := s.waitRun(id, 60*time.Second, "rows staged from Postgres", func(r run) bool { return r.LeftRowsStaged > 0 || r.Status.Done() })
	if r.Status.Done() {
		t.Fatalf("run finished before its source could be cut: %s %q", r.Status, r.Error)
	}
	// Both sides stage at once, within the first 70 % of the progress.
	if (r.Stage != recon.StageLeft && r.Stage != recon.StageRight) || r.Progress <= 0 || r.Progress >= 0.70 {
		t.Errorf("progress while staging: stage %s, %.3f", r.Stage, r.Progress)
	}
	n := terminateReaders(t, pg)
	t.Logf("terminated %d backends after %d of %d rows were staged", n, r.LeftRowsStaged, bigTableRows)
	r = s.waitRun(id, 30*time.Second, "failure", func(r run) bool { return r.Status.Done() })
	t.Logf("run failed: %s", r.Error)
	if r.Status != kalla.RunFailed || !strings.Contains(r.Error, "big") || !strings.Contains(r.Error, "xxxxx") ||
		!(strings.Contains(r.Error, "connection") || strings.Contains(r.Error, "terminat")) {
		t.Fatalf("run after its source was cut: %s %q", r.Status, r.Error)
	}
	pw, _ := mustParse(t, pg).User.Password()
	if strings.Contains(r.Error, pw) {
		t.Fatalf("failure reason carries the password: %q", r.Error)
	}
	s.call("GET", "/healthz", nil, 200, nil)
	s.call("GET", "/readyz", nil, 200, nil)

	id = s.startRun(map[string]any{"recipe": rec})
	s.waitRun(id, 60*time.Second, "rows staged from Postgres", func(r run) bool { return r.LeftRowsStaged > 0 || r.Status.Done() })
	t0 := time.Now()
	s.call("POST", "/api/runs/"+id+"/cancel", nil, 202, nil)
	r = s.waitRun(id, cancelWithin, "cancelled", func(r run) bool { return r.Status.Done() })
	t.Logf("staging run cancelled after %s, %d rows staged", time.Since(t0).Round(time.Millisecond), r.LeftRowsStaged)
	if r.Status != kalla.RunCancelled {
		t.Fatalf("cancelled staging run: %s %q", r.Status, r.Error)
	}
	// The cancelled query does not linger on the server.
	deadline := time.Now().Add(cancelWithin)
	for {
		if activeQueries(t, pg) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the source still runs a query after the run was cancelled")
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// activeQueries counts other sessions running a statement on the database.
func activeQueries(t *testing.T, uri string) int {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, uri)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	var n int
	if err := conn.QueryRow(ctx, `SELECT count(*) FROM pg_stat_activity
		WHERE datname = current_database() AND pid <> pg_backend_pid() AND state = 'active'`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// Load test settings: 32 clients on loopback, each sending loadRequests
// load-scoped requests to one Postgres source.
const (
	loadClients  = 32
	loadRequests = 15
)

// TestLoadScopedUnderLoad sends 32 concurrent clients' load-scoped
// requests to one Postgres source: none fails, latencies are printed, and
// the connections Kalla holds to the source never exceed its pool cap.
func TestLoadScopedUnderLoad(t *testing.T) {
	pg := testenv.Postgres(t)
	pgExec(t, pg, `CREATE TABLE payments (id bigint PRIMARY KEY, payer text, amount numeric(12,2), paid_on date)`,
		`INSERT INTO payments SELECT i, 'payer ' || (i % 50), (i % 20000) / 10.0, date '2026-01-01' + (i % 300) FROM generate_series(1, 20000) i`)
	s := startServer(t, nil)
	s.call("POST", "/api/sources", map[string]string{"alias": "payments", "uri": withTable(pg, "payments")}, 200, nil)

	var peak atomic.Int64
	stop := make(chan struct{})
	var sampler sync.WaitGroup
	sampler.Add(1)
	go func() {
		defer sampler.Done()
		for {
			for _, st := range s.Sources.PoolStats() {
				if int64(st.Open) > peak.Load() {
					peak.Store(int64(st.Open))
				}
			}
			select {
			case <-stop:
				return
			case <-time.After(2 * time.Millisecond):
			}
		}
	}()

	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: loadClients}, Timeout: time.Minute}
	var mu sync.Mutex
	var lat []time.Duration
	var failures []string
	var wg sync.WaitGroup
	t0 := time.Now()
	for c := 0; c < loadClients; c++ {
		wg.Add(1)
		go func(c int) {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(c), 7))
			for i := 0; i < loadRequests; i++ {
				lo := rng.IntN(1500)
				payer := fmt.Sprintf("payer %d", rng.IntN(50))
				body := mustJSON(map[string]any{"limit": 50, "conditions": []map[string]any{
					{"column": "amount", "op": "between", "value": []int{lo, lo + 300}},
					{"column": "payer", "op": "eq", "value": payer},
				}})
				start := time.Now()
				resp, err := client.Post(s.url+"/api/sources/payments/load-scoped", "application/json", strings.NewReader(body))
				d := time.Since(start)
				var p scoped
				var msg string
				if err != nil {
					msg = err.Error()
				} else {
					b, _ := readAll(resp)
					if resp.StatusCode != 200 {
						msg = fmt.Sprintf("%d %s", resp.StatusCode, b)
					} else if err := json.Unmarshal(b, &p); err != nil || p.TotalRows == 0 || p.PreviewRows != min(50, int(p.TotalRows)) {
						msg = fmt.Sprintf("bad answer %s", b)
					}
				}
				mu.Lock()
				lat = append(lat, d)
				if msg != "" {
					failures = append(failures, msg)
				}
				mu.Unlock()
			}
		}(c)
	}
	wg.Wait()
	wall := time.Since(t0)
	close(stop)
	sampler.Wait()

	if len(failures) > 0 {
		t.Fatalf("%d of %d requests failed; first: %s", len(failures), len(lat), failures[0])
	}
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	pct := func(p float64) time.Duration { return lat[min(len(lat)-1, int(p*float64(len(lat))))] }
	t.Logf("load-scoped: %d clients × %d requests = %d in %s (%.0f req/s); p50 %s, p90 %s, p99 %s, max %s",
		loadClients, loadRequests, len(lat), wall.Round(time.Millisecond), float64(len(lat))/wall.Seconds(),
		pct(0.50).Round(100*time.Microsecond), pct(0.90).Round(100*time.Microsecond), pct(0.99).Round(100*time.Microsecond), lat[len(lat)-1].Round(100*time.Microsecond))
	stats := s.Sources.PoolStats()
	if len(stats) != 1 {
		t.Fatalf("pools: %+v", stats)
	}
	limit := stats[0].Cap
	t.Logf("source connections: peak sampled %d, pool's own peak %d, cap %d", peak.Load(), stats[0].MaxOpen, limit)
	if limit != dbpool.DefaultMaxConns || stats[0].MaxOpen > limit || peak.Load() > int64(limit) {
		t.Fatalf("connections to the source went over the cap: %+v, sampled peak %d", stats[0], peak.Load())
	}
	_, m := s.do("GET", "/metrics", nil)
	if !strings.Contains(string(m), fmt.Sprintf("kalla_source_connections_peak %d", stats[0].MaxOpen)) {
		t.Errorf("metrics do not report the peak")
	}
}
