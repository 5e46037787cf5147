package monitoring

import (
	"context"
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/intakehq/intake/pkg/testutil"

	"github.com/jackc/pgx/v5"
	"github.com/prometheus/client_golang/prometheus/testutil/promlint"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	"github.com/intakehq/intake/cmd/internal/cli"
	"github.com/intakehq/intake/cmd/internal/command"
	"github.com/intakehq/intake/cmd/internal/ctl"
	"github.com/intakehq/intake/pkg/pgtest"
	intakev1 "github.com/intakehq/intake/proto/gen/intake/v1"
)

func get(url string) (int, string, error) {
	resp, err := http.Get(url)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), err
}

// scrapeAll runs `intake all` (every service in one process, one registry,
// an embedded JetStream server) on a fresh database, exercises it — gRPC
// calls, a run stuck in fetching for 40 minutes — and returns its
// /metrics once every worker's consumer and the runs in progress show.
//
// The API requires a token: monitoringAdminToken is its bootstrap token.
func scrapeAll(t *testing.T) string {
	t.Helper()
	dsn := pgtest.NewDatabase(t)
	grpcAddr, httpAddr := testutil.FreeAddr(t), testutil.FreeAddr(t)
	logs := &testutil.SyncBuffer{}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	store := t.TempDir() // its removal registered before the stop below, so it runs after it
	go func() {
		done <- cli.Run(ctx, []string{"all", "--nats-port", "0", "--nats-store", store,
			"--grpc-addr", grpcAddr, "--http-addr", httpAddr, "--poll-interval", "200ms"},
			command.System{Stdout: logs, Stderr: logs, LookupEnv: func(k string) (string, bool) {
				switch k {
				case "INTAKE_DATABASE_URL":
					return dsn, true
				case "INTAKE_BOOTSTRAP_TOKEN": // the API requires one
					return monitoringAdminToken, true
				}
				return "", false
			}})
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case <-done:
		case <-time.After(60 * time.Second):
			t.Errorf("intake all did not stop; logs:\n%s", logs)
		}
	})
	require.Eventually(t, func() bool {
		code, _, err := get("http://" + httpAddr + "/readyz")
		return err == nil && code == http.StatusOK
	}, 60*time.Second, 100*time.Millisecond, "intake all never ready; logs:\n%s", logs)

	cctx, ccancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer ccancel()
	conn, err := grpc.NewClient(grpcAddr, grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithPerRPCCredentials(ctl.BearerCredentials(monitoringAdminToken)))
	require.NoError(t, err)
	defer conn.Close()
	jobs := intakev1.NewJobServiceClient(conn)
	_, err = jobs.ListJobs(cctx, &intakev1.ListJobsRequest{})
	require.NoError(t, err)
	_, err = jobs.GetJob(cctx, &intakev1.GetJobRequest{Name: "jobs/missing"})
	require.Equal(t, codes.NotFound, status.Code(err), "%v", err)

	db, err := pgx.Connect(cctx, dsn)
	require.NoError(t, err)
	defer db.Close(context.Background())
	_, err = db.Exec(cctx, `INSERT INTO intake.runs (id, job_id, state, trigger, job, create_time, update_time)
		VALUES ('monitoring-test', 'ghost', $1, $2, '{}', now() - interval '1 hour', now() - interval '40 minutes')`,
		int16(intakev1.RunState_RUN_STATE_FETCHING), int16(intakev1.Trigger_TRIGGER_RUN_NOW))
	require.NoError(t, err)

	// The consumers exist once the workers consume; the runs in progress
	// are read at each scrape.
	want := []string{`intake_api_runs_in_progress{state="fetching"} 1`}
	for _, c := range []string{"fetcher", "mapper", "loader"} {
		want = append(want, `intake_jetstream_consumer_pending_messages{consumer="`+c+`"`)
	}
	var (
		text    string
		missing []string
	)
	require.Eventually(t, func() bool {
		code, body, err := get("http://" + httpAddr + "/metrics")
		if err != nil || code != http.StatusOK {
			return false
		}
		text, missing = body, nil
		for _, w := range want {
			if !strings.Contains(body, w) {
				missing = append(missing, w)
			}
		}
		return len(missing) == 0
	}, 30*time.Second, 200*time.Millisecond,
		"never in the scrape: %q (the runs in progress show once api.Server.Run calls s.metrics.watchRuns(pool); the consumer gauges once each worker's Run calls s.metrics.consumer.watch(js)); logs:\n%s", &missing, logs)
	return text
}

func parseScrape(t *testing.T, text string) map[string]*dto.MetricFamily {
	t.Helper()
	p := expfmt.NewTextParser(model.UTF8Validation)
	mfs, err := p.TextToMetricFamilies(strings.NewReader(text))
	require.NoError(t, err)
	return mfs
}

func sample(mf *dto.MetricFamily, labels map[string]string) (*dto.Metric, bool) {
metrics:
	for _, m := range mf.GetMetric() {
		have := map[string]string{}
		for _, l := range m.GetLabel() {
			have[l.GetName()] = l.GetValue()
		}
		for k, v := range labels {
			if have[k] != v {
				continue metrics
			}
		}
		return m, true
	}
	return nil, false
}

// The metrics the all-in-one process serves after some work follow the
// Prometheus conventions (promlint and promtool check metrics), are
// exactly the catalog's (names, types, labels), and say what happened.
func TestScrapedMetrics(t *testing.T) {
	t.Parallel()
	text := scrapeAll(t)
	mfs := parseScrape(t, text)

	t.Run("promlint", func(t *testing.T) {
		var list []*dto.MetricFamily
		for _, mf := range mfs {
			list = append(list, mf)
		}
		problems, err := promlint.NewWithMetricFamilies(list).Lint()
		require.NoError(t, err)
		require.Empty(t, problems)
	})

	t.Run("promtool", func(t *testing.T) {
		runPromtool(t, t.TempDir(), text, "check", "metrics")
	})

	t.Run("catalog", func(t *testing.T) {
		catalog := readCatalog(t)
		for name, mf := range mfs {
			if !metricRef.MatchString(name) {
				continue // go_*, process_*, promhttp_*
			}
			e, ok := catalog[name]
			require.True(t, ok, "%s is registered but not in docs/metrics.md", name)
			require.False(t, e.pending, "docs/metrics.md:%d: %s is registered now: drop \"Not yet registered\"", e.line, name)
			require.Equal(t, e.typ, strings.ToLower(mf.GetType().String()), "docs/metrics.md:%d: type of %s", e.line, name)
			var labels []string
			for _, m := range mf.GetMetric() {
				for _, l := range m.GetLabel() {
					if !slices.Contains(labels, l.GetName()) {
						labels = append(labels, l.GetName())
					}
				}
			}
			slices.Sort(labels)
			require.Equal(t, e.labels, labels, "docs/metrics.md:%d: labels of %s", e.line, name)
		}
		for name, e := range catalog {
			if e.pending {
				continue
			}
			require.Contains(t, mfs, name, "docs/metrics.md:%d: %s is listed but no service registers it", e.line, name)
		}
	})

	t.Run("values", func(t *testing.T) {
		// The NotFound call is counted under its service and method.
		m, ok := sample(mfs["grpc_server_handled_total"], map[string]string{
			"grpc_type": "unary", "grpc_service": "intake.v1.JobService", "grpc_method": "GetJob", "grpc_code": "NotFound"})
		require.True(t, ok)
		require.Equal(t, 1.0, m.GetCounter().GetValue())
		// The run stuck in fetching: one run, an hour old, 40 minutes idle.
		m, ok = sample(mfs["intake_api_runs_in_progress_max_age_seconds"], map[string]string{"state": "fetching"})
		require.True(t, ok)
		require.InDelta(t, 3600, m.GetGauge().GetValue(), 120)
		m, ok = sample(mfs["intake_api_runs_in_progress_max_idle_seconds"], map[string]string{"state": "fetching"})
		require.True(t, ok)
		require.InDelta(t, 2400, m.GetGauge().GetValue(), 120)
		m, ok = sample(mfs["intake_api_runs_in_progress"], map[string]string{"state": "queued"})
		require.True(t, ok)
		require.Zero(t, m.GetGauge().GetValue())
		// Nothing waits for the idle workers.
		for _, c := range []string{"fetcher", "mapper", "loader"} {
			m, ok := sample(mfs["intake_jetstream_consumer_pending_messages"], map[string]string{"consumer": c})
			require.True(t, ok, c)
			require.Zero(t, m.GetGauge().GetValue(), c)
		}
	})
}

// monitoringAdminToken is the bootstrap admin token of scrapeAll's intake all.
const monitoringAdminToken = "monitoring-test-bootstrap-token-0123456789"
