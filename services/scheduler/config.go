package scheduler

import (
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/jonboulle/clockwork"
	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc/credentials"

	"github.com/intakehq/intake/pkg/natsconn"
)

// DefaultPollInterval is how often the job list is reconciled when
// Config.PollInterval is zero.
const DefaultPollInterval = 5 * time.Second

// Config configures a Service.
type Config struct {
	// NATSURL is the NATS server the run requests are published to, e.g.
	// "nats://127.0.0.1:4222". The pipeline's streams must exist
	// (pipeline.EnsureStreams).
	NATSURL string
	// NATS are the credentials and TLS settings of the NATS connection
	// (zero: none; TLS for a tls:// URL or a server that requires it).
	NATS natsconn.Options
	// APIAddr is the control API's gRPC address, e.g. "127.0.0.1:9090".
	APIAddr string
	// APICredentials, when set, go with every call to the control API:
	// the worker token ("authorization: Bearer <token>"), which the API
	// requires of the workers, over APITransport.
	APICredentials credentials.PerRPCCredentials
	// APITransport secures the connection to the control API
	// (tlsconf.Client); nil is plaintext.
	APITransport credentials.TransportCredentials
	// PollInterval is how often the job list is read from the control API
	// to pick up new, changed, disabled and deleted jobs. Zero means
	// DefaultPollInterval.
	PollInterval time.Duration
	// ShutdownGrace bounds a stop: gocron's running jobs and the ticks and
	// catch-ups in flight get this long, then their work is cancelled.
	// Zero means DefaultShutdownGrace.
	ShutdownGrace time.Duration
	// KVReplicas is the number of JetStream replicas of the scheduler's
	// key-value buckets (TickBucket, LastTickBucket). Zero means 1.
	KVReplicas int
	// Clock drives the schedule (tick times, lateness, polling). Nil means
	// the real clock; tests pass clockwork.NewFakeClockAt.
	Clock clockwork.Clock
	// Registerer receives the scheduler's metrics. Nil means a private
	// registry (metrics are kept but not exported).
	Registerer prometheus.Registerer
	// Logger receives structured logs. Nil means slog.Default().
	Logger *slog.Logger
}

// Config errors, one per rule.
var (
	ErrNoNATSURL            = errors.New("scheduler: config: NATSURL is required")
	ErrNoAPIAddr            = errors.New("scheduler: config: APIAddr is required")
	ErrNegativePollInterval = errors.New("scheduler: config: PollInterval must not be negative")
	ErrShortPollInterval    = errors.New("scheduler: config: PollInterval must be at least 10ms")
	ErrKVReplicas           = errors.New("scheduler: config: KVReplicas must be 0 to 5")
)

// Validate reports the first rule the config breaks.
func (c Config) Validate() error {
	switch {
	case c.NATSURL == "":
		return ErrNoNATSURL
	case c.APIAddr == "":
		return ErrNoAPIAddr
	case c.PollInterval < 0:
		return fmt.Errorf("%w (got %s)", ErrNegativePollInterval, c.PollInterval)
	case c.PollInterval > 0 && c.PollInterval < 10*time.Millisecond:
		return fmt.Errorf("%w (got %s)", ErrShortPollInterval, c.PollInterval)
	case c.KVReplicas < 0 || c.KVReplicas > 5:
		return fmt.Errorf("%w (got %d)", ErrKVReplicas, c.KVReplicas)
	}
	return nil
}

// DefaultShutdownGrace is Config.ShutdownGrace when unset: as long as one
// tick may take, and a little more.
const DefaultShutdownGrace = tickTimeout + 5*time.Second

func (c Config) withDefaults() Config {
	if c.PollInterval == 0 {
		c.PollInterval = DefaultPollInterval
	}
	if c.ShutdownGrace <= 0 {
		c.ShutdownGrace = DefaultShutdownGrace
	}
	if c.Clock == nil {
		c.Clock = clockwork.NewRealClock()
	}
	if c.Registerer == nil {
		c.Registerer = prometheus.NewRegistry()
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	return c
}
