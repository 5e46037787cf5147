package tracing_test

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
	collectortrace "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/proto"

	"github.com/intakehq/intake/pkg/natstest"
	"github.com/intakehq/intake/pkg/pipeline"
	"github.com/intakehq/intake/pkg/tracing"
	pipelinev1 "github.com/intakehq/intake/proto/gen/intake/pipeline/v1"
)

func noEnv(string) (string, bool) { return "", false }

// setup installs a provider that records every ended span in memory.
func setup(t *testing.T) *tracetest.InMemoryExporter {
	t.Helper()
	exp := tracetest.NewInMemoryExporter()
	shutdown, err := tracing.Setup(context.Background(), "intake-test", tracing.Config{Exporter: exp, LookupEnv: noEnv})
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, shutdown(context.Background())) })
	return exp
}

func spanNamed(spans tracetest.SpanStubs, name string) (tracetest.SpanStub, bool) {
	for _, s := range spans {
		if s.Name == name {
			return s, true
		}
	}
	return tracetest.SpanStub{}, false
}

func attr(s tracetest.SpanStub, key attribute.Key) string {
	for _, kv := range s.Attributes {
		if kv.Key == key {
			return kv.Value.Emit()
		}
	}
	return ""
}

// The span context crosses a real NATS message: the headers hold a W3C
// traceparent, and the receiver's context has the sender's span as its
// remote parent. No provider is needed for that.
func TestHeaderCarrierRoundTripThroughNATS(t *testing.T) {
	ns := natstest.Start(t)
	nc, _ := ns.Connect(t)
	sub, err := nc.SubscribeSync("trace.test")
	require.NoError(t, err)

	sent := trace.NewSpanContext(trace.SpanContextConfig{
		TraceID:    trace.TraceID{0x4b, 0xf9, 0x2f, 0x35, 0x77, 0xb3, 0x4d, 0xa6, 0xa3, 0xce, 0x92, 0x9d, 0x0e, 0x0e, 0x47, 0x36},
		SpanID:     trace.SpanID{0x00, 0xf0, 0x67, 0xaa, 0x0b, 0xa9, 0x02, 0xb7},
		TraceFlags: trace.FlagsSampled,
	})
	msg := &nats.Msg{Subject: "trace.test", Data: []byte("x")} // no headers yet
	tracing.Inject(trace.ContextWithSpanContext(context.Background(), sent), msg)
	require.NoError(t, nc.PublishMsg(msg))

	got, err := sub.NextMsg(5 * time.Second)
	require.NoError(t, err)
	require.Equal(t, "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", got.Header.Get("traceparent"))
	sc := trace.SpanContextFromContext(tracing.Extract(context.Background(), got.Header))
	require.True(t, sc.IsRemote())
	require.Equal(t, sent.TraceID(), sc.TraceID())
	require.Equal(t, sent.SpanID(), sc.SpanID())
	require.True(t, sc.IsSampled())

	// A message without trace context leaves the context alone.
	plain := nats.Header{}
	require.False(t, trace.SpanContextFromContext(tracing.Extract(context.Background(), plain)).IsValid())
	require.False(t, trace.SpanContextFromContext(tracing.Extract(context.Background(), nil)).IsValid())
}

// A pipeline message published under a span through tracing.JetStream is
// handled, on a durable consumer, in a child span of the publisher's span.
func TestConsumerSpanContinuesThePublishersTrace(t *testing.T) {
	exp := setup(t)
	ns := natstest.Start(t)
	_, js := ns.Connect(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	require.NoError(t, pipeline.EnsureStreams(ctx, js, 1))

	pctx, pub := tracing.Start(ctx, "publish run request")
	req := &pipelinev1.RunRequest{Run: "jobs/j/runs/r1"}
	require.NoError(t, pipeline.Publish(pctx, tracing.JetStream(js), pipeline.SubjectRunRequest, req.GetRun(), req))
	pub.End()

	handled := make(chan trace.SpanContext, 1)
	wctx, stop := context.WithCancel(ctx)
	defer stop()
	done := make(chan error, 1)
	go func() {
		done <- pipeline.Work(wctx, js, pipeline.WorkerConfig{
			Stream:   pipeline.StreamRuns,
			Consumer: pipeline.ConsumerConfig(pipeline.ConsumerFetcher, 5*time.Second, 1),
		}, time.Second, tracing.Handler("fetch", map[string]string{pipeline.SubjectRunRequest: "fetch run"},
			func(ctx context.Context, msg jetstream.Msg) error {
				var r pipelinev1.RunRequest
				if err := proto.Unmarshal(msg.Data(), &r); err != nil {
					return err
				}
				tracing.SetAttributes(ctx, tracing.Run(r.GetRun(), "jobs/j", -1)...)
				handled <- trace.SpanContextFromContext(ctx)
				return nil
			}))
	}()
	var sc trace.SpanContext
	select {
	case sc = <-handled:
	case <-ctx.Done():
		t.Fatal("the run request was never handled")
	}
	stop()
	<-done

	require.Equal(t, pub.SpanContext().TraceID(), sc.TraceID(), "the consumer's span is in the publisher's trace")
	spans := exp.GetSpans()
	fetch, ok := spanNamed(spans, "fetch run")
	require.True(t, ok, "no fetch run span in %v", spans)
	require.Equal(t, pub.SpanContext().SpanID(), fetch.Parent.SpanID(), "the publisher's span is the parent")
	require.True(t, fetch.Parent.IsRemote())
	require.Equal(t, trace.SpanKindConsumer, fetch.SpanKind)
	require.Equal(t, "fetch", attr(fetch, tracing.AttrStage))
	require.Equal(t, "jobs/j/runs/r1", attr(fetch, tracing.AttrRun))
	require.Equal(t, "jobs/j", attr(fetch, tracing.AttrJob))
	require.Equal(t, "intake-test", resourceName(fetch))
}

func resourceName(s tracetest.SpanStub) string {
	v, _ := s.Resource.Set().Value("service.name")
	return v.Emit()
}

// A handler's error marks its span failed.
func TestHandlerErrorMarksTheSpanFailed(t *testing.T) {
	exp := setup(t)
	ns := natstest.Start(t)
	_, js := ns.Connect(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	require.NoError(t, pipeline.EnsureStreams(ctx, js, 1))
	require.NoError(t, pipeline.Publish(ctx, tracing.JetStream(js), pipeline.SubjectChunk, "c1", &pipelinev1.Chunk{Run: "jobs/j/runs/r"}))
	failed := make(chan struct{}, 1)
	wctx, stop := context.WithCancel(ctx)
	defer stop()
	done := make(chan error, 1)
	go func() {
		done <- pipeline.Work(wctx, js, pipeline.WorkerConfig{
			Stream:   pipeline.StreamChunks,
			Consumer: pipeline.ConsumerConfig(pipeline.ConsumerMapper, 5*time.Second, 1),
		}, time.Second, tracing.Handler("map", nil, func(ctx context.Context, msg jetstream.Msg) error {
			select {
			case failed <- struct{}{}:
			default:
			}
			return pipeline.Term(context.DeadlineExceeded)
		}))
	}()
	select {
	case <-failed:
	case <-ctx.Done():
		t.Fatal("the chunk was never handled")
	}
	stop()
	<-done
	s, ok := spanNamed(exp.GetSpans(), "consume intake.chunk")
	require.True(t, ok, "a span named by the subject when no name is given")
	require.Equal(t, "Error", s.Status.Code.String())
	require.Contains(t, s.Status.Description, "deadline exceeded")
}

type logLine map[string]any

func logLines(t *testing.T, b *bytes.Buffer) []logLine {
	t.Helper()
	var out []logLine
	for _, l := range strings.Split(strings.TrimSpace(b.String()), "\n") {
		var m logLine
		require.NoError(t, json.Unmarshal([]byte(l), &m), l)
		out = append(out, m)
	}
	return out
}

// Log lines logged with a span's context carry its trace and span ids, once.
func TestLogHandlerAddsTraceIDs(t *testing.T) {
	setup(t)
	var buf bytes.Buffer
	log := slog.New(tracing.LogHandler(slog.NewJSONHandler(&buf, nil))).With("service", "fetcher")
	ctx, span := tracing.Start(context.Background(), "fetch run")
	defer span.End()
	traceID, spanID := span.SpanContext().TraceID().String(), span.SpanContext().SpanID().String()

	log.InfoContext(ctx, "with a span")
	log.InfoContext(context.Background(), "without a span")
	log.Info("without a context")
	tracing.Logger(ctx, log).Info("through Logger")
	tracing.Logger(ctx, log).InfoContext(ctx, "through Logger, with the context too")
	log.WithGroup("g").InfoContext(ctx, "in a group", "k", "v")

	lines := logLines(t, &buf)
	require.Len(t, lines, 6)
	require.Equal(t, traceID, lines[0]["trace_id"])
	require.Equal(t, spanID, lines[0]["span_id"])
	require.Equal(t, "fetcher", lines[0]["service"])
	require.NotContains(t, lines[1], "trace_id")
	require.NotContains(t, lines[2], "trace_id")
	require.Equal(t, traceID, lines[3]["trace_id"])
	require.Equal(t, traceID, lines[4]["trace_id"])
	require.Equal(t, 1, strings.Count(strings.Split(buf.String(), "\n")[4], `"trace_id"`), "trace_id once")
	require.Equal(t, traceID, lines[5]["g"].(map[string]any)["trace_id"], "in the open group")
	require.Equal(t, 4, strings.Count(buf.String(), traceID), "the lines with a span, once each")
}

// Without an endpoint, spans still get ids (which logs and messages carry),
// and nothing is exported.
func TestSetupWithoutEndpointStillMakesIDs(t *testing.T) {
	require.False(t, tracing.Exporting(tracing.Config{LookupEnv: noEnv}))
	shutdown, err := tracing.Setup(context.Background(), "intake-api", tracing.Config{LookupEnv: noEnv})
	require.NoError(t, err)
	_, span := tracing.Start(context.Background(), "x")
	span.End()
	require.True(t, span.SpanContext().IsValid(), "a root span has a trace id without an exporter")
	require.NoError(t, shutdown(context.Background()))

	env := func(m map[string]string) func(string) (string, bool) {
		return func(k string) (string, bool) { v, ok := m[k]; return v, ok }
	}
	require.True(t, tracing.Exporting(tracing.Config{LookupEnv: env(map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4317"})}))
	require.True(t, tracing.Exporting(tracing.Config{Endpoint: "c:4317", LookupEnv: noEnv}))
	require.False(t, tracing.Exporting(tracing.Config{Endpoint: "c:4317", LookupEnv: env(map[string]string{"OTEL_SDK_DISABLED": "true"})}))
	require.False(t, tracing.Exporting(tracing.Config{Endpoint: "c:4317", LookupEnv: env(map[string]string{"OTEL_TRACES_EXPORTER": "none"})}))
}

// collector is an OTLP gRPC trace receiver that keeps what it gets.
type collector struct {
	collectortrace.UnimplementedTraceServiceServer
	mu   sync.Mutex
	reqs []*collectortrace.ExportTraceServiceRequest
}

func (c *collector) Export(_ context.Context, req *collectortrace.ExportTraceServiceRequest) (*collectortrace.ExportTraceServiceResponse, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.reqs = append(c.reqs, req)
	return &collectortrace.ExportTraceServiceResponse{}, nil
}

// spans lists the received spans as "service.name/span name".
func (c *collector) spans() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []string
	for _, req := range c.reqs {
		for _, rs := range req.GetResourceSpans() {
			svc := ""
			for _, kv := range rs.GetResource().GetAttributes() {
				if kv.GetKey() == "service.name" {
					svc = kv.GetValue().GetStringValue()
				}
			}
			for _, ss := range rs.GetScopeSpans() {
				for _, s := range ss.GetSpans() {
					out = append(out, svc+"/"+s.GetName())
				}
			}
		}
	}
	return out
}

// With an endpoint, spans go over OTLP gRPC; shutdown flushes them.
func TestSetupExportsOverOTLP(t *testing.T) {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	gs := grpc.NewServer()
	c := &collector{}
	collectortrace.RegisterTraceServiceServer(gs, c)
	go func() { _ = gs.Serve(lis) }()
	defer gs.Stop()

	require.True(t, tracing.Exporting(tracing.Config{Endpoint: "http://" + lis.Addr().String(), LookupEnv: noEnv}))
	shutdown, err := tracing.Setup(context.Background(), "intake-loader", tracing.Config{
		Endpoint: "http://" + lis.Addr().String(), LookupEnv: noEnv,
	})
	require.NoError(t, err)
	_, span := tracing.Start(context.Background(), "commit run", tracing.Run("jobs/j/runs/r", "jobs/j", -1)...)
	span.End()
	require.Empty(t, c.spans(), "batched, not sent at once")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	require.NoError(t, shutdown(ctx))
	require.Equal(t, []string{"intake-loader/commit run"}, c.spans())
}

// A malformed endpoint is refused at start, named without its credentials.
func TestSetupRefusesAMalformedEndpoint(t *testing.T) {
	for _, endpoint := range []string{"collector", "ftp://collector:4317", "http://user:s3cret@", "grpc://user:s3cret@c:4317"} {
		_, err := tracing.Setup(context.Background(), "intake-api", tracing.Config{Endpoint: endpoint, LookupEnv: noEnv})
		require.Error(t, err, endpoint)
		require.Contains(t, err.Error(), "OTLP endpoint")
		require.NotContains(t, err.Error(), "s3cret")
	}
}
