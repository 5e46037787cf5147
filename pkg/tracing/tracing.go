// Package tracing sets up OpenTelemetry tracing for an Intake process and
// carries trace context across the pipeline's JetStream messages.
//
// Setup installs the process's tracer provider and the W3C trace context
// propagator (otel.SetTracerProvider, otel.SetTextMapPropagator: OTel's
// instrumentation, such as otelgrpc, finds them there). Spans are exported
// over OTLP gRPC only when an endpoint is configured; without one, spans are
// still created and their ids still travel (gRPC metadata, NATS headers, log
// lines), they are just not sent anywhere.
//
// Publishers put the current span's context into a message's headers
// (Inject, or JetStream for every publish of a JetStream handle); consumers
// take it out (Extract) and start a span per message (StartConsumer), so one
// run is one trace from the API call that created it to the loader's commit.
package tracing

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"strings"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
)

// InstrumentationName names the tracer of Intake's own spans.
const InstrumentationName = "github.com/intakehq/intake"

// Span attribute keys of the pipeline. Ids are fine as span attributes
// (never as metric labels).
const (
	AttrRun   = attribute.Key("intake.run")   // the run's resource name
	AttrJob   = attribute.Key("intake.job")   // the job's resource name
	AttrStage = attribute.Key("intake.stage") // fetch, map, load
	AttrChunk = attribute.Key("intake.chunk") // the chunk index
	// AttrMerged says whether a loader's commit merged the run (the last
	// batch and the seal may both try: one merges, the other finds it
	// done).
	AttrMerged = attribute.Key("intake.merged")
)

// Config configures Setup.
type Config struct {
	// Endpoint is the OTLP gRPC endpoint spans are exported to: a URL
	// (http://collector:4317 is plaintext, https:// uses TLS) or host:port
	// (TLS unless OTEL_EXPORTER_OTLP_INSECURE=true). Empty: the standard
	// OTEL_EXPORTER_OTLP_TRACES_ENDPOINT or OTEL_EXPORTER_OTLP_ENDPOINT
	// environment variables; none set: spans are not exported.
	Endpoint string
	// Exporter, when set, receives the spans instead of an OTLP exporter,
	// synchronously as each span ends (tests: tracetest.NewInMemoryExporter).
	Exporter sdktrace.SpanExporter
	// LookupEnv reads the environment (default os.LookupEnv).
	LookupEnv func(string) (string, bool)
	// Logger gets OpenTelemetry's errors (a failed export, …) as
	// warnings; nil: OpenTelemetry's default (the standard log package).
	Logger *slog.Logger
}

// Propagator is W3C trace context and baggage: what Setup installs and
// what Inject and Extract use, whether Setup ran or not.
func Propagator() propagation.TextMapPropagator {
	return propagation.NewCompositeTextMapPropagator(propagation.TraceContext{}, propagation.Baggage{})
}

// Setup installs the tracer provider of the process named serviceName
// (the resource's service.name; OTEL_SERVICE_NAME and
// OTEL_RESOURCE_ATTRIBUTES override and add) and the W3C trace context
// propagator. OTEL_SDK_DISABLED=true or OTEL_TRACES_EXPORTER=none turn the
// export off. shutdown flushes the spans not yet exported and puts back the
// provider and propagator found before; call it once, on exit.
func Setup(ctx context.Context, serviceName string, cfg Config) (shutdown func(context.Context) error, err error) {
	lookup := cfg.LookupEnv
	if lookup == nil {
		lookup = os.LookupEnv
	}
	res, err := resource.New(ctx,
		resource.WithAttributes(attribute.String("service.name", serviceName)),
		resource.WithFromEnv(), // OTEL_SERVICE_NAME, OTEL_RESOURCE_ATTRIBUTES
	)
	if err != nil && res == nil {
		return nil, fmt.Errorf("tracing: resource of %s: %w", serviceName, err)
	}
	opts := []sdktrace.TracerProviderOption{sdktrace.WithResource(res)}
	switch {
	case cfg.Exporter != nil:
		opts = append(opts, sdktrace.WithSyncer(cfg.Exporter))
	case exportOff(lookup):
	default:
		endpoint := cfg.Endpoint
		if endpoint == "" {
			endpoint = envEndpoint(lookup)
		}
		if endpoint == "" {
			break
		}
		eopts, err := endpointOption(endpoint)
		if err != nil {
			return nil, err
		}
		exp, err := otlptracegrpc.New(ctx, eopts...)
		if err != nil {
			return nil, fmt.Errorf("tracing: OTLP exporter to %s: %w", redact(endpoint), err)
		}
		opts = append(opts, sdktrace.WithBatcher(exp))
	}
	tp := sdktrace.NewTracerProvider(opts...)
	prevTP, prevProp, prevErr := otel.GetTracerProvider(), otel.GetTextMapPropagator(), otel.GetErrorHandler()
	otel.SetTracerProvider(tp)
	otel.SetTextMapPropagator(Propagator())
	if log := cfg.Logger; log != nil {
		otel.SetErrorHandler(otel.ErrorHandlerFunc(func(err error) {
			log.Warn("tracing: OpenTelemetry error", "err", err)
		}))
	}
	return func(ctx context.Context) error {
		otel.SetTracerProvider(prevTP)
		otel.SetTextMapPropagator(prevProp)
		if cfg.Logger != nil {
			otel.SetErrorHandler(prevErr)
		}
		if err := tp.Shutdown(ctx); err != nil {
			return fmt.Errorf("tracing: flush spans of %s: %w", serviceName, err)
		}
		return nil
	}, nil
}

// Exporting reports whether Setup would export spans for cfg: an endpoint
// is configured and export is not turned off.
func Exporting(cfg Config) bool {
	lookup := cfg.LookupEnv
	if lookup == nil {
		lookup = os.LookupEnv
	}
	if cfg.Exporter != nil {
		return true
	}
	return !exportOff(lookup) && (cfg.Endpoint != "" || envEndpoint(lookup) != "")
}

func exportOff(lookup func(string) (string, bool)) bool {
	if v, _ := lookup("OTEL_SDK_DISABLED"); strings.EqualFold(strings.TrimSpace(v), "true") {
		return true
	}
	v, _ := lookup("OTEL_TRACES_EXPORTER")
	return strings.EqualFold(strings.TrimSpace(v), "none")
}

func envEndpoint(lookup func(string) (string, bool)) string {
	for _, k := range []string{"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTEL_EXPORTER_OTLP_ENDPOINT"} {
		if v, ok := lookup(k); ok && strings.TrimSpace(v) != "" {
			return strings.TrimSpace(v)
		}
	}
	return ""
}

// endpointOption turns an endpoint into exporter options; the other
// OTEL_EXPORTER_OTLP_* settings (headers, TLS files, timeout, compression)
// the exporter reads from the environment itself.
func endpointOption(endpoint string) ([]otlptracegrpc.Option, error) {
	if !strings.Contains(endpoint, "://") {
		if strings.ContainsAny(endpoint, "/ ") || !strings.Contains(endpoint, ":") {
			return nil, fmt.Errorf("tracing: OTLP endpoint %q: want a URL (http://collector:4317) or host:port", redact(endpoint))
		}
		return []otlptracegrpc.Option{otlptracegrpc.WithEndpoint(endpoint)}, nil
	}
	u, err := url.Parse(endpoint)
	if err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https") {
		return nil, fmt.Errorf("tracing: OTLP endpoint %q: want http://host:port or https://host:port", redact(endpoint))
	}
	return []otlptracegrpc.Option{otlptracegrpc.WithEndpointURL(endpoint)}, nil
}

// redact drops a URL's user info, which could hold a secret.
func redact(endpoint string) string {
	u, err := url.Parse(endpoint)
	switch {
	case err == nil && u.User != nil:
		u.User = nil
		return u.String()
	case err != nil && strings.Contains(endpoint, "@"):
		return "…@" + endpoint[strings.LastIndex(endpoint, "@")+1:]
	}
	return endpoint
}

// Tracer is the tracer of Intake's own spans, from the installed provider.
func Tracer() trace.Tracer { return otel.Tracer(InstrumentationName) }

// Start starts a span named name as a child of ctx's span.
func Start(ctx context.Context, name string, attrs ...attribute.KeyValue) (context.Context, trace.Span) {
	return Tracer().Start(ctx, name, trace.WithAttributes(attrs...))
}

// End ends span, marking it failed when err is not nil.
func End(span trace.Span, err error) {
	if err != nil && !errors.Is(err, context.Canceled) {
		span.RecordError(err)
		span.SetStatus(codes.Error, err.Error())
	}
	span.End()
}

// SetAttributes adds attributes to ctx's span (nothing without one).
func SetAttributes(ctx context.Context, attrs ...attribute.KeyValue) {
	trace.SpanFromContext(ctx).SetAttributes(attrs...)
}

// Run are the span attributes of a run: its name, its job's (when job is
// empty, the job of the run name "jobs/{job}/runs/{run}") and, when chunk is
// not negative, the chunk.
func Run(run, job string, chunk int64) []attribute.KeyValue {
	attrs := []attribute.KeyValue{AttrRun.String(run)}
	if i := strings.Index(run, "/runs/"); job == "" && strings.HasPrefix(run, "jobs/") && i > 0 {
		job = run[:i]
	}
	if job != "" {
		attrs = append(attrs, AttrJob.String(job))
	}
	if chunk >= 0 {
		attrs = append(attrs, AttrChunk.Int64(chunk))
	}
	return attrs
}
