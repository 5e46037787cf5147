package loader

import (
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	dto "github.com/prometheus/client_model/go"
	"github.com/stretchr/testify/require"

	"github.com/intakehq/intake/pkg/pipeline"
)

// The consumer this service reads, and a subject of its stream.
const (
	testStream   = pipeline.StreamLoad
	testConsumer = pipeline.ConsumerLoader
	testSubject  = pipeline.SubjectBatch
)

// gathered returns the value of the sample of name whose labels include
// want, and whether there is one.
func gathered(t *testing.T, reg prometheus.Gatherer, name string, want map[string]string) (float64, bool) {
	t.Helper()
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

// consumerGauges reads the three consumer gauges of the service's consumer;
// ok is false when none is exported.
func consumerGauges(t *testing.T, reg prometheus.Gatherer) (pending, ackPending, redelivered float64, ok bool) {
	t.Helper()
	labels := map[string]string{"stream": testStream, "consumer": testConsumer}
	pending, ok1 := gathered(t, reg, "intake_jetstream_consumer_pending_messages", labels)
	ackPending, ok2 := gathered(t, reg, "intake_jetstream_consumer_ack_pending_messages", labels)
	redelivered, ok3 := gathered(t, reg, "intake_jetstream_consumer_redelivered_messages", labels)
	require.Equal(t, ok1, ok2, "pending and ack pending exported together")
	require.Equal(t, ok1, ok3, "pending and redelivered exported together")
	return pending, ackPending, redelivered, ok1
}

func requireLintClean(t *testing.T, reg prometheus.Gatherer) {
	t.Helper()
	problems, err := testutil.GatherAndLint(reg)
	require.NoError(t, err)
	require.Empty(t, problems, "metrics break the Prometheus naming conventions (docs/metrics.md)")
}

// The service's metrics, as registered by New, follow the Prometheus
// conventions (promlint), and every labelled counter starts at zero for
// each of its outcomes, so rate() sees the first event.
func TestMetricsOfNewServicePassLint(t *testing.T) {
	t.Parallel()
	reg := prometheus.NewRegistry()
	_, err := New(Config{NATSURL: "nats://127.0.0.1:1", APIAddr: "127.0.0.1:1", DatabaseURL: "postgres://intake@127.0.0.1:1/intake", Registerer: reg})
	require.NoError(t, err)
	requireLintClean(t, reg)
	errs, ok := gathered(t, reg, "intake_jetstream_consumer_info_errors_total",
		map[string]string{"stream": testStream, "consumer": testConsumer})
	require.True(t, ok, "the info error counter is exported before Run")
	require.Zero(t, errs)
	_, _, _, ok = consumerGauges(t, reg)
	require.False(t, ok, "no consumer gauges before Run connects")
	for _, o := range []string{"created", "updated", "unchanged", "ignored"} {
		_, ok := gathered(t, reg, "intake_loader_rows_committed_total", map[string]string{"outcome": o})
		require.True(t, ok, "outcome %s", o)
	}
}
