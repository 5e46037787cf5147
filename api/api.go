// Package api is Intake's control API: the gRPC server that owns jobs and
// run history in PostgreSQL, takes the pipeline stages' status reports
// (intake.v1.StageService), queues runs on JetStream, and streams run
// progress to clients. It applies the database migrations on start.
//
// A Server is built with New and served with Run until its context ends:
//
//	srv, err := api.New(api.Config{DatabaseURL: dsn, NATSURL: natsURL, GRPCAddr: ":7070"})
//	...
//	err = srv.Run(ctx)
package api

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/grpc-ecosystem/go-grpc-middleware/v2/interceptors/recovery"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/reflection"

	"github.com/intakehq/intake/api/internal/store"
	"github.com/intakehq/intake/pkg/archive"
	"github.com/intakehq/intake/pkg/natsconn"
	"github.com/intakehq/intake/pkg/pipeline"
	"github.com/intakehq/intake/pkg/schema"
	"github.com/intakehq/intake/pkg/secretbox"
	"github.com/intakehq/intake/pkg/source"
	"github.com/intakehq/intake/pkg/tracing"
	intakev1 "github.com/intakehq/intake/proto/gen/intake/v1"
)

// DefaultShutdownTimeout is how long Run waits for in-flight calls to end
// after its context is cancelled before it cuts them off.
const DefaultShutdownTimeout = 10 * time.Second

// Config configures a Server.
type Config struct {
	// DatabaseURL is the PostgreSQL connection string,
	// e.g. "postgres://intake@db:5432/intake".
	DatabaseURL string
	// NATSURL is the NATS server URL, e.g. "nats://nats:4222".
	NATSURL string
	// NATS are the credentials and TLS settings of the NATS connection
	// (zero: none; TLS for a tls:// URL or a server that requires it).
	NATS natsconn.Options
	// GRPCAddr is the TCP address the gRPC server listens on, e.g.
	// "127.0.0.1:7070" or ":7070"; port 0 picks a free port (see Addr).
	GRPCAddr string
	// TLS, when set, serves the gRPC and HTTP API over TLS with it
	// (pkg/tlsconf: a certificate read again when its files change); nil
	// serves them in plaintext (gRPC over h2c).
	TLS *tls.Config
	// Registerer receives the API's metrics; nil keeps them in a private
	// registry.
	Registerer prometheus.Registerer
	// Logger receives the API's logs; nil means slog.Default().
	Logger *slog.Logger
	// DevMode accepts jobs with a local file connection.
	DevMode bool
	// ShutdownTimeout bounds the graceful stop; 0 means DefaultShutdownTimeout.
	ShutdownTimeout time.Duration
	// RequeueAfter is how long a run may stay QUEUED with no stage report
	// before its run request is published again (its creator may have died
	// before publishing it, or NATS may have been down). The sweep runs
	// every RequeueAfter/2; 0 means DefaultRequeueAfter. It must exceed the
	// time the fetchers may take to pick up a run request when busy, or
	// runs are republished needlessly (harmless: JetStream and the fetcher
	// drop the copies).
	RequeueAfter time.Duration
	// SampleTimeout bounds reading the sample of a job's file that
	// ValidateMapping, PreviewJob and SuggestMapping need; 0 means
	// DefaultSampleTimeout.
	SampleTimeout time.Duration

	// issue 4 (webhook): completion webhooks, see webhook.go.

	// WebhookBackoff are the waits between the attempts to deliver a
	// run's completion webhook; the delivery is given up after
	// len(WebhookBackoff)+1 attempts. nil means DefaultWebhookBackoff()
	// (5s, 30s, 2m, 10m, 1h: six attempts); an empty slice, one attempt.
	WebhookBackoff []time.Duration
	// WebhookTimeout bounds one attempt; 0 means DefaultWebhookTimeout.
	WebhookTimeout time.Duration
	// WebhookPollInterval is how often each replica looks for runs that
	// ended and for deliveries due; 0 means DefaultWebhookPollInterval.
	WebhookPollInterval time.Duration

	// issue 4 (files):

	// Archive keeps the runs' source files, for DownloadSource, ReplayRun
	// and the retention policy; nil means the JetStream object store bucket
	// pipeline.ArchiveBucket, where the fetchers put them.
	Archive archive.Archive
	// DefaultRetention applies to the files of a job that sets neither
	// keep_runs nor keep_days; nil means keep_runs DefaultKeepRuns,
	// keep_days DefaultKeepDays. A limit of 0 does not apply.
	DefaultRetention *intakev1.RetentionPolicy
	// RetentionInterval is how often the retention policy is applied (one
	// replica at a time); 0 means DefaultRetentionInterval.
	RetentionInterval time.Duration
	// StreamReplicas is the replica count (1 to 5; 0 means 1) of the
	// pipeline's streams, which Run creates or updates at start, and of
	// the archive bucket when Run creates it. Set it like the workers'
	// (3 on a three-node JetStream cluster): Run would otherwise scale the
	// streams the workers created back to its own count.
	StreamReplicas int
	// EncryptionKeys is the key ring that encrypts secrets at rest: the
	// passwords, keys and tokens of stored connections and the jobs'
	// webhook secrets. Comma-separated "id:base64(32 bytes)" entries
	// (pkg/secretbox); the first seals new secrets, every one opens. To
	// rotate, put a new key first and keep the old ones after it. Empty:
	// connections with secrets are refused (FailedPrecondition) and webhook
	// secrets are stored in plain text.
	EncryptionKeys string
	// HTTPAddr, when set, serves the whole API over HTTP too (http.go):
	// Connect with JSON bodies (the REST/JSON mapping: POST
	// /intake.v1.JobService/TriggerJob), gRPC-Web and gRPC, e.g.
	// ":8080"; port 0 picks a free port (see HTTPAddr). Empty: off.
	HTTPAddr string
	// Auth turns authentication on (auth.go): every call but the health
	// checks needs a bearer token, and the token's role decides what it
	// may call. nil turns it off, with a warning in the log: only for tests
	// (the intake commands always set it).
	Auth *AuthConfig
}

// Validate returns the first problem of the configuration.
func (c Config) Validate() error {
	if c.DatabaseURL == "" {
		return errors.New("api: DatabaseURL is required (e.g. postgres://intake@localhost:5432/intake)")
	}
	if _, err := pgxpool.ParseConfig(c.DatabaseURL); err != nil {
		return fmt.Errorf("api: DatabaseURL: %w", err)
	}
	if c.NATSURL == "" {
		return errors.New("api: NATSURL is required (e.g. nats://localhost:4222)")
	}
	if c.GRPCAddr == "" {
		return errors.New("api: GRPCAddr is required (e.g. :7070)")
	}
	if _, _, err := net.SplitHostPort(c.GRPCAddr); err != nil {
		return fmt.Errorf("api: GRPCAddr %q: %w", c.GRPCAddr, err)
	}
	if c.ShutdownTimeout < 0 {
		return fmt.Errorf("api: ShutdownTimeout %v is negative", c.ShutdownTimeout)
	}
	if c.RequeueAfter < 0 {
		return fmt.Errorf("api: RequeueAfter %v is negative", c.RequeueAfter)
	}
	if c.RequeueAfter > 0 && c.RequeueAfter < MinRequeueAfter {
		return fmt.Errorf("api: RequeueAfter %v is shorter than %v", c.RequeueAfter, MinRequeueAfter)
	}
	if c.SampleTimeout < 0 {
		return fmt.Errorf("api: SampleTimeout %v is negative", c.SampleTimeout)
	}
	if msg := checkRetention(c.DefaultRetention); msg != "" { // issue 4 (files)
		return fmt.Errorf("api: DefaultRetention: %s", msg)
	}
	if c.RetentionInterval < 0 || c.RetentionInterval > 0 && c.RetentionInterval < MinRetentionInterval {
		return fmt.Errorf("api: RetentionInterval %v: must be at least %v (0 means %v)", c.RetentionInterval, MinRetentionInterval, DefaultRetentionInterval)
	}
	if err := c.validateWebhooks(); err != nil { // webhook.go
		return err
	}
	if c.EncryptionKeys != "" { // issue 5 (connections)
		if _, err := secretbox.ParseRing(c.EncryptionKeys); err != nil {
			return fmt.Errorf("api: EncryptionKeys: %w", err)
		}
	}
	if c.StreamReplicas < 0 || c.StreamReplicas > 5 {
		return fmt.Errorf("api: StreamReplicas %d: must be between 1 and 5 (0 means 1)", c.StreamReplicas)
	}
	if err := c.Auth.validate(); err != nil { // auth.go
		return err
	}
	return c.checkHTTPAddr() // http.go
}

// Server is the control API.
type Server struct {
	cfg     Config
	log     *slog.Logger
	metrics *metrics
	hub     *hub
	// httpClient reads the samples of jobs' files.
	httpClient *http.Client
	// rowErrorCap overrides the row errors kept per run (tests).
	rowErrorCap int64

	// Set by Run before started is closed.
	store *store.Store
	js    jetstream.JetStream
	// archive keeps the runs' source files (issue 4: files).
	archive archive.Archive
	// ring seals and opens secrets; nil without Config.EncryptionKeys.
	ring *secretbox.Ring
	// stopping is closed when shutdown begins, so long streams end.
	stopping chan struct{}

	ran      atomic.Bool
	ready    atomic.Bool
	started  chan struct{}
	addrMu   sync.Mutex
	addr     net.Addr
	rest     *restServer    // http.go: the HTTP API, under addrMu
	health   *health.Server // under addrMu; nil before Run
	draining bool           // Drain was called; under addrMu
	stopOnce sync.Once
}

// New checks cfg and builds a Server. Nothing is connected until Run.
func New(cfg Config) (*Server, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.ShutdownTimeout == 0 {
		cfg.ShutdownTimeout = DefaultShutdownTimeout
	}
	if cfg.RequeueAfter == 0 {
		cfg.RequeueAfter = DefaultRequeueAfter
	}
	if cfg.SampleTimeout == 0 {
		cfg.SampleTimeout = DefaultSampleTimeout
	}
	if cfg.DefaultRetention == nil { // issue 4 (files)
		cfg.DefaultRetention = defaultRetention()
	}
	if cfg.RetentionInterval == 0 {
		cfg.RetentionInterval = DefaultRetentionInterval
	}
	m, err := newMetrics(cfg.Registerer)
	if err != nil {
		return nil, err
	}
	var ring *secretbox.Ring
	if cfg.EncryptionKeys != "" {
		if ring, err = secretbox.ParseRing(cfg.EncryptionKeys); err != nil {
			return nil, fmt.Errorf("api: EncryptionKeys: %w", err)
		}
	}
	return &Server{
		ring:     ring,
		cfg:      cfg,
		log:      cfg.Logger.With("service", "api"),
		metrics:  m,
		hub:      newHub(),
		stopping: make(chan struct{}),
		// One client for every file sample, so connections are reused.
		httpClient: source.NewHTTPClient(cfg.SampleTimeout),
		started:    make(chan struct{}),
	}, nil
}

// Started is closed once the server accepts calls; Addr is set by then.
func (s *Server) Started() <-chan struct{} { return s.started }

// Addr is the address the gRPC server listens on, nil before it started.
func (s *Server) Addr() net.Addr {
	s.addrMu.Lock()
	defer s.addrMu.Unlock()
	return s.addr
}

// Ready reports whether the server serves calls: connected, migrated,
// listening and not shutting down. For a readiness probe.
func (s *Server) Ready() bool { return s.ready.Load() }

// Run connects PostgreSQL (applying migrations) and NATS (ensuring the
// pipeline's streams), then serves gRPC until ctx is cancelled, and stops
// gracefully. While it serves, a sweeper publishes again the run requests of
// runs stuck in QUEUED (see Config.RequeueAfter). It returns nil after a
// graceful stop. A Server runs once.
func (s *Server) Run(ctx context.Context) error {
	if s.ran.Swap(true) {
		return errors.New("api: Run called twice")
	}
	pool, err := pgxpool.New(ctx, s.cfg.DatabaseURL)
	if err != nil {
		return fmt.Errorf("api: connect to PostgreSQL: %w", err)
	}
	defer pool.Close()
	if err := pool.Ping(ctx); err != nil {
		return fmt.Errorf("api: connect to PostgreSQL: %w", err)
	}
	if err := schema.Migrate(ctx, pool); err != nil {
		return fmt.Errorf("api: %w", err)
	}
	nc, err := natsconn.Connect(ctx, s.cfg.NATSURL, s.cfg.NATS, "intake-api")
	if err != nil {
		return fmt.Errorf("api: %w", err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return fmt.Errorf("api: JetStream: %w", err)
	}
	if err := pipeline.EnsureStreams(ctx, js, s.cfg.StreamReplicas); err != nil {
		return fmt.Errorf("api: %w", err)
	}
	s.store, s.js = store.New(pool), tracing.JetStream(js) // publishes carry the caller's trace
	defer s.metrics.watchRuns(pool)()
	s.metrics.jobCache.watch(s.store.JobCacheStats)
	s.store.OnAutoDisable(s.jobAutoDisabled) // jobops.go: the failure policy
	// issue 5 (connections): secrets sealed with the key ring, jobs that
	// name a stored connection checked as they are saved.
	s.store.SetKeyRing(s.ring)
	s.store.OnSaveJob(s.checkJobConnection)
	if err := s.sealPlainSecrets(ctx); err != nil {
		return fmt.Errorf("api: %w", err)
	}
	// issue 4 (files): the run archive, for downloads, replays and retention.
	if s.archive = s.cfg.Archive; s.archive == nil {
		if s.archive, err = archive.NewJetStream(ctx, js, pipeline.ArchiveBucket, s.cfg.StreamReplicas); err != nil {
			return fmt.Errorf("api: %w", err)
		}
	}
	// A run that did not download its file (304) reads its file run's.
	s.archive = fileRunArchive{Archive: s.archive, store: s.store}
	if s.rowErrorCap > 0 {
		s.store.SetRowErrorCap(s.rowErrorCap)
	}

	// The requeue sweeper stops before the connections close.
	sweepCtx, stopSweep := context.WithCancel(ctx)
	sweepDone := make(chan struct{})
	go func() { defer close(sweepDone); s.requeueLoop(sweepCtx) }()
	defer func() { stopSweep(); <-sweepDone }()
	// issue 4 (files): the retention janitor, stopped with the sweeper.
	janitorDone := make(chan struct{})
	go func() { defer close(janitorDone); s.retentionLoop(sweepCtx) }()
	defer func() { stopSweep(); <-janitorDone }()
	defer s.startWebhooks(sweepCtx)() // webhook.go: the completion webhook deliverer

	lis, err := net.Listen("tcp", s.cfg.GRPCAddr)
	if err != nil {
		return fmt.Errorf("api: listen on %s: %w", s.cfg.GRPCAddr, err)
	}
	creds := insecure.NewCredentials()
	if s.cfg.TLS != nil {
		creds = credentials.NewTLS(s.cfg.TLS)
	}
	gs := grpc.NewServer(
		grpc.Creds(creds),
		tracing.GRPCServerOption(), // a span per call, in the caller's trace
		// Metrics first, so that refused calls and recovered panics count
		// too; auth.go last.
		grpc.ChainUnaryInterceptor(s.metrics.grpc.UnaryServerInterceptor(),
			recovery.UnaryServerInterceptor(recovery.WithRecoveryHandlerContext(s.recoverPanic)), s.authUnary),
		grpc.ChainStreamInterceptor(s.metrics.grpc.StreamServerInterceptor(),
			recovery.StreamServerInterceptor(recovery.WithRecoveryHandlerContext(s.recoverPanic)), s.authStream),
	)
	s.logAuth()
	intakev1.RegisterJobServiceServer(gs, &jobService{s: s})
	intakev1.RegisterRunServiceServer(gs, &runService{s: s})
	intakev1.RegisterStageServiceServer(gs, &stageService{s: s})
	intakev1.RegisterDataModelServiceServer(gs, &dataModelService{s: s})
	intakev1.RegisterConnectionServiceServer(gs, &connectionService{s: s}) // connections.go
	intakev1.RegisterAccessServiceServer(gs, &accessService{s: s})         // access.go
	hs := health.NewServer()
	healthpb.RegisterHealthServer(gs, hs)
	s.addrMu.Lock()
	s.health = hs
	draining := s.draining
	s.addrMu.Unlock()
	reflection.Register(gs)
	s.metrics.grpc.InitializeMetrics(gs) // every method's series start at zero
	for _, name := range []string{"",
		intakev1.JobService_ServiceDesc.ServiceName,
		intakev1.RunService_ServiceDesc.ServiceName,
		intakev1.StageService_ServiceDesc.ServiceName,
		intakev1.DataModelService_ServiceDesc.ServiceName,
		intakev1.ConnectionService_ServiceDesc.ServiceName,
		intakev1.AccessService_ServiceDesc.ServiceName,
	} {
		hs.SetServingStatus(name, healthpb.HealthCheckResponse_SERVING)
	}
	if draining {
		hs.Shutdown()
	}

	serveErr := make(chan error, 1)
	rest, err := s.startHTTP(gs, serveErr) // http.go: the API over HTTP (Config.HTTPAddr)
	if err != nil {
		lis.Close()
		return err
	}
	defer rest.close()
	go func() { serveErr <- gs.Serve(lis) }()
	s.addrMu.Lock()
	s.addr = lis.Addr()
	s.addrMu.Unlock()
	s.ready.Store(true)
	close(s.started)
	s.log.Info("control API serving", "addr", lis.Addr().String(), "tls", s.cfg.TLS != nil, "dev_mode", s.cfg.DevMode, "requeue_after", s.cfg.RequeueAfter)

	select {
	case err := <-serveErr:
		s.ready.Store(false)
		hs.Shutdown()
		s.stopOnce.Do(func() { close(s.stopping) })
		return fmt.Errorf("api: serve gRPC: %w", err)
	case <-ctx.Done():
	}
	s.ready.Store(false)
	hs.Shutdown()
	s.stopOnce.Do(func() { close(s.stopping) })
	stopSweep()
	s.log.Info("control API stopping", "timeout", s.cfg.ShutdownTimeout)
	rest.shutdown(s.cfg.ShutdownTimeout) // before GracefulStop, which would cut its calls off
	stopped := make(chan struct{})
	go func() { gs.GracefulStop(); close(stopped) }()
	select {
	case <-stopped:
	case <-time.After(s.cfg.ShutdownTimeout):
		s.log.Warn("graceful stop timed out; closing open calls", "timeout", s.cfg.ShutdownTimeout)
		gs.Stop()
		<-stopped
	}
	return nil
}

// Drain tells gRPC health checkers that the API is stopping (every service
// NOT_SERVING) while it still serves calls: a stop calls it when it begins,
// before the shutdown delay, as /readyz turns 503 at the same moment.
func (s *Server) Drain() {
	s.addrMu.Lock()
	defer s.addrMu.Unlock()
	s.draining = true
	if s.health != nil {
		s.health.Shutdown()
	}
}
