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
// Fire times are computed by package pkg/schedule, not by gocron: it is the
// single source of truth (the control API shows the same next run times), and
// every gocron job is a one-time job re-armed at the next fire time after each
// tick. This keeps the tick's scheduled time exact (it is the key of the run),
// makes every replica compute the same times, and follows the daylight-saving
// rule of ISC cron, which gocron v2.21 does not (see gocron_dst_test.go):
//   - every N minutes fires at the multiples of N minutes of real elapsed time
//     since the Unix epoch, unaffected by time zones and daylight saving;
//   - daily at HH:MM fires once per calendar day of the schedule's zone; a time
//     skipped by a spring-forward fires at the transition instant, a time
//     repeated by a fall-back fires at its first occurrence.
package scheduler
