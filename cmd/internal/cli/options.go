package cli

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/intakehq/intake/api"
	intakev1 "github.com/intakehq/intake/proto/gen/intake/v1"
	"github.com/intakehq/intake/services/loader"
)

// options are every flag of every subcommand; each subcommand registers the
// ones it uses.
type options struct {
	databaseURL string
	natsURL     string
	apiAddr     string
	grpcAddr    string
	httpAddr    string
	dev         bool
	logFormat   string
	logLevel    string
	// otlpEndpoint: where traces are exported (tracing.go).
	otlpEndpoint string

	concurrency   int
	maxChunkBytes int
	maxChunkRows  int
	ackWait       time.Duration
	shutdownGrace time.Duration
	shutdownDelay time.Duration // shutdown.go
	pollInterval  time.Duration
	// The loader's janitor (loaderFlags).
	janitorInterval    time.Duration
	staleAfter         time.Duration
	abandonedRetention time.Duration

	natsStore string
	natsPort  int

	// The API's run requeue and file retention defaults.
	requeueAfter      time.Duration
	restAddr          string // --rest-addr: the API over HTTP (Connect JSON, gRPC-Web, gRPC)
	retentionKeepRuns int
	retentionKeepDays int
	// encryptionKeys is the API's key ring for secrets at rest
	// (--encryption-keys); without it, intake dev and intake all --dev
	// generate one and keep it in their data directory (devKeyRing).
	encryptionKeys string
	// JetStream replicas: of the pipeline's streams and the archive
	// bucket, and of the scheduler's key-value buckets.
	streamReplicas int
	kvReplicas     int

	examples  string
	filesAddr string

	// auth: the bootstrap and worker tokens (auth.go).
	auth authOptions
	// nats: the NATS credentials and TLS settings (natsflags.go).
	nats natsFlags
	// tls: the control API's TLS, served and called (tls.go).
	tls tlsOptions
}

// Defaults shared by the subcommands.
const (
	defaultNATSURL  = "nats://127.0.0.1:4222"
	defaultAPIAddr  = "127.0.0.1:7070"
	defaultHTTPAddr = ":9090"
)

func (o *options) common(fs *flag.FlagSet, httpAddr string) {
	fs.StringVar(&o.httpAddr, "http-addr", httpAddr, "address of the metrics and health endpoints (/metrics, /healthz, /readyz)")
	fs.StringVar(&o.logFormat, "log-format", "", "log format: json or text (default json; text with --dev)")
	fs.StringVar(&o.logLevel, "log-level", "info", "log level: debug, info, warn or error")
	o.shutdownFlags(fs) // shutdown.go
	o.tracingFlags(fs)  // tracing.go
}

func (o *options) databaseFlag(fs *flag.FlagSet) {
	fs.StringVar(&o.databaseURL, "database-url", "", "PostgreSQL URL, e.g. postgres://intake@db:5432/intake (required)")
}

func (o *options) natsFlag(fs *flag.FlagSet, def, help string) {
	fs.StringVar(&o.natsURL, "nats-url", def, help)
	o.natsAuthFlags(fs) // natsflags.go: credentials and TLS
}

func (o *options) apiAddrFlag(fs *flag.FlagSet) {
	fs.StringVar(&o.apiAddr, "api-addr", defaultAPIAddr, "gRPC address of the control API")
	o.workerAuthFlags(fs)   // auth.go: the worker token
	o.apiClientTLSFlags(fs) // tls.go
}

func (o *options) devFlag(fs *flag.FlagSet) {
	fs.BoolVar(&o.dev, "dev", false, "development mode: accept jobs that read local files")
}

func (o *options) workerFlags(fs *flag.FlagSet) {
	fs.IntVar(&o.concurrency, "concurrency", 0, "messages handled at once (0: the service's default)")
	fs.DurationVar(&o.ackWait, "ack-wait", 0, "JetStream ack wait of the consumer (0: the service's default)")
}

func (o *options) chunkFlags(fs *flag.FlagSet) {
	fs.IntVar(&o.maxChunkBytes, "max-chunk-bytes", 0, "largest chunk a file is cut into, in bytes (0: the fetcher's default)")
	fs.IntVar(&o.maxChunkRows, "max-chunk-rows", 0, "most records in a chunk (0: the fetcher's default)")
}

// loaderFlags are the settings of the loader's janitor, which drops the
// staging of runs that ended elsewhere (cancelled, failed, replaced).
func (o *options) loaderFlags(fs *flag.FlagSet) {
	fs.DurationVar(&o.janitorInterval, "janitor-interval", 0,
		"how often the loader looks for open runs that ended elsewhere (0: the loader's default, "+loader.DefaultJanitorInterval.String()+")")
	fs.DurationVar(&o.staleAfter, "stale-after", 0,
		"how long an open run may go without a batch before the janitor asks the API whether it ended (0: the loader's default, "+loader.DefaultStaleAfter.String()+")")
	fs.DurationVar(&o.abandonedRetention, "abandoned-retention", 0,
		"how long the marker of an abandoned run is kept, so that its late batches are dropped (0: the loader's default, "+loader.DefaultAbandonedRetention.String()+")")
}

func (o *options) pollFlag(fs *flag.FlagSet) {
	fs.DurationVar(&o.pollInterval, "poll-interval", 0, "how often the scheduler reads the job list (0: the scheduler's default)")
}

// apiFlags are the control API's own settings.
func (o *options) apiFlags(fs *flag.FlagSet) {
	o.apiAuthFlags(fs) // auth.go: the bootstrap and worker tokens
	fs.DurationVar(&o.requeueAfter, "requeue-after", 0,
		"publish a run's request again when it stays queued this long with no report from a worker (0: the API's default, 1m)")
	fs.IntVar(&o.retentionKeepRuns, "retention-keep-runs", api.DefaultKeepRuns,
		"default retention of the runs' source files: keep the files of each job's last N runs (0: no limit by count); a job's own retention overrides it")
	fs.IntVar(&o.retentionKeepDays, "retention-keep-days", api.DefaultKeepDays,
		"default retention of the runs' source files: keep files for N days (0: no limit by age); with both limits 0 every file is kept")
	fs.StringVar(&o.encryptionKeys, "encryption-keys", "",
		"key ring that encrypts secrets at rest (connection passwords, keys and tokens; webhook secrets): comma-separated id:base64-of-32-bytes, the first encrypts, all decrypt; prefer the environment variable to the flag (see README, Secrets at rest)")
	fs.StringVar(&o.restAddr, "rest-addr", "",
		"address of the API over HTTP: JSON POSTs (the trigger API: /intake.v1.JobService/TriggerJob), gRPC-Web and gRPC, e.g. :8080 (empty: off)")
}

func (o *options) streamReplicasFlag(fs *flag.FlagSet) {
	fs.IntVar(&o.streamReplicas, "stream-replicas", 0,
		"JetStream replicas (1-5) of the pipeline's streams and the archive bucket; 3 on a three-node cluster, the same for every service (0: 1)")
}

func (o *options) kvReplicasFlag(fs *flag.FlagSet) {
	fs.IntVar(&o.kvReplicas, "kv-replicas", 0,
		"JetStream replicas (1-5) of the scheduler's key-value buckets; 3 on a three-node cluster (0: 1)")
}

// defaultRetention is the API's DefaultRetention from the flags.
func (o *options) defaultRetention() *intakev1.RetentionPolicy {
	return &intakev1.RetentionPolicy{KeepRuns: int32(o.retentionKeepRuns), KeepDays: int32(o.retentionKeepDays)}
}

func (o *options) embeddedNATSFlags(fs *flag.FlagSet, store string, port int) {
	fs.StringVar(&o.natsStore, "nats-store", store, "JetStream store directory of the embedded NATS server")
	fs.IntVar(&o.natsPort, "nats-port", port, "port of the embedded NATS server on 127.0.0.1 (0: a free port)")
}

// Config errors of the command line, one per rule.
var (
	errNoDatabaseURL = errors.New("--database-url (or INTAKE_DATABASE_URL) is required, e.g. postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable")
	errNoNATSURL     = errors.New("--nats-url (or INTAKE_NATS_URL) is required, e.g. nats://127.0.0.1:4222")
	errNoAPIAddr     = errors.New("--api-addr (or INTAKE_API_ADDR) is required, e.g. 127.0.0.1:7070")
)

func (o *options) validate(fs *flag.FlagSet) error {
	has := func(name string) bool { return fs.Lookup(name) != nil }
	switch {
	case has("database-url") && o.databaseURL == "":
		return errNoDatabaseURL
	case has("nats-url") && !has("nats-store") && o.natsURL == "":
		return errNoNATSURL
	case has("api-addr") && o.apiAddr == "":
		return errNoAPIAddr
	case has("nats-port") && (o.natsPort < 0 || o.natsPort > 65535):
		return fmt.Errorf("--nats-port %d is not a port (0 to 65535)", o.natsPort)
	case has("nats-store") && o.natsURL == "" && o.natsStore == "":
		return errors.New("--nats-store is required for the embedded NATS server (or give --nats-url)")
	case o.shutdownDelay < 0 || o.shutdownGrace < 0:
		return fmt.Errorf("--shutdown-delay %v and --shutdown-grace %v must not be negative", o.shutdownDelay, o.shutdownGrace)
	case o.concurrency < 0:
		return fmt.Errorf("--concurrency %d must not be negative", o.concurrency)
	case o.maxChunkBytes < 0:
		return fmt.Errorf("--max-chunk-bytes %d must not be negative", o.maxChunkBytes)
	case o.maxChunkRows < 0:
		return fmt.Errorf("--max-chunk-rows %d must not be negative", o.maxChunkRows)
	case o.janitorInterval < 0:
		return fmt.Errorf("--janitor-interval %v must not be negative", o.janitorInterval)
	case o.staleAfter < 0:
		return fmt.Errorf("--stale-after %v must not be negative", o.staleAfter)
	case o.abandonedRetention < 0:
		return fmt.Errorf("--abandoned-retention %v must not be negative", o.abandonedRetention)
	case o.requeueAfter < 0:
		return fmt.Errorf("--requeue-after %v must not be negative", o.requeueAfter)
	case o.requeueAfter > 0 && o.requeueAfter < api.MinRequeueAfter:
		return fmt.Errorf("--requeue-after %v is shorter than %v (0: the default, %v)", o.requeueAfter, api.MinRequeueAfter, api.DefaultRequeueAfter)
	case o.retentionKeepRuns < 0 || o.retentionKeepRuns > math.MaxInt32:
		return fmt.Errorf("--retention-keep-runs %d: want 0 (no limit by count) or more runs", o.retentionKeepRuns)
	case o.retentionKeepDays < 0 || o.retentionKeepDays > math.MaxInt32:
		return fmt.Errorf("--retention-keep-days %d: want 0 (no limit by age) or more days", o.retentionKeepDays)
	case o.streamReplicas < 0 || o.streamReplicas > 5:
		return fmt.Errorf("--stream-replicas %d: want 1 to 5 (0: 1)", o.streamReplicas)
	case o.kvReplicas < 0 || o.kvReplicas > 5:
		return fmt.Errorf("--kv-replicas %d: want 1 to 5 (0: 1)", o.kvReplicas)
	}
	if err := o.validateNATS(fs); err != nil { // natsflags.go
		return err
	}
	for _, a := range []struct{ name, addr string }{{"http-addr", o.httpAddr}, {"grpc-addr", o.grpcAddr}, {"api-addr", o.apiAddr}, {"files-addr", o.filesAddr}} {
		if !has(a.name) {
			continue
		}
		if _, _, err := net.SplitHostPort(a.addr); err != nil {
			return fmt.Errorf("--%s %q is not a host:port address: %w", a.name, a.addr, err)
		}
	}
	return nil
}

// logger builds the process logger: JSON by default, text in development.
func (o *options) logger(w io.Writer, devDefault bool) (*slog.Logger, error) {
	var level slog.Level
	if err := level.UnmarshalText([]byte(o.logLevel)); err != nil {
		return nil, fmt.Errorf("--log-level %q: want debug, info, warn or error", o.logLevel)
	}
	opts := &slog.HandlerOptions{Level: level}
	format := strings.ToLower(o.logFormat)
	if format == "" {
		format = "json"
		if devDefault {
			format = "text"
		}
	}
	switch format {
	case "json":
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	case "text":
		return slog.New(slog.NewTextHandler(w, opts)), nil
	default:
		return nil, fmt.Errorf("--log-format %q: want json or text", o.logFormat)
	}
}

// newRegistry is the process's metrics registry, with Go runtime and process
// metrics.
func newRegistry() *prometheus.Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return reg
}

// dialable turns a listen address into one to dial on this machine:
// ":7070" and "0.0.0.0:7070" become "127.0.0.1:7070".
func dialable(addr string) string {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return addr
	}
	if ip := net.ParseIP(host); host == "" || ip != nil && ip.IsUnspecified() {
		host = "127.0.0.1"
	}
	return net.JoinHostPort(host, port)
}
