// Package mapper is the pipeline's mapping stage. It consumes the chunks the
// fetchers cut from a run's file (stream INTAKE_CHUNKS, consumer "mapper"),
// parses each chunk's CSV records with the job's dialect, maps them through
// the job's mapping spec (compiled once per run, see pkg/mapping), reports
// the chunk to the control API with its rejected rows, and publishes the
// typed rows as a Batch for the loaders.
//
// It follows docs/pipeline.md, step 3: a bad record is rejected (row, column,
// reason), never the chunk; a problem of the job (a mapped column missing
// from the header, a key not mapped, an unknown attribute) fails the run; a
// run that has ended (directive ABANDON) has its chunks dropped.
//
// Each worker slot holds one chunk and its batch at a time; nothing of a run
// accumulates in memory but its compiled plan.
package mapper

import (
	"context"
	"fmt"
	"log/slog"
	"sync/atomic"

	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/grpc"

	"github.com/intakehq/intake/pkg/natsconn"
	"github.com/intakehq/intake/pkg/pipeline"
	"github.com/intakehq/intake/pkg/tlsconf"
	"github.com/intakehq/intake/pkg/tracing"
	intakev1 "github.com/intakehq/intake/proto/gen/intake/v1"
)

// planCacheSize is how many runs' plans a process keeps compiled.
const planCacheSize = 64

// Service is the mapper. Create it with New and start it with Run.
type Service struct {
	cfg     Config
	log     *slog.Logger
	metrics *metrics
	plans   *planCache
	ready   atomic.Bool

	// Set by Run.
	js         jetstream.JetStream
	stage      intakev1.StageServiceClient
	maxPayload int64
}

// New checks cfg and returns a mapper ready to Run.
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
		plans:   newPlanCache(planCacheSize),
	}, nil
}

// Run connects to NATS and the control API and maps chunks until ctx is
// cancelled. Then it stops taking chunks, lets the ones in flight finish
// within ShutdownGrace, and returns ctx.Err(). Run may be called once.
func (s *Service) Run(ctx context.Context) error {
	nc, err := natsconn.Connect(ctx, s.cfg.NATSURL, s.cfg.NATS, "intake-mapper")
	if err != nil {
		return fmt.Errorf("mapper: %w", err)
	}
	defer nc.Close()
	conn, err := grpc.NewClient(s.cfg.APIAddr, append(tlsconf.DialOptions(s.cfg.APITransport, s.cfg.APICredentials), tracing.GRPCDialOption())...)
	if err != nil {
		return fmt.Errorf("mapper: control API client for %s: %w", s.cfg.APIAddr, err)
	}
	defer conn.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return fmt.Errorf("mapper: jetstream: %w", err)
	}
	if err := pipeline.EnsureStreams(ctx, js, s.cfg.StreamReplicas); err != nil {
		return fmt.Errorf("mapper: %w", err)
	}
	s.js = tracing.JetStream(js) // batches carry the chunk's trace
	s.stage = intakev1.NewStageServiceClient(conn)
	defer s.metrics.consumer.Watch(js)() // metrics.go: the chunk consumer's lag
	s.maxPayload = nc.MaxPayload()

	s.log.Info("mapper started", "concurrency", s.cfg.Concurrency)
	s.ready.Store(true)
	defer s.ready.Store(false)
	err = pipeline.Work(ctx, js, pipeline.WorkerConfig{
		Stream:      pipeline.StreamChunks,
		Consumer:    pipeline.ConsumerConfig(pipeline.ConsumerMapper, s.cfg.AckWait, 2*s.cfg.Concurrency),
		Concurrency: s.cfg.Concurrency,
		Logger:      s.log,
	}, s.cfg.ShutdownGrace, tracing.Handler("map", map[string]string{pipeline.SubjectChunk: "map chunk"}, s.handle))
	s.log.Info("mapper stopped")
	return err
}

// Ready reports whether the mapper is connected and consuming chunks.
func (s *Service) Ready() bool { return s.ready.Load() }
