package fetcher

import (
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
)

// Outcomes of intake_fetcher_runs_total.
const (
	outcomeFetched = "fetched"
	outcomeSkipped = "skipped"
	outcomeFailed  = "failed"
)

type metrics struct {
	bytes         prometheus.Counter
	runs          *prometheus.CounterVec
	chunks        prometheus.Counter
	fetchDuration prometheus.Histogram
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		bytes: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "intake_fetcher_bytes_total",
			Help: "Bytes of source files downloaded into the run archive.",
		}),
		runs: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "intake_fetcher_runs_total",
			Help: "Runs the fetcher is done with, by outcome: fetched (chunked and sealed), skipped (file unchanged), failed.",
		}, []string{"outcome"}),
		chunks: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "intake_fetcher_chunks_total",
			Help: "Chunks published for the mappers (a redelivered run publishes its chunks again).",
		}),
		fetchDuration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "intake_fetcher_fetch_duration_seconds",
			Help:    "Time to download a source file into the run archive.",
			Buckets: prometheus.ExponentialBuckets(0.05, 2.5, 10),
		}),
	}
	for _, o := range []string{outcomeFetched, outcomeSkipped, outcomeFailed} {
		m.runs.WithLabelValues(o)
	}
	if reg == nil {
		reg = prometheus.NewRegistry()
	}
	for _, c := range []prometheus.Collector{m.bytes, m.runs, m.chunks, m.fetchDuration} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("fetcher: register metrics: %w", err)
		}
	}
	return m, nil
}
