package cli

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/stretchr/testify/require"

	"github.com/intakehq/intake/pkg/natsconn"
)

func TestOptionsNATSCredentials(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	pwFile := filepath.Join(dir, "password")
	require.NoError(t, os.WriteFile(pwFile, []byte("from-file-pw\nignored\n"), 0o600))
	tokFile := filepath.Join(dir, "token")
	require.NoError(t, os.WriteFile(tokFile, []byte("from-file-tok\n"), 0o600))
	empty := filepath.Join(dir, "empty")
	require.NoError(t, os.WriteFile(empty, []byte("\n"), 0o600))
	missing := filepath.Join(dir, "missing")

	// Every command that dials NATS takes the flags.
	for name, cmd := range subcommands {
		_, fs := newFlagSet("intake "+name, cmd, os.Stderr)
		dials := fs.Lookup("nats-url") != nil
		for _, f := range []string{"nats-user", "nats-password-file", "nats-password", "nats-token-file", "nats-token", "nats-nkey-file", "nats-creds-file", "nats-ca-file", "nats-cert-file", "nats-key-file"} {
			require.Equal(t, dials, fs.Lookup(f) != nil, "intake %s --%s", name, f)
		}
	}

	db := []string{"--database-url", "postgres://x@127.0.0.1/db"}
	for _, tc := range []struct {
		name string
		cmd  subcommand
		args []string
		env  map[string]string
		want natsconn.Options
	}{
		{"none", fetcherCommand, nil, nil, natsconn.Options{}},
		{"password from the Secret's variable", mapperCommand, nil,
			map[string]string{"INTAKE_NATS_USER": "intake", "INTAKE_NATS_PASSWORD": "from-env-pw"},
			natsconn.Options{User: "intake", Password: "from-env-pw"}},
		{"password file: its first line", loaderCommand, append([]string{"--nats-user", "intake", "--nats-password-file", pwFile}, db...), nil,
			natsconn.Options{User: "intake", Password: "from-file-pw"}},
		{"token file", schedulerCommand, []string{"--nats-token-file", tokFile}, nil, natsconn.Options{Token: "from-file-tok"}},
		{"token variable", apiCommand, db, map[string]string{"INTAKE_NATS_TOKEN": "from-env-tok"}, natsconn.Options{Token: "from-env-tok"}},
		{"external NATS of intake all", allCommand, append([]string{"--nats-url", "nats://nats:4222"}, db...),
			map[string]string{"INTAKE_NATS_USER": "intake", "INTAKE_NATS_PASSWORD": "from-env-pw"},
			natsconn.Options{User: "intake", Password: "from-env-pw"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sys, _ := testSystem(tc.env)
			o, err := parseOptions("intake", tc.cmd, tc.args, sys)
			require.NoError(t, err)
			require.Equal(t, tc.want, o.nats.conn)
		})
	}

	for _, tc := range []struct {
		cmd  subcommand
		args []string
		env  map[string]string
		want string
	}{
		{fetcherCommand, []string{"--nats-user", "intake"}, nil, `user "intake" needs a password: set --nats-password-file or INTAKE_NATS_PASSWORD`},
		{fetcherCommand, []string{"--nats-user", "intake", "--nats-password-file", pwFile}, map[string]string{"INTAKE_NATS_PASSWORD": "from-env-pw"},
			"set --nats-password-file or INTAKE_NATS_PASSWORD (--nats-password), not both"},
		{fetcherCommand, []string{"--nats-password-file", missing}, nil, "--nats-password-file: open " + missing + ": no such file or directory"},
		{fetcherCommand, []string{"--nats-token-file", empty}, nil, "--nats-token-file: " + empty + " holds no token on its first line"},
		{mapperCommand, []string{"--nats-token-file", tokFile}, map[string]string{"INTAKE_NATS_USER": "intake", "INTAKE_NATS_PASSWORD": "from-env-pw"},
			"set one authentication method, not --nats-user and its password and --nats-token-file or INTAKE_NATS_TOKEN"},
		{schedulerCommand, []string{"--nats-ca-file", missing}, nil, "NATS CA file (--nats-ca-file): open " + missing},
		{schedulerCommand, []string{"--nats-creds-file", missing}, nil, "NATS credentials file (--nats-creds-file): open " + missing},
		{allCommand, append([]string{"--nats-user", "intake"}, db...), map[string]string{"INTAKE_NATS_PASSWORD": "from-env-pw"},
			"are for an external NATS server: set --nats-url too"},
	} {
		sys, _ := testSystem(tc.env)
		_, err := parseOptions("intake", tc.cmd, tc.args, sys)
		require.ErrorContains(t, err, tc.want, "%v %v", tc.args, tc.env)
		for _, secret := range []string{"from-env-pw", "from-file-pw", "from-file-tok"} {
			require.NotContains(t, err.Error(), secret)
		}
	}
}

// TestOptionsNATSCredentialsReachTheServices runs fetcher and mapper
// against a NATS server that requires a password: the password of the
// environment is the one they send.
func TestOptionsNATSCredentialsReachTheServices(t *testing.T) {
	t.Parallel()
	ns, err := server.NewServer(&server.Options{
		Host: "127.0.0.1", Port: -1, NoLog: true, NoSigs: true,
		Users: []*server.User{{Username: "intake", Password: "right-nats-pw"}},
	})
	require.NoError(t, err)
	go ns.Start()
	require.True(t, ns.ReadyForConnections(10*time.Second))
	t.Cleanup(ns.Shutdown)

	for _, name := range []string{"fetcher", "mapper"} {
		sys, out := testSystem(map[string]string{
			"INTAKE_NATS_URL": ns.ClientURL(), "INTAKE_API_ADDR": "127.0.0.1:1", "INTAKE_HTTP_ADDR": "127.0.0.1:0",
			"INTAKE_WORKER_TOKEN": strings.Repeat("w", 40),
			"INTAKE_NATS_USER":    "intake", "INTAKE_NATS_PASSWORD": "wrong-nats-pw",
		})
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		err := RunCommand(ctx, "intake "+name, name, nil, sys)
		cancel()
		require.Error(t, err, name)
		require.Contains(t, err.Error(), name+": connect to NATS at "+ns.ClientURL())
		require.Contains(t, err.Error(), `the server refused user "intake" and its password`)
		require.NotContains(t, err.Error()+out.String(), "wrong-nats-pw")
		require.NotContains(t, err.Error()+out.String(), "right-nats-pw")
	}
}
