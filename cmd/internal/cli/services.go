package cli

import (
	"context"
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"log/slog"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/sync/errgroup"
	"google.golang.org/grpc/credentials"

	"github.com/intakehq/intake/api"
	"github.com/intakehq/intake/cmd/internal/command"
	"github.com/intakehq/intake/pkg/serve"
	"github.com/intakehq/intake/services/fetcher"
	"github.com/intakehq/intake/services/loader"
	"github.com/intakehq/intake/services/mapper"
	"github.com/intakehq/intake/services/scheduler"
)

// service is what every Intake service is.
type service interface {
	Run(ctx context.Context) error
	Ready() bool
}

var apiCommand = subcommand{
	summary: "run the control API (gRPC) against PostgreSQL and NATS",
	flags: func(fs *flag.FlagSet, o *options) {
		o.databaseFlag(fs)
		o.natsFlag(fs, defaultNATSURL, "NATS server URL")
		fs.StringVar(&o.grpcAddr, "grpc-addr", ":7070", "address the gRPC API listens on")
		o.devFlag(fs)
		o.apiFlags(fs)
		o.apiTLSFlags(fs) // tls.go
		o.streamReplicasFlag(fs)
		o.common(fs, defaultHTTPAddr)
	},
	run: func(ctx context.Context, o *options, log *slog.Logger, _ command.System) error {
		return runOne(ctx, o, log, "api", func(reg prometheus.Registerer) (service, error) {
			return newAPI(o, reg, log)
		})
	},
}

var fetcherCommand = subcommand{
	summary: "run fetchers: download each run's file, archive it, cut it into chunks",
	flags: func(fs *flag.FlagSet, o *options) {
		o.natsFlag(fs, defaultNATSURL, "NATS server URL")
		o.apiAddrFlag(fs)
		o.devFlag(fs)
		o.workerFlags(fs)
		o.chunkFlags(fs)
		o.streamReplicasFlag(fs)
		o.common(fs, defaultHTTPAddr)
	},
	run: func(ctx context.Context, o *options, log *slog.Logger, _ command.System) error {
		return runOne(ctx, o, log, "fetcher", func(reg prometheus.Registerer) (service, error) {
			return newFetcher(o, reg, log)
		})
	},
}

var mapperCommand = subcommand{
	summary: "run mappers: parse chunks, validate and map rows into typed batches",
	flags: func(fs *flag.FlagSet, o *options) {
		o.natsFlag(fs, defaultNATSURL, "NATS server URL")
		o.apiAddrFlag(fs)
		o.workerFlags(fs)
		o.streamReplicasFlag(fs)
		o.common(fs, defaultHTTPAddr)
	},
	run: func(ctx context.Context, o *options, log *slog.Logger, _ command.System) error {
		return runOne(ctx, o, log, "mapper", func(reg prometheus.Registerer) (service, error) {
			return newMapper(o, reg, log)
		})
	},
}

var loaderCommand = subcommand{
	summary: "run loaders: stage batches in PostgreSQL and commit each run whole",
	flags: func(fs *flag.FlagSet, o *options) {
		o.databaseFlag(fs)
		o.natsFlag(fs, defaultNATSURL, "NATS server URL")
		o.apiAddrFlag(fs)
		o.workerFlags(fs)
		o.loaderFlags(fs)
		o.streamReplicasFlag(fs)
		o.common(fs, defaultHTTPAddr)
	},
	run: func(ctx context.Context, o *options, log *slog.Logger, _ command.System) error {
		return runOne(ctx, o, log, "loader", func(reg prometheus.Registerer) (service, error) {
			return newLoader(o, reg, log)
		})
	},
}

var schedulerCommand = subcommand{
	summary: "run the scheduler: start each enabled job's runs on its schedule",
	flags: func(fs *flag.FlagSet, o *options) {
		o.natsFlag(fs, defaultNATSURL, "NATS server URL")
		o.apiAddrFlag(fs)
		o.pollFlag(fs)
		o.kvReplicasFlag(fs)
		o.common(fs, defaultHTTPAddr)
	},
	run: func(ctx context.Context, o *options, log *slog.Logger, _ command.System) error {
		return runOne(ctx, o, log, "scheduler", func(reg prometheus.Registerer) (service, error) {
			return newScheduler(o, reg, log)
		})
	},
}

func newAPI(o *options, reg prometheus.Registerer, log *slog.Logger) (*api.Server, error) {
	auth, err := o.apiAuth(log) // auth.go
	if err != nil {
		return nil, err
	}
	cert, err := o.serverTLS() // tls.go
	if err != nil {
		return nil, err
	}
	var tlsConfig *tls.Config
	if cert != nil {
		tlsConfig = cert.Config()
	}
	return api.New(api.Config{
		TLS:         tlsConfig,
		Auth:        auth,
		DatabaseURL: o.databaseURL,
		NATSURL:     o.natsURL,
		NATS:        o.nats.conn, // natsflags.go
		GRPCAddr:    o.grpcAddr,
		Registerer:  reg,
		Logger:      log, // the API names itself in its logs
		DevMode:     o.dev,

		RequeueAfter:     o.requeueAfter,
		DefaultRetention: o.defaultRetention(),
		StreamReplicas:   o.streamReplicas,
		HTTPAddr:         o.restAddr, // the REST/JSON mapping (--rest-addr)
		EncryptionKeys:   o.encryptionKeys,
	})
}

// apiClient is what a worker calls the control API with: its token
// (auth.go) and the connection's security (tls.go).
func (o *options) apiClient() (credentials.PerRPCCredentials, credentials.TransportCredentials, error) {
	creds, err := o.workerCredentials()
	if err != nil {
		return nil, nil, err
	}
	transport, err := o.apiTransport()
	if err != nil {
		return nil, nil, err
	}
	return creds, transport, nil
}

func newFetcher(o *options, reg prometheus.Registerer, log *slog.Logger) (*fetcher.Service, error) {
	creds, transport, err := o.apiClient()
	if err != nil {
		return nil, err
	}
	return fetcher.New(fetcher.Config{
		APICredentials: creds, // auth.go
		APITransport:   transport,

		NATSURL:       o.natsURL,
		NATS:          o.nats.conn, // natsflags.go
		APIAddr:       o.apiAddr,
		DevMode:       o.dev,
		Concurrency:   o.concurrency,
		MaxChunkBytes: o.maxChunkBytes,
		MaxChunkRows:  o.maxChunkRows,
		Replicas:      o.streamReplicas,
		AckWait:       o.ackWait,
		ShutdownGrace: o.grace(),
		Registerer:    reg,
		Logger:        log.With("service", "fetcher"),
	})
}

func newMapper(o *options, reg prometheus.Registerer, log *slog.Logger) (*mapper.Service, error) {
	creds, transport, err := o.apiClient()
	if err != nil {
		return nil, err
	}
	return mapper.New(mapper.Config{
		APICredentials: creds, // auth.go
		APITransport:   transport,

		NATSURL:        o.natsURL,
		NATS:           o.nats.conn, // natsflags.go
		APIAddr:        o.apiAddr,
		Concurrency:    o.concurrency,
		AckWait:        o.ackWait,
		ShutdownGrace:  o.grace(),
		StreamReplicas: o.streamReplicas,
		Registerer:     reg,
		Logger:         log.With("service", "mapper"),
	})
}

func newLoader(o *options, reg prometheus.Registerer, log *slog.Logger) (*loader.Service, error) {
	creds, transport, err := o.apiClient()
	if err != nil {
		return nil, err
	}
	return loader.New(loader.Config{
		APICredentials: creds, // auth.go
		APITransport:   transport,

		NATSURL:        o.natsURL,
		NATS:           o.nats.conn, // natsflags.go
		APIAddr:        o.apiAddr,
		DatabaseURL:    o.databaseURL,
		Concurrency:    o.concurrency,
		AckWait:        o.ackWait,
		ShutdownGrace:  o.grace(),
		StreamReplicas: o.streamReplicas,
		Registerer:     reg,
		Logger:         log, // the loader names itself in its logs

		JanitorInterval:    o.janitorInterval,
		StaleAfter:         o.staleAfter,
		AbandonedRetention: o.abandonedRetention,
	})
}

func newScheduler(o *options, reg prometheus.Registerer, log *slog.Logger) (*scheduler.Service, error) {
	creds, transport, err := o.apiClient()
	if err != nil {
		return nil, err
	}
	return scheduler.New(scheduler.Config{
		APICredentials: creds, // auth.go
		APITransport:   transport,

		NATSURL:       o.natsURL,
		NATS:          o.nats.conn, // natsflags.go
		APIAddr:       o.apiAddr,
		PollInterval:  o.pollInterval,
		ShutdownGrace: o.shutdownGrace, // shutdown.go
		KVReplicas:    o.kvReplicas,
		Registerer:    reg,
		Logger:        log.With("service", "scheduler"),
	})
}

// runOne runs one service beside the metrics and health server until ctx
// ends or either fails. When ctx ends it stops gracefully (shutdown.go):
// readiness off at once, the service stopped after the shutdown delay, the
// metrics and health server kept until the service has stopped.
func runOne(ctx context.Context, o *options, log *slog.Logger, name string, build func(prometheus.Registerer) (service, error)) error {
	reg := newRegistry()
	svc, err := build(reg)
	if err != nil {
		return &command.ExitError{Code: 2, Err: fmt.Errorf("%s: %w", name, err)}
	}
	stop := newStopper(o, log.With("service", name))
	if d, ok := svc.(interface{ Drain() }); ok { // the API's gRPC health
		stop.onBegin(d.Drain)
	}
	sctx, cancel := stop.services(ctx)
	defer cancel()
	httpCtx, stopHTTP := context.WithCancel(context.WithoutCancel(ctx))
	defer stopHTTP()
	g, gctx := errgroup.WithContext(sctx)
	g.Go(func() error {
		defer stopHTTP() // the probes answer until the service has stopped
		return ended(gctx, name, svc.Run(gctx))
	})
	g.Go(func() error { return serve.HTTP(httpCtx, o.httpAddr, reg, stop.ready(svc.Ready), log) })
	err = stop.wait(ctx, g.Wait)
	if err == nil {
		log.Info("stopped", "service", name)
	}
	return err
}

// ended interprets what a service's Run returned: a stop asked by ctx is no
// error; a service that stops by itself while ctx lives is one.
func ended(ctx context.Context, name string, err error) error {
	if ctx.Err() != nil && (err == nil || errors.Is(err, context.Canceled)) {
		return nil
	}
	if err == nil {
		return fmt.Errorf("%s stopped by itself", name)
	}
	return err
}
