package schedule_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/intakehq/intake/pkg/schedule"
	intakev1 "github.com/intakehq/intake/proto/gen/intake/v1"
)

func hourly(zone string, minute int32) *intakev1.Schedule {
	return &intakev1.Schedule{TimeZone: zone, Cadence: &intakev1.Schedule_Hourly{Hourly: &intakev1.Hourly{Minute: minute}}}
}

func workdays(zone string, hour, minute int32) *intakev1.Schedule {
	return &intakev1.Schedule{TimeZone: zone, Cadence: &intakev1.Schedule_Workdays{Workdays: &intakev1.Workdays{Hour: hour, Minute: minute}}}
}

func weekly(zone string, hour, minute int32, days ...intakev1.Weekday) *intakev1.Schedule {
	return &intakev1.Schedule{TimeZone: zone, Cadence: &intakev1.Schedule_Weekly{Weekly: &intakev1.Weekly{Days: days, Hour: hour, Minute: minute}}}
}

func monthly(zone string, day, hour, minute int32) *intakev1.Schedule {
	return &intakev1.Schedule{TimeZone: zone, Cadence: &intakev1.Schedule_Monthly{Monthly: &intakev1.Monthly{Day: day, Hour: hour, Minute: minute}}}
}

func lastDay(zone string, hour, minute int32) *intakev1.Schedule {
	return &intakev1.Schedule{TimeZone: zone, Cadence: &intakev1.Schedule_Monthly{Monthly: &intakev1.Monthly{LastDay: true, Hour: hour, Minute: minute}}}
}

func cron(zone, expr string) *intakev1.Schedule {
	return &intakev1.Schedule{TimeZone: zone, Cadence: &intakev1.Schedule_Cron{Cron: &intakev1.Cron{Expression: expr}}}
}

const (
	mon = intakev1.Weekday_WEEKDAY_MONDAY
	wed = intakev1.Weekday_WEEKDAY_WEDNESDAY
	fri = intakev1.Weekday_WEEKDAY_FRIDAY
	sun = intakev1.Weekday_WEEKDAY_SUNDAY
)

// cadenceCases are fire times of every cadence across daylight-saving
// changes (2026 tzdata), month ends and leap years, written with the offset
// in force so a wrong zone shows too.
//
// Transitions used: New York 2026-03-08 02:00 EST → 03:00 EDT and 2026-11-01
// 02:00 EDT → 01:00 EST; Berlin 2026-03-29 02:00 → 03:00 and 2026-10-25
// 03:00 → 02:00; Santiago 2026-09-06 00:00 → 01:00 and 2026-04-05 00:00 →
// 04-04 23:00; Havana 2026-03-08 00:00 → 01:00 and 2026-11-01 01:00 →
// 00:00; Lord Howe (30 minutes) 2026-10-04 02:00 → 02:30 and 2026-04-05
// 02:00 → 01:30. All of those days are Sundays; Cairo changes on a Friday,
// 2026-04-24 00:00 → 01:00.
var cadenceCases = []struct {
	name  string
	sched *intakev1.Schedule
	after string
	want  []string
}{
	// Hourly: every real hour at the instants showing minute M.
	{"hourly across new york spring-forward: one real hour apart", hourly("America/New_York", 30), "2026-03-08T00:45:00-05:00",
		[]string{"2026-03-08T01:30:00-05:00", "2026-03-08T03:30:00-04:00", "2026-03-08T04:30:00-04:00"}},
	{"hourly across new york fall-back: the repeated hour fires too", hourly("America/New_York", 30), "2026-11-01T00:45:00-04:00",
		[]string{"2026-11-01T01:30:00-04:00", "2026-11-01T01:30:00-05:00", "2026-11-01T02:30:00-05:00"}},
	{"hourly across berlin fall-back", hourly("Europe/Berlin", 0), "2026-10-25T01:30:00+02:00",
		[]string{"2026-10-25T02:00:00+02:00", "2026-10-25T02:00:00+01:00", "2026-10-25T03:00:00+01:00"}},
	{"hourly across santiago's midnight fall-back", hourly("America/Santiago", 30), "2026-04-04T22:00:00-03:00",
		[]string{"2026-04-04T22:30:00-03:00", "2026-04-04T23:30:00-03:00", "2026-04-04T23:30:00-04:00", "2026-04-05T00:30:00-04:00"}},
	{"hourly in a half-hour zone", hourly("Asia/Kolkata", 0), "2026-01-01T00:00:00Z",
		[]string{"2026-01-01T06:00:00+05:30", "2026-01-01T07:00:00+05:30"}},
	// Lord Howe moves by 30 minutes: one interval is 90 or 30 minutes.
	{"hourly lord howe spring-forward: :15 in the skipped half hour", hourly("Australia/Lord_Howe", 15), "2026-10-04T00:30:00+10:30",
		[]string{"2026-10-04T01:15:00+10:30", "2026-10-04T03:15:00+11:00", "2026-10-04T04:15:00+11:00"}},
	{"hourly lord howe spring-forward: :45 after it", hourly("Australia/Lord_Howe", 45), "2026-10-04T01:00:00+10:30",
		[]string{"2026-10-04T01:45:00+10:30", "2026-10-04T02:45:00+11:00", "2026-10-04T03:45:00+11:00"}},
	{"hourly lord howe fall-back repeats :45", hourly("Australia/Lord_Howe", 45), "2026-04-05T00:30:00+11:00",
		[]string{"2026-04-05T00:45:00+11:00", "2026-04-05T01:45:00+11:00", "2026-04-05T01:45:00+10:30", "2026-04-05T02:45:00+10:30"}},

	// Workdays: Monday to Friday.
	{"workdays skip the weekend", workdays("America/New_York", 9, 0), "2026-03-06T10:00:00-05:00",
		[]string{"2026-03-09T09:00:00-04:00", "2026-03-10T09:00:00-04:00", "2026-03-11T09:00:00-04:00"}},
	{"workdays from a sunday", workdays("UTC", 9, 0), "2026-03-01T09:00:00Z",
		[]string{"2026-03-02T09:00:00Z"}},
	{"workdays on cairo's friday spring-forward at midnight", workdays("Africa/Cairo", 0, 30), "2026-04-23T12:00:00+02:00",
		[]string{"2026-04-24T01:00:00+03:00", "2026-04-27T00:30:00+03:00"}},

	// Weekly: chosen days, the daily DST rule.
	{"weekly across new york spring-forward", weekly("America/New_York", 2, 30, mon, sun), "2026-03-06T12:00:00-05:00",
		[]string{"2026-03-08T03:00:00-04:00", "2026-03-09T02:30:00-04:00", "2026-03-15T02:30:00-04:00"}},
	{"weekly across new york fall-back fires once", weekly("America/New_York", 1, 30, sun), "2026-10-31T12:00:00-04:00",
		[]string{"2026-11-01T01:30:00-04:00", "2026-11-08T01:30:00-05:00"}},
	{"weekly across berlin fall-back", weekly("Europe/Berlin", 2, 30, sun, wed), "2026-10-24T12:00:00+02:00",
		[]string{"2026-10-25T02:30:00+02:00", "2026-10-28T02:30:00+01:00", "2026-11-01T02:30:00+01:00"}},
	{"weekly on havana's midnight spring-forward", weekly("America/Havana", 0, 0, sun), "2026-03-01T12:00:00-05:00",
		[]string{"2026-03-08T01:00:00-04:00", "2026-03-15T00:00:00-04:00"}},
	{"weekly days in any order, duplicates ignored", weekly("UTC", 8, 0, fri, mon, fri), "2026-03-02T08:00:00Z",
		[]string{"2026-03-06T08:00:00Z", "2026-03-09T08:00:00Z"}},

	// Monthly: a day the month lacks fires on its last day.
	{"monthly on the 31st", monthly("UTC", 31, 9, 0), "2026-01-15T00:00:00Z",
		[]string{"2026-01-31T09:00:00Z", "2026-02-28T09:00:00Z", "2026-03-31T09:00:00Z", "2026-04-30T09:00:00Z", "2026-05-31T09:00:00Z"}},
	{"monthly on the 30th in a leap year", monthly("UTC", 30, 9, 0), "2028-01-31T00:00:00Z",
		[]string{"2028-02-29T09:00:00Z", "2028-03-30T09:00:00Z"}},
	{"monthly on the 29th: leap day, then february's last", monthly("UTC", 29, 0, 0), "2028-01-31T00:00:00Z",
		[]string{"2028-02-29T00:00:00Z", "2028-03-29T00:00:00Z"}},
	{"monthly on the 29th in a common year", monthly("UTC", 29, 0, 0), "2027-01-31T00:00:00Z",
		[]string{"2027-02-28T00:00:00Z", "2027-03-29T00:00:00Z"}},
	{"monthly on the last day across berlin spring-forward", lastDay("Europe/Berlin", 23, 30), "2026-01-31T23:30:00+01:00",
		[]string{"2026-02-28T23:30:00+01:00", "2026-03-31T23:30:00+02:00", "2026-04-30T23:30:00+02:00"}},
	{"monthly on the last day of a leap february", lastDay("UTC", 23, 59), "2028-01-31T23:59:00Z",
		[]string{"2028-02-29T23:59:00Z", "2028-03-31T23:59:00Z"}},
	{"monthly across new york spring-forward", monthly("America/New_York", 8, 2, 30), "2026-02-10T00:00:00-05:00",
		[]string{"2026-03-08T03:00:00-04:00", "2026-04-08T02:30:00-04:00"}},
	{"monthly on havana's midnight spring-forward", monthly("America/Havana", 8, 0, 0), "2026-02-10T00:00:00-05:00",
		[]string{"2026-03-08T01:00:00-04:00", "2026-04-08T00:00:00-04:00"}},
	{"monthly across the year end", monthly("Asia/Tokyo", 1, 0, 0), "2026-12-01T00:00:00+09:00",
		[]string{"2027-01-01T00:00:00+09:00", "2027-02-01T00:00:00+09:00"}},

	// Cron with fixed hours: the daily rule.
	{"cron fixed time skipped by spring-forward fires at the transition", cron("America/New_York", "30 2 * * *"), "2026-03-07T12:00:00-05:00",
		[]string{"2026-03-08T03:00:00-04:00", "2026-03-09T02:30:00-04:00"}},
	{"cron fixed time repeated by fall-back fires once", cron("America/New_York", "30 1 * * *"), "2026-10-31T12:00:00-04:00",
		[]string{"2026-11-01T01:30:00-04:00", "2026-11-02T01:30:00-05:00"}},
	{"cron several skipped times fire once at the transition", cron("America/New_York", "0,30 2 * * *"), "2026-03-07T12:00:00-05:00",
		[]string{"2026-03-08T03:00:00-04:00", "2026-03-09T02:00:00-04:00", "2026-03-09T02:30:00-04:00"}},
	{"cron fixed hour, every minute of a repeated hour once", cron("America/New_York", "*/20 1 * * *"), "2026-11-01T00:00:00-04:00",
		[]string{"2026-11-01T01:00:00-04:00", "2026-11-01T01:20:00-04:00", "2026-11-01T01:40:00-04:00", "2026-11-02T01:00:00-05:00"}},
	{"cron berlin spring-forward", cron("Europe/Berlin", "30 2 * * *"), "2026-03-28T12:00:00+01:00",
		[]string{"2026-03-29T03:00:00+02:00", "2026-03-30T02:30:00+02:00"}},
	{"cron berlin fall-back first occurrence", cron("Europe/Berlin", "30 2 * * *"), "2026-10-24T12:00:00+02:00",
		[]string{"2026-10-25T02:30:00+02:00", "2026-10-26T02:30:00+01:00"}},
	{"cron santiago midnight spring-forward", cron("America/Santiago", "15 0 * * *"), "2026-09-05T12:00:00-04:00",
		[]string{"2026-09-06T01:00:00-03:00", "2026-09-07T00:15:00-03:00"}},
	{"cron havana midnight fall-back", cron("America/Havana", "30 0 * * *"), "2026-10-31T12:00:00-04:00",
		[]string{"2026-11-01T00:30:00-04:00", "2026-11-02T00:30:00-05:00"}},
	{"cron lord howe half-hour spring-forward", cron("Australia/Lord_Howe", "15 2 * * *"), "2026-10-03T12:00:00+10:30",
		[]string{"2026-10-04T02:30:00+11:00", "2026-10-05T02:15:00+11:00"}},
	// Cron with wildcard or step hours: every matching real instant, once.
	{"cron wildcard hour across spring-forward", cron("America/New_York", "30 * * * *"), "2026-03-08T00:45:00-05:00",
		[]string{"2026-03-08T01:30:00-05:00", "2026-03-08T03:30:00-04:00", "2026-03-08T04:30:00-04:00"}},
	{"cron wildcard hour across fall-back", cron("America/New_York", "30 * * * *"), "2026-11-01T00:45:00-04:00",
		[]string{"2026-11-01T01:30:00-04:00", "2026-11-01T01:30:00-05:00", "2026-11-01T02:30:00-05:00"}},
	{"cron every minute across fall-back", cron("America/New_York", "* * * * *"), "2026-11-01T01:58:00-04:00",
		[]string{"2026-11-01T01:59:00-04:00", "2026-11-01T01:00:00-05:00", "2026-11-01T01:01:00-05:00"}},
	{"cron step hours across fall-back", cron("America/New_York", "0 */2 * * *"), "2026-10-31T23:30:00-04:00",
		[]string{"2026-11-01T00:00:00-04:00", "2026-11-01T02:00:00-05:00", "2026-11-01T04:00:00-05:00"}},
	{"cron step minutes across lord howe spring-forward", cron("Australia/Lord_Howe", "*/20 * * * *"), "2026-10-04T01:30:00+10:30",
		[]string{"2026-10-04T01:40:00+10:30", "2026-10-04T02:40:00+11:00", "2026-10-04T03:00:00+11:00"}},
	{"@hourly across berlin fall-back", cron("Europe/Berlin", "@hourly"), "2026-10-25T01:30:00+02:00",
		[]string{"2026-10-25T02:00:00+02:00", "2026-10-25T02:00:00+01:00", "2026-10-25T03:00:00+01:00"}},
	// Cron calendar.
	{"cron day of month or day of week when both are restricted", cron("UTC", "0 9 10 * fri"), "2026-02-01T00:00:00Z",
		[]string{"2026-02-06T09:00:00Z", "2026-02-10T09:00:00Z", "2026-02-13T09:00:00Z", "2026-02-20T09:00:00Z"}},
	{"cron day of month and day of week when one starts with *", cron("UTC", "0 9 */10 * 5"), "2026-02-01T00:00:00Z",
		[]string{"2026-05-01T09:00:00Z"}},
	{"cron leap day", cron("UTC", "0 0 29 2 *"), "2026-01-01T00:00:00Z",
		[]string{"2028-02-29T00:00:00Z", "2032-02-29T00:00:00Z"}},
	{"cron leap day across 2100", cron("UTC", "0 0 29 2 *"), "2096-03-01T00:00:00Z",
		[]string{"2104-02-29T00:00:00Z"}},
	{"cron 31st only in long months", cron("UTC", "0 12 31 * *"), "2026-03-31T12:00:00Z",
		[]string{"2026-05-31T12:00:00Z", "2026-07-31T12:00:00Z", "2026-08-31T12:00:00Z"}},
	{"cron names, ranges and sunday as 7", cron("UTC", "0 8 * JAN-mar Mon-FRI,7"), "2026-03-27T08:00:00Z",
		[]string{"2026-03-29T08:00:00Z", "2026-03-30T08:00:00Z", "2026-03-31T08:00:00Z", "2027-01-01T08:00:00Z"}},
	{"cron range with a step", cron("UTC", "5-50/15 6 * * *"), "2026-01-01T00:00:00Z",
		[]string{"2026-01-01T06:05:00Z", "2026-01-01T06:20:00Z", "2026-01-01T06:35:00Z", "2026-01-01T06:50:00Z", "2026-01-02T06:05:00Z"}},
	{"cron start with a step", cron("UTC", "50/5 23 31 12 *"), "2026-01-01T00:00:00Z",
		[]string{"2026-12-31T23:50:00Z", "2026-12-31T23:55:00Z", "2027-12-31T23:50:00Z"}},
	{"@monthly", cron("Europe/Berlin", "@monthly"), "2026-01-15T00:00:00+01:00",
		[]string{"2026-02-01T00:00:00+01:00", "2026-03-01T00:00:00+01:00", "2026-04-01T00:00:00+02:00"}},
	{"@weekly", cron("UTC", "@weekly"), "2026-03-01T00:00:00Z",
		[]string{"2026-03-08T00:00:00Z", "2026-03-15T00:00:00Z"}},
}

func TestNextRunsCadences(t *testing.T) {
	t.Parallel()
	for _, tc := range cadenceCases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			require.Nil(t, schedule.Validate(tc.sched))
			got, err := schedule.NextRuns(tc.sched, mustTime(t, tc.after), len(tc.want))
			require.NoError(t, err)
			require.Equal(t, tc.want, formatAll(got))

			// Prev agrees: the fire before each is the one listed before it.
			c, err := schedule.Parse(tc.sched)
			require.NoError(t, err)
			for i, g := range got {
				require.Equal(t, g.Format(time.RFC3339), c.Prev(g).Format(time.RFC3339), "Prev at a fire time is that time")
				if i > 0 {
					require.Equal(t, got[i-1].Format(time.RFC3339), c.Prev(g.Add(-time.Second)).Format(time.RFC3339))
				}
			}
		})
	}
}

// Fire times strictly increase, Next and Prev agree around any instant, and
// a fixed-time cadence fires at most once per wall time, over a year of
// zones with every kind of transition.
func TestCadencesConsistent(t *testing.T) {
	t.Parallel()
	zones := []string{"America/New_York", "Europe/Berlin", "America/Santiago", "America/Havana", "Australia/Lord_Howe", "Asia/Kolkata"}
	scheds := map[string]func(zone string) *intakev1.Schedule{
		"hourly :45":        func(z string) *intakev1.Schedule { return hourly(z, 45) },
		"workdays 00:30":    func(z string) *intakev1.Schedule { return workdays(z, 0, 30) },
		"weekly sun 02:30":  func(z string) *intakev1.Schedule { return weekly(z, 2, 30, sun) },
		"monthly 31 23:30":  func(z string) *intakev1.Schedule { return monthly(z, 31, 23, 30) },
		"last day 00:00":    func(z string) *intakev1.Schedule { return lastDay(z, 0, 0) },
		"cron fixed hours":  func(z string) *intakev1.Schedule { return cron(z, "*/30 0-2,23 * * *") },
		"cron step hours":   func(z string) *intakev1.Schedule { return cron(z, "15,45 */3 * * *") },
		"cron weekday list": func(z string) *intakev1.Schedule { return cron(z, "0 1 * * sat,sun") },
	}
	for name, mk := range scheds {
		for _, zone := range zones {
			t.Run(name+" "+zone, func(t *testing.T) {
				t.Parallel()
				c, err := schedule.Parse(mk(zone))
				require.NoError(t, err)
				loc := mustZone(t, zone)
				from := time.Date(2026, 1, 1, 0, 0, 0, 0, loc)
				seen := map[string]bool{}
				prev := from
				i := 0
				for t0 := c.Next(from); t0.Year() < 2027; t0 = c.Next(t0) {
					i++
					require.True(t, t0.After(prev), "%s after %s", t0, prev)
					wall := t0.Format(time.DateTime)
					require.True(t, name == "hourly :45" || name == "cron step hours" || !seen[wall], "fixed wall time %s fired twice", wall)
					seen[wall] = true
					// Just before a fire, Prev is the fire before it and
					// Next is this one.
					mid := t0.Add(-time.Second)
					require.Equal(t, t0, c.Next(mid))
					// Prev (slower) around every offset change, and on a sample.
					_, o1 := prev.Zone()
					_, o2 := t0.Zone()
					if prev != from && (o1 != o2 || i%20 == 0) {
						require.Equal(t, prev.Unix(), c.Prev(mid).Unix(), "Prev(%s)", mid)
					}
					prev = t0
				}
				require.NotEmpty(t, seen)
			})
		}
	}
}

func TestValidateCadences(t *testing.T) {
	t.Parallel()
	for _, ok := range []*intakev1.Schedule{
		hourly("", 0), hourly("Asia/Kolkata", 59), workdays("", 23, 59), weekly("", 0, 0, mon), weekly("", 0, 0, sun, fri),
		monthly("", 1, 0, 0), monthly("", 31, 23, 59), lastDay("", 0, 0),
		{Cadence: &intakev1.Schedule_Monthly{Monthly: &intakev1.Monthly{Day: 40, LastDay: true}}}, // day ignored
		cron("", "* * * * *"), cron("", "0 0 29 2 *"), cron("", "0 0 31 1-3 *"), cron("", "0 0 30 2 mon"), cron("", " @Daily "),
		cron("", "59 23 31 12 7"), cron("", "0 0 1,15 * 1-5"),
	} {
		require.Nil(t, schedule.Validate(ok), "%v", ok)
	}
	for _, tc := range []struct {
		name  string
		sched *intakev1.Schedule
		want  string
	}{
		{"hourly minute 60", hourly("", 60), "schedule.hourly.minute: 60 is not a minute (0-59)"},
		{"workdays 25:00", workdays("", 25, 0), "schedule.workdays.hour: 25 is not an hour (0-23)"},
		{"weekly without days", weekly("", 9, 0), "schedule.weekly.days: at least one day is required"},
		{"weekly unspecified day", weekly("", 9, 0, mon, intakev1.Weekday_WEEKDAY_UNSPECIFIED),
			"schedule.weekly.days[1]: WEEKDAY_UNSPECIFIED is not a day of the week (MONDAY-SUNDAY)"},
		{"weekly unknown day", weekly("", 9, -1, 9),
			"schedule.weekly.days[0]: 9 is not a day of the week (MONDAY-SUNDAY); schedule.weekly.minute: -1 is not a minute (0-59)"},
		{"monthly day 32", monthly("", 32, 9, 0), "schedule.monthly.day: 32 is not a day of the month (1-31; or set last_day)"},
		{"monthly day 0", monthly("", 0, 9, 0), "schedule.monthly.day: 0 is not a day of the month (1-31; or set last_day)"},
		{"monthly last day at 24:60", lastDay("", 24, 60), "schedule.monthly.hour: 24 is not an hour (0-23); schedule.monthly.minute: 60 is not a minute (0-59)"},
		{"cron minute 61", cron("", "61 * * * *"), "schedule.cron.expression: minute 61 is out of range 0-59"},
		{"cron hour 24", cron("", "0 24 * * *"), "schedule.cron.expression: hour 24 is out of range 0-23"},
		{"cron day 0", cron("", "0 0 0 * *"), "schedule.cron.expression: day of month 0 is out of range 1-31"},
		{"cron month 13", cron("", "0 0 1 13 *"), "schedule.cron.expression: month 13 is out of range 1-12"},
		{"cron weekday 8", cron("", "0 0 * * 1,8"), "schedule.cron.expression: day of week 8 is out of range 0-7"},
		{"cron unknown month name", cron("", "0 0 1 foo *"), `schedule.cron.expression: month "foo" is not a number or a name (jan-dec)`},
		{"cron not a number", cron("", "x * * * *"), `schedule.cron.expression: minute "x" is not a number`},
		{"cron four fields", cron("", "* * * *"), "schedule.cron.expression: has 4 fields, want 5 (minute hour day-of-month month day-of-week)"},
		{"cron six fields (seconds)", cron("", "0 * * * * *"), "schedule.cron.expression: has 6 fields, want 5 (minute hour day-of-month month day-of-week)"},
		{"cron empty", cron("", " "), `schedule.cron.expression: required (five fields: minute hour day-of-month month day-of-week, e.g. "30 6 * * 1-5")`},
		{"cron step 0", cron("", "*/0 * * * *"), `schedule.cron.expression: minute step "0" in "*/0" is not a whole number of at least 1`},
		{"cron reversed range", cron("", "0 5-3 * * *"), `schedule.cron.expression: hour range "5-3" is reversed (5 is after 3)`},
		{"cron empty list item", cron("", "1,,2 * * * *"), `schedule.cron.expression: minute "1,,2" has an empty list item`},
		{"cron never fires", cron("", "0 0 30 2 *"), `schedule.cron.expression: never fires: no month in "2" has day 30`},
		{"cron never fires in short months", cron("", "0 0 31 apr,jun *"), `schedule.cron.expression: never fires: no month in "apr,jun" has day 31`},
		{"cron @reboot", cron("", "@reboot"), `schedule.cron.expression: "@reboot" is not a cron shorthand (use @hourly, @daily, @weekly, @monthly or @yearly)`},
		{"cron zone inside", cron("", "TZ=UTC 0 0 * * *"), `schedule.cron.expression: "TZ=UTC": set the zone in the schedule's time_zone, not in the expression`},
		{"cron and a bad zone", cron("Mars/Base", "0 0 * * *"), `schedule.time_zone: unknown time zone "Mars/Base" (use an IANA name such as "Europe/Berlin")`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			es := schedule.Validate(tc.sched)
			require.EqualError(t, es, tc.want)
			_, err := schedule.NextRuns(tc.sched, time.Now(), 5)
			require.EqualError(t, err, tc.want)
		})
	}
	// A cadence whose message is unset is its zero value.
	require.Equal(t, schedule.FieldErrors{{Field: "weekly.days", Description: "at least one day is required"}},
		schedule.Validate(&intakev1.Schedule{Cadence: &intakev1.Schedule_Weekly{}}))
	require.Equal(t, schedule.FieldErrors{{Field: "cron.expression", Description: `required (five fields: minute hour day-of-month month day-of-week, e.g. "30 6 * * 1-5")`}},
		schedule.Validate(&intakev1.Schedule{Cadence: &intakev1.Schedule_Cron{}}))
	require.Nil(t, schedule.Validate(&intakev1.Schedule{Cadence: &intakev1.Schedule_Hourly{}}), "hourly at :00")
}

func TestPrev(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		sched    *intakev1.Schedule
		at, want string
	}{
		{everyMinutes("", 15), "2026-01-01T12:14:59Z", "2026-01-01T12:00:00Z"},
		{everyMinutes("", 15), "2026-01-01T12:15:00Z", "2026-01-01T12:15:00Z"},
		{daily("America/New_York", 2, 30), "2026-03-08T12:00:00-04:00", "2026-03-08T03:00:00-04:00"},
		{lastDay("UTC", 0, 0), "2026-03-30T00:00:00Z", "2026-02-28T00:00:00Z"},
		{cron("UTC", "0 0 29 2 *"), "2031-01-01T00:00:00Z", "2028-02-29T00:00:00Z"},
		{cron("UTC", "0 0 29 2 *"), "2103-01-01T00:00:00Z", "2096-02-29T00:00:00Z"},
		{hourly("America/New_York", 30), "2026-11-01T01:45:00-05:00", "2026-11-01T01:30:00-05:00"},
	} {
		c, err := schedule.Parse(tc.sched)
		require.NoError(t, err)
		require.Equal(t, tc.want, c.Prev(mustTime(t, tc.at)).Format(time.RFC3339), "%v at %s", tc.sched, tc.at)
	}
}
