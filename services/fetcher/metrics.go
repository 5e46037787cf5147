package fetcher

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go/jetstream"
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
	// has connected (consumer.watch).
	consumer *consumerCollector
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
		consumer: newConsumerCollector(pipeline.StreamRuns, pipeline.ConsumerFetcher),
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
