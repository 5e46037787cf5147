package ctl_test

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/intakehq/intake/cmd/internal/command"
	"github.com/intakehq/intake/cmd/internal/ctl"
)

// The credentials of the intake processes of these tests.
const (
	testAdminToken  = "ctl-test-bootstrap-admin-token-0123456789"
	testWorkerToken = "ctl-test-worker-token-0123456789abcdefghij"
)

// intakeEnv is the environment of intake all: env and the tokens.
func intakeEnv(env map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) {
		if v, ok := env[k]; ok {
			return v, ok
		}
		switch k {
		case "INTAKE_BOOTSTRAP_TOKEN":
			return testAdminToken, true
		case "INTAKE_WORKER_TOKEN":
			return testWorkerToken, true
		}
		return "", false
	}
}

// intakectlEnv runs the CLI with exactly the environment env (plus
// INTAKE_API_ADDR).
func intakectlEnv(addr string, env map[string]string, args ...string) (string, error) {
	var out bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	err := ctl.Run(ctx, args, command.System{
		Stdin: strings.NewReader(""), Stdout: &out, Stderr: &out,
		LookupEnv: func(k string) (string, bool) {
			if k == "INTAKE_API_ADDR" {
				return addr, true
			}
			v, ok := env[k]
			return v, ok
		},
	})
	return out.String(), err
}

var accessTokenRE = regexp.MustCompile(`(?m)^itk_[0-9a-f]{12}_[A-Za-z0-9_-]{43}$`)

// An admin makes, lists and revokes API tokens with intakectl; the tokens
// it prints are the ones the API takes, with the role they were made
// with; intakectl finds its token in the flags, the environment, a file or
// the default file, and says where it came from when the API refuses it.
func TestAPITokensThroughTheCLI(t *testing.T) {
	t.Parallel()
	addr, logs := startIntake(t)
	admin := map[string]string{"INTAKE_TOKEN": testAdminToken}

	out, err := intakectlEnv(addr, admin, "whoami")
	require.NoError(t, err, "%s\nlogs:\n%s", out, logs)
	require.Regexp(t, `token:\s+tokens/bootstrap\n`, out)
	require.Regexp(t, `role:\s+admin\n`, out)
	require.Regexp(t, `tenant:\s+tenants/default\n`, out)
	require.Regexp(t, `from:\s+--token \(or INTAKE_TOKEN\)\n`, out)

	// A viewer token: printed once, alone on its line.
	out, err = intakectlEnv(addr, admin, "token", "create", "--role", "viewer", "--name", "dashboards", "--expires", "30d")
	require.NoError(t, err, out)
	viewer := accessTokenRE.FindString(out)
	require.NotEmpty(t, viewer, out)
	require.Regexp(t, `tokens/[0-9a-f]{12} \(viewer of tenants/default, expires \d{4}-\d\d-\d\d .*\): the token above is shown only now`, out)
	asViewer := map[string]string{"INTAKE_TOKEN": viewer}
	out, err = intakectlEnv(addr, asViewer, "job", "list")
	require.NoError(t, err, out)
	out, err = intakectlEnv(addr, asViewer, "token", "list")
	require.Equal(t, 1, exitCode(err), out)
	require.ErrorContains(t, err, "list tokens: a token of role viewer may not call intake.v1.AccessService/ListTokens (it takes: admin) (permission denied)")

	// Mistakes are caught before or by the API.
	_, err = intakectlEnv(addr, admin, "token", "create", "--role", "trigger")
	require.Equal(t, 2, exitCode(err))
	require.ErrorContains(t, err, "--role trigger needs the jobs it may trigger: --job NAME")
	_, err = intakectlEnv(addr, admin, "token", "create", "--role", "owner")
	require.Equal(t, 2, exitCode(err))
	require.ErrorContains(t, err, `--role "owner": want admin, editor, viewer or trigger`)
	_, err = intakectlEnv(addr, admin, "token", "create", "--role", "trigger", "--job", "nope")
	require.Equal(t, 1, exitCode(err))
	require.ErrorContains(t, err, "create a token: token.jobs: no such job: jobs/nope (not found)")

	// The list shows names, roles and uses, never a secret.
	out, err = intakectlEnv(addr, admin, "token", "list")
	require.NoError(t, err, out)
	lines := strings.Split(strings.TrimSpace(out), "\n")
	require.Len(t, lines, 2, out)
	require.Regexp(t, `^TOKEN\s+ROLE\s+NAME\s+JOBS\s+CREATED\s+EXPIRES\s+LAST USED$`, lines[0])
	require.Regexp(t, `^tokens/[0-9a-f]{12}\s+viewer\s+dashboards\s+-\s+\d{4}-\d\d-\d\d \S+ UTC\s+\d{4}-\d\d-\d\d \S+ UTC\s+\d{4}-`, lines[1])
	require.NotContains(t, out, viewer)
	name := strings.Fields(lines[1])[0]

	// Revoked: refused, and intakectl says which token it sent.
	out, err = intakectlEnv(addr, admin, "token", "revoke", name)
	require.NoError(t, err, out)
	require.Equal(t, "revoked "+name+": the API refuses it from now on\n", out)
	out, err = intakectlEnv(addr, asViewer, "job", "list")
	require.Equal(t, 1, exitCode(err), out)
	require.ErrorContains(t, err, "token "+name+" was revoked at ")
	require.ErrorContains(t, err, "(unauthenticated): intakectl sent the token of --token (or INTAKE_TOKEN)")
	require.NotContains(t, err.Error(), viewer)
	out, err = intakectlEnv(addr, admin, "token", "list", "--all")
	require.NoError(t, err, out)
	require.Regexp(t, `REVOKED\n`+regexp.QuoteMeta(name)+`\s+viewer.*\d{4}-\d\d-\d\d \S+ UTC\n$`, out)
	_, err = intakectlEnv(addr, admin, "token", "revoke", viewer)
	require.Equal(t, 2, exitCode(err))
	require.ErrorContains(t, err, "is not a token name: want tokens/ID or ID")

	// No token: the hint says where intakectl looks.
	config := t.TempDir()
	_, err = intakectlEnv(addr, map[string]string{"XDG_CONFIG_HOME": config}, "job", "list")
	require.Equal(t, 1, exitCode(err))
	require.ErrorContains(t, err, `list jobs: no token: send "authorization: Bearer <token>"`)
	require.ErrorContains(t, err, "intakectl sent no token: give one with --token-file FILE, INTAKE_TOKEN or INTAKE_TOKEN_FILE, or put it in "+
		filepath.Join(config, "intake", "token"))

	// A token file, and the default one.
	editorOut, err := intakectlEnv(addr, admin, "token", "create", "--role", "editor")
	require.NoError(t, err, editorOut)
	editor := accessTokenRE.FindString(editorOut)
	file := filepath.Join(t.TempDir(), "token")
	require.NoError(t, os.WriteFile(file, []byte(editor+"\n"), 0o600))
	out, err = intakectlEnv(addr, map[string]string{"INTAKE_TOKEN_FILE": file}, "whoami")
	require.NoError(t, err, out)
	require.Regexp(t, `role:\s+editor\n`, out)
	require.Regexp(t, `from:\s+the token file `+regexp.QuoteMeta(file)+`\n`, out)
	def := filepath.Join(config, "intake", "token")
	require.NoError(t, os.MkdirAll(filepath.Dir(def), 0o700))
	require.NoError(t, os.WriteFile(def, []byte("# a comment\n"+editor+"\n"), 0o600))
	out, err = intakectlEnv(addr, map[string]string{"XDG_CONFIG_HOME": config}, "whoami")
	require.NoError(t, err, out)
	require.Regexp(t, `from:\s+the token file `+regexp.QuoteMeta(def)+`\n`, out)
	// --token wins over the files.
	out, err = intakectlEnv(addr, map[string]string{"XDG_CONFIG_HOME": config}, "whoami", "--token", testAdminToken)
	require.NoError(t, err, out)
	require.Regexp(t, `role:\s+admin\n`, out)
}

// intakectl sends a token in plain text only to this machine, unless told.
func TestTokenStaysOnThisMachine(t *testing.T) {
	t.Parallel()
	for _, addr := range []string{"10.1.2.3:7070", "api.example.com:7070"} {
		out, err := intakectlEnv(addr, map[string]string{"INTAKE_TOKEN": testAdminToken}, "job", "list")
		require.Equal(t, 1, exitCode(err), out)
		require.ErrorContains(t, err, "send the token of --token (or INTAKE_TOKEN): "+addr+
			" is not a loopback address and the connection has no TLS, so the token would cross the network in plain text; set --api-ca-file or --api-tls (TLS), or --insecure")
		require.NotContains(t, err.Error(), testAdminToken)
	}
	for _, addr := range []string{"127.0.0.1:7070", "[::1]:7070", "localhost:7070"} {
		require.True(t, ctl.IsLoopback(addr), addr)
	}
	// Told: it dials (and finds nobody there).
	out, err := intakectlEnv("10.255.255.1:7070", map[string]string{"INTAKE_TOKEN": testAdminToken, "INTAKE_INSECURE": "true"},
		"job", "list", "--timeout", "1s")
	require.Equal(t, 1, exitCode(err), out)
	require.NotContains(t, err.Error(), "loopback")
}
