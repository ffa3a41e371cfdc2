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

// BenchmarkScopedLoad runs scoped loads (connector.Load: columns, a
// 200-row sample, a total that is exact when cheap) with filters on a
// 1,000,000-row table from 32 concurrent callers, each opening the source
// through sources.Manager as a request handler would. The filters are
// those of a person trying chips: amount >= X and d >= D on columns without
// an index (25 % to 100 % of the rows match, so an exact count reads the
// whole table), and on every fourth load also an id range of 1,000 (an
// index, an exact count). It prints latency percentiles and the most
// connections the database ever had from Kalla: counted by the pool and,
// independently, by sampling pg_stat_activity. The cap (4) must hold.
// Every sample row is checked against the filters, and totals against the
// true counts computed in Go from the table's formula. For comparison it
// runs a few loads per caller asking for the exact total, as every load
// did before totals were bounded. Run with
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
	// that the sampler does not count itself. Parallel workers of an exact
	// count are server processes, not connections: not counted.
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
			if err := conn.QueryRow(ctx, "SELECT count(*) FROM pg_stat_activity WHERE datname = $1 AND backend_type = 'client backend'", dbName).Scan(&n); err != nil {
				b.Error(err)
				return
			}
			if n > peak.Load() {
				peak.Store(n)
			}
			time.Sleep(2 * time.Millisecond)
		}
	}
	// scope is one load's filters: amount >= minCents/100, d >= 2020-01-01
	// + minDay, and id in [lo, lo+999] when lo > 0.
	type scope struct{ minCents, minDay, lo int64 }
	day0 := time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC)
	pick := func(r *rand.Rand, i int) scope {
		sc := scope{minCents: r.Int64N(5_000_000), minDay: r.Int64N(750)}
		if i%4 == 0 {
			sc.lo = 1 + r.Int64N(rowCount-1000)
		}
		return sc
	}
	filters := func(sc scope) []kalla.Filter {
		fs := []kalla.Filter{
			{Column: "amount", Op: kalla.OpGte, Values: []kalla.Scalar{{Text: fmt.Sprintf("%d.%02d", sc.minCents/100, sc.minCents%100), IsNumber: true}}},
			{Column: "d", Op: kalla.OpGte, Values: []kalla.Scalar{{Text: day0.AddDate(0, 0, int(sc.minDay)).Format("2006-01-02")}}},
		}
		if sc.lo > 0 {
			fs = append(fs, kalla.Filter{Column: "id", Op: kalla.OpBetween, IsArray: true, Values: []kalla.Scalar{{Text: fmt.Sprint(sc.lo), IsNumber: true}, {Text: fmt.Sprint(sc.lo + 999), IsNumber: true}}})
		}
		return fs
	}
	// match and trueCount follow CreateBenchTable's formula: row g has
	// amount (g*7919 % 10,000,000) cents and day g % 1500.
	match := func(sc scope, g int64) bool {
		return (g*7919)%10_000_000 >= sc.minCents && g%1500 >= sc.minDay && (sc.lo == 0 || (g >= sc.lo && g <= sc.lo+999))
	}
	trueCount := func(sc scope) int64 {
		from, to := int64(1), int64(rowCount)
		if sc.lo > 0 {
			from, to = sc.lo, sc.lo+999
		}
		var n int64
		for g := from; g <= to; g++ {
			if match(sc, g) {
				n++
			}
		}
		return n
	}
	type checked struct {
		sc   scope
		p    *connector.Preview
		rows int
	}
	type result struct {
		lat            []time.Duration
		wall           time.Duration
		poolMax, pgMax int64
		loads          int64
		kinds          map[string]int
		checks         []checked
	}
	m := sources.New(sources.Config{Pools: dbpool.Options{MaxConns: poolCap}})
	defer m.Close()
	runLoad := func(perCall int, opts connector.LoadOptions) result {
		res := result{kinds: map[string]int{}}
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
				for i := range perCall {
					sc := pick(r, i)
					t0 := time.Now()
					s, err := m.OpenURI(ctx, src)
					if err != nil {
						b.Error(err)
						return
					}
					pv, err := connector.LoadWith(ctx, s, "big", filters(sc), 200, opts)
					s.Close()
					if err != nil {
						b.Error(err)
						return
					}
					d := time.Since(t0)
					// Every sample row is in scope: id, s, amount, d.
					for _, row := range pv.Rows {
						var g int64
						fmt.Sscan(*row[0], &g)
						if !match(sc, g) || *row[3] != day0.AddDate(0, 0, int(g%1500)).Format("2006-01-02") {
							b.Errorf("row %v is outside the scope %+v", row, sc)
						}
					}
					mu.Lock()
					res.lat = append(res.lat, d)
					res.loads++
					res.kinds[pv.TotalKind]++
					if i < 2 || pv.TotalKind == connector.TotalExact && i%4 == 0 && len(res.checks) < 64 {
						res.checks = append(res.checks, checked{sc, pv, len(pv.Rows)})
					}
					mu.Unlock()
				}
			}()
		}
		wg.Wait()
		res.wall = time.Since(start)
		close(stop)
		<-sampled
		res.pgMax = peak.Load()
		slices.Sort(res.lat)
		// Totals against the truth, after the clock stopped.
		for _, c := range res.checks {
			want := trueCount(c.sc)
			switch {
			case c.p.TotalKind == connector.TotalExact && c.p.TotalRows != want:
				b.Errorf("scope %+v: exact total %d, true count %d", c.sc, c.p.TotalRows, want)
			case c.p.TotalKind == connector.TotalAtLeast && c.p.TotalRows > want:
				b.Errorf("scope %+v: total at least %d, true count %d", c.sc, c.p.TotalRows, want)
			case int64(c.rows) != min(200, want):
				b.Errorf("scope %+v: %d sample rows of %d", c.sc, c.rows, want)
			}
		}
		return res
	}
	pct := func(lat []time.Duration, p float64) time.Duration {
		if len(lat) == 0 {
			return 0
		}
		return lat[min(len(lat)-1, int(float64(len(lat))*p))]
	}
	b.ResetTimer()

	// Warm the pool once, as a running server would be.
	if s, err := m.OpenURI(ctx, src); err == nil {
		s.Close()
	}
	bounded := runLoad(perCall, connector.LoadOptions{})
	for _, st := range m.PoolStats() {
		bounded.poolMax = max(bounded.poolMax, int64(st.MaxOpen))
	}
	exact := runLoad(3, connector.LoadOptions{ExactTotal: true})
	for _, st := range m.PoolStats() {
		exact.poolMax = max(exact.poolMax, int64(st.MaxOpen))
	}

	var out strings.Builder
	fmt.Fprintf(&out, "\nscoped loads (2-3 filters, 200-row sample) of a %d-row table from %d concurrent callers, shared pool (cap %d):\n", rowCount, callers, poolCap)
	for _, r := range []struct {
		name string
		res  result
	}{{"total exact when cheap (default)", bounded}, {"exact total on every load", exact}} {
		fmt.Fprintf(&out, "  %-34s %4d loads  p50 %7.1f ms  p99 %7.1f ms  max %7.1f ms  %5.0f loads/s  totals %v  max conns: pool %d, pg_stat_activity %d\n",
			r.name, r.res.loads, ms(pct(r.res.lat, 0.50)), ms(pct(r.res.lat, 0.99)), ms(r.res.lat[len(r.res.lat)-1]),
			float64(r.res.loads)/r.res.wall.Seconds(), r.res.kinds, r.res.poolMax, r.res.pgMax)
	}
	b.Log(out.String())
	b.ReportMetric(ms(pct(bounded.lat, 0.50)), "p50-ms")
	b.ReportMetric(ms(pct(bounded.lat, 0.99)), "p99-ms")
	b.ReportMetric(float64(bounded.pgMax), "max-conns")
	for _, r := range []result{bounded, exact} {
		if r.pgMax > poolCap || r.poolMax > poolCap {
			b.Errorf("the source saw %d connections (pool counted %d): more than the cap %d", r.pgMax, r.poolMax, poolCap)
		}
	}
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
