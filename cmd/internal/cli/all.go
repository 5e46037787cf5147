package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/sync/errgroup"

	"github.com/intakehq/intake/cmd/internal/command"
	"github.com/intakehq/intake/pkg/secretbox"
	"github.com/intakehq/intake/pkg/serve"
)

var allCommand = subcommand{
	summary: "run every service in one process, with an embedded NATS server",
	flags: func(fs *flag.FlagSet, o *options) {
		o.databaseFlag(fs)
		o.natsFlag(fs, "", "URL of an external NATS server (default: run an embedded one)")
		o.embeddedNATSFlags(fs, ".intake/nats", 4222)
		fs.StringVar(&o.grpcAddr, "grpc-addr", "127.0.0.1:7070", "address the gRPC API listens on")
		o.devFlag(fs)
		o.workerFlags(fs)
		o.chunkFlags(fs)
		o.pollFlag(fs)
		o.loaderFlags(fs)
		o.apiFlags(fs)
		o.apiTLSFlags(fs) // tls.go
		o.streamReplicasFlag(fs)
		o.kvReplicasFlag(fs)
		o.common(fs, "127.0.0.1:9090")
	},
	run: func(ctx context.Context, o *options, log *slog.Logger, _ command.System) error {
		return newStack(o, log).run(ctx)
	},
}

// stack is every service in one process: the API, a scheduler, a fetcher,
// a mapper and a loader, optionally with an embedded NATS server, sharing
// one metrics registry and one metrics and health server.
type stack struct {
	o   options
	log *slog.Logger

	started chan struct{} // closed when the API accepts calls
	apiAddr string        // set before started is closed
}

func newStack(o *options, log *slog.Logger) *stack {
	return &stack{o: *o, log: log, started: make(chan struct{})}
}

// Started is closed once the control API accepts calls.
func (s *stack) Started() <-chan struct{} { return s.started }

// APIAddr is the address to dial the control API at, once Started.
func (s *stack) APIAddr() string { return s.apiAddr }

// run runs the stack until ctx ends, then stops it in order (shutdown.go):
// readiness off at once; after the shutdown delay the workers (finishing
// or handing back their in-flight messages, which report to the API), then
// the API, then the metrics and health server, then NATS.
func (s *stack) run(ctx context.Context) error {
	if err := s.o.stackAuth(s.log); err != nil { // auth.go: the tokens
		return &command.ExitError{Code: 2, Err: err}
	}
	o := s.o
	var ns *server.Server
	if o.natsURL == "" {
		var err error
		ns, err = startNATS(o.natsStore, o.natsPort, s.log)
		if err != nil {
			return err
		}
		defer func() {
			ns.Shutdown()
			ns.WaitForShutdown()
			s.log.Info("embedded NATS server stopped")
		}()
		o.natsURL = ns.ClientURL()
	}

	if o.dev && o.encryptionKeys == "" { // devKeyRing, below
		keys, err := devKeyRing(filepath.Dir(o.natsStore), s.log)
		if err != nil {
			return err
		}
		o.encryptionKeys = keys
	}
	reg := newRegistry()
	apiSrv, err := newAPI(&o, reg, s.log)
	if err != nil {
		return &command.ExitError{Code: 2, Err: err}
	}
	var (
		mu      sync.Mutex
		workers []namedService
	)
	ready := func() bool {
		if ns != nil && !ns.Running() || !apiSrv.Ready() {
			return false
		}
		mu.Lock()
		defer mu.Unlock()
		for _, w := range workers {
			if !w.svc.Ready() {
				return false
			}
		}
		return len(workers) > 0
	}

	stop := newStopper(&o, s.log)
	stop.onBegin(apiSrv.Drain) // the API's gRPC health turns with /readyz
	sctx, cancel := stop.services(ctx)
	defer cancel()
	g, gctx := errgroup.WithContext(sctx)
	// The API outlives the workers so that their last reports reach it,
	// and the probes outlive the API.
	apiCtx, stopAPI := context.WithCancel(context.WithoutCancel(ctx))
	defer stopAPI()
	httpCtx, stopHTTP := context.WithCancel(context.WithoutCancel(ctx))
	defer stopHTTP()
	g.Go(func() error {
		defer stopHTTP()
		err := apiSrv.Run(apiCtx)
		if apiCtx.Err() == nil && err == nil {
			err = errors.New("api stopped by itself")
		}
		return err
	})
	g.Go(func() error { return serve.HTTP(httpCtx, o.httpAddr, reg, stop.ready(ready), s.log) })
	g.Go(func() error {
		defer stopAPI()
		select {
		case <-apiSrv.Started():
		case <-gctx.Done():
			return nil
		}
		// The workers dial the API where it listens (--grpc-addr may have
		// port 0), so they are built once it started.
		o.apiAddr = dialable(apiSrv.Addr().String())
		built, err := s.workers(&o, reg)
		if err != nil {
			return &command.ExitError{Code: 2, Err: err}
		}
		mu.Lock()
		workers = built
		mu.Unlock()
		s.apiAddr = o.apiAddr
		close(s.started)
		var wg sync.WaitGroup
		for _, w := range built {
			wg.Add(1)
			g.Go(func() error {
				defer wg.Done()
				return ended(gctx, w.name, w.svc.Run(gctx))
			})
		}
		s.log.Info("intake is running", "api", s.apiAddr, "nats", o.natsURL, "http", o.httpAddr, "dev_mode", o.dev)
		<-gctx.Done()
		wg.Wait()
		return nil
	})
	err = stop.wait(ctx, g.Wait)
	if err == nil {
		s.log.Info("intake stopped")
	}
	return err
}

// namedService is a service and its name, for logs and errors.
type namedService struct {
	name string
	svc  service
}

// workers builds the scheduler, fetcher, mapper and loader.
func (s *stack) workers(o *options, reg prometheus.Registerer) ([]namedService, error) {
	sched, err := newScheduler(o, reg, s.log)
	if err != nil {
		return nil, err
	}
	fet, err := newFetcher(o, reg, s.log)
	if err != nil {
		return nil, err
	}
	mapr, err := newMapper(o, reg, s.log)
	if err != nil {
		return nil, err
	}
	load, err := newLoader(o, reg, s.log)
	if err != nil {
		return nil, err
	}
	return []namedService{{"scheduler", sched}, {"fetcher", fet}, {"mapper", mapr}, {"loader", load}}, nil
}

// startNATS starts the embedded NATS server with JetStream on 127.0.0.1.
func startNATS(storeDir string, port int, log *slog.Logger) (*server.Server, error) {
	if err := os.MkdirAll(storeDir, 0o750); err != nil {
		return nil, fmt.Errorf("embedded NATS: store directory: %w", err)
	}
	if port == 0 {
		port = server.RANDOM_PORT
	}
	ns, err := server.NewServer(&server.Options{
		ServerName: "intake",
		Host:       "127.0.0.1",
		Port:       port,
		JetStream:  true,
		StoreDir:   storeDir,
		NoSigs:     true,
		MaxPayload: 16 << 20, // the pipeline's chunks and batches go up to 16 MiB
	})
	if err != nil {
		return nil, fmt.Errorf("embedded NATS: %w", err)
	}
	ns.SetLoggerV2(natsLogger{log.With("component", "nats")}, false, false, false)
	go ns.Start()
	if !ns.ReadyForConnections(10 * time.Second) {
		ns.Shutdown()
		return nil, fmt.Errorf("embedded NATS: not ready after 10s on 127.0.0.1:%d (port in use? set --nats-port, or 0 for a free one)", port)
	}
	log.Info("embedded NATS server started", "url", ns.ClientURL(), "store", storeDir)
	return ns, nil
}

// natsLogger sends the NATS server's logs to slog; its notices are debug.
type natsLogger struct{ log *slog.Logger }

func (l natsLogger) Noticef(format string, v ...any) { l.log.Debug(fmt.Sprintf(format, v...)) }
func (l natsLogger) Warnf(format string, v ...any) {
	msg := fmt.Sprintf(format, v...)
	if strings.HasPrefix(msg, "Maximum payloads over") {
		// Our chosen max_payload (see startNATS): not news at every start.
		l.log.Debug(msg)
		return
	}
	l.log.Warn(msg)
}
func (l natsLogger) Fatalf(format string, v ...any) { l.log.Error(fmt.Sprintf(format, v...)) }
func (l natsLogger) Errorf(format string, v ...any) { l.log.Error(fmt.Sprintf(format, v...)) }
func (l natsLogger) Debugf(format string, v ...any) { l.log.Debug(fmt.Sprintf(format, v...)) }
func (l natsLogger) Tracef(format string, v ...any) { l.log.Debug(fmt.Sprintf(format, v...)) }

// devKeyFile is the file, in the data directory of intake dev (.dev) or
// intake all --dev (.intake), that keeps the generated key ring.
const devKeyFile = "encryption-keys"

// devKeyRing returns the key ring of a development run without
// --encryption-keys: the one kept in dir, or a new one it generates and
// keeps there (mode 0600), so that the secrets stored by one run open in the
// next. It logs which, with the key ids (never the keys).
func devKeyRing(dir string, log *slog.Logger) (string, error) {
	path := filepath.Join(dir, devKeyFile)
	b, err := os.ReadFile(path)
	switch {
	case err == nil:
		keys := strings.TrimSpace(string(b))
		ring, err := secretbox.ParseRing(keys)
		if err != nil {
			return "", fmt.Errorf("development key ring %s: %w (delete the file to generate a new one; the secrets it encrypted are then lost)", path, err)
		}
		log.Info("development mode: secrets are encrypted with the key ring kept in the data directory (set INTAKE_ENCRYPTION_KEYS to use your own)",
			"file", path, "keys", ring.IDs())
		return keys, nil
	case !errors.Is(err, fs.ErrNotExist):
		return "", fmt.Errorf("development key ring: %w", err)
	}
	key, err := secretbox.NewKey()
	if err != nil {
		return "", fmt.Errorf("development key ring: %w", err)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", fmt.Errorf("development key ring: %w", err)
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, fs.ErrExist) { // another process made it meanwhile
		return devKeyRing(dir, log)
	}
	if err != nil {
		return "", fmt.Errorf("development key ring: %w", err)
	}
	if _, err := f.WriteString(key + "\n"); err != nil {
		f.Close()
		return "", fmt.Errorf("development key ring %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return "", fmt.Errorf("development key ring %s: %w", path, err)
	}
	id, _, _ := strings.Cut(key, ":")
	log.Warn("development mode: no encryption key configured; generated one to encrypt secrets, kept in the data directory (set INTAKE_ENCRYPTION_KEYS to use your own)",
		"file", path, "key", id)
	return key, nil
}
