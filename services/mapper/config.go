package mapper

import (
	"errors"
	"log/slog"
	"runtime"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc/credentials"

	"github.com/intakehq/intake/pkg/natsconn"
)

// Config configures the mapper.
type Config struct {
	// NATSURL is the NATS server, e.g. "nats://127.0.0.1:4222". Required.
	NATSURL string
	// NATS are the credentials and TLS settings of the NATS connection
	// (zero: none; TLS for a tls:// URL or a server that requires it).
	NATS natsconn.Options
	// APIAddr is the control API's gRPC address, e.g. "127.0.0.1:7400". Required.
	APIAddr string
	// APICredentials, when set, go with every call to the control API:
	// the worker token ("authorization: Bearer <token>"), which the API
	// requires of the workers, over APITransport.
	APICredentials credentials.PerRPCCredentials
	// APITransport secures the connection to the control API
	// (tlsconf.Client); nil is plaintext.
	APITransport credentials.TransportCredentials
	// Concurrency is how many chunks are mapped at once (each holds one chunk
	// and its batch in memory). 0 means GOMAXPROCS.
	Concurrency int
	// AckWait is how long JetStream waits for an ack before it redelivers a
	// chunk (extended while a chunk is being mapped). 0 means 30s.
	AckWait time.Duration
	// ShutdownGrace is how long chunks in flight may take to finish after Run's
	// context is cancelled. 0 means 30s.
	ShutdownGrace time.Duration
	// StreamReplicas is the replica count of the pipeline's streams, which
	// Run creates or updates at start. 0 means 1.
	StreamReplicas int
	// Registerer receives the mapper's metrics; nil keeps them in a private
	// registry.
	Registerer prometheus.Registerer
	// Logger; nil means slog.Default().
	Logger *slog.Logger
}

// Errors of Config.Validate.
var (
	ErrNoNATSURL             = errors.New("mapper: config: NATSURL is required")
	ErrNoAPIAddr             = errors.New("mapper: config: APIAddr is required")
	ErrNegativeConcurrency   = errors.New("mapper: config: Concurrency must not be negative")
	ErrAckWaitTooShort       = errors.New("mapper: config: AckWait must be 0 (default) or at least 1s")
	ErrNegativeShutdownGrace = errors.New("mapper: config: ShutdownGrace must not be negative")
	ErrStreamReplicas        = errors.New("mapper: config: StreamReplicas must be 0 (default) or 1 to 5")
)

// Validate checks the config, one rule at a time.
func (c *Config) Validate() error {
	switch {
	case c.NATSURL == "":
		return ErrNoNATSURL
	case c.APIAddr == "":
		return ErrNoAPIAddr
	case c.Concurrency < 0:
		return ErrNegativeConcurrency
	case c.AckWait < 0 || c.AckWait > 0 && c.AckWait < time.Second:
		return ErrAckWaitTooShort
	case c.ShutdownGrace < 0:
		return ErrNegativeShutdownGrace
	case c.StreamReplicas < 0 || c.StreamReplicas > 5:
		return ErrStreamReplicas
	}
	return nil
}

// withDefaults fills the zero values.
func (c Config) withDefaults() Config {
	if c.Concurrency == 0 {
		c.Concurrency = runtime.GOMAXPROCS(0)
	}
	if c.AckWait == 0 {
		c.AckWait = 30 * time.Second
	}
	if c.ShutdownGrace == 0 {
		c.ShutdownGrace = 30 * time.Second
	}
	if c.StreamReplicas == 0 {
		c.StreamReplicas = 1
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	return c
}
