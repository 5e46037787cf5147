package tracing

import (
	"go.opentelemetry.io/contrib/instrumentation/google.golang.org/grpc/otelgrpc"
	"go.opentelemetry.io/contrib/instrumentation/google.golang.org/grpc/otelgrpc/filters"
	"google.golang.org/grpc"
)

// grpcOptions leave the health checks (probes, load balancers) untraced.
func grpcOptions() []otelgrpc.Option {
	return []otelgrpc.Option{otelgrpc.WithFilter(filters.Not(filters.HealthCheck()))}
}

// GRPCServerOption is the gRPC server option that traces every call but
// health checks: a server span per call, the child of the caller's span
// when the call's metadata carries one (W3C traceparent).
func GRPCServerOption() grpc.ServerOption {
	return grpc.StatsHandler(otelgrpc.NewServerHandler(grpcOptions()...))
}

// GRPCDialOption is the gRPC client option that traces every call but
// health checks and sends the caller's span context in the call's metadata.
func GRPCDialOption() grpc.DialOption {
	return grpc.WithStatsHandler(otelgrpc.NewClientHandler(grpcOptions()...))
}
