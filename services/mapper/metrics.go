package mapper

import (
	"fmt"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/intakehq/intake/pkg/pipeline"
)

// The mapper's metrics; docs/metrics.md is their catalog (names, labels,
// the dashboard panels and alerts that use them).

// Outcomes of a chunk, the label of intake_mapper_chunks_total.
const (
	outcomePublished = "published" // batch published
	outcomeAbandoned = "abandoned" // the run has ended: dropped
	outcomeFailed    = "failed"    // the job's mapping does not fit: run failed
)

type metrics struct {
	rows     *prometheus.CounterVec
	chunks   *prometheus.CounterVec
	duration prometheus.Histogram
	// consumer exports the state of the chunk consumer once Run has
	// connected (consumer.Watch).
	consumer *pipeline.ConsumerCollector
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		rows: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "intake_mapper_rows_total",
			Help: "Rows the mapper read, by outcome: mapped (sent to the loaders) or rejected.",
		}, []string{"outcome"}),
		chunks: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "intake_mapper_chunks_total",
			Help: "Chunks the mapper handled, by outcome: published, abandoned (run ended) or failed (mapping does not fit the file).",
		}, []string{"outcome"}),
		duration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "intake_mapper_chunk_duration_seconds",
			Help:    "Time to map a chunk, report it and publish its batch.",
			Buckets: prometheus.ExponentialBuckets(0.001, 2, 15), // 1ms .. 16s
		}),
		consumer: pipeline.NewConsumerCollector(pipeline.StreamChunks, pipeline.ConsumerMapper),
	}
	for _, o := range []string{"mapped", "rejected"} {
		m.rows.WithLabelValues(o)
	}
	for _, o := range []string{outcomePublished, outcomeAbandoned, outcomeFailed} {
		m.chunks.WithLabelValues(o)
	}
	if reg == nil {
		reg = prometheus.NewRegistry()
	}
	for _, c := range []prometheus.Collector{m.rows, m.chunks, m.duration, m.consumer} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("mapper: register metrics: %w", err)
		}
	}
	return m, nil
}
