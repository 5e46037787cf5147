package fetcher

import (
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc/credentials"

	"github.com/intakehq/intake/pkg/chunker"
	"github.com/intakehq/intake/pkg/natsconn"
	"github.com/intakehq/intake/pkg/source"
)

// Defaults of Config.
const (
	DefaultConcurrency   = 2
	DefaultAckWait       = 30 * time.Second
	DefaultShutdownGrace = 30 * time.Second
	// MaxChunkBytesLimit is the largest Config.MaxChunkBytes: a chunk
	// message must fit the chunk stream's 16 MiB message limit with the job
	// snapshot and the header.
	MaxChunkBytesLimit = 8 << 20
)

// Config configures the fetcher.
type Config struct {
	// NATSURL is the NATS server (or comma-separated servers) to connect to.
	NATSURL string
	// NATS are the credentials and TLS settings of the NATS connection
	// (zero: none; TLS for a tls:// URL or a server that requires it).
	NATS natsconn.Options
	// APIAddr is the control API's gRPC address (host:port).
	APIAddr string
	// APICredentials, when set, go with every call to the control API:
	// the worker token ("authorization: Bearer <token>"), which the API
	// requires of the workers, over APITransport.
	APICredentials credentials.PerRPCCredentials
	// APITransport secures the connection to the control API
	// (tlsconf.Client); nil is plaintext.
	APITransport credentials.TransportCredentials
	// DevMode allows jobs to read local files.
	DevMode bool
	// Concurrency is how many runs are fetched at once. Default 2.
	Concurrency int
	// MaxChunkBytes bounds the CSV bytes of a chunk. Default 1 MiB, at most
	// 8 MiB; lowered per run when the NATS server's max_payload is smaller.
	MaxChunkBytes int
	// MaxChunkRows bounds the records of a chunk. Default 5000.
	MaxChunkRows int
	// AckWait is the run request's ack deadline; it is extended while a run
	// is being fetched. Default 30s.
	AckWait time.Duration
	// ShutdownGrace is how long running fetches may go on after Run's
	// context is cancelled. Default 30s.
	ShutdownGrace time.Duration
	// FetchTimeout bounds connecting to the file's server, waiting for its
	// response headers and any pause in the body (not the whole download).
	// Default 30s.
	FetchTimeout time.Duration
	// Replicas of the pipeline streams and of the archive bucket when the
	// fetcher creates them. Default 1.
	Replicas int
	// Registerer receives the metrics; nil keeps them in a private registry.
	Registerer prometheus.Registerer
	// Logger; nil means slog.Default().
	Logger *slog.Logger
}

// Validate checks the configuration; zero values are valid (defaults) except
// for the addresses.
func (c Config) Validate() error {
	switch {
	case c.NATSURL == "":
		return errors.New("fetcher: NATSURL is required")
	case c.APIAddr == "":
		return errors.New("fetcher: APIAddr (the control API's gRPC address) is required")
	case c.Concurrency < 0:
		return fmt.Errorf("fetcher: Concurrency %d: must be 1 or more (0 means %d)", c.Concurrency, DefaultConcurrency)
	case c.MaxChunkBytes < 0 || c.MaxChunkBytes > MaxChunkBytesLimit:
		return fmt.Errorf("fetcher: MaxChunkBytes %d: must be between 1 and %d (0 means %d)", c.MaxChunkBytes, MaxChunkBytesLimit, chunker.DefaultMaxChunkBytes)
	case c.MaxChunkBytes > 0 && c.MaxChunkBytes < 1024:
		return fmt.Errorf("fetcher: MaxChunkBytes %d: must be at least 1024", c.MaxChunkBytes)
	case c.MaxChunkRows < 0:
		return fmt.Errorf("fetcher: MaxChunkRows %d: must be 1 or more (0 means %d)", c.MaxChunkRows, chunker.DefaultMaxChunkRows)
	case c.AckWait < 0 || c.AckWait > 0 && c.AckWait < time.Second:
		return fmt.Errorf("fetcher: AckWait %s: must be at least 1s (0 means %s)", c.AckWait, DefaultAckWait)
	case c.ShutdownGrace < 0:
		return fmt.Errorf("fetcher: ShutdownGrace %s: must not be negative", c.ShutdownGrace)
	case c.FetchTimeout < 0:
		return fmt.Errorf("fetcher: FetchTimeout %s: must not be negative (0 means %s)", c.FetchTimeout, source.DefaultTimeout)
	case c.Replicas < 0 || c.Replicas > 5:
		return fmt.Errorf("fetcher: Replicas %d: must be between 1 and 5 (0 means 1)", c.Replicas)
	}
	return nil
}

func (c Config) withDefaults() Config {
	if c.Concurrency == 0 {
		c.Concurrency = DefaultConcurrency
	}
	if c.MaxChunkBytes == 0 {
		c.MaxChunkBytes = chunker.DefaultMaxChunkBytes
	}
	if c.MaxChunkRows == 0 {
		c.MaxChunkRows = chunker.DefaultMaxChunkRows
	}
	if c.AckWait == 0 {
		c.AckWait = DefaultAckWait
	}
	if c.ShutdownGrace == 0 {
		c.ShutdownGrace = DefaultShutdownGrace
	}
	if c.FetchTimeout == 0 {
		c.FetchTimeout = source.DefaultTimeout
	}
	if c.Replicas == 0 {
		c.Replicas = 1
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	return c
}
