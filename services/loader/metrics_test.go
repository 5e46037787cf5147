package loader

import (
	"testing"

	"github.com/intakehq/intake/pkg/metricstest"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"

	"github.com/intakehq/intake/pkg/pipeline"
)

// The consumer this service reads, and a subject of its stream.
const (
	testStream   = pipeline.StreamLoad
	testConsumer = pipeline.ConsumerLoader
	testSubject  = pipeline.SubjectBatch
)

// The service's metrics, as registered by New, follow the Prometheus
// conventions (promlint), and every labelled counter starts at zero for
// each of its outcomes, so rate() sees the first event.
func TestMetricsOfNewServicePassLint(t *testing.T) {
	t.Parallel()
	reg := prometheus.NewRegistry()
	_, err := New(Config{NATSURL: "nats://127.0.0.1:1", APIAddr: "127.0.0.1:1", DatabaseURL: "postgres://intake@127.0.0.1:1/intake", Registerer: reg})
	require.NoError(t, err)
	metricstest.RequireLintClean(t, reg)
	errs, ok := metricstest.Gathered(t, reg, "intake_jetstream_consumer_info_errors_total",
		map[string]string{"stream": testStream, "consumer": testConsumer})
	require.True(t, ok, "the info error counter is exported before Run")
	require.Zero(t, errs)
	_, _, _, ok = metricstest.ConsumerGauges(t, reg, testStream, testConsumer)
	require.False(t, ok, "no consumer gauges before Run connects")
	for _, o := range []string{"created", "updated", "unchanged", "ignored"} {
		_, ok := metricstest.Gathered(t, reg, "intake_loader_rows_committed_total", map[string]string{"outcome": o})
		require.True(t, ok, "outcome %s", o)
	}
}
