package server

import (
	"context"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/kalla-recon/kalla/internal/dbpool"
	"github.com/kalla-recon/kalla/internal/kalla"
)

// scrapeTimeout bounds the store query a scrape makes.
const scrapeTimeout = 2 * time.Second

// runCounter is the store's count of runs by status.
type runCounter interface {
	CountRunsByStatus(ctx context.Context) (map[kalla.RunStatus]int, error)
}

// storeCollector reports runs by status and the queue depth from the
// metadata store at each scrape: the store is the queue, so its counts are
// right whichever process queued or ran the runs.
type storeCollector struct {
	store runCounter
	log   *slog.Logger
	runs  *prometheus.Desc
	queue *prometheus.Desc
	up    *prometheus.Desc
}

func newStoreCollector(s runCounter, log *slog.Logger) *storeCollector {
	return &storeCollector{
		store: s,
		log:   log,
		runs:  prometheus.NewDesc("kalla_runs", "Runs in the metadata store, by status.", []string{"status"}, nil),
		queue: prometheus.NewDesc("kalla_run_queue_depth", "Runs queued and not yet claimed by a worker.", nil, nil),
		up:    prometheus.NewDesc("kalla_metadata_store_up", "1 when the metadata store answered the last scrape.", nil, nil),
	}
}

// Describe sends the collector's descriptors.
func (c *storeCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.runs
	ch <- c.queue
	ch <- c.up
}

// Collect queries the store; when it does not answer only
// kalla_metadata_store_up (0) is reported, rather than stale counts.
func (c *storeCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), scrapeTimeout)
	defer cancel()
	counts, err := c.store.CountRunsByStatus(ctx)
	if err != nil {
		c.log.Warn("metrics: count runs", "err", err)
		ch <- prometheus.MustNewConstMetric(c.up, prometheus.GaugeValue, 0)
		return
	}
	ch <- prometheus.MustNewConstMetric(c.up, prometheus.GaugeValue, 1)
	for st, n := range counts {
		ch <- prometheus.MustNewConstMetric(c.runs, prometheus.GaugeValue, float64(n), string(st))
	}
	ch <- prometheus.MustNewConstMetric(c.queue, prometheus.GaugeValue, float64(counts[kalla.RunQueued]))
}

// poolStater is the connector layer's view of its source database pools.
type poolStater interface {
	PoolStats() []dbpool.Stat
}

// poolCollector reports connections Kalla holds open to users' source
// databases (Postgres, MySQL), as the connector layer's pool cache counts
// them; file sources hold no connections.
type poolCollector struct {
	pools poolStater
	limit int // the configured cap, reported before any pool exists
	open  *prometheus.Desc
	peak  *prometheus.Desc
	cap   *prometheus.Desc
	count *prometheus.Desc
}

func newPoolCollector(p poolStater, limit int) *poolCollector {
	if limit <= 0 {
		limit = dbpool.DefaultMaxConns
	}
	return &poolCollector{
		pools: p,
		limit: limit,
		open:  prometheus.NewDesc("kalla_source_connections_open", "Connections open to source databases, by kind.", []string{"kind"}, nil),
		peak:  prometheus.NewDesc("kalla_source_connections_peak", "The most connections any one source database's pool has had open at once.", nil, nil),
		cap:   prometheus.NewDesc("kalla_source_connections_cap", "The most connections Kalla opens to one source database.", nil, nil),
		count: prometheus.NewDesc("kalla_source_pools", "Cached connection pools of source databases.", nil, nil),
	}
}

// Describe sends the collector's descriptors.
func (c *poolCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.open
	ch <- c.peak
	ch <- c.cap
	ch <- c.count
}

// Collect sums the pool statistics.
func (c *poolCollector) Collect(ch chan<- prometheus.Metric) {
	stats := c.pools.PoolStats()
	open := map[string]int{"postgres": 0, "mysql": 0}
	peak, limit := 0, c.limit
	for _, s := range stats {
		open[s.Kind] += s.Open
		peak = max(peak, s.MaxOpen)
		limit = max(limit, s.Cap)
	}
	for kind, n := range open {
		ch <- prometheus.MustNewConstMetric(c.open, prometheus.GaugeValue, float64(n), kind)
	}
	ch <- prometheus.MustNewConstMetric(c.peak, prometheus.GaugeValue, float64(peak))
	ch <- prometheus.MustNewConstMetric(c.cap, prometheus.GaugeValue, float64(limit))
	ch <- prometheus.MustNewConstMetric(c.count, prometheus.GaugeValue, float64(len(stats)))
}

// memoryCollector reports the memory budget and how it is shared.
type memoryCollector struct {
	plan                   memoryPlan
	budget, limit, engines *prometheus.Desc
}

func newMemoryCollector(p memoryPlan) *memoryCollector {
	return &memoryCollector{
		plan:    p,
		budget:  prometheus.NewDesc("kalla_memory_budget_bytes", "Memory all DuckDB engines share (0: unknown).", nil, nil),
		limit:   prometheus.NewDesc("kalla_engine_memory_limit_bytes", "Each engine's DuckDB memory_limit taken from the budget (0: an explicit --memory-limit is used instead).", nil, nil),
		engines: prometheus.NewDesc("kalla_engines_max", "Engines that may work at once: concurrent runs plus preview and validation slots.", nil, nil),
	}
}

// Describe sends the collector's descriptors.
func (c *memoryCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.budget
	ch <- c.limit
	ch <- c.engines
}

// Collect reports the plan, which does not change while the server runs.
func (c *memoryCollector) Collect(ch chan<- prometheus.Metric) {
	ch <- prometheus.MustNewConstMetric(c.budget, prometheus.GaugeValue, float64(c.plan.budget))
	ch <- prometheus.MustNewConstMetric(c.limit, prometheus.GaugeValue, float64(c.plan.perEngine))
	ch <- prometheus.MustNewConstMetric(c.engines, prometheus.GaugeValue, float64(c.plan.slots))
}
