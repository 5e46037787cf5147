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
)

// TestGocronDaylightSaving records what gocron v2.21.2 itself computes for
// the daylight-saving cases of dstCases, with its best policy
// (DaylightSavingsTimeRunAfterTransition) and a fake clock at each case's
// "after". It disagrees with the rule (ISC cron: a skipped time fires at the
// transition, a repeated one once at its first occurrence) in the cases
// listed here — 03:30 instead of 03:00, the second occurrence east of UTC,
// the previous evening or a UTC wall time in zones that change at midnight,
// a 23:30 run twice — which is why the Service computes fire times itself
// (NextDaily) and arms gocron one-time jobs at them.
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
					got, err := j.NextRuns(len(tc.want))
					require.NoError(t, err)
					if !slices.Equal(formatAll(got), tc.want) {
						t.Logf("gocron %s: %v, want %v", kind, formatAll(got), tc.want)
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
