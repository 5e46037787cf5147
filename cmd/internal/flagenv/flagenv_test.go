package flagenv_test

import (
	"flag"
	"io"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/intakehq/intake/cmd/internal/flagenv"
)

type opts struct {
	natsURL string
	dev     bool
	wait    time.Duration
	n       int
	out     string
}

func newSet(o *opts) *flag.FlagSet {
	fs := flag.NewFlagSet("test", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.StringVar(&o.natsURL, "nats-url", "nats://127.0.0.1:4222", "")
	fs.BoolVar(&o.dev, "dev", false, "")
	fs.DurationVar(&o.wait, "ack-wait", 30*time.Second, "")
	fs.IntVar(&o.n, "concurrency", 4, "")
	fs.StringVar(&o.out, "o", "table", "")
	return fs
}

func env(m map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) { v, ok := m[k]; return v, ok }
}

func TestFlagBeatsEnvBeatsDefault(t *testing.T) {
	t.Parallel()
	var o opts
	fs := newSet(&o)
	_, err := flagenv.Parse(fs, []string{"--concurrency", "9"}, env(map[string]string{
		"INTAKE_NATS_URL":    "nats://env:4222",
		"INTAKE_CONCURRENCY": "7",
		"INTAKE_DEV":         "true",
		"INTAKE_ACK_WAIT":    "",     // empty: unset
		"INTAKE_O":           "json", // one-letter flags are not read from the environment
	}))
	require.NoError(t, err)
	require.Equal(t, "nats://env:4222", o.natsURL, "env over default")
	require.Equal(t, 9, o.n, "flag over env")
	require.True(t, o.dev)
	require.Equal(t, 30*time.Second, o.wait, "default when env is empty")
	require.Equal(t, "table", o.out)
}

func TestOnlyLimitsEnv(t *testing.T) {
	t.Parallel()
	var o opts
	_, err := flagenv.Parse(newSet(&o), nil, env(map[string]string{
		"INTAKE_NATS_URL": "nats://env:4222", "INTAKE_DEV": "true",
	}), "nats-url")
	require.NoError(t, err)
	require.Equal(t, "nats://env:4222", o.natsURL)
	require.False(t, o.dev)
}

func TestBadEnvValueNamesTheVariable(t *testing.T) {
	t.Parallel()
	var o opts
	_, err := flagenv.Parse(newSet(&o), nil, env(map[string]string{"INTAKE_ACK_WAIT": "soon"}))
	require.ErrorContains(t, err, `invalid value "soon" for INTAKE_ACK_WAIT (flag --ack-wait)`)
}

func TestInterleavedPositionalArgs(t *testing.T) {
	t.Parallel()
	var o opts
	args, err := flagenv.Parse(newSet(&o), []string{"get", "jobs/a", "-o", "json", "--dev", "extra", "--", "--not-a-flag"}, env(nil))
	require.NoError(t, err)
	require.Equal(t, []string{"get", "jobs/a", "extra", "--not-a-flag"}, args)
	require.Equal(t, "json", o.out)
	require.True(t, o.dev)
}

func TestEnvName(t *testing.T) {
	t.Parallel()
	require.Equal(t, "INTAKE_DATABASE_URL", flagenv.EnvName("database-url"))
}
