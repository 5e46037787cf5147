package cli_test

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/intakehq/intake/pkg/testutil"

	"github.com/stretchr/testify/require"
	collectortrace "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/intakehq/intake/cmd/internal/cli"
	"github.com/intakehq/intake/cmd/internal/command"
	"github.com/intakehq/intake/pkg/pgtest"
	intakev1 "github.com/intakehq/intake/proto/gen/intake/v1"
)

// otlpCollector is an OTLP gRPC trace receiver, as an OpenTelemetry
// Collector would be: it keeps every span it gets with its service.name.
type otlpCollector struct {
	collectortrace.UnimplementedTraceServiceServer
	addr  string
	mu    sync.Mutex
	spans []receivedSpan
}

type receivedSpan struct {
	service string
	*tracepb.Span
}

func startCollector(t *testing.T) *otlpCollector {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	c := &otlpCollector{addr: lis.Addr().String()}
	gs := grpc.NewServer()
	collectortrace.RegisterTraceServiceServer(gs, c)
	go func() { _ = gs.Serve(lis) }()
	t.Cleanup(gs.Stop)
	return c
}

func (c *otlpCollector) Export(_ context.Context, req *collectortrace.ExportTraceServiceRequest) (*collectortrace.ExportTraceServiceResponse, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, rs := range req.GetResourceSpans() {
		svc := ""
		for _, kv := range rs.GetResource().GetAttributes() {
			if kv.GetKey() == "service.name" {
				svc = kv.GetValue().GetStringValue()
			}
		}
		for _, ss := range rs.GetScopeSpans() {
			for _, s := range ss.GetSpans() {
				c.spans = append(c.spans, receivedSpan{svc, s})
			}
		}
	}
	return &collectortrace.ExportTraceServiceResponse{}, nil
}

// named lists the received spans called name.
func (c *otlpCollector) named(name string) []receivedSpan {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []receivedSpan
	for _, s := range c.spans {
		if s.GetName() == name {
			out = append(out, s)
		}
	}
	return out
}

func (c *otlpCollector) names() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []string
	for _, s := range c.spans {
		out = append(out, s.GetName())
	}
	return out
}

func spanAttr(s receivedSpan, key string) string {
	for _, kv := range s.GetAttributes() {
		if kv.GetKey() == key {
			switch v := kv.GetValue().GetValue().(type) {
			case *commonpb.AnyValue_StringValue:
				return v.StringValue
			case *commonpb.AnyValue_BoolValue:
				return fmt.Sprint(v.BoolValue)
			default:
				return fmt.Sprint(kv.GetValue().GetIntValue())
			}
		}
	}
	return ""
}

// One import is one trace: `intake all --otlp-endpoint` exports the span of
// the RunJob call and, in the same trace, the fetcher's, the mappers', the
// loader's and the commit's spans, carried from stage to stage in the NATS
// message headers; the workers' log lines of the run carry its trace id.
//
// Not parallel: the process's tracer provider is global (OpenTelemetry's
// design), and a parallel `intake` in this test binary would replace it.
func TestAllExportsOneTracePerRunAcrossTheStages(t *testing.T) {
	collector := startCollector(t)
	csv := "Account ID,Name\n"
	for i := 1; i <= 50; i++ {
		csv += fmt.Sprintf("A-%d,Account %d\n", i, i)
	}
	files := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		_, _ = w.Write([]byte(csv))
	}))
	defer files.Close()

	grpcAddr := testutil.FreeAddr(t)
	logs, stop := start(t, []string{"all",
		"--nats-port", "0", "--nats-store", t.TempDir(), "--grpc-addr", grpcAddr, "--http-addr", testutil.FreeAddr(t),
		"--max-chunk-rows", "20", // three chunks: three map and load spans
		"--shutdown-delay", "0s",
	}, withAuth(map[string]string{
		"INTAKE_DATABASE_URL":  pgtest.NewDatabase(t),
		"INTAKE_OTLP_ENDPOINT": "http://" + collector.addr,
	}))

	conn, err := grpc.NewClient(grpcAddr, grpc.WithTransportCredentials(insecure.NewCredentials()), asAdmin())
	require.NoError(t, err)
	defer conn.Close()
	require.Eventually(t, func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		resp, err := healthpb.NewHealthClient(conn).Check(ctx, &healthpb.HealthCheckRequest{})
		return err == nil && resp.GetStatus() == healthpb.HealthCheckResponse_SERVING
	}, 60*time.Second, 100*time.Millisecond, "gRPC health never SERVING; logs:\n%s", logs)

	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	jobs := intakev1.NewJobServiceClient(conn)
	_, err = jobs.CreateJob(ctx, &intakev1.CreateJobRequest{JobId: "traced", Job: &intakev1.Job{
		DisplayName:     "Traced accounts",
		Object:          intakev1.ObjectType_OBJECT_TYPE_ACCOUNTS,
		Connection:      &intakev1.Connection{Kind: &intakev1.Connection_Http{Http: &intakev1.HttpConnection{Url: files.URL + "/accounts.csv"}}},
		AllowNewRecords: true,
		Mapping: &intakev1.MappingSpec{Entries: []*intakev1.MappingEntry{
			{Attribute: "account_id", Source: &intakev1.MappingEntry_Column{Column: "Account ID"}},
			{Attribute: "name", Source: &intakev1.MappingEntry_Column{Column: "Name"}},
		}},
	}})
	require.NoError(t, err)
	run, err := jobs.RunJob(ctx, &intakev1.RunJobRequest{Name: "jobs/traced"})
	require.NoError(t, err)
	runs := intakev1.NewRunServiceClient(conn)
	require.Eventually(t, func() bool {
		r, err := runs.GetRun(ctx, &intakev1.GetRunRequest{Name: run.GetName()})
		return err == nil && r.GetState() == intakev1.RunState_RUN_STATE_SUCCEEDED
	}, 60*time.Second, 100*time.Millisecond, "run never succeeded; logs:\n%s", logs)
	require.NoError(t, stop(), "logs:\n%s", logs) // flushes the last spans

	calls := collector.named("intake.v1.JobService/RunJob")
	require.Len(t, calls, 1, "the RunJob call's server span; spans: %v", collector.names())
	traceID := calls[0].GetTraceId()
	require.Equal(t, "intake", calls[0].service, "intake all is one service")

	for _, want := range []struct {
		name, stage string
		n           int
	}{
		{"fetch run", "fetch", 1},
		{"map chunk", "map", 3},
		{"load batch", "load", 3},
		{"seal run", "load", 1},
		{"commit run", "load", 1},
	} {
		spans := collector.named(want.name)
		if want.name == "commit run" {
			// The last batch and the seal may both try to commit (two
			// loaders at once): one merges, the other finds it done.
			merged := 0
			for _, s := range spans {
				if spanAttr(s, "intake.merged") == "true" {
					merged++
				}
			}
			require.Equal(t, 1, merged, "one commit merges the run; spans: %v", collector.names())
			require.LessOrEqual(t, len(spans), 2, "%q spans; spans: %v", want.name, collector.names())
		} else {
			require.Len(t, spans, want.n, "%q spans; spans: %v", want.name, collector.names())
		}
		for _, s := range spans {
			require.Equal(t, hex.EncodeToString(traceID), hex.EncodeToString(s.GetTraceId()),
				"%q is in the RunJob call's trace", want.name)
			require.Equal(t, run.GetName(), spanAttr(s, "intake.run"), want.name)
			require.Equal(t, "jobs/traced", spanAttr(s, "intake.job"), want.name)
			require.Equal(t, want.stage, spanAttr(s, "intake.stage"), want.name)
		}
	}
	chunks := map[string]bool{}
	for _, s := range collector.named("map chunk") {
		chunks[spanAttr(s, "intake.chunk")] = true
	}
	require.Len(t, chunks, 3, "one map span per chunk")
	// The workers' reports to the API are traced too: client and server
	// spans of StageService calls in the same trace.
	reports := collector.named("intake.v1.StageService/ReportRunEvent")
	require.NotEmpty(t, reports)
	for _, s := range reports {
		require.Equal(t, hex.EncodeToString(traceID), hex.EncodeToString(s.GetTraceId()))
	}

	// The loader's log line of the commit names the trace.
	committed := false
	for _, line := range strings.Split(logs.String(), "\n") {
		var l map[string]any
		if json.Unmarshal([]byte(line), &l) != nil || l["msg"] != "run committed" {
			continue
		}
		committed = true
		require.Equal(t, hex.EncodeToString(traceID), l["trace_id"], "log line: %s", line)
		require.NotEmpty(t, l["span_id"])
	}
	require.True(t, committed, "no run committed log line; logs:\n%s", logs)
}

// A malformed --otlp-endpoint stops the command at start, exit code 2,
// naming the flag.
func TestMalformedOTLPEndpointIsAUsageError(t *testing.T) {
	logs := &testutil.SyncBuffer{}
	err := cli.Run(context.Background(), []string{"fetcher", "--otlp-endpoint", "otel-collector"},
		system(logs, withAuth(nil)))
	var exit *command.ExitError
	require.ErrorAs(t, err, &exit)
	require.Equal(t, 2, exit.Code)
	require.ErrorContains(t, err, `--otlp-endpoint: tracing: OTLP endpoint "otel-collector"`)
}
