package scheduler_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/types/known/timestamppb"

	intakev1 "github.com/intakehq/intake/proto/gen/intake/v1"
	"github.com/intakehq/intake/services/scheduler"
)

// The ticks of one instant fire as a few groups, not one gocron job and one
// lock per job: a few CreateScheduledRuns calls create all their runs.
func TestTicksOfOneInstantFireInBatches(t *testing.T) {
	t.Parallel()
	const n = 600
	var jobs []*intakev1.Job
	for i := range n {
		s := everyMinutes("Europe/Berlin", 1)
		if i%2 == 1 {
			s = cronSchedule("Asia/Kolkata", "* * * * *")
		}
		jobs = append(jobs, job(fmt.Sprintf("jobs/j%03d", i), true, s))
	}
	e := newEnv(t, mustTime(t, "2026-01-05T12:00:30Z"), jobs...)
	e.api.pageSize = 250
	r := e.replica(t, time.Hour)
	require.Equal(t, float64(n), r.metric(t, "intake_scheduler_jobs"))
	require.LessOrEqual(t, r.svc.GocronJobs(), scheduler.GroupShards, "one gocron job per group of the instant")

	e.clock.Advance(time.Minute)
	r.requireTicks(t, "created", n)
	require.Len(t, r.requireRunRequests(t, n), n)
	require.Len(t, e.api.callsPerTick(), n)
	e.api.mu.Lock()
	batches, singles := e.api.batchCalls, e.api.singleCalls
	e.api.mu.Unlock()
	require.LessOrEqual(t, batches, scheduler.GroupShards, "the groups' ticks go out together, up to 500 a call")
	require.Zero(t, singles)
	require.Equal(t, float64(n), r.metric(t, "intake_scheduler_tick_locks_total", "outcome", "acquired"), "the locks count ticks")
	require.Equal(t, float64(n), r.metric(t, "intake_scheduler_tick_lateness_seconds"))
	for _, j := range []string{"jobs/j000", "jobs/j001", fmt.Sprintf("jobs/j%03d", n-1)} {
		r.requireNextRun(t, j, "2026-01-05T12:02:00Z")
	}
	require.LessOrEqual(t, r.svc.GocronJobs(), scheduler.GroupShards, "the fired groups are gone, the next ones armed")
}

// An API without CreateScheduledRuns (an older version) still gets every
// tick, one CreateScheduledRun call each.
func TestTicksWithoutBatchCall(t *testing.T) {
	t.Parallel()
	e := newEnv(t, mustTime(t, "2026-01-05T12:00:30Z"),
		job("jobs/a", true, everyMinutes("", 1)), job("jobs/b", true, everyMinutes("", 1)))
	e.api.noBatch = true
	r := e.replica(t, time.Hour)
	e.clock.Advance(time.Minute)
	r.requireTicks(t, "created", 2)
	r.requireRunRequests(t, 2)
	require.Equal(t, map[string]int{"jobs/a@2026-01-05T12:01:00Z": 1, "jobs/b@2026-01-05T12:01:00Z": 1}, e.api.callsPerTick())
	e.api.mu.Lock()
	defer e.api.mu.Unlock()
	require.Equal(t, 2, e.api.singleCalls)
}

// Another replica took the lock of a tick group but did not hold one of
// this replica's jobs (it was created between the two replicas' polls):
// this replica fires that job's tick, under the tick's own lock, and not
// the ticks the other replica fired.
func TestTickTheGroupWinnerDidNotHold(t *testing.T) {
	t.Parallel()
	e := newEnv(t, mustTime(t, "2026-01-05T12:00:30Z"),
		job("jobs/a", true, everyMinutes("", 1)), job("jobs/new-0", true, everyMinutes("", 1)))
	at := mustTime(t, "2026-01-05T12:01:00Z")
	key := scheduler.GroupLockKey("jobs/a", at)
	require.Equal(t, key, scheduler.GroupLockKey("jobs/new-0", at), "the two jobs share a group")
	r := e.replica(t, time.Hour)

	// The other replica fires the group with jobs/a only.
	kv, err := e.js.KeyValue(t.Context(), scheduler.TickBucket)
	require.NoError(t, err)
	_, err = kv.Create(t.Context(), key, scheduler.GroupLockValue("other-replica", "jobs/a", "jobs/elsewhere"))
	require.NoError(t, err)

	e.clock.Advance(time.Minute)
	r.requireTicks(t, "created", 1)
	quiet()
	require.Equal(t, map[string]int{"jobs/new-0@2026-01-05T12:01:00Z": 1}, e.api.callsPerTick())
	require.Equal(t, 1.0, r.metric(t, "intake_scheduler_tick_locks_total", "outcome", "held_elsewhere"))
	require.Equal(t, 1.0, r.metric(t, "intake_scheduler_tick_locks_total", "outcome", "acquired"))
	own, err := kv.Get(t.Context(), "jobs/new-0.1767614460")
	require.NoError(t, err, "the tick's own lock")
	require.NotEmpty(t, own.Value())
	r.requireNextRun(t, "jobs/a", "2026-01-05T12:02:00Z")
	r.requireNextRun(t, "jobs/new-0", "2026-01-05T12:02:00Z")
}

// Two replicas hold different jobs at a tick (one picked a new job up, the
// other has not polled since): every tick of the instant fires once,
// whichever replica wins the group's lock.
func TestReplicasHoldingDifferentJobs(t *testing.T) {
	t.Parallel()
	e := newEnv(t, mustTime(t, "2026-01-05T12:00:30Z"), job("jobs/a", true, everyMinutes("", 1)))
	fast, slow := e.replica(t, time.Second), e.replica(t, time.Hour)
	created := job("jobs/new-0", true, everyMinutes("", 1))
	created.UpdateTime = timestamppb.New(mustTime(t, "2026-01-05T12:00:31Z"))
	e.api.setJobs(job("jobs/a", true, everyMinutes("", 1)), created)
	e.clock.Advance(time.Second) // the fast replica polls
	fast.requireNextRun(t, "jobs/new-0", "2026-01-05T12:01:00Z")
	require.Empty(t, slow.nextRun("jobs/new-0"))

	e.clock.Advance(time.Minute)
	require.Eventually(t, func() bool { return len(e.api.callsPerTick()) == 2 }, 5*time.Second, 5*time.Millisecond)
	quiet()
	require.Equal(t, map[string]int{"jobs/a@2026-01-05T12:01:00Z": 1, "jobs/new-0@2026-01-05T12:01:00Z": 1}, e.api.callsPerTick())
	requireLocks(t, 2, 1, fast, slow)
	fast.requireRunRequests(t, 2)
}
