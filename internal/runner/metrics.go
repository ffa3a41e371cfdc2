package runner

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/kalla-recon/kalla/internal/kalla"
)

// Metrics are the pool's Prometheus metrics. Counts of runs by status and
// the queue depth come from the store (see package server), since the store
// is the queue; these are what only the executing process knows. A nil
// *Metrics records nothing.
type Metrics struct {
	runDuration *prometheus.HistogramVec
	staged      *prometheus.CounterVec
	active      prometheus.Gauge
}

// NewMetrics creates the pool's metrics and registers them with reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		runDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "kalla_run_duration_seconds",
			Help: "Wall time of finished runs, from claim to final status, by final status.",
			// Runs take from well under a second to hours.
			Buckets: []float64{0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800, 3600, 7200},
		}, []string{"status"}),
		staged: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "kalla_rows_staged_total",
			Help: "Rows staged into run engines from sources, by side.",
		}, []string{"side"}),
		active: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "kalla_runs_executing",
			Help: "Runs this process is executing now.",
		}),
	}
	reg.MustRegister(m.runDuration, m.staged, m.active)
	return m
}

func (m *Metrics) runStarted() {
	if m != nil {
		m.active.Inc()
	}
}

func (m *Metrics) runFinished(status kalla.RunStatus, d time.Duration) {
	if m != nil {
		m.active.Dec()
		m.runDuration.WithLabelValues(string(status)).Observe(d.Seconds())
	}
}

func (m *Metrics) rowsStaged(side string, n int64) {
	if m != nil {
		m.staged.WithLabelValues(side).Add(float64(n))
	}
}
