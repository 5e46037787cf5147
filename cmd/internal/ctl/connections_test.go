package ctl_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/intakehq/intake/pkg/testutil"

	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/encoding/protojson"

	"github.com/intakehq/intake/cmd/internal/command"
	"github.com/intakehq/intake/cmd/internal/ctl"
	"github.com/intakehq/intake/pkg/s3test"
	"github.com/intakehq/intake/pkg/sftptest"
	intakev1 "github.com/intakehq/intake/proto/gen/intake/v1"
)

// startIntakeWithKeys runs `intake all --dev` with an encryption key ring
// (INTAKE_ENCRYPTION_KEYS), so connections may hold secrets.
func startIntakeWithKeys(t *testing.T) (string, *testutil.SyncBuffer) {
	t.Helper()
	key := make([]byte, 32)
	_, err := rand.Read(key)
	require.NoError(t, err)
	env := map[string]string{"INTAKE_ENCRYPTION_KEYS": "k1:" + base64.StdEncoding.EncodeToString(key)}
	return startIntakeEnv(t, env)
}

// intakectlWith runs the CLI with environment variables and standard input.
func intakectlWith(t *testing.T, addr string, env map[string]string, stdin string, args ...string) (string, error) {
	t.Helper()
	var out bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	err := ctl.Run(ctx, args, command.System{
		Stdin: strings.NewReader(stdin), Stdout: &out, Stderr: &out,
		LookupEnv: func(k string) (string, bool) {
			if k == "INTAKE_API_ADDR" {
				return addr, true
			}
			if v, ok := env[k]; ok {
				return v, ok
			}
			return testAdminToken, k == "INTAKE_TOKEN" // access_test.go
		},
	})
	return out.String(), err
}

// A user's session with stored connections: an S3 connection whose secret
// comes from a file, the environment or standard input; get, list, test,
// browse, update; a job that reads the newest matching file; delete refused
// while the job uses the connection.
func TestS3ConnectionsThroughTheCLI(t *testing.T) {
	t.Parallel()
	addr, logs := startIntakeWithKeys(t)
	s3 := s3test.New(t)
	s3.CreateBucket("acme")
	accounts, err := os.ReadFile("../../../examples/data/accounts.csv")
	require.NoError(t, err)
	now := time.Now().UTC()
	today := "exports/accounts_" + now.Format("2006-01-02") + ".csv"
	s3.PutObject("acme", "exports/accounts_2020-01-01.csv", []byte("account_id,name\nold,Old\n"), now.Add(-48*time.Hour))
	s3.PutObject("acme", today, accounts, now.Add(-time.Hour))
	for i := range 5 {
		s3.PutObject("acme", fmt.Sprintf("many/f%d.csv", i), bytes.Repeat([]byte("x"), 2048), now)
	}
	secret := s3.SecretAccessKey
	var outputs []string // none may hold a secret
	run := func(env map[string]string, stdin string, args ...string) (string, error) {
		t.Helper()
		out, err := intakectlWith(t, addr, env, stdin, args...)
		outputs = append(outputs, out)
		if err != nil {
			outputs = append(outputs, err.Error())
		}
		return out, err
	}
	s3Flags := []string{"--kind", "s3", "--endpoint", s3.URL, "--region", s3.Region, "--bucket", "acme", "--path-style",
		"--access-key-id", s3.AccessKeyID}

	// Create with the secret from a file (with the newline editors add).
	secretFile := writeFile(t, "secret", secret+"\n")
	out, err := run(nil, "", append([]string{"connection", "create", "acme-s3", "--display-name", "Acme exports",
		"--secret-access-key-file", secretFile}, s3Flags...)...)
	require.NoError(t, err, "%s\nlogs:\n%s", out, logs)
	require.Contains(t, out, "created connections/acme-s3\n")
	require.Regexp(t, `(?m)^Secret key:\s+set$`, out)

	out, err = run(nil, "", "connection", "get", "acme-s3")
	require.NoError(t, err, out)
	require.Regexp(t, `(?m)^Name:\s+connections/acme-s3$`, out)
	require.Regexp(t, `(?m)^Kind:\s+s3$`, out)
	require.Regexp(t, `(?m)^Bucket:\s+acme$`, out)
	require.Regexp(t, `(?m)^Access key id:\s+`+s3.AccessKeyID+`$`, out)
	require.Regexp(t, `(?m)^Secret key:\s+set$`, out)
	require.Regexp(t, `(?m)^Used by:\s+no jobs$`, out)

	out, err = run(nil, "", "connection", "get", "connections/acme-s3", "-o", "json")
	require.NoError(t, err, out)
	var got intakev1.Connection
	require.NoError(t, protojson.Unmarshal([]byte(out), &got))
	require.True(t, got.GetS3().GetSecretAccessKeySet())
	require.Empty(t, got.GetS3().GetSecretAccessKey())

	// No secret given, no terminal: the error says where a secret comes from.
	out, err = run(nil, "", append([]string{"connection", "create", "no-secret"}, s3Flags...)...)
	require.Equal(t, 2, exitCode(err), out)
	require.ErrorContains(t, err, "--secret-access-key-file FILE")
	require.ErrorContains(t, err, "INTAKE_S3_SECRET_ACCESS_KEY")
	// From the environment, and from standard input: both work (the test passes).
	out, err = run(map[string]string{"INTAKE_S3_SECRET_ACCESS_KEY": secret}, "", append([]string{"connection", "create", "from-env"}, s3Flags...)...)
	require.NoError(t, err, out)
	out, err = run(nil, secret+"\n", append([]string{"connection", "create", "from-stdin", "--secret-access-key-file", "-"}, s3Flags...)...)
	require.NoError(t, err, out)
	for _, name := range []string{"from-env", "from-stdin"} {
		out, err = run(nil, "", "connection", "test", name)
		require.NoError(t, err, "%s: %s", name, out)
		require.Contains(t, out, "OK: connected to connections/"+name)
	}

	out, err = run(nil, "", "connection", "list")
	require.NoError(t, err, out)
	require.Regexp(t, `NAME\s+KIND\s+WHERE\s+USED BY\s+DISPLAY NAME`, out)
	require.Regexp(t, `connections/acme-s3\s+s3\s+s3://acme \(127\.0\.0\.1:\d+\)\s+0 jobs\s+Acme exports`, out)
	require.Len(t, strings.Split(strings.TrimSpace(out), "\n"), 4, "header and three connections:\n%s", out)

	// Test: reach and log in; find the newest matching file; a dated path.
	out, err = run(nil, "", "connection", "test", "acme-s3")
	require.NoError(t, err, out)
	require.Contains(t, out, "OK: connected to connections/acme-s3")
	require.Regexp(t, `(?m)^Latency: \d+ ms$`, out)
	out, err = run(nil, "", "connection", "test", "acme-s3", "--pattern", "exports/accounts_*.csv")
	require.NoError(t, err, out)
	require.Regexp(t, `(?m)^File:\s+`+regexp.QuoteMeta(today)+` \(\d+\.\d KiB, modified \d{4}-`, out)
	out, err = run(nil, "", "connection", "test", "acme-s3", "--path", "exports/accounts_{yyyy-MM-dd}.csv", "--time-zone", "UTC")
	require.NoError(t, err, out)
	require.Contains(t, out, "File:    "+today)
	out, err = run(nil, "", "connection", "test", "acme-s3", "--path", "exports/nope.csv")
	require.Equal(t, 1, exitCode(err), out)
	require.Regexp(t, `(?m)^FAILED: file not found: .*exports/nope\.csv`, out)

	// Browse: directories end with /, one page at a time or all of them.
	out, err = run(nil, "", "connection", "ls", "acme-s3")
	require.NoError(t, err, out)
	require.Regexp(t, `(?m)^PATH\s+SIZE\s+MODIFIED$`, out)
	require.Regexp(t, `(?m)^exports/\s+-`, out)
	require.Regexp(t, `(?m)^many/\s+-`, out)
	out, err = run(nil, "", "connection", "ls", "acme-s3", "many/", "--page-size", "2")
	require.NoError(t, err, out)
	require.Regexp(t, `(?m)^many/f0\.csv\s+2\.0 KiB\s+\d{4}-\d\d-\d\d `, out)
	require.Regexp(t, `(?m)^many/f1\.csv\s`, out)
	require.NotContains(t, out, "many/f2.csv")
	m := regexp.MustCompile(`more files: intakectl connection ls acme-s3 many/ --page-token (\S+) \(or --all`).FindStringSubmatch(out)
	require.NotNil(t, m, out)
	out, err = run(nil, "", "connection", "ls", "acme-s3", "many/", "--page-size", "2", "--page-token", strings.Trim(m[1], "'"))
	require.NoError(t, err, out)
	require.Contains(t, out, "many/f2.csv")
	require.NotContains(t, out, "many/f1.csv")
	out, err = run(nil, "", "connection", "ls", "acme-s3", "many/", "--page-size", "2", "--all")
	require.NoError(t, err, out)
	for i := range 5 {
		require.Contains(t, out, fmt.Sprintf("many/f%d.csv", i))
	}
	require.NotContains(t, out, "more files")

	// Update one setting: the stored secret stays.
	out, err = run(nil, "", "connection", "update", "acme-s3", "--display-name", "Acme S3")
	require.NoError(t, err, out)
	require.Regexp(t, `(?m)^Display name:\s+Acme S3$`, out)
	require.Regexp(t, `(?m)^Secret key:\s+set$`, out)
	out, err = run(nil, "", "connection", "update", "acme-s3", "--host", "x")
	require.Equal(t, 2, exitCode(err), out)
	require.ErrorContains(t, err, "--host is a setting of sftp connections, and connections/acme-s3 is of kind s3")
	// A wrong secret: the test fails with its kind, exit code 1.
	wrong := writeFile(t, "wrong", "not-the-secret-0123456789")
	out, err = run(nil, "", "connection", "update", "from-env", "--secret-access-key-file", wrong)
	require.NoError(t, err, out)
	out, err = run(nil, "", "connection", "test", "from-env")
	require.Equal(t, 1, exitCode(err), out)
	require.Regexp(t, `(?m)^FAILED: authentication failed: `, out)

	// A job on the connection: the newest file matching a pattern.
	jobFile := writeFile(t, "job.yaml", strings.Replace(jobYAML, "URL", "http://127.0.0.1:1/unused.csv", 1))
	out, err = run(nil, "", "job", "create", "-f", jobFile, "--connection", "acme-s3", "--pattern", "exports/accounts_*.csv")
	require.NoError(t, err, "%s\nlogs:\n%s", out, logs)
	require.Equal(t, "jobs/ctl-accounts\n", out)
	out, err = run(nil, "", "job", "get", "ctl-accounts")
	require.NoError(t, err, out)
	require.Contains(t, out, "Source:       connections/acme-s3: exports/accounts_*.csv (pattern: the newest matching file)\n")
	out, err = run(nil, "", "job", "get", "ctl-accounts", "-o", "json")
	require.NoError(t, err, out)
	var job intakev1.Job
	require.NoError(t, protojson.Unmarshal([]byte(out), &job))
	require.Equal(t, "connections/acme-s3", job.GetConnectionName())
	require.Equal(t, "exports/accounts_*.csv", job.GetFile().GetPattern())

	out, err = run(nil, "", "job", "run", "ctl-accounts", "--watch")
	require.NoError(t, err, "%s\nlogs:\n%s", out, logs)
	require.Contains(t, out, "State:    succeeded")
	require.Regexp(t, `(?m)^Source:   connections/acme-s3: `+regexp.QuoteMeta(today)+` \(\d+\.\d KiB, modified \d{4}-`, out)

	// The example job: the newest of today's exports (the date in the
	// schedule's zone, Europe/Berlin).
	berlin, err := time.LoadLocation("Europe/Berlin")
	require.NoError(t, err)
	day := time.Now().In(berlin).Format("20060102")
	s3.PutObject("acme", "exports/accounts_"+day+"_0500.csv", []byte("account_id,name\nold,Old\n"), now.Add(-2*time.Hour))
	s3.PutObject("acme", "exports/accounts_"+day+"_0712.csv", accounts, now.Add(-time.Minute))
	out, err = run(nil, "", "job", "create", "-f", "../../../examples/accounts-s3.yaml")
	require.NoError(t, err, "%s\nlogs:\n%s", out, logs)
	out, err = run(nil, "", "job", "run", "accounts-s3", "--watch")
	require.NoError(t, err, "%s\nlogs:\n%s", out, logs)
	require.Contains(t, out, "Source:   connections/acme-s3: exports/accounts_"+day+"_0712.csv (4.8 KiB, modified ")
	require.Contains(t, out, "Rows:     50 read, 0 rejected")

	// Still used: delete is refused, naming the jobs; unused ones go.
	out, err = run(nil, "", "connection", "list")
	require.NoError(t, err, out)
	require.Regexp(t, `connections/acme-s3\s+s3\s+\S+ \S+\s+2 jobs\s`, out)
	out, err = run(nil, "", "connection", "delete", "acme-s3")
	require.Equal(t, 1, exitCode(err), out)
	require.ErrorContains(t, err, "connection connections/acme-s3 was not deleted: it is used by jobs/accounts-s3, jobs/ctl-accounts")
	out, err = run(nil, "", "connection", "delete", "from-env")
	require.NoError(t, err, out)
	require.Equal(t, "deleted connections/from-env\n", out)
	_, err = run(nil, "", "connection", "get", "from-env")
	require.ErrorContains(t, err, "not found")

	for _, o := range outputs {
		require.NotContains(t, o, secret, "a secret was printed")
		require.NotContains(t, o, "not-the-secret-0123456789", "a secret was printed")
	}
}

// SFTP: a connection pinned to the server's host key (a file such as
// ssh-keyscan writes); a wrong password fails the test as an
// authentication failure, with exit code 1.
func TestSFTPConnectionTestThroughTheCLI(t *testing.T) {
	t.Parallel()
	addr, logs := startIntakeWithKeys(t)
	srv := sftptest.New(t)
	srv.PutFile("exports/users.csv", []byte("account_id,user_id\n1,2\n"), time.Now().Add(-time.Minute))
	hostKeys := writeFile(t, "known_hosts", "# 127.0.0.1 SSH-2.0-OpenSSH\n"+srv.HostKeyLine+"\n")
	base := []string{"--kind", "sftp", "--host", srv.Host, "--port", fmt.Sprint(srv.Port), "--user", srv.User, "--host-key-file", hostKeys}

	out, err := intakectlWith(t, addr, map[string]string{"INTAKE_SFTP_PASSWORD": srv.Password}, "",
		append([]string{"connection", "create", "files"}, base...)...)
	require.NoError(t, err, "%s\nlogs:\n%s", out, logs)
	require.Regexp(t, `(?m)^Password:\s+set$`, out)
	require.Regexp(t, `(?m)^Private key:\s+not set$`, out)
	require.Regexp(t, `(?m)^Host key:\s+\[127\.0\.0\.1\]:\d+ ssh-ed25519 `, out)
	require.NotContains(t, out, srv.Password)
	out, err = intakectlWith(t, addr, nil, "", "connection", "test", "files", "--path", "exports/users.csv")
	require.NoError(t, err, out)
	require.Contains(t, out, "OK: connected to connections/files")
	require.Contains(t, out, "File:    exports/users.csv (23 B, modified ")
	out, err = intakectlWith(t, addr, nil, "", "connection", "ls", "files", "exports")
	require.NoError(t, err, out)
	require.Regexp(t, `(?m)^exports/users\.csv\s+23 B\s+\d{4}-`, out)

	out, err = intakectlWith(t, addr, nil, "", append([]string{"connection", "create", "wrong-password", "--password-file",
		writeFile(t, "password", "wrong-"+srv.Password)}, base...)...)
	require.NoError(t, err, out)
	out, err = intakectlWith(t, addr, nil, "", "connection", "test", "wrong-password")
	require.Equal(t, 1, exitCode(err), out)
	require.Regexp(t, `(?m)^FAILED: authentication failed: `, out)
	require.NotContains(t, out, srv.Password)
	out, err = intakectlWith(t, addr, nil, "", "connection", "test", "wrong-password", "-o", "json")
	require.Equal(t, 1, exitCode(err), out)
	var resp intakev1.TestConnectionResponse
	require.NoError(t, protojson.Unmarshal([]byte(out), &resp))
	require.Equal(t, intakev1.ConnectionErrorKind_CONNECTION_ERROR_KIND_AUTHENTICATION_FAILED, resp.GetErrorKind())
}

// Mistakes on the command line are usage errors that say what to do, and
// nothing is sent.
func TestConnectionUsageErrors(t *testing.T) {
	t.Parallel()
	addr := testutil.FreeAddr(t) // nothing listens: every case must fail before a call
	cases := []struct {
		args []string
		want string
	}{
		{[]string{"connection", "create", "x"}, "which kind of connection? give --kind s3|sftp|http|local"},
		{[]string{"connection", "create", "x", "--kind", "ftp"}, `--kind "ftp": want one of s3, sftp, http, local`},
		{[]string{"connection", "create", "x", "--kind", "s3", "--host", "h"}, "--host is a setting of sftp connections, not of s3 connections"},
		{[]string{"connection", "create", "x", "--kind", "http", "--url", "https://e.example/", "--header", "Authorization=Bearer abc123"},
			"--header Authorization: it holds credentials"},
		{[]string{"connection", "create", "x", "--kind", "sftp", "--host", "h", "--user", "u", "--host-key", "k"},
			"the password of u on h (or --private-key-file) is needed: give --password-file FILE"},
		{[]string{"connection", "create", "x", "--kind", "http", "--url", "https://e.example/", "--basic-user", "u", "--bearer-token-file", "t"},
			"not both"},
		{[]string{"connection", "update", "x"}, "nothing to change"},
		{[]string{"connection", "test", "x", "--path", "a", "--pattern", "b"}, "give --path or --pattern, not both"},
		{[]string{"connection", "get", "a/b"}, `"a/b" is not a connection`},
		{[]string{"job", "create", "-f", writeFile(t, "j.yaml", "object: OBJECT_TYPE_ACCOUNTS\n"), "--pattern", "*.csv"},
			"give --connection NAME too"},
	}
	for _, tc := range cases {
		out, err := intakectlWith(t, addr, nil, "", append(tc.args, "--timeout", "2s")...)
		require.Equal(t, 2, exitCode(err), "%q: %s %v", tc.args, out, err)
		require.ErrorContains(t, err, tc.want, "%q", tc.args)
		require.NotContains(t, err.Error(), "abc123", "a secret in an error")
	}
}

// A connection file: YAML with proto JSON names; what get -o json prints
// reads back.
func TestParseConnection(t *testing.T) {
	t.Parallel()
	conn, err := ctl.ParseConnection([]byte(`
name: connections/acme
displayName: Acme
s3: {bucket: acme, pathStyle: true, endpoint: "https://minio:9000", access_key_id: AKIA}
`))
	require.NoError(t, err)
	require.Equal(t, "acme", conn.GetS3().GetBucket())
	require.True(t, conn.GetS3().GetPathStyle())
	require.Equal(t, "AKIA", conn.GetS3().GetAccessKeyId())
	_, err = ctl.ParseConnection([]byte("s3: {bucket: a, secret: x}\n"))
	require.ErrorContains(t, err, "not a valid connection")
	_, err = ctl.ParseConnection([]byte("- a\n"))
	require.ErrorContains(t, err, "must be a mapping")
}
