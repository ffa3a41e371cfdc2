package postgres_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/url"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/kalla-recon/kalla/internal/connector"
	"github.com/kalla-recon/kalla/internal/dbpool"
	"github.com/kalla-recon/kalla/internal/kalla"
	"github.com/kalla-recon/kalla/internal/postgres"
	"github.com/kalla-recon/kalla/internal/sources"
	"github.com/kalla-recon/kalla/internal/testenv"
)

// BenchmarkScopedLoad runs scoped loads (connector.Load: columns, true
// count, a 200-row sample) with two filters on a 1,000,000-row table from
// 32 concurrent callers, each opening the source through sources.Manager
// as a request handler would. It prints latency percentiles and the most
// connections the database ever had from Kalla: counted by the pool and,
// independently, by sampling pg_stat_activity. The cap (4) must hold. For
// comparison it runs the same load with a new pool per request, the
// design this package replaced. Run with
//
//	go test -run '^$' -bench ScopedLoad ./internal/postgres
func BenchmarkScopedLoad(b *testing.B) {
	const (
		callers  = 32
		perCall  = 25
		poolCap  = 4
		rowCount = 1_000_000
	)
	uri := testenv.Postgres(b)
	postgres.CreateBenchTable(b, uri, rowCount)
	u, _ := url.Parse(uri)
	dbName := strings.TrimPrefix(u.Path, "/")
	src := withTable(b, uri, "big")
	ctx := context.Background()

	// Connections to the test database, sampled from another database so
	// that the sampler does not count itself.
	sample := func(stop <-chan struct{}, peak *atomic.Int64) {
		conn, err := pgx.Connect(ctx, os.Getenv(testenv.EnvPostgresURL))
		if err != nil {
			b.Error(err)
			return
		}
		defer conn.Close(ctx)
		for {
			select {
			case <-stop:
				return
			default:
			}
			var n int64
			if err := conn.QueryRow(ctx, "SELECT count(*) FROM pg_stat_activity WHERE datname = $1", dbName).Scan(&n); err != nil {
				b.Error(err)
				return
			}
			if n > peak.Load() {
				peak.Store(n)
			}
			time.Sleep(2 * time.Millisecond)
		}
	}
	filters := func(r *rand.Rand) []kalla.Filter {
		lo := r.IntN(rowCount - 1000)
		return []kalla.Filter{
			{Column: "id", Op: kalla.OpBetween, IsArray: true, Values: []kalla.Scalar{{Text: fmt.Sprint(lo), IsNumber: true}, {Text: fmt.Sprint(lo + 999), IsNumber: true}}},
			{Column: "amount", Op: kalla.OpGte, Values: []kalla.Scalar{{Text: "10000.00", IsNumber: true}}},
		}
	}
	type result struct {
		lat              []time.Duration
		wall             time.Duration
		poolMax, pgMax   int64
		loads, previewed int64
	}
	runLoad := func(open func(ctx context.Context) (connector.Source, func(), error)) result {
		var res result
		var mu sync.Mutex
		var peak atomic.Int64
		stop := make(chan struct{})
		sampled := make(chan struct{})
		go func() { sample(stop, &peak); close(sampled) }()
		start := time.Now()
		var wg sync.WaitGroup
		for c := range callers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				r := rand.New(rand.NewPCG(uint64(c), 1))
				for range perCall {
					t0 := time.Now()
					s, done, err := open(ctx)
					if err != nil {
						b.Error(err)
						return
					}
					pv, err := connector.Load(ctx, s, "big", filters(r), 200)
					s.Close()
					done()
					if err != nil {
						b.Error(err)
						return
					}
					d := time.Since(t0)
					mu.Lock()
					res.lat = append(res.lat, d)
					res.loads++
					res.previewed += int64(pv.PreviewRows)
					mu.Unlock()
					if pv.PreviewRows > 200 || int64(pv.PreviewRows) > pv.TotalRows {
						b.Errorf("preview %d rows of %d", pv.PreviewRows, pv.TotalRows)
					}
				}
			}()
		}
		wg.Wait()
		res.wall = time.Since(start)
		close(stop)
		<-sampled
		res.pgMax = peak.Load()
		slices.Sort(res.lat)
		return res
	}
	pct := func(lat []time.Duration, p float64) time.Duration {
		if len(lat) == 0 {
			return 0
		}
		return lat[min(len(lat)-1, int(float64(len(lat))*p))]
	}
	b.ResetTimer()

	mgr := sources.New(sources.Config{Pools: dbpool.Options{MaxConns: poolCap}})
	defer mgr.Close()
	// Warm the pool once, as a running server would be.
	if s, err := mgr.OpenURI(ctx, src); err == nil {
		s.Close()
	}
	shared := runLoad(func(ctx context.Context) (connector.Source, func(), error) {
		s, err := mgr.OpenURI(ctx, src)
		return s, func() {}, err
	})
	for _, st := range mgr.PoolStats() {
		shared.poolMax = max(shared.poolMax, int64(st.MaxOpen))
	}
	perRequest := runLoad(func(ctx context.Context) (connector.Source, func(), error) {
		pools := dbpool.New(dbpool.Options{MaxConns: poolCap})
		s, err := postgres.Open(ctx, src, postgres.Options{Pools: pools})
		if err != nil {
			pools.Close()
			return nil, nil, err
		}
		return s, func() { pools.Close() }, nil
	})

	var out strings.Builder
	fmt.Fprintf(&out, "\n%d scoped loads (2 filters, 200-row sample) of a %d-row table from %d concurrent callers:\n", shared.loads, rowCount, callers)
	for _, r := range []struct {
		name string
		res  result
	}{{"shared pool (sources.Manager, cap 4)", shared}, {"new pool per request (old design)", perRequest}} {
		fmt.Fprintf(&out, "  %-38s p50 %6.1f ms  p99 %6.1f ms  max %6.1f ms  %5.0f loads/s  max conns: pool %d, pg_stat_activity %d\n",
			r.name, ms(pct(r.res.lat, 0.50)), ms(pct(r.res.lat, 0.99)), ms(r.res.lat[len(r.res.lat)-1]),
			float64(r.res.loads)/r.res.wall.Seconds(), r.res.poolMax, r.res.pgMax)
	}
	b.Log(out.String())
	b.ReportMetric(ms(pct(shared.lat, 0.50)), "p50-ms")
	b.ReportMetric(ms(pct(shared.lat, 0.99)), "p99-ms")
	b.ReportMetric(float64(shared.pgMax), "max-conns")
	if shared.pgMax > poolCap || shared.poolMax > poolCap {
		b.Errorf("the source saw %d connections (pool counted %d): more than the cap %d", shared.pgMax, shared.poolMax, poolCap)
	}
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
