package api_test

import (
	"sync"
	"testing"

	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/codes"

	intakev1 "github.com/intakehq/intake/proto/gen/intake/v1"
)

// CancelRun as the workers see it: a queued or running run is CANCELLED at
// once and every later report is told ABANDON — the loader's commit gate
// included, so nothing lands. Once the gate said CONTINUE the run is
// committing and lands whole: a cancel is refused.
func TestCancelRun(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := testCtx(t)
	job := b.createJob(t, "accounts")

	// Queued: the fetcher drops it.
	queued := b.runNow(t, job.GetName()).GetName()
	run, err := b.runs.CancelRun(ctx, &intakev1.CancelRunRequest{Name: queued})
	require.NoError(t, err)
	require.Equal(t, intakev1.RunState_RUN_STATE_CANCELLED, run.GetState())
	require.Equal(t, "cancelled by request", run.GetMessage())
	require.NotNil(t, run.GetEndTime())
	got, err := b.runs.GetRun(ctx, &intakev1.GetRunRequest{Name: queued})
	require.NoError(t, err)
	require.Equal(t, intakev1.RunState_RUN_STATE_CANCELLED, got.GetState())
	r := b.report(t, &event{Run: queued, Stage: fetch, Kind: started})
	require.Equal(t, abandon, r.GetDirective())
	require.Equal(t, 1.0, metricValue(t, b.reg, "intake_api_runs_finished_total", map[string]string{"state": "cancelled", "trigger": "run_now"}))

	// Loading: the staged batches are dropped, the commit is refused.
	loading := b.runNow(t, job.GetName()).GetName()
	b.report(t, &event{Run: loading, Stage: fetch, Kind: started})
	b.report(t, &event{Run: loading, Stage: fetch, Kind: fetched, Sha256: shaA})
	b.report(t, &event{Run: loading, Stage: fetch, Kind: finished, Counters: &intakev1.RunCounters{Chunks: 2}})
	for i := range int64(2) {
		b.report(t, &event{Run: loading, Stage: mapS, Kind: chunkDone, Chunk: i, Counters: &intakev1.RunCounters{RowsRead: 10}})
	}
	r = b.report(t, &event{Run: loading, Stage: load, Kind: chunkDone, Chunk: 0, Counters: &intakev1.RunCounters{RowsStaged: 10}})
	require.Equal(t, cont, r.GetDirective())
	run, err = b.runs.CancelRun(ctx, &intakev1.CancelRunRequest{Name: loading})
	require.NoError(t, err)
	require.Equal(t, intakev1.RunState_RUN_STATE_CANCELLED, run.GetState())
	for _, st := range run.GetStages() {
		require.NotNil(t, st.GetEndTime(), "stage %v ended with the run", st.GetStage())
	}
	r = b.report(t, &event{Run: loading, Stage: load, Kind: chunkDone, Chunk: 1, Counters: &intakev1.RunCounters{RowsStaged: 10}})
	require.Equal(t, abandon, r.GetDirective())
	r = b.report(t, &event{Run: loading, Stage: load, Kind: committing, Counters: &intakev1.RunCounters{RowsStaged: 20}})
	require.Equal(t, abandon, r.GetDirective(), "the commit gate refuses a cancelled run")
	require.Equal(t, intakev1.RunState_RUN_STATE_CANCELLED, r.GetRun().GetState())
	require.Equal(t, "cancelled by request", r.GetRun().GetMessage())
	_, err = b.runs.CancelRun(ctx, &intakev1.CancelRunRequest{Name: loading})
	requireCode(t, err, codes.FailedPrecondition, "run "+loading+" already ended: cancelled")

	// Committing: told CONTINUE, the run lands whole.
	commit := b.runNow(t, job.GetName()).GetName()
	b.report(t, &event{Run: commit, Stage: fetch, Kind: fetched, Sha256: shaB})
	b.report(t, &event{Run: commit, Stage: mapS, Kind: chunkDone, Chunk: 0, Counters: &intakev1.RunCounters{RowsRead: 3}})
	b.report(t, &event{Run: commit, Stage: load, Kind: chunkDone, Chunk: 0, Counters: &intakev1.RunCounters{RowsStaged: 3}})
	r = b.report(t, &event{Run: commit, Stage: load, Kind: committing, Counters: &intakev1.RunCounters{RowsStaged: 3}})
	require.Equal(t, cont, r.GetDirective())
	_, err = b.runs.CancelRun(ctx, &intakev1.CancelRunRequest{Name: commit})
	requireCode(t, err, codes.FailedPrecondition, "run is committing")
	r = b.report(t, &event{Run: commit, Stage: load, Kind: committing, Counters: &intakev1.RunCounters{RowsStaged: 3}})
	require.Equal(t, cont, r.GetDirective(), "a second loader asking is told the same")
	r = b.report(t, &event{Run: commit, Stage: load, Kind: finished, Counters: &intakev1.RunCounters{RowsCreated: 3}})
	require.Equal(t, intakev1.RunState_RUN_STATE_SUCCEEDED, r.GetRun().GetState())
	_, err = b.runs.CancelRun(ctx, &intakev1.CancelRunRequest{Name: commit})
	requireCode(t, err, codes.FailedPrecondition, "run "+commit+" already ended: succeeded")

	_, err = b.runs.CancelRun(ctx, &intakev1.CancelRunRequest{Name: "jobs/accounts/runs/0000"})
	requireCode(t, err, codes.NotFound, "run jobs/accounts/runs/0000 not found")
	_, err = b.runs.CancelRun(ctx, &intakev1.CancelRunRequest{Name: "jobs/accounts"})
	requireCode(t, err, codes.InvalidArgument, "jobs/{job}/runs/{run}")

	final, err := b.jobs.GetJob(ctx, &intakev1.GetJobRequest{Name: job.GetName()})
	require.NoError(t, err)
	require.Zero(t, final.GetConsecutiveFailures(), "cancelled runs are no failures")
}

// A cancel and the commit gate racing: each run either is cancelled and
// refused at the gate, or passes the gate and refuses the cancel — never
// both, never neither.
func TestCancelRacesTheCommitGate(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := testCtx(t)
	job := b.createJob(t, "accounts")
	for range 8 {
		run := b.runNow(t, job.GetName()).GetName()
		b.report(t, &event{Run: run, Stage: mapS, Kind: chunkDone, Chunk: 0, Counters: &intakev1.RunCounters{RowsRead: 1}})
		var (
			wg        sync.WaitGroup
			cancelErr error
			gate      *intakev1.ReportRunEventResponse
		)
		wg.Go(func() {
			_, cancelErr = b.runs.CancelRun(ctx, &intakev1.CancelRunRequest{Name: run})
		})
		wg.Go(func() {
			gate, _ = b.stage.ReportRunEvent(ctx, &event{Run: run, Stage: load, Kind: committing, Counters: &intakev1.RunCounters{RowsStaged: 1}})
		})
		wg.Wait()
		require.NotNil(t, gate)
		if cancelErr == nil {
			require.Equal(t, abandon, gate.GetDirective(), "cancelled first: the commit is refused")
		} else {
			requireCode(t, cancelErr, codes.FailedPrecondition, "run is committing")
			require.Equal(t, cont, gate.GetDirective())
		}
	}
}

// Deleting a job cancels its runs in progress, but not one whose commit
// has begun: that one lands whole and says so.
func TestDeleteJobLetsACommittingRunLand(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := testCtx(t)
	job := b.createJob(t, "accounts")
	run := b.runNow(t, job.GetName()).GetName()
	b.report(t, &event{Run: run, Stage: fetch, Kind: fetched, Sha256: shaA})
	b.report(t, &event{Run: run, Stage: mapS, Kind: chunkDone, Chunk: 0, Counters: &intakev1.RunCounters{RowsRead: 3}})
	r := b.report(t, &event{Run: run, Stage: load, Kind: committing, Counters: &intakev1.RunCounters{RowsStaged: 3}})
	require.Equal(t, cont, r.GetDirective())
	_, err := b.jobs.DeleteJob(ctx, &intakev1.DeleteJobRequest{Name: job.GetName()})
	require.NoError(t, err)
	got, err := b.runs.GetRun(ctx, &intakev1.GetRunRequest{Name: run})
	require.NoError(t, err)
	require.Equal(t, intakev1.RunState_RUN_STATE_LOADING, got.GetState())
	r = b.report(t, &event{Run: run, Stage: load, Kind: finished, Counters: &intakev1.RunCounters{RowsCreated: 3}})
	require.Equal(t, intakev1.RunState_RUN_STATE_SUCCEEDED, r.GetRun().GetState())
}
