package ctl_test

import (
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/intakehq/intake/cmd/internal/ctl"
	intakev1 "github.com/intakehq/intake/proto/gen/intake/v1"
)

// Duplicate a job, enable and disable the copy, cancel a run that is
// fetching, and find runs by state, trigger and time.
func TestJobOperationsThroughTheCLI(t *testing.T) {
	t.Parallel()
	addr, logs := startIntake(t)
	files := httptest.NewServer(http.FileServer(http.Dir("../../../examples/data")))
	defer files.Close()
	// slow holds its answers while hold is set: a run reading it stays FETCHING.
	var (
		mu   sync.Mutex
		hold chan struct{}
	)
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		h := hold
		mu.Unlock()
		if h != nil {
			select {
			case <-h:
			case <-r.Context().Done():
				return
			}
		}
		http.ServeFile(w, r, "../../../examples/data/accounts.csv")
	}))
	defer slow.Close()
	release := func() {
		mu.Lock()
		defer mu.Unlock()
		if hold != nil {
			close(hold)
			hold = nil
		}
	}
	defer release()

	jobFile := filepath.Join(t.TempDir(), "job.yaml")
	require.NoError(t, os.WriteFile(jobFile, []byte(strings.Replace(jobYAML, "URL", files.URL+"/accounts.csv", 1)), 0o600))
	out, err := intakectl(t, addr, "job", "create", "-f", jobFile)
	require.NoError(t, err, out)
	out, err = intakectl(t, addr, "job", "run", "ctl-accounts", "--watch")
	require.NoError(t, err, "%s\nlogs:\n%s", out, logs)
	done := strings.TrimSpace(strings.TrimPrefix(strings.SplitN(out, "\n", 2)[0], "started "))

	// Duplicate: the copy is disabled; enabled, its schedule fires again.
	out, err = intakectl(t, addr, "job", "duplicate", "ctl-accounts", "--id", "ctl-copy")
	require.NoError(t, err, out)
	require.Contains(t, out, "jobs/ctl-copy\n")
	require.Contains(t, out, `"Copy of CTL accounts" is saved disabled; enable it with: intakectl job enable ctl-copy`)
	out, err = intakectl(t, addr, "job", "get", "ctl-copy")
	require.NoError(t, err, out)
	require.Contains(t, out, "Display name: Copy of CTL accounts")
	require.Contains(t, out, "Enabled:      no")
	require.Contains(t, out, "Validated:    yes")
	out, err = intakectl(t, addr, "job", "enable", "ctl-copy")
	require.NoError(t, err, out)
	require.Regexp(t, `^enabled jobs/ctl-copy \(next run \d{4}-`, out)
	out, err = intakectl(t, addr, "job", "disable", "jobs/ctl-copy")
	require.NoError(t, err, out)
	require.Equal(t, "disabled jobs/ctl-copy: its schedule does not fire\n", out)
	out, err = intakectl(t, addr, "job", "duplicate", "ctl-copy", "--id", "ctl-copy")
	require.ErrorContains(t, err, "already exists", out)
	_, err = intakectl(t, addr, "job", "duplicate", "no-such-job")
	require.ErrorContains(t, err, "job jobs/no-such-job not found")

	// Cancel a run while it fetches.
	slowFile := filepath.Join(t.TempDir(), "slow.yaml")
	require.NoError(t, os.WriteFile(slowFile, []byte(strings.Replace(jobYAML, "URL", slow.URL+"/accounts.csv", 1)), 0o600))
	out, err = intakectl(t, addr, "job", "create", "-f", slowFile, "--id", "ctl-slow")
	require.NoError(t, err, out)
	mu.Lock()
	hold = make(chan struct{})
	mu.Unlock()
	out, err = intakectl(t, addr, "job", "run", "ctl-slow")
	require.NoError(t, err, out)
	slowRun := strings.TrimSpace(out)
	out, err = intakectl(t, addr, "run", "cancel", slowRun)
	require.NoError(t, err, out)
	require.Equal(t, "cancelled "+slowRun+": nothing of it lands\n", out)
	release()
	out, err = intakectl(t, addr, "run", "get", slowRun)
	require.NoError(t, err, out)
	require.Contains(t, out, "State:    cancelled")
	out, err = intakectl(t, addr, "run", "cancel", done)
	require.Equal(t, 1, exitCode(err), out)
	require.ErrorContains(t, err, "cancel run "+done+": run "+done+" already ended: succeeded (failed precondition)")

	// History filters.
	out, err = intakectl(t, addr, "run", "list", "--state", "cancelled")
	require.NoError(t, err, out)
	require.Equal(t, []string{slowRun}, listedRuns(out))
	out, err = intakectl(t, addr, "run", "list", "--state", "succeeded,cancelled", "--trigger", "run-now", "--since", "1h")
	require.NoError(t, err, out)
	require.Equal(t, []string{slowRun, done}, listedRuns(out))
	out, err = intakectl(t, addr, "run", "list", "--job", "ctl-accounts", "--state", "running", "--state", "failed")
	require.NoError(t, err, out)
	require.Empty(t, listedRuns(out))
	out, err = intakectl(t, addr, "run", "list", "--until", "2001-01-01")
	require.NoError(t, err, out)
	require.Empty(t, listedRuns(out))
	_, err = intakectl(t, addr, "run", "list", "--state", "done")
	require.Equal(t, 2, exitCode(err))
	require.ErrorContains(t, err, `--state: "done" is not a run state`)
	_, err = intakectl(t, addr, "run", "list", "--since", "yesterday")
	require.Equal(t, 2, exitCode(err))
	require.ErrorContains(t, err, `--since: "yesterday" is not a time`)
	_, err = intakectl(t, addr, "run", "list", "--trigger", "cron")
	require.ErrorContains(t, err, `--trigger: "cron" is not a trigger`)
}

var runNamePattern = regexp.MustCompile(`(?m)^(jobs/\S+/runs/\S+)`)

// listedRuns are the run names of a run list table, in order.
func listedRuns(out string) []string {
	var names []string
	for _, m := range runNamePattern.FindAllStringSubmatch(out, -1) {
		names = append(names, m[1])
	}
	return names
}

func TestParseTime(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 3, 10, 12, 0, 0, 0, time.UTC)
	for in, want := range map[string]time.Time{
		"2026-03-01T06:00:00Z":      time.Date(2026, 3, 1, 6, 0, 0, 0, time.UTC),
		"2026-03-01T06:00:00+01:00": time.Date(2026, 3, 1, 5, 0, 0, 0, time.UTC),
		"2026-03-01":                time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC),
		"36h":                       now.Add(-36 * time.Hour),
		"7d":                        time.Date(2026, 3, 3, 12, 0, 0, 0, time.UTC),
		"90m":                       now.Add(-90 * time.Minute),
	} {
		got, err := ctl.ParseTime(in, now)
		require.NoError(t, err, in)
		require.True(t, want.Equal(got), "%s: %v, want %v", in, got, want)
	}
	for _, bad := range []string{"", "yesterday", "-5h", "2026-13-01", "3w"} {
		_, err := ctl.ParseTime(bad, now)
		require.Error(t, err, bad)
	}
}

// job get shows a job's own retention in words; none when the server's
// default applies.
func TestRetentionWords(t *testing.T) {
	t.Parallel()
	for want, p := range map[string]*intakev1.RetentionPolicy{
		"":                               nil,
		"keep the last run's file":       {KeepRuns: 1},
		"keep the last 10 runs' files":   {KeepRuns: 10},
		"keep files of the last 30 days": {KeepDays: 30},
		"keep the last 5 runs' files and files of the last day": {KeepRuns: 5, KeepDays: 1},
	} {
		require.Equal(t, want, ctl.Retention(p))
	}
}
