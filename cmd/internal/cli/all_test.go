package cli_test

import (
	"context"
	"io"
	"net"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/intakehq/intake/pkg/testutil"

	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"

	"github.com/intakehq/intake/cmd/internal/cli"
	"github.com/intakehq/intake/cmd/internal/command"
	"github.com/intakehq/intake/pkg/natstest"
	"github.com/intakehq/intake/pkg/pgtest"
	intakev1 "github.com/intakehq/intake/proto/gen/intake/v1"
)

func system(out io.Writer, env map[string]string) command.System {
	return command.System{
		Stdout: out, Stderr: out,
		LookupEnv: func(k string) (string, bool) { v, ok := env[k]; return v, ok },
	}
}

func httpGet(url string) (int, string, error) {
	resp, err := http.Get(url)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), err
}

// start runs the intake binary's args until the test ends or stop is called.
func start(t *testing.T, args []string, env map[string]string) (logs *testutil.SyncBuffer, stop func() error) {
	t.Helper()
	logs = &testutil.SyncBuffer{}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- cli.Run(ctx, args, system(logs, env)) }()
	var once sync.Once
	var err error
	stop = func() error {
		once.Do(func() {
			cancel()
			select {
			case err = <-done:
			case <-time.After(90 * time.Second):
				t.Errorf("intake %s did not stop within 90s after cancel; logs:\n%s", args[0], logs)
			}
		})
		return err
	}
	t.Cleanup(func() { _ = stop() })
	return logs, stop
}

func TestAllStartsServesAndStopsOnCancel(t *testing.T) {
	t.Parallel()
	dsn := pgtest.NewDatabase(t)
	grpcAddr, httpAddr := testutil.FreeAddr(t), testutil.FreeAddr(t)
	logs, stop := start(t, []string{"all",
		"--nats-port", "0", "--nats-store", t.TempDir(),
		"--grpc-addr", grpcAddr, "--http-addr", httpAddr,
		"--log-level", "debug",
	}, withAuth(map[string]string{"INTAKE_DATABASE_URL": dsn})) // flags and environment mix

	conn, err := grpc.NewClient(grpcAddr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	require.NoError(t, err)
	defer conn.Close()
	health := healthpb.NewHealthClient(conn)
	require.Eventually(t, func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		resp, err := health.Check(ctx, &healthpb.HealthCheckRequest{})
		return err == nil && resp.GetStatus() == healthpb.HealthCheckResponse_SERVING
	}, 60*time.Second, 100*time.Millisecond, "gRPC health never SERVING; logs:\n%s", logs)

	code, _, err := httpGet("http://" + httpAddr + "/healthz")
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, code)
	require.Eventually(t, func() bool {
		code, _, err := httpGet("http://" + httpAddr + "/readyz")
		return err == nil && code == http.StatusOK
	}, 60*time.Second, 100*time.Millisecond, "/readyz never 200; logs:\n%s", logs)

	// The API answers real calls against the migrated database, to the
	// holder of a token (auth_test.go).
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, err = intakev1.NewJobServiceClient(conn).ListJobs(ctx, &intakev1.ListJobsRequest{})
	require.Equal(t, codes.Unauthenticated, status.Code(err), "a call without a token: %v", err)
	admin, err := grpc.NewClient(grpcAddr, grpc.WithTransportCredentials(insecure.NewCredentials()), asAdmin())
	require.NoError(t, err)
	defer admin.Close()
	_, err = intakev1.NewJobServiceClient(admin).ListJobs(ctx, &intakev1.ListJobsRequest{})
	require.NoError(t, err)

	code, metrics, err := httpGet("http://" + httpAddr + "/metrics")
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, code)
	require.Contains(t, metrics, "go_goroutines", "process metrics")
	require.Contains(t, metrics, "intake_api_", "the API's metrics are in the shared registry")

	require.NoError(t, stop(), "logs:\n%s", logs)
	require.Contains(t, logs.String(), "intake stopped")
	_, _, err = httpGet("http://" + httpAddr + "/healthz")
	require.Error(t, err, "metrics server still up after stop")
	_, err = net.DialTimeout("tcp", grpcAddr, time.Second)
	require.Error(t, err, "gRPC still listening after stop")
}

func TestAllFailsFastWhenPostgreSQLIsUnreachable(t *testing.T) {
	t.Parallel()
	logs := &testutil.SyncBuffer{}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	err := cli.Run(ctx, []string{"all",
		"--database-url", "postgres://postgres@" + testutil.FreeAddr(t) + "/nope?sslmode=disable&connect_timeout=2",
		"--nats-port", "0", "--nats-store", t.TempDir(),
		"--grpc-addr", testutil.FreeAddr(t), "--http-addr", testutil.FreeAddr(t),
	}, system(logs, withAuth(nil)))
	require.ErrorContains(t, err, "PostgreSQL")
	require.NoError(t, ctx.Err(), "gave up only after the test's deadline")
}

// One service per process: the scheduler with its own metrics and health
// server, against an external NATS, not ready while the API is unreachable.
func TestOneServiceServesProbes(t *testing.T) {
	t.Parallel()
	ns := natstest.Start(t)
	httpAddr := testutil.FreeAddr(t)
	logs, stop := start(t, []string{"scheduler", "--http-addr", httpAddr, "--poll-interval", "100ms"},
		map[string]string{"INTAKE_NATS_URL": ns.URL, "INTAKE_API_ADDR": testutil.FreeAddr(t), "INTAKE_WORKER_TOKEN": authWorkerToken})
	require.Eventually(t, func() bool {
		code, _, err := httpGet("http://" + httpAddr + "/healthz")
		return err == nil && code == http.StatusOK
	}, 30*time.Second, 50*time.Millisecond, "no /healthz; logs:\n%s", logs)
	code, _, err := httpGet("http://" + httpAddr + "/readyz")
	require.NoError(t, err)
	require.Equal(t, http.StatusServiceUnavailable, code, "ready without the API")
	code, metrics, err := httpGet("http://" + httpAddr + "/metrics")
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, code)
	require.Contains(t, metrics, "intake_scheduler_")
	require.NoError(t, stop(), "logs:\n%s", logs)
}
