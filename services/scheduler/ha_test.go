package scheduler_test

import (
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/types/known/timestamppb"

	intakev1 "github.com/intakehq/intake/proto/gen/intake/v1"
	"github.com/intakehq/intake/services/scheduler"
)

func cronSchedule(zone, expr string) *intakev1.Schedule {
	return &intakev1.Schedule{TimeZone: zone, Cadence: &intakev1.Schedule_Cron{Cron: &intakev1.Cron{Expression: expr}}}
}

// locks sums intake_scheduler_tick_locks_total{outcome} over replicas.
func locks(t *testing.T, outcome string, rs ...*bundle) float64 {
	t.Helper()
	var n float64
	for _, r := range rs {
		n += r.metric(t, "intake_scheduler_tick_locks_total", "outcome", outcome)
	}
	return n
}

// requireLocks waits until the replicas together acquired and saw held
// elsewhere the given numbers of tick locks.
func requireLocks(t *testing.T, acquired, heldElsewhere float64, rs ...*bundle) {
	t.Helper()
	require.Eventually(t, func() bool {
		return locks(t, "acquired", rs...) == acquired && locks(t, "held_elsewhere", rs...) == heldElsewhere
	}, 5*time.Second, 5*time.Millisecond, "tick locks: acquired %v (want %v), held elsewhere %v (want %v)",
		locks(t, "acquired", rs...), acquired, locks(t, "held_elsewhere", rs...), heldElsewhere)
}

// runsPerJob counts the run requests in the RUNS stream by job.
func runsPerJob(t *testing.T, b *bundle) map[string]int {
	t.Helper()
	out := map[string]int{}
	names := map[string]bool{}
	for _, p := range b.runRequests(t) {
		require.False(t, names[p.req.GetRun()], "run %s requested twice", p.req.GetRun())
		names[p.req.GetRun()] = true
		out[p.req.GetJob().GetName()]++
	}
	return out
}

// Two replicas run at once on one JetStream: both fire every tick, and the
// per-tick lock lets exactly one of them create the tick's run.
func TestTwoReplicasFireEachTickOnce(t *testing.T) {
	t.Parallel()
	e := newEnv(t, mustTime(t, "2026-01-05T12:00:30Z"),
		job("jobs/every-minute", true, everyMinutes("", 1)),
		job("jobs/cron", true, cronSchedule("Europe/Berlin", "*/2 * * * *")),
	)
	r1, r2 := e.replica(t, time.Hour), e.replica(t, time.Hour)
	for _, r := range []*bundle{r1, r2} {
		r.requireNextRun(t, "jobs/every-minute", "2026-01-05T12:01:00Z")
		r.requireNextRun(t, "jobs/cron", "2026-01-05T12:02:00Z")
	}

	ticks := 0.0
	want := map[string]int{}
	for minute := 1; minute <= 6; minute++ {
		e.clock.Advance(time.Minute)
		at := time.Date(2026, 1, 5, 12, minute, 0, 0, time.UTC).Format(time.RFC3339)
		want["jobs/every-minute@"+at] = 1
		ticks++
		if minute%2 == 0 {
			want["jobs/cron@"+at] = 1
			ticks++
		}
		// Both replicas fired every tick; one took its lock.
		requireLocks(t, ticks, ticks, r1, r2)
		next := time.Date(2026, 1, 5, 12, minute+1, 0, 0, time.UTC).Format(time.RFC3339)
		r1.requireNextRun(t, "jobs/every-minute", next)
		r2.requireNextRun(t, "jobs/every-minute", next)
		require.Eventually(t, func() bool { return len(e.api.callsPerTick()) == len(want) }, 5*time.Second, 5*time.Millisecond)
	}
	quiet()
	require.Equal(t, want, e.api.callsPerTick(), "one CreateScheduledRun per tick")
	r1.requireRunRequests(t, int(ticks))
	require.Equal(t, map[string]int{"jobs/every-minute": 6, "jobs/cron": 3}, runsPerJob(t, r1))
	require.Equal(t, ticks, r1.metric(t, "intake_scheduler_ticks_total", "outcome", "created")+
		r2.metric(t, "intake_scheduler_ticks_total", "outcome", "created"))
	require.Zero(t, locks(t, "error", r1, r2))
}

// Every replica is down over three ticks: on recovery the job runs once, for
// the latest missed tick, even with two replicas recovering at once; a job
// enabled after that tick is not caught up.
func TestMissedTicksRunOnceOnRecovery(t *testing.T) {
	t.Parallel()
	updated := func(j *intakev1.Job, at string) *intakev1.Job {
		j.UpdateTime = timestamppb.New(mustTime(t, at))
		return j
	}
	e := newEnv(t, mustTime(t, "2026-01-05T12:00:30Z"),
		updated(job("jobs/a", true, everyMinutes("", 1)), "2026-01-05T12:00:10Z"),
		updated(job("jobs/enabled-late", false, everyMinutes("", 1)), "2026-01-05T12:00:10Z"),
		updated(job("jobs/daily", true, daily("America/New_York", 7, 0)), "2026-01-05T12:00:10Z"),
	)
	r1 := e.replica(t, time.Hour)
	r1.requireNextRun(t, "jobs/a", "2026-01-05T12:01:00Z")
	require.Empty(t, e.api.callsPerTick(), "the 12:00 tick was before the job's last update: not missed")

	e.clock.Advance(time.Minute) // 12:01:30
	r1.requireRunRequests(t, 1)
	kv, err := e.js.KeyValue(t.Context(), scheduler.LastTickBucket)
	require.NoError(t, err)
	requireLastTick := func(job, want string) {
		t.Helper()
		require.Eventually(t, func() bool {
			got, err := kv.Get(t.Context(), job)
			return err == nil && string(got.Value()) == strconv.FormatInt(mustTime(t, want).Unix(), 10)
		}, 5*time.Second, 5*time.Millisecond, "last tick of %s", job)
	}
	requireLastTick("jobs/a", "2026-01-05T12:01:00Z")

	// Every scheduler is down from 12:01:30 to 12:04:30: the ticks of
	// 12:02, 12:03 and 12:04 are missed. Meanwhile jobs/enabled-late is
	// enabled, after the 12:04 tick.
	r1.stop()
	e.clock.Advance(3 * time.Minute)
	e.api.update("jobs/enabled-late", func(j *intakev1.Job) {
		j.Enabled = true
		j.UpdateTime = timestamppb.New(mustTime(t, "2026-01-05T12:04:10Z"))
	})

	// Two replicas recover; the missed tick of 12:04 runs once.
	r2, r3 := e.replica(t, time.Hour), e.replica(t, time.Hour)
	require.Eventually(t, func() bool { return len(e.api.callsPerTick()) == 2 }, 5*time.Second, 5*time.Millisecond)
	requireLastTick("jobs/a", "2026-01-05T12:04:00Z")
	quiet()
	require.Equal(t, map[string]int{"jobs/a@2026-01-05T12:01:00Z": 1, "jobs/a@2026-01-05T12:04:00Z": 1}, e.api.callsPerTick())
	require.Equal(t, 1.0, r2.metric(t, "intake_scheduler_catch_up_ticks_total")+r3.metric(t, "intake_scheduler_catch_up_ticks_total"))
	for _, r := range []*bundle{r2, r3} {
		r.requireNextRun(t, "jobs/a", "2026-01-05T12:05:00Z")
		r.requireNextRun(t, "jobs/enabled-late", "2026-01-05T12:05:00Z")
		// Its 07:00 EST (12:00Z) tick today was before its last update: not missed.
		r.requireNextRun(t, "jobs/daily", "2026-01-06T12:00:00Z")
	}

	// Then the schedule goes on, each tick once.
	e.clock.Advance(time.Minute) // 12:05:30
	require.Eventually(t, func() bool { return len(e.api.callsPerTick()) == 4 }, 5*time.Second, 5*time.Millisecond)
	quiet()
	require.Equal(t, map[string]int{
		"jobs/a@2026-01-05T12:01:00Z": 1, "jobs/a@2026-01-05T12:04:00Z": 1,
		"jobs/a@2026-01-05T12:05:00Z": 1, "jobs/enabled-late@2026-01-05T12:05:00Z": 1,
	}, e.api.callsPerTick())
	r2.requireRunRequests(t, 4)
	require.Equal(t, map[string]int{"jobs/a": 3, "jobs/enabled-late": 1}, runsPerJob(t, r2))
}
