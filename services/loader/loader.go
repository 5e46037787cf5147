// Package loader is the last stage of the pipeline (docs/pipeline.md, step
// 4): it consumes the mapped batches and the seals of runs from the
// INTAKE_LOAD stream, stages each batch in the run's staging table, and once
// every chunk of a sealed run is staged commits the run into its object
// table in one transaction, reporting progress to the control API.
//
// Staging columns take their types from Batch.types, so custom attributes
// (columns added through the DataModelService) load like system ones;
// foreign keys are text. Keys, required attributes and append-only come
// from pkg/objects by Batch.object. Append-only objects (usage) only ever
// insert rows whose keys are new; a row whose keys exist is counted
// rows_unchanged and left as it is, whatever its other attributes say.
//
// Before a commit the loader reports (LOAD, COMMITTING) with the rows staged
// (the commit gate): ABANDON drops the staging, CONTINUE merges. A dry run
// (Batch.dry_run / Seal.dry_run) stages and counts exactly as a real run,
// then drops the staging without merging and reports FINISHED with the
// counts the run would have had.
//
// A janitor goroutine drops the runs that ended elsewhere: after CancelRun
// (or a failure in another stage) the mappers publish nothing more of a run,
// so the loader never hears of it again and its staging would stay. Every
// JanitorInterval the janitor lists the open runs idle for longer than
// StaleAfter and reports (LOAD, STARTED) for each: ABANDON (or NotFound)
// drops the run's staging and bookkeeping, keeping its abandoned marker;
// CONTINUE (still in progress, e.g. slow mappers) leaves it. One loader
// replica asks about a run at a time. Abandoned markers older than
// AbandonedRetention are deleted.
//
// The database work lives in internal/store; this package is the worker
// around it: consumer loop, reports, metrics.
package loader

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"

	"github.com/intakehq/intake/pkg/natsconn"
	"github.com/intakehq/intake/pkg/pipeline"
	"github.com/intakehq/intake/pkg/tlsconf"
	"github.com/intakehq/intake/pkg/tracing"
	intakev1 "github.com/intakehq/intake/proto/gen/intake/v1"
	"github.com/intakehq/intake/services/loader/internal/store"
)

// Defaults of Config.
const (
	DefaultConcurrency   = 4
	DefaultAckWait       = 30 * time.Second
	DefaultShutdownGrace = 30 * time.Second

	DefaultJanitorInterval    = time.Minute
	DefaultStaleAfter         = 2 * time.Minute
	DefaultAbandonedRetention = 24 * time.Hour
)

// Errors of Config.Validate.
var (
	ErrNoNATSURL     = errors.New("loader: NATSURL is required (the NATS server to consume batches from)")
	ErrNoAPIAddr     = errors.New("loader: APIAddr is required (host:port of the control API's StageService)")
	ErrNoDatabaseURL = errors.New("loader: DatabaseURL is required (the PostgreSQL database of the object tables)")
)

// Config configures the loader.
type Config struct {
	// NATSURL is the NATS server with JetStream, e.g. nats://nats:4222.
	NATSURL string
	// NATS are the credentials and TLS settings of the NATS connection
	// (zero: none; TLS for a tls:// URL or a server that requires it).
	NATS natsconn.Options
	// APIAddr is the control API's gRPC address, host:port.
	APIAddr string
	// APICredentials, when set, go with every call to the control API:
	// the worker token ("authorization: Bearer <token>"), which the API
	// requires of the workers, over APITransport.
	APICredentials credentials.PerRPCCredentials
	// APITransport secures the connection to the control API
	// (tlsconf.Client); nil is plaintext.
	APITransport credentials.TransportCredentials
	// DatabaseURL is the PostgreSQL database (connection URL or DSN).
	DatabaseURL string
	// Concurrency is how many messages are handled at once. 0 means
	// DefaultConcurrency.
	Concurrency int
	// AckWait is how long JetStream waits for an ack before redelivering;
	// running handlers extend it. 0 means DefaultAckWait.
	AckWait time.Duration
	// ShutdownGrace is how long running handlers may go on after the
	// context is cancelled. 0 means DefaultShutdownGrace.
	ShutdownGrace time.Duration
	// StreamReplicas is the replica count of the pipeline streams, should
	// the loader be the one to create them. 0 means 1.
	StreamReplicas int
	// JanitorInterval is how often the janitor looks for runs that ended
	// elsewhere. 0 means DefaultJanitorInterval.
	JanitorInterval time.Duration
	// StaleAfter is how long an open run may go without a batch staged or
	// a seal before the janitor asks the control API whether it ended. 0
	// means DefaultStaleAfter.
	StaleAfter time.Duration
	// AbandonedRetention is how long the marker of an abandoned run is kept
	// (a late batch of the run is then dropped without staging). 0 means
	// DefaultAbandonedRetention.
	AbandonedRetention time.Duration
	// Registerer gets the loader's metrics; nil keeps them private.
	Registerer prometheus.Registerer
	// Logger defaults to slog.Default().
	Logger *slog.Logger
}

// Validate checks the configuration and returns the first problem.
func (c *Config) Validate() error {
	switch {
	case c.NATSURL == "":
		return ErrNoNATSURL
	case c.APIAddr == "":
		return ErrNoAPIAddr
	case c.DatabaseURL == "":
		return ErrNoDatabaseURL
	case c.Concurrency < 0:
		return fmt.Errorf("loader: Concurrency must be 0 (default %d) or more, got %d", DefaultConcurrency, c.Concurrency)
	case c.AckWait < 0 || c.AckWait > 0 && c.AckWait < time.Second:
		return fmt.Errorf("loader: AckWait must be 0 (default %s) or at least 1s, got %s", DefaultAckWait, c.AckWait)
	case c.ShutdownGrace < 0:
		return fmt.Errorf("loader: ShutdownGrace must be 0 (default %s) or more, got %s", DefaultShutdownGrace, c.ShutdownGrace)
	case c.StreamReplicas < 0 || c.StreamReplicas > 5:
		return fmt.Errorf("loader: StreamReplicas must be between 0 (default 1) and 5, got %d", c.StreamReplicas)
	case c.JanitorInterval < 0:
		return fmt.Errorf("loader: JanitorInterval must be 0 (default %s) or more, got %s", DefaultJanitorInterval, c.JanitorInterval)
	case c.StaleAfter < 0:
		return fmt.Errorf("loader: StaleAfter must be 0 (default %s) or more, got %s", DefaultStaleAfter, c.StaleAfter)
	case c.AbandonedRetention < 0:
		return fmt.Errorf("loader: AbandonedRetention must be 0 (default %s) or more, got %s", DefaultAbandonedRetention, c.AbandonedRetention)
	}
	if _, err := pgxpool.ParseConfig(c.DatabaseURL); err != nil {
		return fmt.Errorf("loader: DatabaseURL: %w", err)
	}
	return nil
}

// Service is the loader worker.
type Service struct {
	cfg     Config
	log     *slog.Logger
	metrics *metrics
	ready   atomic.Bool
	nc      atomic.Pointer[nats.Conn]

	// Set by Run.
	store *store.Store
	api   intakev1.StageServiceClient
}

// New checks cfg and returns a loader; Run starts it.
func New(cfg Config) (*Service, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.Concurrency == 0 {
		cfg.Concurrency = DefaultConcurrency
	}
	if cfg.AckWait == 0 {
		cfg.AckWait = DefaultAckWait
	}
	if cfg.ShutdownGrace == 0 {
		cfg.ShutdownGrace = DefaultShutdownGrace
	}
	if cfg.StreamReplicas == 0 {
		cfg.StreamReplicas = 1
	}
	if cfg.JanitorInterval == 0 {
		cfg.JanitorInterval = DefaultJanitorInterval
	}
	if cfg.StaleAfter == 0 {
		cfg.StaleAfter = DefaultStaleAfter
	}
	if cfg.AbandonedRetention == 0 {
		cfg.AbandonedRetention = DefaultAbandonedRetention
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	reg := cfg.Registerer
	if reg == nil {
		reg = prometheus.NewRegistry()
	}
	m, err := newMetrics(reg)
	if err != nil {
		return nil, err
	}
	return &Service{cfg: cfg, log: cfg.Logger.With("service", "loader"), metrics: m}, nil
}

// Ready reports whether the loader is connected and consuming.
func (s *Service) Ready() bool {
	nc := s.nc.Load()
	return s.ready.Load() && nc != nil && nc.IsConnected()
}

// Run connects to PostgreSQL, NATS and the control API and handles batches
// and seals (and runs the janitor) until ctx is cancelled; then it lets running handlers finish
// (for up to ShutdownGrace) and returns ctx.Err().
func (s *Service) Run(ctx context.Context) error {
	err := s.run(ctx)
	if ctx.Err() != nil {
		return ctx.Err()
	}
	return err
}

func (s *Service) run(ctx context.Context) error {
	pcfg, err := pgxpool.ParseConfig(s.cfg.DatabaseURL)
	if err != nil {
		return fmt.Errorf("loader: DatabaseURL: %w", err)
	}
	// Every handler holds at most one connection at a time, and so does
	// the janitor.
	if need := int32(s.cfg.Concurrency + 2); pcfg.MaxConns < need {
		pcfg.MaxConns = need
	}
	pool, err := pgxpool.NewWithConfig(ctx, pcfg)
	if err != nil {
		return fmt.Errorf("loader: database: %w", err)
	}
	defer pool.Close()
	if err := pool.Ping(ctx); err != nil {
		return fmt.Errorf("loader: database %s: %w", pcfg.ConnConfig.Host, err)
	}
	s.store = store.New(pool)

	nc, err := natsconn.Connect(ctx, s.cfg.NATSURL, s.cfg.NATS, "intake-loader")
	if err != nil {
		return fmt.Errorf("loader: %w", err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return fmt.Errorf("loader: JetStream: %w", err)
	}
	if err := pipeline.EnsureStreams(ctx, js, s.cfg.StreamReplicas); err != nil {
		return fmt.Errorf("loader: %w", err)
	}

	conn, err := grpc.NewClient(s.cfg.APIAddr, append(tlsconf.DialOptions(s.cfg.APITransport, s.cfg.APICredentials), tracing.GRPCDialOption())...)
	if err != nil {
		return fmt.Errorf("loader: control API at %s: %w", s.cfg.APIAddr, err)
	}
	defer conn.Close()
	s.api = intakev1.NewStageServiceClient(conn)
	defer s.metrics.consumer.Watch(js)() // metrics.go: the batch consumer's lag

	s.nc.Store(nc)
	s.ready.Store(true)
	defer s.ready.Store(false)
	s.log.Info("loader started", "concurrency", s.cfg.Concurrency)
	jctx, stopJanitor := context.WithCancel(ctx)
	janitorDone := make(chan struct{})
	go func() {
		defer close(janitorDone)
		s.janitor(jctx)
	}()
	err = pipeline.Work(ctx, js, pipeline.WorkerConfig{
		Stream:      pipeline.StreamLoad,
		Consumer:    pipeline.ConsumerConfig(pipeline.ConsumerLoader, s.cfg.AckWait, 0),
		Concurrency: s.cfg.Concurrency,
		Logger:      s.log,
	}, s.cfg.ShutdownGrace, tracing.Handler("load", map[string]string{pipeline.SubjectBatch: "load batch", pipeline.SubjectSeal: "seal run"}, s.handle))
	stopJanitor()
	<-janitorDone
	s.log.Info("loader stopped")
	return err
}
