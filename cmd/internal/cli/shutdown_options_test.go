package cli

import (
	"context"
	"errors"
	"log/slog"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/intakehq/intake/cmd/internal/command"
)

func TestShutdownOptions(t *testing.T) {
	t.Parallel()
	sys, _ := testSystem(nil)
	for _, cmd := range []subcommand{apiCommand, schedulerCommand, fetcherCommand, mapperCommand, loaderCommand, allCommand} {
		o, fs := newFlagSet("intake", cmd, sys.Stderr)
		require.NotNil(t, fs.Lookup("shutdown-delay"))
		require.NotNil(t, fs.Lookup("shutdown-grace"))
		require.Equal(t, 2*time.Second, o.shutdownDelay)
		require.Equal(t, 25*time.Second, o.shutdownGrace)
		require.Less(t, o.shutdownDelay+o.shutdownGrace, 30*time.Second, "Kubernetes' default terminationGracePeriodSeconds")
	}

	sys, _ = testSystem(map[string]string{"INTAKE_SHUTDOWN_DELAY": "0s", "INTAKE_SHUTDOWN_GRACE": "40s"})
	o, err := parseOptions("intake mapper", mapperCommand, nil, sys)
	require.NoError(t, err)
	require.Equal(t, time.Duration(0), o.shutdownDelay)
	require.Equal(t, 40*time.Second, o.grace())

	_, err = parseOptions("intake mapper", mapperCommand, []string{"--shutdown-grace", "-1s"}, sys)
	require.ErrorContains(t, err, "--shutdown-grace -1s must not be negative")

	// intake dev has no such flags: no delay, the default grace.
	o, _ = newFlagSet("intake dev", devCommand, sys.Stderr)
	require.Equal(t, time.Duration(0), o.shutdownDelay)
	require.Equal(t, defaultShutdownGrace, o.grace())
}

// The stop in order: readiness off as soon as the command's context ends,
// the services' context only after the delay; a stop that outlasts the
// delay, the grace and the slack is given up with exit code 1.
func TestStopperOrderAndLimit(t *testing.T) {
	t.Parallel()
	const delay = 300 * time.Millisecond
	s := newStopper(&options{shutdownDelay: delay, shutdownGrace: 100 * time.Millisecond}, slog.New(slog.DiscardHandler))
	ready := s.ready(func() bool { return true })
	ctx, signal := context.WithCancel(context.Background())
	sctx, cancel := s.services(ctx)
	defer cancel()
	require.True(t, ready())

	signal()
	sent := time.Now()
	require.Eventually(t, func() bool { return !ready() }, time.Second, time.Millisecond, "readiness still on after the signal")
	require.NoError(t, sctx.Err(), "services stopped before the delay")
	<-sctx.Done()
	require.GreaterOrEqual(t, time.Since(sent), delay)

	// A stop that never ends.
	err := s.wait(ctx, func() error { select {} })
	var ee *command.ExitError
	require.True(t, errors.As(err, &ee), "%v", err)
	require.Equal(t, 1, ee.Code)
	require.ErrorContains(t, err, "not stopped 5.4s after the signal")
	require.GreaterOrEqual(t, time.Since(sent), delay+100*time.Millisecond+stopSlack)

	// One that ends returns what it returned.
	require.NoError(t, s.wait(ctx, func() error { return nil }))
}
