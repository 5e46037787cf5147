package ctl_test

import (
	"context"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	intakev1 "github.com/intakehq/intake/proto/gen/intake/v1"
)

// Make, list, rotate and revoke a job's trigger tokens; the token printed
// is the one the trigger API takes.
func TestTriggerTokensThroughTheCLI(t *testing.T) {
	t.Parallel()
	addr, logs := startIntake(t)
	jobFile := filepath.Join(t.TempDir(), "job.yaml")
	job := strings.Replace(strings.Replace(jobYAML, "URL", "http://127.0.0.1:1/accounts.csv", 1), "enabled: true", "enabled: false", 1)
	require.NoError(t, os.WriteFile(jobFile, []byte(job), 0o600))
	out, err := intakectl(t, addr, "job", "create", "-f", jobFile)
	require.NoError(t, err, "%s\nlogs:\n%s", out, logs)

	out, err = intakectl(t, addr, "job", "token", "list", "ctl-accounts")
	require.NoError(t, err, out)
	require.Equal(t, "jobs/ctl-accounts has no trigger tokens; make one with: intakectl job token create ctl-accounts\n", out)

	// The secret is alone on its line; the note says it is shown once.
	out, err = intakectl(t, addr, "job", "token", "create", "ctl-accounts")
	require.NoError(t, err, out)
	first := regexp.MustCompile(`(?m)^itk_[A-Za-z0-9_-]{43}$`).FindString(out)
	require.NotEmpty(t, first, out)
	require.Regexp(t, `jobs/ctl-accounts/triggerTokens/[0-9a-f]{12}: the token above is shown only now`, out)

	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	require.NoError(t, err)
	defer conn.Close()
	jobs := intakev1.NewJobServiceClient(conn)
	trigger := func(token string) error {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		ctx = metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+token)
		_, err := jobs.TriggerJob(ctx, &intakev1.TriggerJobRequest{Name: "jobs/ctl-accounts", IdempotencyKey: "k-" + token[4:10]})
		return err
	}
	require.NoError(t, trigger(first))

	out, err = intakectl(t, addr, "job", "token", "list", "jobs/ctl-accounts")
	require.NoError(t, err, out)
	lines := strings.Split(strings.TrimSpace(out), "\n")
	require.Len(t, lines, 2, out)
	require.Regexp(t, `^TOKEN\s+CREATED\s+LAST USED$`, lines[0])
	require.Regexp(t, `^jobs/ctl-accounts/triggerTokens/[0-9a-f]{12}\s+\d{4}-\d\d-\d\d \S+ UTC\s+\d{4}-`, lines[1])
	require.NotContains(t, out, first)
	firstName := strings.Fields(lines[1])[0]

	// Rotate: the new token works, the old one no longer does.
	out, err = intakectl(t, addr, "job", "token", "rotate", "ctl-accounts")
	require.NoError(t, err, out)
	require.Contains(t, out, "every other token of jobs/ctl-accounts is revoked")
	rotated := regexp.MustCompile(`(?m)^itk_[A-Za-z0-9_-]{43}$`).FindString(out)
	require.NotEmpty(t, rotated, out)
	require.Equal(t, codes.PermissionDenied, status.Code(trigger(first)))
	require.NoError(t, trigger(rotated))

	// Revoke by name.
	out, err = intakectl(t, addr, "job", "token", "list", "ctl-accounts", "-o", "json")
	require.NoError(t, err, out)
	require.NotContains(t, out, firstName)
	name := regexp.MustCompile(`jobs/ctl-accounts/triggerTokens/[0-9a-f]{12}`).FindString(out)
	out, err = intakectl(t, addr, "job", "token", "revoke", name)
	require.NoError(t, err, out)
	require.Equal(t, "revoked "+name+": the trigger API refuses it from now on\n", out)
	require.Equal(t, codes.PermissionDenied, status.Code(trigger(rotated)))

	// Mistakes say what is wrong.
	out, err = intakectl(t, addr, "job", "token", "revoke", "ctl-accounts")
	require.Equal(t, 2, exitCode(err), out)
	require.ErrorContains(t, err, `"ctl-accounts" is not a trigger token: want jobs/JOB/triggerTokens/ID`)
	out, err = intakectl(t, addr, "job", "token", "make", "ctl-accounts")
	require.Equal(t, 2, exitCode(err), out)
	require.ErrorContains(t, err, `unknown token command "make": want intakectl job token create|rotate|list JOB | revoke TOKEN`)
	out, err = intakectl(t, addr, "job", "token", "create", "nope")
	require.Equal(t, 1, exitCode(err), out)
	require.ErrorContains(t, err, "create a trigger token of jobs/nope: job jobs/nope not found (not found)")
}
