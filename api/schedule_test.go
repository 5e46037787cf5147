package api_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/types/known/fieldmaskpb"

	"github.com/intakehq/intake/pkg/schedule"
	intakev1 "github.com/intakehq/intake/proto/gen/intake/v1"
)

// A job shows its next five fire times (what the scheduler fires:
// pkg/schedule) for every cadence; here weekly and monthly on the last day.
func TestJobNextRunTimes(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := testCtx(t)

	// nextFive checks that job's next_run_times are the first five fire
	// times of its schedule after some instant in [from, time.Now()], and
	// that next_run_time is the first; it returns them in loc.
	nextFive := func(job *intakev1.Job, from time.Time, loc *time.Location) []time.Time {
		t.Helper()
		var got []time.Time
		for _, ts := range job.GetNextRunTimes() {
			got = append(got, ts.AsTime().In(loc))
		}
		require.Len(t, got, 5, "next_run_times of %s", job.GetName())
		require.True(t, job.GetNextRunTime().AsTime().Equal(got[0]), "next_run_time is the first of next_run_times")
		want, err := schedule.NextRuns(job.GetSchedule(), from, 5)
		require.NoError(t, err)
		if !got[0].Equal(want[0]) {
			// A fire time passed during the call.
			want, err = schedule.NextRuns(job.GetSchedule(), time.Now(), 5)
			require.NoError(t, err)
		}
		require.Equal(t, formatTimes(want), formatTimes(got))
		return got
	}

	// Weekly on Monday and Thursday at 06:30 in Berlin.
	berlin, err := time.LoadLocation("Europe/Berlin")
	require.NoError(t, err)
	weekly := b.accountsJob("weekly")
	weekly.Schedule = &intakev1.Schedule{TimeZone: "Europe/Berlin", Cadence: &intakev1.Schedule_Weekly{Weekly: &intakev1.Weekly{
		Days: []intakev1.Weekday{intakev1.Weekday_WEEKDAY_THURSDAY, intakev1.Weekday_WEEKDAY_MONDAY}, Hour: 6, Minute: 30,
	}}}
	start := time.Now()
	created, err := b.create(t, "weekly", weekly)
	require.NoError(t, err)
	times := nextFive(created, start, berlin)
	for i, at := range times {
		require.Contains(t, []time.Weekday{time.Monday, time.Thursday}, at.Weekday(), "%s", at)
		require.Equal(t, [2]int{6, 30}, [2]int{at.Hour(), at.Minute()}, "%s", at)
		if i > 0 {
			// Monday to Thursday or Thursday to Monday: 3 or 4 days.
			day := func(t time.Time) time.Time { return time.Date(t.Year(), t.Month(), t.Day(), 0, 0, 0, 0, time.UTC) }
			days := int(day(at).Sub(day(times[i-1])) / (24 * time.Hour))
			require.Contains(t, []int{3, 4}, days, "%s after %s", at, times[i-1])
		}
	}
	got, err := b.jobs.GetJob(ctx, &intakev1.GetJobRequest{Name: "jobs/weekly"})
	require.NoError(t, err)
	require.Equal(t, formatTimes(times), formatTimes(nextFive(got, start, berlin)))

	// Monthly on the last day at 23:30 in New York.
	newYork, err := time.LoadLocation("America/New_York")
	require.NoError(t, err)
	last := b.accountsJob("last-day")
	last.Schedule = &intakev1.Schedule{TimeZone: "America/New_York", Cadence: &intakev1.Schedule_Monthly{Monthly: &intakev1.Monthly{
		LastDay: true, Hour: 23, Minute: 30,
	}}}
	start = time.Now()
	created, err = b.create(t, "last-day", last)
	require.NoError(t, err)
	times = nextFive(created, start, newYork)
	for i, at := range times {
		require.Equal(t, 1, at.AddDate(0, 0, 1).Day(), "%s is the last day of its month", at)
		require.Equal(t, [2]int{23, 30}, [2]int{at.Hour(), at.Minute()}, "%s", at)
		if i > 0 {
			require.Equal(t, times[i-1].AddDate(0, 0, 1).Month(), at.Month(), "%s follows %s by a month", at, times[i-1])
		}
	}

	// ListJobs shows them too; a disabled job shows none.
	list, err := b.jobs.ListJobs(ctx, &intakev1.ListJobsRequest{})
	require.NoError(t, err)
	require.Len(t, list.GetJobs(), 2)
	for _, j := range list.GetJobs() {
		require.Len(t, j.GetNextRunTimes(), 5, j.GetName())
	}
	off, err := b.jobs.UpdateJob(ctx, &intakev1.UpdateJobRequest{
		Job:        &intakev1.Job{Name: "jobs/weekly", Enabled: false},
		UpdateMask: &fieldmaskpb.FieldMask{Paths: []string{"enabled"}},
	})
	require.NoError(t, err)
	require.Empty(t, off.GetNextRunTimes())
	require.Nil(t, off.GetNextRunTime())
}

func formatTimes(ts []time.Time) []string {
	out := make([]string, len(ts))
	for i, t := range ts {
		out[i] = t.UTC().Format(time.RFC3339)
	}
	return out
}

// Every cadence's bad fields are refused with InvalidArgument naming the
// field under job.schedule.
func TestCreateJobScheduleValidation(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := testCtx(t)
	for name, tc := range map[string]struct {
		sched       *intakev1.Schedule
		field, want string
	}{
		"hourly minute 60": {&intakev1.Schedule{Cadence: &intakev1.Schedule_Hourly{Hourly: &intakev1.Hourly{Minute: 60}}},
			"job.schedule.hourly.minute", "60 is not a minute (0-59)"},
		"workdays 25:00": {&intakev1.Schedule{Cadence: &intakev1.Schedule_Workdays{Workdays: &intakev1.Workdays{Hour: 25}}},
			"job.schedule.workdays.hour", "25 is not an hour (0-23)"},
		"weekly without days": {&intakev1.Schedule{Cadence: &intakev1.Schedule_Weekly{Weekly: &intakev1.Weekly{Hour: 9}}},
			"job.schedule.weekly.days", "at least one day is required"},
		"weekly unspecified day": {&intakev1.Schedule{Cadence: &intakev1.Schedule_Weekly{Weekly: &intakev1.Weekly{
			Days: []intakev1.Weekday{intakev1.Weekday_WEEKDAY_FRIDAY, intakev1.Weekday_WEEKDAY_UNSPECIFIED}}}},
			"job.schedule.weekly.days[1]", "WEEKDAY_UNSPECIFIED is not a day of the week"},
		"monthly day 32": {&intakev1.Schedule{Cadence: &intakev1.Schedule_Monthly{Monthly: &intakev1.Monthly{Day: 32}}},
			"job.schedule.monthly.day", "32 is not a day of the month (1-31; or set last_day)"},
		"malformed cron": {&intakev1.Schedule{Cadence: &intakev1.Schedule_Cron{Cron: &intakev1.Cron{Expression: "61 * * * *"}}},
			"job.schedule.cron.expression", "minute 61 is out of range 0-59"},
		"cron that never fires": {&intakev1.Schedule{Cadence: &intakev1.Schedule_Cron{Cron: &intakev1.Cron{Expression: "0 0 30 2 *"}}},
			"job.schedule.cron.expression", `never fires: no month in "2" has day 30`},
		"cron with a bad zone": {&intakev1.Schedule{TimeZone: "Mars/Olympus", Cadence: &intakev1.Schedule_Cron{Cron: &intakev1.Cron{Expression: "0 6 * * 1-5"}}},
			"job.schedule.time_zone", `unknown time zone "Mars/Olympus"`},
	} {
		job := b.accountsJob("validation")
		job.Schedule = tc.sched
		_, err := b.jobs.CreateJob(ctx, &intakev1.CreateJobRequest{Job: job})
		st := requireCode(t, err, codes.InvalidArgument, tc.field+": ", tc.want)
		fv := fieldViolations(t, st)
		require.Contains(t, fv, tc.field, name)
		require.Contains(t, fv[tc.field], tc.want, name)
	}
}
