package cli_test

import (
	"context"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/intakehq/intake/pkg/testutil"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/intakehq/intake/cmd/internal/cli"
	"github.com/intakehq/intake/cmd/internal/ctl"
	"github.com/intakehq/intake/pkg/pgtest"
	intakev1 "github.com/intakehq/intake/proto/gen/intake/v1"
)

// copyExamples copies the repository's examples so the test may edit them.
func copyExamples(t *testing.T) string {
	t.Helper()
	dst := t.TempDir()
	src := "../../../examples"
	err := filepath.WalkDir(src, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		if d.IsDir() {
			return os.MkdirAll(filepath.Join(dst, rel), 0o755)
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(dst, rel), b, 0o644)
	})
	require.NoError(t, err)
	return dst
}

// waitFor waits until the output matches re and returns the match.
func waitFor(t *testing.T, out *testutil.SyncBuffer, re string, logs *testutil.SyncBuffer) []string {
	t.Helper()
	rx := regexp.MustCompile(re)
	var m []string
	require.Eventually(t, func() bool {
		m = rx.FindStringSubmatch(out.String())
		return m != nil
	}, 90*time.Second, 100*time.Millisecond, "no %q in the output:\n%s\nlogs:\n%s", re, out, logs)
	return m
}

// The demo of `make dev`: the sample accounts land in objects.accounts
// through the real HTTP path; the unchanged file is skipped with a hint; an
// edit of the file is imported by the next run.
func TestDevDemoImportsTheSampleAndFollowsEdits(t *testing.T) {
	t.Parallel()
	dsn := pgtest.NewDatabase(t)
	examples := copyExamples(t)
	grpcAddr := testutil.FreeAddr(t)
	out := &testutil.SyncBuffer{}
	logs := &testutil.SyncBuffer{}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	// intakectl's default token file goes here (auth.go).
	config := t.TempDir()
	go func() {
		sys := system(out, map[string]string{"XDG_CONFIG_HOME": config})
		sys.Stderr = logs
		done <- cli.Run(ctx, []string{"dev", "--database-url", dsn, "--examples", examples,
			"--grpc-addr", grpcAddr, "--http-addr", testutil.FreeAddr(t), "--nats-store", t.TempDir(), "--log-level", "info"}, sys)
	}()
	stopped := false
	t.Cleanup(func() {
		if !stopped {
			cancel()
			<-done
		}
	})

	waitFor(t, out, `job created\s+jobs/demo-accounts: accounts, every minute \(UTC\), from `, logs)
	waitFor(t, out, `job created\s+jobs/demo-users`, logs)
	waitFor(t, out, `jobs/demo-accounts/runs/\S+ succeeded \(run now\) in \S+: rows 50 read, 0 rejected, 50 created`, logs)
	waitFor(t, out, `psql '`+regexp.QuoteMeta(dsn)+`' -c 'SELECT \* FROM objects.accounts LIMIT 5'`, logs)
	waitFor(t, out, `jobs/demo-users/runs/\S+ succeeded \(run now\) in \S+: rows 40 read, 0 rejected, 40 created`, logs)

	db, err := pgx.Connect(context.Background(), dsn)
	require.NoError(t, err)
	defer db.Close(context.Background())
	var n int
	require.NoError(t, db.QueryRow(context.Background(), `SELECT count(*) FROM objects.accounts`).Scan(&n))
	require.Equal(t, 50, n)
	var notes, revenue, created string
	var active bool
	require.NoError(t, db.QueryRow(context.Background(),
		`SELECT notes, annual_revenue::text, created_date::text, is_active FROM objects.accounts WHERE account_id = 'ACC-1006'`).
		Scan(&notes, &revenue, &created, &active))
	require.Equal(t, "Migrated from legacy CRM.\nContact: Jane Doe (jane@example.com)", notes, "a quoted newline")
	require.Equal(t, "21750.00", revenue)
	require.Equal(t, "2021-02-12", created)
	require.False(t, active)

	// The admin token is where intakectl looks by default, so the
	// README's make dev + bin/intakectl needs no step more.
	tokenFile := filepath.Join(config, "intake", "token")
	waitFor(t, out, `admin token\s+\S+bootstrap-token, written to `+regexp.QuoteMeta(tokenFile)+` for intakectl`, logs)
	who, err := intakectl(grpcAddr, map[string]string{"XDG_CONFIG_HOME": config}, "whoami")
	require.NoError(t, err, who)
	require.Regexp(t, `role:\s+admin\n`, who)
	require.Contains(t, who, "the token file "+tokenFile)
	info, err := os.Stat(tokenFile)
	require.NoError(t, err)
	require.Equal(t, os.FileMode(0o600), info.Mode().Perm())
	token, err := ctl.ReadTokenFile(tokenFile)
	require.NoError(t, err)

	conn, err := grpc.NewClient(grpcAddr, grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithPerRPCCredentials(ctl.BearerCredentials(token)))
	require.NoError(t, err)
	defer conn.Close()
	jobs := intakev1.NewJobServiceClient(conn)

	// Unchanged: skipped, with the hint.
	_, err = jobs.RunJob(context.Background(), &intakev1.RunJobRequest{Name: "jobs/demo-accounts"})
	require.NoError(t, err)
	waitFor(t, out, `jobs/demo-accounts/runs/\S+ skipped`, logs)
	waitFor(t, out, `Edit \S+accounts.csv to see the next run`, logs)

	// Edited: served from disk, imported by the next run.
	csv := filepath.Join(examples, "data", "accounts.csv")
	b, err := os.ReadFile(csv)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(csv, []byte(strings.Replace(string(b), "Acme Corporation", "Acme Corp (renamed)", 1)), 0o644))
	_, err = jobs.RunJob(context.Background(), &intakev1.RunJobRequest{Name: "jobs/demo-accounts"})
	require.NoError(t, err)
	waitFor(t, out, `jobs/demo-accounts/runs/\S+ succeeded \(run now\) in \S+: rows 50 read, 0 rejected, 0 created, 1 updated, 49 unchanged`, logs)
	var name string
	require.NoError(t, db.QueryRow(context.Background(), `SELECT name FROM objects.accounts WHERE account_id = 'ACC-1001'`).Scan(&name))
	require.Equal(t, "Acme Corp (renamed)", name)

	cancel()
	stopped = true
	select {
	case err := <-done:
		require.NoError(t, err, "logs:\n%s", logs)
	case <-time.After(90 * time.Second):
		t.Fatal("intake dev did not stop")
	}
	require.Contains(t, out.String(), "stopped.")
}
