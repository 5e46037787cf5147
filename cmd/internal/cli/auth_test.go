package cli_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/intakehq/intake/pkg/testutil"

	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"

	"github.com/intakehq/intake/cmd/internal/cli"
	"github.com/intakehq/intake/cmd/internal/ctl"
	"github.com/intakehq/intake/pkg/pgtest"
)

// The credentials of the intake processes of these tests.
const (
	authAdminToken  = "cli-test-bootstrap-admin-token-0123456789"
	authWorkerToken = "cli-test-worker-token-0123456789abcdefghij"
)

// withAuth adds the bootstrap and worker tokens to a command's environment.
func withAuth(env map[string]string) map[string]string {
	out := map[string]string{"INTAKE_BOOTSTRAP_TOKEN": authAdminToken, "INTAKE_WORKER_TOKEN": authWorkerToken}
	for k, v := range env {
		out[k] = v
	}
	return out
}

// asAdmin is the dial option of a client calling with the bootstrap token.
func asAdmin() grpc.DialOption {
	return grpc.WithPerRPCCredentials(ctl.BearerCredentials(authAdminToken))
}

// The API and the workers do not start without their tokens, and say
// which setting is missing; no error shows a token.
func TestAuthSettingsAreRequired(t *testing.T) {
	t.Parallel()
	dsn := "postgres://postgres@127.0.0.1:1/none?sslmode=disable"
	tokenFile := filepath.Join(t.TempDir(), "token")
	require.NoError(t, os.WriteFile(tokenFile, []byte("\n"+authAdminToken+"\n"), 0o600))
	for _, c := range []struct {
		name string
		args []string
		env  map[string]string
		want string
	}{
		{"api without a bootstrap token", []string{"api", "--database-url", dsn}, nil,
			"the control API requires a bootstrap admin token: set --bootstrap-token-file FILE or INTAKE_BOOTSTRAP_TOKEN"},
		{"all without a bootstrap token", []string{"all", "--database-url", dsn, "--nats-store", t.TempDir()}, nil,
			"the control API requires a bootstrap admin token"},
		{"a short bootstrap token", []string{"api", "--database-url", dsn}, map[string]string{"INTAKE_BOOTSTRAP_TOKEN": "tiny-secret"},
			"Auth.BootstrapToken is 11 characters: at least 32 are required"},
		{"a bootstrap token twice", []string{"api", "--database-url", dsn, "--bootstrap-token-file", tokenFile}, map[string]string{"INTAKE_BOOTSTRAP_TOKEN": authAdminToken},
			"set --bootstrap-token-file or INTAKE_BOOTSTRAP_TOKEN, not both"},
		{"a missing token file", []string{"fetcher", "--worker-token-file", filepath.Join(t.TempDir(), "nope")}, nil,
			"--worker-token-file: open "},
		{"a worker without a token", []string{"mapper"}, nil,
			"a worker token is required to call the control API: set --worker-token-file FILE or INTAKE_WORKER_TOKEN"},
		{"a TLS certificate without its key", []string{"api", "--database-url", dsn, "--tls-cert-file", tokenFile},
			map[string]string{"INTAKE_BOOTSTRAP_TOKEN": authAdminToken},
			"--tls-cert-file needs --tls-key-file (or INTAKE_TLS_KEY_FILE)"},
		{"a TLS certificate that is not one", []string{"api", "--database-url", dsn, "--tls-cert-file", tokenFile, "--tls-key-file", tokenFile},
			map[string]string{"INTAKE_BOOTSTRAP_TOKEN": authAdminToken},
			"TLS certificate " + tokenFile + " with key " + tokenFile + ": tls: failed to find any PEM data in certificate input"},
		// Over TLS the token may go to another machine: what fails is the
		// missing CA file.
		{"a missing API CA file", []string{"loader", "--database-url", dsn, "--api-addr", "api.example.com:7070", "--api-ca-file", tokenFile + ".nope"},
			map[string]string{"INTAKE_WORKER_TOKEN": authWorkerToken},
			"--api-ca-file (or INTAKE_API_CA_FILE): CA file: open " + tokenFile + ".nope: no such file or directory"},
		{"a worker token to another machine", []string{"loader", "--database-url", dsn, "--api-addr", "api.example.com:7070"},
			map[string]string{"INTAKE_WORKER_TOKEN": authWorkerToken},
			"api.example.com:7070 is not a loopback address and the connection has no TLS, so the token would cross the network in plain text; set --api-ca-file or --api-tls (TLS), or --api-insecure"},
	} {
		t.Run(c.name, func(t *testing.T) {
			logs := &testutil.SyncBuffer{}
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			err := cli.Run(ctx, c.args, system(logs, c.env))
			require.ErrorContains(t, err, c.want)
			require.NotContains(t, err.Error(), authAdminToken)
			require.NotContains(t, err.Error(), "tiny-secret")
			require.NotContains(t, logs.String(), authAdminToken)
		})
	}
}

// intake all --dev generates its tokens in the data directory and keeps
// them for the next start; a configured token wins.
func TestAllDevKeepsItsTokens(t *testing.T) {
	t.Parallel()
	dsn := pgtest.NewDatabase(t)
	data := t.TempDir()
	run := func(env map[string]string) (string, string) {
		grpcAddr := testutil.FreeAddr(t)
		logs, stop := start(t, []string{"all", "--dev", "--nats-port", "0", "--nats-store", filepath.Join(data, "nats"),
			"--grpc-addr", grpcAddr, "--http-addr", testutil.FreeAddr(t), "--database-url", dsn}, env)
		admin, err := os.ReadFile(filepath.Join(data, "bootstrap-token"))
		require.Eventually(t, func() bool {
			admin, err = os.ReadFile(filepath.Join(data, "bootstrap-token"))
			return err == nil
		}, 30*time.Second, 50*time.Millisecond, "no bootstrap token in the data directory; logs:\n%s", logs)
		tok, err := ctl.ReadTokenFile(filepath.Join(data, "bootstrap-token"))
		require.NoError(t, err)
		require.Equal(t, string(admin), tok+"\n")
		who := whoami(t, grpcAddr, map[string]string{"INTAKE_TOKEN_FILE": filepath.Join(data, "bootstrap-token")}, logs)
		require.NoError(t, stop(), "logs:\n%s", logs)
		info, err := os.Stat(filepath.Join(data, "bootstrap-token"))
		require.NoError(t, err)
		require.Equal(t, os.FileMode(0o600), info.Mode().Perm())
		require.FileExists(t, filepath.Join(data, "worker-token"))
		require.Contains(t, logs.String(), "use it with intakectl --token-file "+filepath.Join(data, "bootstrap-token"))
		return tok, who
	}
	first, who := run(nil)
	require.Regexp(t, `role:\s+admin\n`, who)
	second, _ := run(nil)
	require.Equal(t, first, second, "the second start reuses the token")
	// A configured bootstrap token wins over the generated one.
	grpcAddr := testutil.FreeAddr(t)
	logs, stop := start(t, []string{"all", "--dev", "--nats-port", "0", "--nats-store", filepath.Join(data, "nats"),
		"--grpc-addr", grpcAddr, "--http-addr", testutil.FreeAddr(t), "--database-url", dsn}, withAuth(nil))
	require.Contains(t, whoami(t, grpcAddr, map[string]string{"INTAKE_TOKEN": authAdminToken}, logs), "bootstrap admin token")
	out, err := intakectl(grpcAddr, map[string]string{"INTAKE_TOKEN": first}, "whoami")
	require.ErrorContains(t, err, "unknown token", out)
	require.NoError(t, stop())
}

// intakectl runs intakectl against addr with env.
func intakectl(addr string, env map[string]string, args ...string) (string, error) {
	out := &testutil.SyncBuffer{}
	e := map[string]string{"INTAKE_API_ADDR": addr}
	for k, v := range env {
		e[k] = v
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	err := ctl.Run(ctx, args, system(out, e))
	return out.String(), err
}

// whoami waits for the API at addr and returns what intakectl whoami says.
func whoami(t *testing.T, addr string, env map[string]string, logs *testutil.SyncBuffer) string {
	t.Helper()
	var out string
	var err error
	require.Eventually(t, func() bool {
		out, err = intakectl(addr, env, "whoami")
		return err == nil
	}, 60*time.Second, 100*time.Millisecond, "intakectl whoami: %v\n%s\nlogs:\n%s", err, out, logs)
	return out
}
