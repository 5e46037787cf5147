// Package metricstest reads metrics from a Prometheus registry in tests:
// one sample by name and labels, the JetStream consumer gauges of a worker,
// and the naming-convention lint.
package metricstest

import (
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	dto "github.com/prometheus/client_model/go"
	"github.com/stretchr/testify/require"
)

// Gathered returns the value of the sample of name whose labels include
// want (a counter's or gauge's value, a histogram's count), and whether
// there is one.
func Gathered(t require.TestingT, reg prometheus.Gatherer, name string, want map[string]string) (float64, bool) {
	if h, ok := t.(interface{ Helper() }); ok {
		h.Helper()
	}
	mfs, err := reg.Gather()
	require.NoError(t, err)
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	metrics:
		for _, m := range mf.GetMetric() {
			labels := map[string]string{}
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			for k, v := range want {
				if labels[k] != v {
					continue metrics
				}
			}
			return sampleValue(m), true
		}
	}
	return 0, false
}

func sampleValue(m *dto.Metric) float64 {
	switch {
	case m.GetCounter() != nil:
		return m.GetCounter().GetValue()
	case m.GetGauge() != nil:
		return m.GetGauge().GetValue()
	case m.GetHistogram() != nil:
		return float64(m.GetHistogram().GetSampleCount())
	}
	return m.GetUntyped().GetValue()
}

// ConsumerGauges reads the three gauges of the consumer of stream
// (pipeline.ConsumerCollector); ok is false when none is exported.
func ConsumerGauges(t require.TestingT, reg prometheus.Gatherer, stream, consumer string) (pending, ackPending, redelivered float64, ok bool) {
	if h, ok := t.(interface{ Helper() }); ok {
		h.Helper()
	}
	labels := map[string]string{"stream": stream, "consumer": consumer}
	pending, ok1 := Gathered(t, reg, "intake_jetstream_consumer_pending_messages", labels)
	ackPending, ok2 := Gathered(t, reg, "intake_jetstream_consumer_ack_pending_messages", labels)
	redelivered, ok3 := Gathered(t, reg, "intake_jetstream_consumer_redelivered_messages", labels)
	require.Equal(t, ok1, ok2, "pending and ack pending exported together")
	require.Equal(t, ok1, ok3, "pending and redelivered exported together")
	return pending, ackPending, redelivered, ok1
}

// RequireLintClean fails the test when the registry's metrics break the
// Prometheus naming conventions (promlint).
func RequireLintClean(t *testing.T, reg prometheus.Gatherer) {
	t.Helper()
	problems, err := testutil.GatherAndLint(reg)
	require.NoError(t, err)
	require.Empty(t, problems, "metrics break the Prometheus naming conventions (docs/metrics.md)")
}
