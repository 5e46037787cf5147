package cli

import (
	"bytes"
	"errors"
	"flag"
	"log/slog"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/intakehq/intake/api"
	"github.com/intakehq/intake/cmd/internal/command"
)

func testSystem(env map[string]string) (command.System, *bytes.Buffer) {
	var out bytes.Buffer
	return command.System{
		Stdout: &out, Stderr: &out,
		LookupEnv: func(k string) (string, bool) { v, ok := env[k]; return v, ok },
	}, &out
}

func TestOptionsFlagOverEnvOverDefault(t *testing.T) {
	t.Parallel()
	sys, _ := testSystem(map[string]string{
		"INTAKE_NATS_URL":       "nats://from-env:4222",
		"INTAKE_API_ADDR":       "api.from-env:7070",
		"INTAKE_CONCURRENCY":    "3",
		"INTAKE_DEV":            "true",
		"INTAKE_SHUTDOWN_GRACE": "45s",
	})
	o, err := parseOptions("intake fetcher", fetcherCommand, []string{"--api-addr", "api.from-flag:7070", "--max-chunk-rows=5000"}, sys)
	require.NoError(t, err)
	require.Equal(t, "nats://from-env:4222", o.natsURL, "env over default")
	require.Equal(t, "api.from-flag:7070", o.apiAddr, "flag over env")
	require.Equal(t, 3, o.concurrency)
	require.True(t, o.dev)
	require.Equal(t, 45*time.Second, o.shutdownGrace)
	require.Equal(t, 5000, o.maxChunkRows)
	require.Equal(t, ":9090", o.httpAddr, "default")
	require.Equal(t, "info", o.logLevel)
}

func TestOptionsDefaultsPerCommand(t *testing.T) {
	t.Parallel()
	sys, _ := testSystem(nil)
	o, err := parseOptions("intake all", allCommand, []string{"--database-url", "postgres://x@127.0.0.1/db"}, sys)
	require.NoError(t, err)
	require.Empty(t, o.natsURL, "embedded NATS by default")
	require.Equal(t, ".intake/nats", o.natsStore)
	require.Equal(t, 4222, o.natsPort)
	require.Equal(t, "127.0.0.1:7070", o.grpcAddr)

	o, err = parseOptions("intake api", apiCommand, []string{"--database-url", "postgres://x@127.0.0.1/db"}, sys)
	require.NoError(t, err)
	require.Equal(t, defaultNATSURL, o.natsURL)
	require.Equal(t, ":7070", o.grpcAddr)
}

func TestOptionsErrorsNameTheFlag(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		cmd  subcommand
		args []string
		env  map[string]string
		want string
	}{
		{apiCommand, nil, nil, "--database-url (or INTAKE_DATABASE_URL) is required"},
		{loaderCommand, []string{"--database-url", "postgres://x/db", "--api-addr", ""}, nil, "--api-addr (or INTAKE_API_ADDR) is required"},
		{mapperCommand, []string{"--nats-url="}, nil, "--nats-url (or INTAKE_NATS_URL) is required"},
		{mapperCommand, []string{"--concurrency", "-1"}, nil, "--concurrency -1 must not be negative"},
		{mapperCommand, nil, map[string]string{"INTAKE_ACK_WAIT": "10"}, `invalid value "10" for INTAKE_ACK_WAIT (flag --ack-wait)`},
		{apiCommand, []string{"--database-url", "postgres://x/db", "--grpc-addr", "7070"}, nil, `--grpc-addr "7070" is not a host:port address`},
		{allCommand, []string{"--database-url", "postgres://x/db", "--nats-port", "70000"}, nil, "--nats-port 70000 is not a port"},
		{schedulerCommand, []string{"extra"}, nil, `takes no arguments, got ["extra"]`},
		{schedulerCommand, []string{"--no-such-flag"}, nil, "flag provided but not defined: -no-such-flag"},
	} {
		sys, _ := testSystem(tc.env)
		_, err := parseOptions("intake x", tc.cmd, tc.args, sys)
		require.ErrorContains(t, err, tc.want, "%v %v", tc.args, tc.env)
	}
}

func TestUsageErrorsExitWithTwo(t *testing.T) {
	t.Parallel()
	sys, out := testSystem(nil)
	err := Run(t.Context(), []string{"api"}, sys)
	var ee *command.ExitError
	require.True(t, errors.As(err, &ee))
	require.Equal(t, 2, ee.Code)
	require.Equal(t, 2, command.Report("intake", err, out))
	require.Contains(t, out.String(), "intake: --database-url (or INTAKE_DATABASE_URL) is required")

	err = Run(t.Context(), []string{"fly"}, sys)
	require.ErrorContains(t, err, `unknown command "fly"`)

	out.Reset()
	require.NoError(t, Run(t.Context(), []string{"help"}, sys))
	require.Contains(t, out.String(), "intake COMMAND [flags]")

	out.Reset()
	err = Run(t.Context(), []string{"loader", "-h"}, sys)
	require.NoError(t, err, "help is not an error")
	require.Contains(t, out.String(), "--database-url  [INTAKE_DATABASE_URL]")
	_ = flag.ErrHelp
}

func TestLoggerFormats(t *testing.T) {
	t.Parallel()
	var buf bytes.Buffer
	o := &options{logLevel: "info"}
	log, err := o.logger(&buf, false)
	require.NoError(t, err)
	log.Info("hello", "run", "jobs/a/runs/1")
	require.Contains(t, buf.String(), `"msg":"hello"`)

	buf.Reset()
	log, err = o.logger(&buf, true)
	require.NoError(t, err)
	log.Debug("hidden")
	log.Info("hello")
	require.Equal(t, "msg=hello", buf.String()[len(buf.String())-10:len(buf.String())-1])

	_, err = (&options{logLevel: "loud"}).logger(&buf, false)
	require.ErrorContains(t, err, `--log-level "loud"`)
	_, err = (&options{logLevel: "info", logFormat: "xml"}).logger(&buf, false)
	require.ErrorContains(t, err, `--log-format "xml"`)
}

func TestDialable(t *testing.T) {
	t.Parallel()
	require.Equal(t, "127.0.0.1:7070", dialable(":7070"))
	require.Equal(t, "127.0.0.1:7070", dialable("0.0.0.0:7070"))
	require.Equal(t, "127.0.0.1:7070", dialable("[::]:7070"))
	require.Equal(t, "api.internal:7070", dialable("api.internal:7070"))
}

// The API's requeue and retention defaults and the JetStream replica counts
// come from flags or INTAKE_* variables, reach each service's Config, and
// are checked with errors naming the flag.
func TestReplicaAndRetentionOptions(t *testing.T) {
	t.Parallel()
	sys, _ := testSystem(map[string]string{
		"INTAKE_STREAM_REPLICAS":     "3",
		"INTAKE_RETENTION_KEEP_RUNS": "10",
		"INTAKE_REQUEUE_AFTER":       "2m",
		"INTAKE_RETENTION_KEEP_DAYS": "",
		"INTAKE_KV_REPLICAS":         "3",
		// auth.go: the tokens the API and the workers require.
		"INTAKE_BOOTSTRAP_TOKEN": "options-test-bootstrap-token-0123456789",
		"INTAKE_WORKER_TOKEN":    "options-test-worker-token-0123456789abc",
	})
	o, err := parseOptions("intake api", apiCommand, []string{"--database-url", "postgres://x@127.0.0.1/db", "--retention-keep-days", "0"}, sys)
	require.NoError(t, err)
	require.Equal(t, 3, o.streamReplicas)
	require.Equal(t, 2*time.Minute, o.requeueAfter)
	require.EqualValues(t, 10, o.defaultRetention().GetKeepRuns())
	require.EqualValues(t, 0, o.defaultRetention().GetKeepDays(), "0: no limit by age")
	_, err = newAPI(o, nil, slog.New(slog.DiscardHandler))
	require.NoError(t, err)

	// Unset, the API's defaults.
	none, _ := testSystem(nil)
	o, err = parseOptions("intake all", allCommand, []string{"--database-url", "postgres://x@127.0.0.1/db"}, none)
	require.NoError(t, err)
	require.EqualValues(t, api.DefaultKeepRuns, o.defaultRetention().GetKeepRuns())
	require.EqualValues(t, api.DefaultKeepDays, o.defaultRetention().GetKeepDays())
	require.Zero(t, o.streamReplicas)
	o, err = parseOptions("intake dev", devCommand, []string{"--database-url", "postgres://x@127.0.0.1/db"}, none)
	require.NoError(t, err)
	require.EqualValues(t, api.DefaultKeepDays, o.defaultRetention().GetKeepDays())

	o, err = parseOptions("intake scheduler", schedulerCommand, nil, sys)
	require.NoError(t, err)
	require.Equal(t, 3, o.kvReplicas)
	_, err = newScheduler(o, nil, slog.New(slog.DiscardHandler))
	require.NoError(t, err)
	for _, cmd := range []subcommand{fetcherCommand, mapperCommand, loaderCommand} {
		env := map[string]string{"INTAKE_STREAM_REPLICAS": "3", "INTAKE_DATABASE_URL": "postgres://x@127.0.0.1/db",
			"INTAKE_WORKER_TOKEN": "options-test-worker-token-0123456789abc"}
		withDB, _ := testSystem(env)
		o, err = parseOptions("intake x", cmd, nil, withDB)
		require.NoError(t, err)
		require.Equal(t, 3, o.streamReplicas)
	}
	// The loader's janitor settings, from the environment like every flag.
	withJanitor, _ := testSystem(map[string]string{"INTAKE_DATABASE_URL": "postgres://x@127.0.0.1/db",
		"INTAKE_JANITOR_INTERVAL": "30s", "INTAKE_STALE_AFTER": "10m", "INTAKE_ABANDONED_RETENTION": "48h"})
	lo, err := parseOptions("intake loader", loaderCommand, nil, withJanitor)
	require.NoError(t, err)
	require.Equal(t, []time.Duration{30 * time.Second, 10 * time.Minute, 48 * time.Hour},
		[]time.Duration{lo.janitorInterval, lo.staleAfter, lo.abandonedRetention})

	quiet := slog.New(slog.DiscardHandler)
	_, err = newFetcher(o, nil, quiet)
	require.NoError(t, err)
	_, err = newMapper(o, nil, quiet)
	require.NoError(t, err)
	_, err = newLoader(o, nil, quiet)
	require.NoError(t, err)

	for _, tc := range []struct {
		cmd  subcommand
		args []string
		want string
	}{
		{apiCommand, []string{"--retention-keep-runs", "-1"}, "--retention-keep-runs -1: want 0 (no limit by count) or more runs"},
		{apiCommand, []string{"--retention-keep-days", "-2"}, "--retention-keep-days -2: want 0 (no limit by age) or more days"},
		{apiCommand, []string{"--requeue-after", "-1s"}, "--requeue-after -1s must not be negative"},
		{apiCommand, []string{"--requeue-after", "1ms"}, "--requeue-after 1ms is shorter than 100ms"},
		{fetcherCommand, []string{"--stream-replicas", "7"}, "--stream-replicas 7: want 1 to 5"},
		{loaderCommand, []string{"--stale-after", "-1m"}, "--stale-after -1m0s must not be negative"},
		{loaderCommand, []string{"--janitor-interval", "-1s"}, "--janitor-interval -1s must not be negative"},
		{loaderCommand, []string{"--abandoned-retention", "-1h"}, "--abandoned-retention -1h0m0s must not be negative"},
		{fetcherCommand, []string{"--stale-after", "1m"}, "flag provided but not defined: -stale-after"},
		{schedulerCommand, []string{"--kv-replicas", "-1"}, "--kv-replicas -1: want 1 to 5"},
		{mapperCommand, []string{"--kv-replicas", "3"}, "flag provided but not defined: -kv-replicas"},
	} {
		withDB, _ := testSystem(map[string]string{"INTAKE_DATABASE_URL": "postgres://x/db"})
		_, err := parseOptions("intake x", tc.cmd, tc.args, withDB)
		require.ErrorContains(t, err, tc.want, "%v", tc.args)
	}
}
