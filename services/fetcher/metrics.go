package fetcher

import (
	"fmt"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/intakehq/intake/pkg/pipeline"
)

// The fetcher's metrics; docs/metrics.md is their catalog (names, labels,
// the dashboard panels and alerts that use them).

// Outcomes of intake_fetcher_runs_total.
const (
	outcomeFetched = "fetched"
	outcomeSkipped = "skipped" // the file's SHA-256 equals the last successful run's
	outcomeFailed  = "failed"
)

type metrics struct {
	bytes         prometheus.Counter
	runs          *prometheus.CounterVec
	chunks        prometheus.Counter
	fetchDuration prometheus.Histogram
	// consumer exports the state of the run request consumer once Run
	// has connected (consumer.Watch).
	consumer *pipeline.ConsumerCollector
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		bytes: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "intake_fetcher_fetched_bytes_total",
			Help: "Bytes of source files downloaded into the run archive.",
		}),
		runs: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "intake_fetcher_runs_total",
			Help: "Runs the fetcher is done with, by outcome: fetched (chunked and sealed), skipped (file unchanged: same SHA-256 as the last successful run, or the server answered 304 Not Modified), failed.",
		}, []string{"outcome"}),
		chunks: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "intake_fetcher_chunks_total",
			Help: "Chunks published for the mappers (a redelivered run publishes its chunks again).",
		}),
		fetchDuration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "intake_fetcher_fetch_duration_seconds",
			Help:    "Time to download a source file into the run archive.",
			Buckets: prometheus.ExponentialBuckets(0.05, 2.5, 10), // 50ms .. 3h
		}),
		consumer: pipeline.NewConsumerCollector(pipeline.StreamRuns, pipeline.ConsumerFetcher),
	}
	for _, o := range []string{outcomeFetched, outcomeSkipped, outcomeFailed} {
		m.runs.WithLabelValues(o)
	}
	if reg == nil {
		reg = prometheus.NewRegistry()
	}
	for _, c := range []prometheus.Collector{m.bytes, m.runs, m.chunks, m.fetchDuration, m.consumer} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("fetcher: register metrics: %w", err)
		}
	}
	return m, nil
}
