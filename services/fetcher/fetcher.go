// Package fetcher is the pipeline's first stage: for every run request it
// reads the job's file, keeps its original bytes in the run archive (hashing
// them on the way), lets the control API decide whether the run goes on (an
// unchanged file is skipped), reads the archived file back as UTF-8 text
// (un-gzipped, decoded, its delimiter detected: pkg/dialect), cuts it into
// record-aligned chunks for the mappers (pkg/chunker), each carrying the
// resolved dialect, the run's model and dry-run flag, and seals the run with
// its chunk count. docs/pipeline.md is the contract it implements.
package fetcher

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/grpc"

	"github.com/intakehq/intake/pkg/archive"
	"github.com/intakehq/intake/pkg/natsconn"
	"github.com/intakehq/intake/pkg/pipeline"
	"github.com/intakehq/intake/pkg/source"
	"github.com/intakehq/intake/pkg/tlsconf"
	"github.com/intakehq/intake/pkg/tracing"
	intakev1 "github.com/intakehq/intake/proto/gen/intake/v1"
)

// Service is the fetcher. Create it with New and start it with Run.
type Service struct {
	cfg     Config
	log     *slog.Logger
	metrics *metrics
	http    *http.Client

	ready atomic.Bool
	nc    atomic.Pointer[nats.Conn]

	// Set by Run before the first message is handled.
	js      jetstream.JetStream
	archive archive.Archive
	stage   intakev1.StageServiceClient
}

// New validates cfg and registers the metrics.
func New(cfg Config) (*Service, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	m, err := newMetrics(cfg.Registerer)
	if err != nil {
		return nil, err
	}
	return &Service{
		cfg:     cfg,
		log:     cfg.Logger,
		metrics: m,
		http:    source.NewHTTPClient(cfg.FetchTimeout),
	}, nil
}

// Ready reports whether the fetcher is connected and consuming run requests.
func (s *Service) Ready() bool {
	nc := s.nc.Load()
	return s.ready.Load() && nc != nil && nc.IsConnected()
}

// Run connects to NATS and the control API and fetches runs until ctx is
// cancelled. Then it stops taking run requests, lets the runs in progress
// finish for up to ShutdownGrace and returns nil. It returns an error when it
// cannot start.
func (s *Service) Run(ctx context.Context) error {
	nc, err := natsconn.Connect(ctx, s.cfg.NATSURL, s.cfg.NATS, "intake-fetcher",
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
			if err != nil {
				s.log.Warn("disconnected from NATS", "err", err)
			}
		}),
		nats.ReconnectHandler(func(nc *nats.Conn) { s.log.Info("reconnected to NATS", "url", nc.ConnectedUrlRedacted()) }),
	)
	if err != nil {
		return fmt.Errorf("fetcher: %w", err)
	}
	defer nc.Close()
	s.nc.Store(nc)
	js, err := jetstream.New(nc)
	if err != nil {
		return fmt.Errorf("fetcher: jetstream: %w", err)
	}
	if err := pipeline.EnsureStreams(ctx, js, s.cfg.Replicas); err != nil {
		return fmt.Errorf("fetcher: %w", err)
	}
	arch, err := archive.NewJetStream(ctx, js, pipeline.ArchiveBucket, s.cfg.Replicas)
	if err != nil {
		return fmt.Errorf("fetcher: %w", err)
	}
	conn, err := grpc.NewClient(s.cfg.APIAddr, append(tlsconf.DialOptions(s.cfg.APITransport, s.cfg.APICredentials), tracing.GRPCDialOption())...)
	if err != nil {
		return fmt.Errorf("fetcher: control API client for %s: %w", s.cfg.APIAddr, err)
	}
	defer conn.Close()
	s.js, s.archive, s.stage = tracing.JetStream(js), arch, intakev1.NewStageServiceClient(conn)
	defer s.metrics.consumer.Watch(js)() // metrics.go: the run request consumer's lag

	s.log.Info("fetcher started", "nats", nc.ConnectedUrlRedacted(), "api", s.cfg.APIAddr,
		"concurrency", s.cfg.Concurrency, "dev_mode", s.cfg.DevMode)
	s.ready.Store(true)
	defer s.ready.Store(false)
	err = pipeline.Work(ctx, js, pipeline.WorkerConfig{
		Stream:      pipeline.StreamRuns,
		Consumer:    pipeline.ConsumerConfig(pipeline.ConsumerFetcher, s.cfg.AckWait, s.cfg.Concurrency),
		Concurrency: s.cfg.Concurrency,
		Logger:      s.log,
	}, s.cfg.ShutdownGrace, tracing.Handler("fetch", map[string]string{pipeline.SubjectRunRequest: "fetch run"}, s.handle))
	if ctx.Err() != nil && errors.Is(err, ctx.Err()) {
		s.log.Info("fetcher stopped")
		return nil
	}
	return fmt.Errorf("fetcher: %w", err)
}

// runID is the last segment of a run name "jobs/{job}/runs/{run}".
func runID(name string) (string, error) {
	parts := strings.Split(name, "/")
	if len(parts) != 4 || parts[0] != "jobs" || parts[2] != "runs" || parts[1] == "" || parts[3] == "" {
		return "", fmt.Errorf("run name %q is not of the form jobs/{job}/runs/{run}", name)
	}
	return parts[3], nil
}

// sinceSeconds is the time since start in seconds, for histograms.
func sinceSeconds(start time.Time) float64 { return time.Since(start).Seconds() }
