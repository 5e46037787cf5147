package cli

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"time"

	"github.com/intakehq/intake/cmd/internal/command"
	"github.com/intakehq/intake/pkg/tracing"
)

// tracingShutdownTimeout bounds the flush of the last spans on exit.
const tracingShutdownTimeout = 5 * time.Second

// tracingFlags registers --otlp-endpoint (INTAKE_OTLP_ENDPOINT).
func (o *options) tracingFlags(fs *flag.FlagSet) {
	fs.StringVar(&o.otlpEndpoint, "otlp-endpoint", "",
		"OpenTelemetry OTLP gRPC endpoint traces are exported to, e.g. http://otel-collector:4317 "+
			"(empty: OTEL_EXPORTER_OTLP_ENDPOINT, else no export; trace ids are still logged and propagated)")
}

// serviceName is the OpenTelemetry service.name of a subcommand's process:
// intake-api, intake-fetcher, …; intake for all services in one process.
func serviceName(cmd string) string {
	switch cmd {
	case "all", "dev":
		return "intake"
	}
	return "intake-" + cmd
}

// startTracing installs the process's tracer provider (one for every
// service of the process) and returns the function that flushes it on
// exit. Commands that run no service (migrate) are not traced.
func startTracing(ctx context.Context, o *options, cmd string, log *slog.Logger, sys command.System) (stop func(), err error) {
	if cmd == "migrate" {
		return func() {}, nil
	}
	cfg := tracing.Config{Endpoint: o.otlpEndpoint, LookupEnv: sys.LookupEnv, Logger: log}
	name := serviceName(cmd)
	shutdown, err := tracing.Setup(ctx, name, cfg)
	if err != nil {
		return nil, fmt.Errorf("--otlp-endpoint: %w", err)
	}
	if tracing.Exporting(cfg) {
		log.Info("exporting traces over OTLP", "service_name", name)
	}
	return func() {
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), tracingShutdownTimeout)
		defer cancel()
		if err := shutdown(sctx); err != nil {
			log.Warn("traces not flushed on exit", "err", err)
		}
	}, nil
}
