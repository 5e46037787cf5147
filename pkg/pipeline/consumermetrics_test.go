package pipeline_test

import (
	"context"
	"testing"
	"time"

	"github.com/intakehq/intake/pkg/metricstest"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/intakehq/intake/pkg/natstest"
	"github.com/intakehq/intake/pkg/pipeline"
)

// A consumer of the tests, and a subject of its stream.
const (
	testStream   = pipeline.StreamRuns
	testConsumer = pipeline.ConsumerFetcher
	testSubject  = pipeline.SubjectRunRequest
)

// The consumer gauges follow the real JetStream consumer: messages waiting,
// delivered but unacknowledged, redelivered; and they go when the service
// stops watching.
func TestConsumerMetricsFollowTheConsumer(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	ns := natstest.Start(t)
	_, js := ns.Connect(t)
	require.NoError(t, pipeline.EnsureStreams(ctx, js, 1))
	reg := prometheus.NewRegistry()
	c := pipeline.NewConsumerCollector(testStream, testConsumer)
	require.NoError(t, reg.Register(c))
	stop := c.Watch(js)

	_, _, _, ok := metricstest.ConsumerGauges(t, reg, testStream, testConsumer)
	require.False(t, ok, "no gauges while the consumer does not exist")
	errs, _ := metricstest.Gathered(t, reg, "intake_jetstream_consumer_info_errors_total", nil)
	require.Zero(t, errs, "a consumer not created yet is no error")

	cons, err := js.CreateOrUpdateConsumer(ctx, testStream, pipeline.ConsumerConfig(testConsumer, time.Minute, 10))
	require.NoError(t, err)
	publish := func(n int) {
		t.Helper()
		for range n {
			_, err := js.Publish(ctx, testSubject, []byte("x"))
			require.NoError(t, err)
		}
	}
	requireGauges := func(want []float64, msg string) {
		t.Helper()
		// JetStream updates a consumer's counts asynchronously: wait for them.
		require.EventuallyWithT(t, func(c *assert.CollectT) {
			pending, ackPending, redelivered, ok := metricstest.ConsumerGauges(c, reg, testStream, testConsumer)
			require.True(c, ok, msg)
			require.Equal(c, want, []float64{pending, ackPending, redelivered}, "pending, ack pending, redelivered: %s", msg)
		}, 5*time.Second, 20*time.Millisecond)
	}
	next := func() jetstream.Msg {
		t.Helper()
		batch, err := cons.Fetch(1, jetstream.FetchMaxWait(5*time.Second))
		require.NoError(t, err)
		msg, ok := <-batch.Messages()
		require.True(t, ok, "no message: %v", batch.Error())
		return msg
	}

	publish(1)
	requireGauges([]float64{1, 0, 0}, "published")
	msg := next()
	requireGauges([]float64{0, 1, 0}, "delivered, not acked")
	require.NoError(t, msg.Nak())
	msg = next()
	md, err := msg.Metadata()
	require.NoError(t, err)
	require.EqualValues(t, 2, md.NumDelivered, "the nak'ed message came again")
	requireGauges([]float64{0, 1, 1}, "redelivered, not acked")
	publish(2)
	requireGauges([]float64{2, 1, 1}, "two more published")
	metricstest.RequireLintClean(t, reg)
	require.NoError(t, msg.DoubleAck(ctx))
	requireGauges([]float64{2, 0, 0}, "the redelivered message acked")

	stop()
	_, _, _, ok = metricstest.ConsumerGauges(t, reg, testStream, testConsumer)
	require.False(t, ok, "no gauges once the service stopped watching")
}

// A scrape while JetStream does not answer ends within the collector's
// timeout, counts the failure and leaves the gauges out.
func TestConsumerMetricsCountAnUnansweredRequest(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	ns := natstest.Start(t)
	_, js := ns.Connect(t)
	require.NoError(t, pipeline.EnsureStreams(ctx, js, 1))
	_, err := js.CreateOrUpdateConsumer(ctx, testStream, pipeline.ConsumerConfig(testConsumer, time.Minute, 10))
	require.NoError(t, err)
	reg := prometheus.NewRegistry()
	c := pipeline.NewConsumerCollector(testStream, testConsumer)
	require.NoError(t, reg.Register(c))
	c.Timeout = 300 * time.Millisecond
	defer c.Watch(js)()
	_, _, _, ok := metricstest.ConsumerGauges(t, reg, testStream, testConsumer)
	require.True(t, ok)

	ns.Shutdown()
	ns.WaitForShutdown()
	start := time.Now()
	_, _, _, ok = metricstest.ConsumerGauges(t, reg, testStream, testConsumer)
	require.Less(t, time.Since(start), 3*time.Second, "the scrape waited past the info timeout")
	require.False(t, ok, "gauges exported without an answer")
	errs, _ := metricstest.Gathered(t, reg, "intake_jetstream_consumer_info_errors_total",
		map[string]string{"stream": testStream, "consumer": testConsumer})
	require.GreaterOrEqual(t, errs, 1.0)
}
