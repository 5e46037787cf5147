package scheduler_test

import (
	"fmt"
	"slices"
	"sort"
	"sync"
	"testing"

	"github.com/go-co-op/gocron/v2"
	"github.com/jonboulle/clockwork"
	"github.com/stretchr/testify/require"

	"github.com/intakehq/intake/pkg/schedule"
)

// dstCases are the daily schedules across daylight-saving transitions that
// pkg/schedule is tested on (its dstCases, there with the expected times):
// the next n fire times after after.
var dstCases = []struct {
	name         string
	zone         string
	hour, minute int
	after        string
	n            int
}{
	{"new york spring-forward skipped time fires at the transition", "America/New_York", 2, 30, "2026-03-07T12:00:00-05:00", 2},
	{"new york spring-forward at the gap's start", "America/New_York", 2, 0, "2026-03-07T12:00:00-05:00", 2},
	{"new york spring-forward at the gap's end", "America/New_York", 3, 0, "2026-03-07T12:00:00-05:00", 2},
	{"new york spring-forward just before the gap", "America/New_York", 1, 59, "2026-03-07T12:00:00-05:00", 2},
	{"new york fall-back repeated time fires once, first", "America/New_York", 1, 30, "2026-10-31T12:00:00-04:00", 2},
	{"new york fall-back after the first occurrence", "America/New_York", 1, 30, "2026-11-01T01:45:00-04:00", 1},
	{"new york fall-back at the repeated hour's start", "America/New_York", 1, 0, "2026-10-31T12:00:00-04:00", 2},
	{"new york fall-back after the repeated hour", "America/New_York", 2, 0, "2026-10-31T12:00:00-04:00", 2},
	{"berlin spring-forward", "Europe/Berlin", 2, 30, "2026-03-28T12:00:00+01:00", 2},
	{"berlin fall-back", "Europe/Berlin", 2, 30, "2026-10-24T12:00:00+02:00", 2},
	{"santiago spring-forward at midnight", "America/Santiago", 0, 0, "2026-09-05T12:00:00-04:00", 2},
	{"santiago spring-forward inside the midnight gap", "America/Santiago", 0, 30, "2026-09-05T12:00:00-04:00", 2},
	{"santiago day before the midnight gap", "America/Santiago", 23, 30, "2026-09-05T12:00:00-04:00", 2},
	{"santiago fall-back repeats the day's last hour", "America/Santiago", 23, 30, "2026-04-04T12:00:00-03:00", 2},
	{"santiago fall-back midnight", "America/Santiago", 0, 0, "2026-04-04T12:00:00-03:00", 2},
	{"beirut spring-forward at midnight", "Asia/Beirut", 0, 15, "2026-03-28T12:00:00+02:00", 2},
	{"beirut fall-back first occurrence", "Asia/Beirut", 23, 30, "2026-10-24T12:00:00+03:00", 2},
	{"havana spring-forward at midnight", "America/Havana", 0, 0, "2026-03-07T12:00:00-05:00", 2},
	{"havana fall-back repeats the first hour of the day", "America/Havana", 0, 30, "2026-10-31T12:00:00-04:00", 2},
	{"lord howe half-hour spring-forward", "Australia/Lord_Howe", 2, 15, "2026-10-03T12:00:00+10:30", 2},
	{"lord howe half-hour fall-back", "Australia/Lord_Howe", 1, 45, "2026-04-04T12:00:00+11:00", 2},
	{"leap day", "UTC", 0, 0, "2028-02-28T12:00:00Z", 2},
	{"no leap day in 2026", "UTC", 23, 59, "2026-02-28T00:00:00Z", 2},
	{"month and year end", "Europe/Berlin", 23, 30, "2026-12-30T23:30:00+01:00", 3},
	{"leap day in a zone", "America/New_York", 6, 0, "2028-02-28T06:00:00-05:00", 2},
	{"after exactly a fire time", "Asia/Tokyo", 9, 0, "2026-05-01T09:00:00+09:00", 1},
	{"after a fire time by a fraction", "Asia/Tokyo", 9, 0, "2026-05-01T08:59:59+09:00", 1},
	{"fixed offset zone", "Etc/GMT+5", 10, 0, "2026-03-08T12:00:00-05:00", 1},
}

// TestGocronDaylightSaving records what gocron v2.21.2 itself computes for
// the daylight-saving cases of dstCases, compared with schedule.NextRuns (the
// ISC cron rule, tested in pkg/schedule), with its best policy
// (DaylightSavingsTimeRunAfterTransition) and a fake clock at each case's
// "after". It disagrees with the rule (ISC cron: a skipped time fires at the
// transition, a repeated one once at its first occurrence) in the cases
// listed here — 03:30 instead of 03:00, the second occurrence east of UTC,
// the previous evening or a UTC wall time in zones that change at midnight,
// a 23:30 run twice — which is why the Service computes fire times itself
// (pkg/schedule) and arms gocron one-time jobs at them.
//
// If this test fails after a gocron upgrade, gocron's behaviour changed:
// check whether the workaround is still needed.
func TestGocronDaylightSaving(t *testing.T) {
	t.Parallel()
	wantWrong := map[string][]string{
		"DailyJob": {
			"beirut fall-back first occurrence",
			"beirut spring-forward at midnight",
			"berlin fall-back",
			"berlin spring-forward",
			"havana spring-forward at midnight",
			"lord howe half-hour fall-back",
			"lord howe half-hour spring-forward",
			"new york spring-forward skipped time fires at the transition",
			"santiago day before the midnight gap",
			"santiago spring-forward at midnight",
			"santiago spring-forward inside the midnight gap",
		},
		"CronJob": {
			"beirut spring-forward at midnight",
			"berlin spring-forward",
			"havana spring-forward at midnight",
			"lord howe half-hour spring-forward",
			"new york fall-back after the first occurrence",
			"new york spring-forward skipped time fires at the transition",
			"santiago spring-forward at midnight",
			"santiago spring-forward inside the midnight gap",
		},
	}
	var mu sync.Mutex
	wrong := map[string][]string{}
	t.Run("cases", func(t *testing.T) {
		for _, tc := range dstCases {
			t.Run(tc.name, func(t *testing.T) {
				t.Parallel()
				loc := mustZone(t, tc.zone)
				want, err := schedule.NextRuns(daily(tc.zone, int32(tc.hour), int32(tc.minute)), mustTime(t, tc.after), tc.n)
				require.NoError(t, err)
				s, err := gocron.NewScheduler(gocron.WithClock(clockwork.NewFakeClockAt(mustTime(t, tc.after))), gocron.WithLocation(loc))
				require.NoError(t, err)
				defs := map[string]gocron.JobDefinition{
					"DailyJob": gocron.DailyJob(1, gocron.NewAtTimes(gocron.NewAtTime(uint(tc.hour), uint(tc.minute), 0))),
					"CronJob":  gocron.CronJob(fmt.Sprintf("TZ=%s %d %d * * *", tc.zone, tc.minute, tc.hour), false),
				}
				jobs := map[string]gocron.Job{}
				for kind, def := range defs {
					j, err := s.NewJob(def, gocron.NewTask(func() {}),
						gocron.WithDaylightSavingsTimePolicy(gocron.DaylightSavingsTimeRunAfterTransition))
					require.NoError(t, err)
					jobs[kind] = j
				}
				s.Start()
				t.Cleanup(func() { _ = s.Shutdown() })
				for kind, j := range jobs {
					got, err := j.NextRuns(tc.n)
					require.NoError(t, err)
					if !slices.Equal(formatAll(got), formatAll(want)) {
						t.Logf("gocron %s: %v, want %v", kind, formatAll(got), formatAll(want))
						mu.Lock()
						wrong[kind] = append(wrong[kind], tc.name)
						mu.Unlock()
					}
				}
			})
		}
	})
	for kind := range wrong {
		sort.Strings(wrong[kind])
	}
	require.Equal(t, wantWrong, wrong)
}
