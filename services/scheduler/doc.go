// Package scheduler fires the runs of scheduled import jobs.
//
// The Service holds every enabled job that has a schedule, reconciles them
// with the control API's job list every poll interval (so new, changed,
// disabled and deleted jobs are picked up without a restart), and on each
// tick asks the control API to create the run of that tick (idempotent on
// job + scheduled time); the API publishes a pipeline RunRequest to
// JetStream with the run name as Nats-Msg-Id (an older API that does not
// say so leaves it to the scheduler).
//
// Fire times are computed by package pkg/schedule, not by gocron, for every
// cadence (every N minutes, hourly, daily, workdays, weekly, monthly, cron):
// it is the single source of truth (the control API shows the same next run
// times), and gocron only runs one-time jobs at the times it computes. This
// keeps the tick's scheduled time exact (it is the key of the run), makes
// every replica compute the same times, and follows the daylight-saving
// rules of pkg/schedule (ISC cron for fixed wall-clock times; real elapsed
// time for every N minutes, hourly and cron with a wildcard hour), which
// gocron v2.21 does not (see gocron_dst_test.go).
//
// # Tick groups and batches
//
// Many jobs often tick at the same instant (every minute, on the hour, at
// 06:00). The ticks of one instant are split by a hash of the job name
// into at most 16 groups; each group is one gocron one-time job, armed at
// the instant, and one lock (below). When a group fires, its ticks are sent
// to the control API in StageService.CreateScheduledRuns calls of up to
// 500 ticks, at most 4 calls at once per replica (the API inserts each
// batch's runs with one statement and publishes their run requests
// asynchronously), and the group's jobs are re-armed in the groups of their
// next ticks. No goroutine waits per job: 10,000 jobs ticking at once are
// 16 timers, 16 locks and 20 calls. Against an API without
// CreateScheduledRuns the scheduler calls CreateScheduledRun per tick, 32
// at once. A parsed schedule (and its *time.Location) is shared by the jobs
// that have the same schedule.
//
// # High availability
//
// Any number of replicas may run at once; each tick fires exactly once. Every
// replica arms every job, and gocron asks the replica's Locker
// (WithDistributedLocker) before running a group. The lock is the key
// "instant.{unix seconds}.{shard}" in the JetStream key-value bucket
// TickBucket, created with kv.Create, which fails when the key exists: the
// first replica fires the group. Its value lists the jobs that replica
// fires (their 64-bit name hashes), so a replica that lost the lock but
// holds a job the winner did not (it picked the job up between the two
// replicas' polls) fires that job's tick itself, under the tick's own lock
// "jobs/{job}.{unix seconds}" (kv.Create again, so two such replicas fire it
// once). Locks are never released; they expire after TickLockTTL. When the
// bucket cannot be reached the ticks fire anyway: CreateScheduledRun(s) is
// idempotent on (job, scheduled time), so each run is still created once.
// The metric intake_scheduler_tick_locks_total{outcome} counts ticks by
// the outcome of their lock (acquired, held elsewhere, error).
//
// # Missed ticks
//
// The replica that fires a tick records its scheduled time as the job's last
// tick in the bucket LastTickBucket (asynchronous puts, one round trip per
// batch). When a replica picks up a job (at start, or when the job is new
// or its schedule changed), it compares the job's last fire time before now
// with that record and with the job's update time: if the fire time is later
// than both, no replica fired it (every one was down), and the replica fires
// that tick once, now, under its own catch-up lock ("....catchup"), so that
// two recovering replicas still fire it once. Only the latest missed tick
// fires: a job whose schedulers were down over three ticks runs once on
// recovery, not three times. A job with neither a record nor an update time
// is not caught up.
package scheduler
