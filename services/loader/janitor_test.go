package loader_test

import (
	"context"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	intakev1 "github.com/intakehq/intake/proto/gen/intake/v1"
	"github.com/intakehq/intake/services/loader"
)

// quickJanitor sweeps often and finds a run stale soon, to keep tests short.
func quickJanitor(c *loader.Config) {
	c.JanitorInterval = 100 * time.Millisecond
	c.StaleAfter = 500 * time.Millisecond
}

// loadRun is the loader's bookkeeping of a run: whether it is abandoned,
// and how many of its chunks are recorded. found is false when there is
// none.
func loadRun(t *testing.T, pool *pgxpool.Pool, id string) (abandoned bool, chunks int64, found bool) {
	t.Helper()
	ctx := context.Background()
	require.NoError(t, pool.QueryRow(ctx, `SELECT count(*) FROM intake.load_chunks WHERE run_id = $1`, id).Scan(&chunks))
	err := pool.QueryRow(ctx, `SELECT abandoned FROM intake.load_runs WHERE run_id = $1`, id).Scan(&abandoned)
	if err != nil {
		require.ErrorContains(t, err, "no rows")
		return false, chunks, false
	}
	return abandoned, chunks, true
}

// started are the janitor's questions about run.
func started(api *fakeAPI, run string) []*intakev1.ReportRunEventRequest {
	var out []*intakev1.ReportRunEventRequest
	for _, r := range api.find(intakev1.RunEventKind_RUN_EVENT_KIND_STARTED) {
		if r.Run == run {
			out = append(out, r)
		}
	}
	return out
}

func TestTheJanitorDropsRunsThatEndedElsewhere(t *testing.T) {
	t.Parallel()
	cancelled, cancelledID := newRun()
	deleted, deletedID := newRun()
	api := &fakeAPI{
		// The run was cancelled after its first batch: the mappers drop
		// the rest and no seal comes. The other one's job is gone.
		directive: func(r *intakev1.ReportRunEventRequest) intakev1.Directive {
			if r.Kind == intakev1.RunEventKind_RUN_EVENT_KIND_STARTED {
				return intakev1.Directive_DIRECTIVE_ABANDON
			}
			return intakev1.Directive_DIRECTIVE_CONTINUE
		},
		refuse: func(r *intakev1.ReportRunEventRequest) error {
			if r.Run == deleted && r.Kind == intakev1.RunEventKind_RUN_EVENT_KIND_STARTED {
				return status.Errorf(codes.NotFound, "run %s not found", r.Run)
			}
			return nil
		},
	}
	e := start(t, api, quickJanitor)
	ctx := context.Background()
	// An abandoned marker of yesterday's run is forgotten; today's stays.
	oldID, recentID := "11111111-1111-4111-8111-111111111111", "22222222-2222-4222-8222-222222222222"
	_, err := e.pool.Exec(ctx, `INSERT INTO intake.load_runs (run_id, run, abandoned, update_time) VALUES
		($1, 'jobs/j/runs/'||$1, true, now() - interval '25 hours'), ($2, 'jobs/j/runs/'||$2, true, now() - interval '1 hour')`,
		oldID, recentID)
	require.NoError(t, err)

	e.publishBatch(t, batch(cancelled, 0, row(2, "a1", "Acme", "1")))
	e.publishBatch(t, batch(deleted, 0, row(2, "a2", "Beta", "2")))
	require.Eventually(t, func() bool { return len(api.find(intakev1.RunEventKind_RUN_EVENT_KIND_CHUNK_DONE)) == 2 },
		10*time.Second, 20*time.Millisecond)
	staged := time.Now()

	require.Eventually(t, func() bool { return stagingTables(t, e.pool) == 0 }, 10*time.Second, 20*time.Millisecond)
	require.GreaterOrEqual(t, time.Since(staged), 400*time.Millisecond, "a run is asked about only once idle for StaleAfter")
	for _, id := range []string{cancelledID, deletedID} {
		abandoned, chunks, found := loadRun(t, e.pool, id)
		require.True(t, found, "the abandoned marker stays")
		require.True(t, abandoned)
		require.Zero(t, chunks)
	}
	asked := started(api, cancelled)
	require.Len(t, asked, 1)
	require.Equal(t, intakev1.Stage_STAGE_LOAD, asked[0].Stage)
	require.NotNil(t, asked[0].EventTime)
	require.Len(t, started(api, deleted), 1)
	require.Equal(t, 2.0, value(t, e.reg, "intake_loader_janitor_abandoned_total"))

	require.Eventually(t, func() bool { _, _, found := loadRun(t, e.pool, oldID); return !found }, 5*time.Second, 20*time.Millisecond)
	_, _, found := loadRun(t, e.pool, recentID)
	require.True(t, found)

	// Dropped runs are not asked about again, and nothing landed.
	time.Sleep(300 * time.Millisecond)
	require.Len(t, started(api, cancelled), 1)
	require.Len(t, started(api, deleted), 1)
	require.Empty(t, accounts(t, e.pool))
	require.Empty(t, api.find(intakev1.RunEventKind_RUN_EVENT_KIND_FINISHED))
}

func TestTheJanitorLeavesARunInProgress(t *testing.T) {
	t.Parallel()
	api := &fakeAPI{} // CONTINUE: the mappers are slow
	e := start(t, api, quickJanitor)
	run, id := newRun()
	e.publishSeal(t, seal(run, 2))
	e.publishBatch(t, batch(run, 0, row(2, "a1", "Acme", "1")))

	require.Eventually(t, func() bool { return len(started(api, run)) >= 2 }, 10*time.Second, 20*time.Millisecond)
	require.Equal(t, intakev1.Stage_STAGE_LOAD, started(api, run)[0].Stage)
	abandoned, chunks, found := loadRun(t, e.pool, id)
	require.True(t, found)
	require.False(t, abandoned)
	require.Equal(t, int64(1), chunks)
	require.Equal(t, int64(1), stagingTables(t, e.pool))
	require.Equal(t, 0.0, value(t, e.reg, "intake_loader_janitor_abandoned_total"))

	// The last batch comes at last, and the run lands whole.
	e.publishBatch(t, batch(run, 1, row(3, "a2", "Beta", "2")))
	require.Eventually(t, func() bool { return len(api.find(intakev1.RunEventKind_RUN_EVENT_KIND_FINISHED)) == 1 },
		10*time.Second, 20*time.Millisecond)
	require.Equal(t, map[string]string{"a1": "Acme 1 " + id, "a2": "Beta 2 " + id}, accounts(t, e.pool))
	require.Zero(t, stagingTables(t, e.pool))
}
