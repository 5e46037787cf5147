// Package scheduler fires the runs of scheduled import jobs.
//
// The Service keeps one gocron job per enabled job that has a schedule,
// reconciles them with the control API's job list every poll interval (so new,
// changed, disabled and deleted jobs are picked up without a restart), and on
// each tick asks the control API to create the run of that tick
// (StageService.CreateScheduledRun, idempotent on job + scheduled time) and
// publishes a pipeline RunRequest to JetStream with the run name as
// Nats-Msg-Id.
//
// Fire times are computed by package pkg/schedule, not by gocron, for every
// cadence (every N minutes, hourly, daily, workdays, weekly, monthly, cron):
// it is the single source of truth (the control API shows the same next run
// times), and every gocron job is a one-time job re-armed at the next fire
// time after each tick. This keeps the tick's scheduled time exact (it is the
// key of the run), makes every replica compute the same times, and follows
// the daylight-saving rules of pkg/schedule (ISC cron for fixed wall-clock
// times; real elapsed time for every N minutes, hourly and cron with a
// wildcard hour), which gocron v2.21 does not (see gocron_dst_test.go).
//
// # High availability
//
// Any number of replicas may run at once; each tick fires exactly once. Every
// replica arms every job, and gocron asks the replica's Locker (WithDistributedLocker)
// before running a tick. The gocron job of a tick is named by its lock key,
// "jobs/{job}.{unix seconds}", and the Locker creates that key in the
// JetStream key-value bucket TickBucket (kv.Create, which fails when the key
// exists): the first replica fires the tick, the others skip it and re-arm
// at the next one. Locks are never released; they expire after TickLockTTL.
// When the bucket cannot be reached the tick fires anyway: CreateScheduledRun
// is idempotent on (job, scheduled time), so the run is still created once.
// The metric intake_scheduler_tick_locks_total{outcome} counts the locks
// acquired, held elsewhere and failed.
//
// # Missed ticks
//
// The replica that fires a tick records its scheduled time as the job's last
// tick in the bucket LastTickBucket. When a replica picks up a job (at start,
// or when the job is new or its schedule changed), it compares the job's last
// fire time before now with that record and with the job's update time: if
// the fire time is later than both, no replica fired it (every one was down),
// and the replica fires that tick once, now, under its own catch-up lock
// ("....catchup"), so that two recovering replicas still fire it once. Only the
// latest missed tick fires: a job whose schedulers were down over three ticks
// runs once on recovery, not three times. A job with neither a record nor an
// update time is not caught up.
package scheduler
