package loader

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go/jetstream"
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
	// has connected (consumer.watch).
	consumer *consumerCollector
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
		consumer: newConsumerCollector(pipeline.StreamLoad, pipeline.ConsumerLoader),
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

// consumerInfoTimeout bounds the consumer info request of one scrape, well
// within Prometheus' default scrape timeout (10s).
const consumerInfoTimeout = 3 * time.Second

// consumerCollector exports the state of one durable JetStream consumer,
// read with one consumer info request per scrape (at most
// consumerInfoTimeout): messages pending delivery, delivered but not
// acknowledged, and redelivered. Every replica of a worker exports the same
// consumer's numbers (aggregate them with max, not sum). The stream and
// consumer are constant labels, so the collectors of several workers in one
// process (the all-in-one binary) share the metric names.
type consumerCollector struct {
	stream, consumer string
	timeout          time.Duration // of the consumer info request
	js               atomic.Pointer[jetstream.JetStream]
	errors           atomic.Uint64

	pending, ackPending, redelivered, errorsDesc *prometheus.Desc
}

func newConsumerCollector(stream, consumer string) *consumerCollector {
	labels := prometheus.Labels{"stream": stream, "consumer": consumer}
	return &consumerCollector{
		stream:   stream,
		consumer: consumer,
		timeout:  consumerInfoTimeout,
		pending: prometheus.NewDesc("intake_jetstream_consumer_pending_messages",
			"Messages of the stream not yet delivered to the consumer (num_pending).", nil, labels),
		ackPending: prometheus.NewDesc("intake_jetstream_consumer_ack_pending_messages",
			"Messages delivered to the consumer and not yet acknowledged (num_ack_pending).", nil, labels),
		redelivered: prometheus.NewDesc("intake_jetstream_consumer_redelivered_messages",
			"Messages delivered more than once and not yet acknowledged (num_redelivered).", nil, labels),
		errorsDesc: prometheus.NewDesc("intake_jetstream_consumer_info_errors_total",
			"Scrapes whose consumer info request failed or timed out (the consumer's gauges are missing from them).", nil, labels),
	}
}

// watch starts reading the consumer through js; the returned func stops it.
func (c *consumerCollector) watch(js jetstream.JetStream) (stop func()) {
	c.js.Store(&js)
	return func() { c.js.Store(nil) }
}

// Describe implements prometheus.Collector.
func (c *consumerCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.pending
	ch <- c.ackPending
	ch <- c.redelivered
	ch <- c.errorsDesc
}

// Collect implements prometheus.Collector: nothing but the error count
// before watch, or while the consumer does not exist yet.
func (c *consumerCollector) Collect(ch chan<- prometheus.Metric) {
	if js := c.js.Load(); js != nil {
		ctx, cancel := context.WithTimeout(context.Background(), c.timeout)
		cons, err := (*js).Consumer(ctx, c.stream, c.consumer)
		cancel()
		switch {
		case err == nil:
			info := cons.CachedInfo()
			ch <- prometheus.MustNewConstMetric(c.pending, prometheus.GaugeValue, float64(info.NumPending))
			ch <- prometheus.MustNewConstMetric(c.ackPending, prometheus.GaugeValue, float64(info.NumAckPending))
			ch <- prometheus.MustNewConstMetric(c.redelivered, prometheus.GaugeValue, float64(info.NumRedelivered))
		case errors.Is(err, jetstream.ErrConsumerNotFound), errors.Is(err, jetstream.ErrStreamNotFound):
			// Not created yet: the worker creates it when it starts consuming.
		default:
			c.errors.Add(1)
		}
	}
	ch <- prometheus.MustNewConstMetric(c.errorsDesc, prometheus.CounterValue, float64(c.errors.Load()))
}
