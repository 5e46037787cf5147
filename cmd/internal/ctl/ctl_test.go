package ctl_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/intakehq/intake/pkg/testutil"

	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/protobuf/encoding/protojson"

	"github.com/intakehq/intake/cmd/internal/cli"
	"github.com/intakehq/intake/cmd/internal/command"
	"github.com/intakehq/intake/cmd/internal/ctl"
	"github.com/intakehq/intake/pkg/pgtest"
	intakev1 "github.com/intakehq/intake/proto/gen/intake/v1"
)

// startIntake runs `intake all` for the test and returns the API address.
func startIntake(t *testing.T) (string, *testutil.SyncBuffer) {
	t.Helper()
	return startIntakeEnv(t, nil)
}

// startIntakeEnv is startIntake with extra environment variables.
func startIntakeEnv(t *testing.T, env map[string]string) (string, *testutil.SyncBuffer) {
	t.Helper()
	return startIntakeWith(t, env, nil, insecure.NewCredentials())
}

// startIntakeWith starts intake all with env, and extra flags, and waits
// until its API, dialled with creds, is serving.
func startIntakeWith(t *testing.T, env map[string]string, extra []string, creds credentials.TransportCredentials) (string, *testutil.SyncBuffer) {
	t.Helper()
	dsn := pgtest.NewDatabase(t)
	addr := testutil.FreeAddr(t)
	logs := &testutil.SyncBuffer{}
	// Made here, not in the goroutine: the store's removal must be
	// registered before the cleanup that stops Intake, so it runs after it.
	store, httpAddr := t.TempDir(), testutil.FreeAddr(t)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- cli.Run(ctx, append([]string{"all", "--dev", "--database-url", dsn, "--nats-port", "0", "--nats-store", store,
			"--grpc-addr", addr, "--http-addr", httpAddr, "--poll-interval", "200ms"}, extra...),
			command.System{Stdout: logs, Stderr: logs, LookupEnv: intakeEnv(env)}) // access_test.go: with the tokens
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			require.NoError(t, err)
		case <-time.After(90 * time.Second):
			t.Error("intake all did not stop")
		}
	})
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(creds))
	require.NoError(t, err)
	defer conn.Close()
	require.Eventually(t, func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		r, err := healthpb.NewHealthClient(conn).Check(ctx, &healthpb.HealthCheckRequest{})
		return err == nil && r.GetStatus() == healthpb.HealthCheckResponse_SERVING
	}, 60*time.Second, 100*time.Millisecond, "API never serving; logs:\n%s", logs)
	return addr, logs
}

// intakectl runs the CLI and returns its output and error.
func intakectl(t *testing.T, addr string, args ...string) (string, error) {
	t.Helper()
	var out bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	err := ctl.Run(ctx, args, command.System{
		Stdin: strings.NewReader(""), Stdout: &out, Stderr: &out,
		LookupEnv: func(k string) (string, bool) {
			switch k {
			case "INTAKE_API_ADDR":
				return addr, true
			case "INTAKE_TOKEN":
				return testAdminToken, true // access_test.go
			}
			return "", false
		},
	})
	return out.String(), err
}

func exitCode(err error) int {
	var ee *command.ExitError
	if errors.As(err, &ee) {
		return ee.Code
	}
	if err != nil {
		return 1
	}
	return 0
}

const jobYAML = `
name: jobs/ctl-accounts
displayName: CTL accounts
object: OBJECT_TYPE_ACCOUNTS
connection: {http: {url: "URL"}}
mapping:
  entries:
    - {attribute: account_id, column: account_id}
    - {attribute: name, column: name}
    - {attribute: annual_revenue, column: annual_revenue, sourceFormat: "1,234.5"}
    - {attribute: created_date, column: created_date, sourceFormat: MM/dd/yyyy}
allowNewRecords: true
schedule: {daily: {hour: 3, minute: 0}}
enabled: true
`

// A user's session: create a job from a file, list and show it, run it and
// watch the run to its end, run it again (skipped: exit code 1), list runs.
func TestJobLifecycleThroughTheCLI(t *testing.T) {
	t.Parallel()
	addr, logs := startIntake(t)
	files := httptest.NewServer(http.FileServer(http.Dir("../../../examples/data")))
	defer files.Close()
	jobFile := filepath.Join(t.TempDir(), "job.yaml")
	require.NoError(t, os.WriteFile(jobFile, []byte(strings.Replace(jobYAML, "URL", files.URL+"/accounts.csv", 1)), 0o600))

	out, err := intakectl(t, addr, "job", "create", "-f", jobFile)
	require.NoError(t, err, out)
	require.Equal(t, "jobs/ctl-accounts\n", out)

	out, err = intakectl(t, addr, "job", "list")
	require.NoError(t, err, out)
	require.Regexp(t, `NAME\s+DISPLAY NAME\s+OBJECT`, out)
	require.Regexp(t, `jobs/ctl-accounts\s+CTL accounts\s+accounts\s+daily at 03:00 \(UTC\)\s+yes`, out)

	out, err = intakectl(t, addr, "job", "get", "ctl-accounts", "-o", "json")
	require.NoError(t, err, out)
	var job intakev1.Job
	require.NoError(t, protojson.Unmarshal([]byte(out), &job))
	require.Equal(t, "CTL accounts", job.GetDisplayName())

	out, err = intakectl(t, addr, "job", "get", "jobs/ctl-accounts")
	require.NoError(t, err, out)
	require.Regexp(t, `created_date\s+column "created_date"\s+MM/dd/yyyy`, out)

	out, err = intakectl(t, addr, "job", "run", "ctl-accounts", "--watch")
	require.NoError(t, err, "%s\nlogs:\n%s", out, logs)
	require.Contains(t, out, "State:    succeeded")
	require.Contains(t, out, "Rows:     50 read, 0 rejected, 50 created")
	runName := strings.TrimSpace(strings.TrimPrefix(strings.SplitN(out, "\n", 2)[0], "started "))
	_, err = ctl.RunName(runName)
	require.NoError(t, err, out)

	out, err = intakectl(t, addr, "job", "run", "ctl-accounts", "--watch")
	require.Equal(t, 1, exitCode(err), "a skipped run is a failure: %s", out)
	require.Contains(t, out, "State:    skipped")

	out, err = intakectl(t, addr, "run", "list", "--job", "ctl-accounts")
	require.NoError(t, err, out)
	require.Len(t, strings.Split(strings.TrimSpace(out), "\n"), 3, "header and two runs:\n%s", out)
	require.Contains(t, out, runName)

	out, err = intakectl(t, addr, "run", "get", runName)
	require.NoError(t, err, out)
	require.Contains(t, out, "State:    succeeded")
	require.Contains(t, out, "Source:   "+files.URL+"/accounts.csv")

	out, err = intakectl(t, addr, "run", "watch", runName, "-o", "json")
	require.NoError(t, err, out)
	var run intakev1.Run
	require.NoError(t, protojson.Unmarshal([]byte(strings.TrimSpace(out)), &run), out)
	require.Equal(t, intakev1.RunState_RUN_STATE_SUCCEEDED, run.GetState())
}

func TestCLIErrorsSayWhatIsWrong(t *testing.T) {
	t.Parallel()
	addr, _ := startIntake(t)

	bad := filepath.Join(t.TempDir(), "bad.yaml")
	require.NoError(t, os.WriteFile(bad, []byte("displayName: x\nobject: OBJECT_TYPE_ACCOUNTS\n"), 0o600))
	out, err := intakectl(t, addr, "job", "create", "-f", bad)
	require.Error(t, err, out)
	require.Contains(t, err.Error(), "create job:")
	require.Contains(t, err.Error(), "invalid argument", "the gRPC code in words")

	_, err = intakectl(t, addr, "job", "get", "no-such-job")
	require.ErrorContains(t, err, "not found")

	_, err = intakectl(t, addr, "run", "get", "r1")
	require.Equal(t, 2, exitCode(err))
	require.ErrorContains(t, err, `"r1" is not a run: want jobs/JOB/runs/RUN`)

	_, err = intakectl(t, addr, "job", "create")
	require.Equal(t, 2, exitCode(err))
	require.ErrorContains(t, err, "-f FILE is required")

	_, err = intakectl(t, testutil.FreeAddr(t), "job", "list", "--timeout", "3s")
	require.ErrorContains(t, err, "cannot reach the Intake API at")
}

func TestWatchDrawsOneLineOnATerminal(t *testing.T) {
	t.Parallel()
	addr, _ := startIntake(t)
	files := httptest.NewServer(http.FileServer(http.Dir("../../../examples/data")))
	defer files.Close()
	jobFile := filepath.Join(t.TempDir(), "job.yaml")
	require.NoError(t, os.WriteFile(jobFile, []byte(strings.Replace(jobYAML, "URL", files.URL+"/accounts.csv", 1)), 0o600))
	_, err := intakectl(t, addr, "job", "create", "-f", jobFile, "--id", "tty")
	require.NoError(t, err)

	var out bytes.Buffer
	err = ctl.Run(context.Background(), []string{"job", "run", "tty", "--watch", "--api-addr", addr}, command.System{
		Stdout: &out, Stderr: io.Discard, LookupEnv: func(k string) (string, bool) { return testAdminToken, k == "INTAKE_TOKEN" },
		TerminalWidth: func() (int, bool) { return 120, true },
	})
	require.NoError(t, err, out.String())
	require.Contains(t, out.String(), "\r", "redrawn in place")
	require.Contains(t, out.String(), "\x1b[K")
	require.Contains(t, out.String(), "State:    succeeded")
	for _, line := range strings.Split(out.String(), "\r") {
		require.LessOrEqual(t, len([]rune(strings.SplitN(line, "\x1b[K", 2)[0])), 119, "fits the terminal")
	}
}
