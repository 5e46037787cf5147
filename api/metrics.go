package api

import (
	"context"
	"fmt"
	"runtime/debug"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	intakev1 "github.com/intakehq/intake/proto/gen/intake/v1"
)

type metrics struct {
	runsFinished *prometheus.CounterVec
	rows         *prometheus.CounterVec
	runDuration  *prometheus.HistogramVec
	requests     *prometheus.CounterVec
	latency      *prometheus.HistogramVec
	runsRequeued prometheus.Counter
	jobsDisabled prometheus.Counter     // jobops.go
	filesExpired prometheus.Counter     // issue 4 (files)
	triggers     *prometheus.CounterVec // trigger.go
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	if reg == nil {
		reg = prometheus.NewRegistry()
	}
	m := &metrics{
		runsFinished: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "intake_api_runs_finished_total",
			Help: "Runs that reached a final state, by state and trigger.",
		}, []string{"state", "trigger"}),
		rows: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "intake_api_rows_total",
			Help: "Rows of finished runs, by stage and outcome (read, rejected, staged, created, updated, unchanged, ignored).",
		}, []string{"stage", "outcome"}),
		runDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "intake_api_run_duration_seconds",
			Help:    "Time from a run's creation to its final state, by final state.",
			Buckets: []float64{0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800, 3600, 7200},
		}, []string{"state"}),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "intake_api_grpc_requests_total",
			Help: "gRPC calls handled, by method and status code.",
		}, []string{"method", "code"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "intake_api_grpc_request_duration_seconds",
			Help:    "Latency of unary gRPC calls, by method.",
			Buckets: prometheus.DefBuckets,
		}, []string{"method"}),
		runsRequeued: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "intake_api_runs_requeued_total",
			Help: "Runs found still QUEUED with no stage report after RequeueAfter whose run request was published again.",
		}),
		filesExpired: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "intake_api_source_files_expired_total",
			Help: "Archived source files of runs deleted by the retention policy.",
		}),
	}
	for _, c := range []prometheus.Collector{m.runsFinished, m.rows, m.runDuration, m.requests, m.latency, m.runsRequeued, m.filesExpired} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("api: register metrics: %w", err)
		}
	}
	if err := m.registerJobOps(reg); err != nil { // jobops.go
		return nil, err
	}
	if err := m.registerTrigger(reg); err != nil { // trigger.go
		return nil, err
	}
	return m, nil
}

func enumLabel(s, prefix string) string { return strings.ToLower(strings.TrimPrefix(s, prefix)) }

// runFinished counts a run that has just reached its final state.
func (m *metrics) runFinished(run *intakev1.Run) {
	state := enumLabel(run.GetState().String(), "RUN_STATE_")
	m.runsFinished.WithLabelValues(state, enumLabel(run.GetTrigger().String(), "TRIGGER_")).Inc()
	if run.GetCreateTime() != nil && run.GetEndTime() != nil {
		d := run.GetEndTime().AsTime().Sub(run.GetCreateTime().AsTime())
		m.runDuration.WithLabelValues(state).Observe(max(d.Seconds(), 0))
	}
	c := run.GetCounters()
	for _, x := range []struct {
		stage, outcome string
		n              int64
	}{
		{"map", "read", c.GetRowsRead()},
		{"map", "rejected", c.GetRowsRejected()},
		{"load", "staged", c.GetRowsStaged()},
		{"load", "created", c.GetRowsCreated()},
		{"load", "updated", c.GetRowsUpdated()},
		{"load", "unchanged", c.GetRowsUnchanged()},
		{"load", "ignored", c.GetRowsIgnored()},
	} {
		if x.n > 0 {
			m.rows.WithLabelValues(x.stage, x.outcome).Add(float64(x.n))
		}
	}
}

// unaryInterceptor counts and times calls and turns a panic into Internal.
func (s *Server) unaryInterceptor(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (resp any, err error) {
	start := time.Now()
	defer func() {
		if p := recover(); p != nil {
			s.log.Error("panic in gRPC handler", "method", info.FullMethod, "panic", p, "stack", string(debug.Stack()))
			err = status.Errorf(codes.Internal, "internal error in %s", info.FullMethod)
		}
		s.metrics.requests.WithLabelValues(info.FullMethod, status.Code(err).String()).Inc()
		s.metrics.latency.WithLabelValues(info.FullMethod).Observe(time.Since(start).Seconds())
	}()
	return handler(ctx, req)
}

// streamInterceptor counts streams and turns a panic into Internal.
func (s *Server) streamInterceptor(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) (err error) {
	defer func() {
		if p := recover(); p != nil {
			s.log.Error("panic in gRPC handler", "method", info.FullMethod, "panic", p, "stack", string(debug.Stack()))
			err = status.Errorf(codes.Internal, "internal error in %s", info.FullMethod)
		}
		s.metrics.requests.WithLabelValues(info.FullMethod, status.Code(err).String()).Inc()
	}()
	return handler(srv, ss)
}
