package e2e

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	intakev1 "github.com/intakehq/intake/proto/gen/intake/v1"
)

// TestCancelMidRun cancels a big run while the loader stages it: the run
// ends CANCELLED and the object table is exactly as before the run (none
// of the cancelled batches lands), and the loader drops the run's staging.
func TestCancelMidRun(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	s := startSystem(t)
	const before, rows = 100, 200000
	files := newFileServer(t, accountsCSV(0, before, nil))
	job := s.createJob(ctx, t, accountsJob(files.url()))
	first := s.runAndWait(ctx, t, job.Name)
	require.Equal(t, intakev1.RunState_RUN_STATE_SUCCEEDED, first.State, first.Message)
	const digest = `SELECT count(*), md5(string_agg(account_id || '|' || name || '|' || COALESCE(notes, ''), ',' ORDER BY account_id))
		FROM objects.accounts`
	table := rowsOf(ctx, t, s.db, digest)
	require.Equal(t, "100", table[0][0])

	// The big file renames the accounts already there and adds many more.
	files.set(accountsCSV(0, rows, map[int]string{0: "Renamed", 50: "Renamed too"}))
	started, err := s.jobs.RunJob(ctx, &intakev1.RunJobRequest{Name: job.Name})
	require.NoError(t, err)
	var (
		once      sync.Once
		cancelErr error
	)
	run := s.wait(ctx, t, started.Name, func(r *intakev1.Run) {
		if r.Counters.GetRowsStaged() > 0 && !final(r.State) {
			once.Do(func() {
				_, cancelErr = s.runs.CancelRun(ctx, &intakev1.CancelRunRequest{Name: started.Name})
			})
		}
	})
	var early bool
	once.Do(func() { early = true })
	require.False(t, early, "the run ended before it could be cancelled while loading")
	require.NoError(t, cancelErr)
	require.Equal(t, intakev1.RunState_RUN_STATE_CANCELLED, run.State)
	require.Equal(t, "cancelled by request", run.Message)
	require.Equal(t, table, rowsOf(ctx, t, s.db, digest), "nothing of the cancelled run landed")

	// The workers learn it from their next report; the loader drops the
	// staging and never commits.
	require.Eventually(t, func() bool {
		return count(ctx, t, s.db, `SELECT count(*) FROM pg_tables WHERE schemaname = 'intake_staging'`) == 0
	}, time.Minute, 200*time.Millisecond, "the run's staging table is dropped")
	runID := started.Name[strings.LastIndex(started.Name, "/")+1:]
	require.Equal(t, int64(0), count(ctx, t, s.db, `SELECT count(*) FROM intake.load_runs WHERE run_id = $1 AND committed`, runID))
	time.Sleep(2 * time.Second) // batches still in flight are dropped too
	require.Equal(t, table, rowsOf(ctx, t, s.db, digest))
	got, err := s.runs.GetRun(ctx, &intakev1.GetRunRequest{Name: started.Name})
	require.NoError(t, err)
	require.Equal(t, intakev1.RunState_RUN_STATE_CANCELLED, got.State)
	require.Zero(t, got.Counters.GetRowsCreated()+got.Counters.GetRowsUpdated())

	// A cancel of a run that ended is refused.
	_, err = s.runs.CancelRun(ctx, &intakev1.CancelRunRequest{Name: first.Name})
	require.ErrorContains(t, err, "already ended: succeeded")
}
