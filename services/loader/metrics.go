package loader

import (
	"fmt"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/intakehq/intake/pkg/pipeline"
	"github.com/intakehq/intake/services/loader/internal/store"
)

// The loader's metrics; docs/metrics.md is their catalog (names, labels,
// the dashboard panels and alerts that use them).

type metrics struct {
	rowsStaged    prometheus.Counter
	batchWrite    prometheus.Histogram
	commit        prometheus.Histogram
	rowsCommitted *prometheus.CounterVec
	dryRuns       prometheus.Counter
	// janitorAbandoned are the stale runs the janitor dropped.
	janitorAbandoned prometheus.Counter
	// consumer exports the state of the batch and seal consumer once Run
	// has connected (consumer.Watch).
	consumer *pipeline.ConsumerCollector
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		rowsStaged: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "intake_loader_rows_staged_total",
			Help: "Rows copied into staging tables (a redelivered batch counts once).",
		}),
		batchWrite: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "intake_loader_batch_write_duration_seconds",
			Help:    "Time to stage one batch: COPY into the staging table and record the chunk.",
			Buckets: prometheus.ExponentialBuckets(0.005, 2, 12), // 5ms .. 10s
		}),
		commit: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "intake_loader_commit_duration_seconds",
			Help:    "Time to commit a run: merge its staged rows into the object table.",
			Buckets: prometheus.ExponentialBuckets(0.05, 2, 14), // 50ms .. 7min
		}),
		rowsCommitted: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "intake_loader_rows_committed_total",
			Help: "Keys of committed runs by outcome: created, updated, unchanged, or ignored (new keys of runs that allow no new records).",
		}, []string{"outcome"}),
		dryRuns: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "intake_loader_dry_runs_total",
			Help: "Dry runs counted (staged and compared with the object table, not merged).",
		}),
		janitorAbandoned: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "intake_loader_janitor_abandoned_total",
			Help: "Idle runs the janitor dropped (staging and bookkeeping) because the control API said they had ended (cancelled, failed elsewhere, or unknown).",
		}),
		consumer: pipeline.NewConsumerCollector(pipeline.StreamLoad, pipeline.ConsumerLoader),
	}
	for _, o := range []string{"created", "updated", "unchanged", "ignored"} {
		m.rowsCommitted.WithLabelValues(o)
	}
	for _, c := range []prometheus.Collector{m.rowsStaged, m.batchWrite, m.commit, m.rowsCommitted, m.dryRuns, m.janitorAbandoned, m.consumer} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("loader: register metrics: %w", err)
		}
	}
	return m, nil
}

func (m *metrics) committed(c store.Counts, seconds float64) {
	m.commit.Observe(seconds)
	m.rowsCommitted.WithLabelValues("created").Add(float64(c.Created))
	m.rowsCommitted.WithLabelValues("updated").Add(float64(c.Updated))
	m.rowsCommitted.WithLabelValues("unchanged").Add(float64(c.Unchanged))
	m.rowsCommitted.WithLabelValues("ignored").Add(float64(c.Ignored))
}
