package cli

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"time"

	"github.com/intakehq/intake/cmd/internal/command"
	"github.com/intakehq/intake/pkg/serve"
)

// The graceful stop of every service (docs/pipeline.md, Shutdown). The
// delay and the grace together stay below Kubernetes' default
// terminationGracePeriodSeconds of 30 s.
const (
	// defaultShutdownDelay is how long a process keeps working with its
	// readiness off before it stops taking work.
	defaultShutdownDelay = 2 * time.Second
	// defaultShutdownGrace is how long work in flight may go on once the
	// process stops taking work.
	defaultShutdownGrace = 25 * time.Second
	// stopSlack is the time past the delay and the grace that closing the
	// connections may take before the process gives up waiting.
	stopSlack = 5 * time.Second
)

func (o *options) shutdownFlags(fs *flag.FlagSet) {
	fs.DurationVar(&o.shutdownDelay, "shutdown-delay", defaultShutdownDelay,
		"on SIGTERM or SIGINT, how long /readyz answers 503 before the process stops taking work, so that load balancers drop it first (0: stop at once)")
	fs.DurationVar(&o.shutdownGrace, "shutdown-grace", defaultShutdownGrace,
		"then how long work in flight may take to finish (messages of the workers); past it, it is cancelled and handed back to JetStream for another replica, and a process not stopped by delay + grace + 5s exits 1")
}

// grace is --shutdown-grace, or its default for a command without the
// flag (intake dev).
func (o *options) grace() time.Duration {
	if o.shutdownGrace > 0 {
		return o.shutdownGrace
	}
	return defaultShutdownGrace
}

// stopper is the graceful stop of a process. When the command's context
// ends (the first SIGTERM or SIGINT: command.SignalContext), the readiness
// turns false at once; after the delay the services' context ends, and
// they stop taking work and finish or hand back what they have within the
// grace; the metrics and health server answers (/readyz: 503) until they
// have stopped. A second signal ends the process at once (exit 130, in
// command.SignalContext).
type stopper struct {
	drain serve.Drain
	delay time.Duration
	grace time.Duration
	log   *slog.Logger
	begin []func() // called as the stop begins (onBegin)
}

// onBegin adds f to what the stop calls as it begins (with readiness off).
func (s *stopper) onBegin(f func()) { s.begin = append(s.begin, f) }

func newStopper(o *options, log *slog.Logger) *stopper {
	return &stopper{delay: o.shutdownDelay, grace: o.grace(), log: log}
}

// ready is the readiness to serve: ready() until the stop begins.
func (s *stopper) ready(ready func() bool) func() bool { return s.drain.Ready(ready) }

// services returns the context to run the services on: it ends the delay
// after ctx ends, or when cancel is called.
func (s *stopper) services(ctx context.Context) (context.Context, context.CancelFunc) {
	sctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	go func() {
		select {
		case <-ctx.Done():
		case <-sctx.Done():
			return
		}
		s.drain.Begin()
		for _, f := range s.begin {
			f()
		}
		s.log.Info("stopping: readiness is off; work stops being taken after the shutdown delay, then work in flight gets the shutdown grace",
			"shutdown_delay", s.delay, "shutdown_grace", s.grace)
		if s.delay > 0 {
			t := time.NewTimer(s.delay)
			defer t.Stop()
			select {
			case <-t.C:
			case <-sctx.Done():
			}
		}
		cancel()
	}()
	return sctx, cancel
}

// wait returns what wait returns; once ctx has ended, it waits no longer
// than the delay, the grace and stopSlack, then gives up with exit code 1.
func (s *stopper) wait(ctx context.Context, wait func() error) error {
	done := make(chan error, 1)
	go func() { done <- wait() }()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
	}
	limit := s.delay + s.grace + stopSlack
	t := time.NewTimer(limit)
	defer t.Stop()
	select {
	case err := <-done:
		return err
	case <-t.C:
		return &command.ExitError{Code: 1, Err: fmt.Errorf(
			"not stopped %v after the signal (shutdown delay %v, grace %v, and %v to close): exiting; unfinished messages are redelivered by JetStream",
			limit, s.delay, s.grace, stopSlack)}
	}
}
