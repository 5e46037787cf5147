package pipeline

import (
	"context"
	"errors"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
)

// ConsumerInfoTimeout bounds the consumer info request of one scrape, well
// within Prometheus' default scrape timeout (10s).
const ConsumerInfoTimeout = 3 * time.Second

// ConsumerCollector exports the state of one durable JetStream consumer,
// read with one consumer info request per scrape (at most
// ConsumerInfoTimeout): messages pending delivery, delivered but not
// acknowledged, and redelivered. Every replica of a worker exports the same
// consumer's numbers (aggregate them with max, not sum). The stream and
// consumer are constant labels, so the collectors of several workers in one
// process (the all-in-one binary) share the metric names.
type ConsumerCollector struct {
	stream, consumer string
	// Timeout bounds the consumer info request of one scrape;
	// NewConsumerCollector sets ConsumerInfoTimeout.
	Timeout time.Duration
	js      atomic.Pointer[jetstream.JetStream]
	errors  atomic.Uint64

	pending, ackPending, redelivered, errorsDesc *prometheus.Desc
}

// NewConsumerCollector returns the collector of the durable consumer of
// stream; it exports nothing but its error count until Watch.
func NewConsumerCollector(stream, consumer string) *ConsumerCollector {
	labels := prometheus.Labels{"stream": stream, "consumer": consumer}
	return &ConsumerCollector{
		stream:   stream,
		consumer: consumer,
		Timeout:  ConsumerInfoTimeout,
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

// Watch starts reading the consumer through js; the returned func stops it.
func (c *ConsumerCollector) Watch(js jetstream.JetStream) (stop func()) {
	c.js.Store(&js)
	return func() { c.js.Store(nil) }
}

// Describe implements prometheus.Collector.
func (c *ConsumerCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.pending
	ch <- c.ackPending
	ch <- c.redelivered
	ch <- c.errorsDesc
}

// Collect implements prometheus.Collector: nothing but the error count
// before Watch, or while the consumer does not exist yet.
func (c *ConsumerCollector) Collect(ch chan<- prometheus.Metric) {
	if js := c.js.Load(); js != nil {
		ctx, cancel := context.WithTimeout(context.Background(), c.Timeout)
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
