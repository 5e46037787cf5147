package schedule_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/intakehq/intake/pkg/schedule"
	intakev1 "github.com/intakehq/intake/proto/gen/intake/v1"
)

func mustZone(t *testing.T, name string) *time.Location {
	t.Helper()
	loc, err := time.LoadLocation(name)
	require.NoError(t, err)
	return loc
}

func mustTime(t *testing.T, s string) time.Time {
	t.Helper()
	v, err := time.Parse(time.RFC3339, s)
	require.NoError(t, err)
	return v
}

func daily(zone string, hour, minute int32) *intakev1.Schedule {
	return &intakev1.Schedule{TimeZone: zone, Cadence: &intakev1.Schedule_Daily{Daily: &intakev1.Daily{Hour: hour, Minute: minute}}}
}

func everyMinutes(zone string, n int32) *intakev1.Schedule {
	return &intakev1.Schedule{TimeZone: zone, Cadence: &intakev1.Schedule_EveryMinutes{EveryMinutes: &intakev1.EveryMinutes{Minutes: n}}}
}

func formatAll(ts []time.Time) []string {
	out := make([]string, len(ts))
	for i, t := range ts {
		out[i] = t.Format(time.RFC3339)
	}
	return out
}

// dstCases are daily schedules across real daylight-saving transitions (2026
// tzdata), month ends and leap days. want is the next fire times after after,
// written with the offset in force, so a wrong zone shows too.
var dstCases = []struct {
	name         string
	zone         string
	hour, minute int
	after        string
	want         []string
}{
	// New York springs forward 2026-03-08 02:00 EST → 03:00 EDT.
	{"new york spring-forward skipped time fires at the transition", "America/New_York", 2, 30, "2026-03-07T12:00:00-05:00",
		[]string{"2026-03-08T03:00:00-04:00", "2026-03-09T02:30:00-04:00"}},
	{"new york spring-forward at the gap's start", "America/New_York", 2, 0, "2026-03-07T12:00:00-05:00",
		[]string{"2026-03-08T03:00:00-04:00", "2026-03-09T02:00:00-04:00"}},
	{"new york spring-forward at the gap's end", "America/New_York", 3, 0, "2026-03-07T12:00:00-05:00",
		[]string{"2026-03-08T03:00:00-04:00", "2026-03-09T03:00:00-04:00"}},
	{"new york spring-forward just before the gap", "America/New_York", 1, 59, "2026-03-07T12:00:00-05:00",
		[]string{"2026-03-08T01:59:00-05:00", "2026-03-09T01:59:00-04:00"}},
	// New York falls back 2026-11-01 02:00 EDT → 01:00 EST.
	{"new york fall-back repeated time fires once, first", "America/New_York", 1, 30, "2026-10-31T12:00:00-04:00",
		[]string{"2026-11-01T01:30:00-04:00", "2026-11-02T01:30:00-05:00"}},
	{"new york fall-back after the first occurrence", "America/New_York", 1, 30, "2026-11-01T01:45:00-04:00",
		[]string{"2026-11-02T01:30:00-05:00"}},
	{"new york fall-back at the repeated hour's start", "America/New_York", 1, 0, "2026-10-31T12:00:00-04:00",
		[]string{"2026-11-01T01:00:00-04:00", "2026-11-02T01:00:00-05:00"}},
	{"new york fall-back after the repeated hour", "America/New_York", 2, 0, "2026-10-31T12:00:00-04:00",
		[]string{"2026-11-01T02:00:00-05:00", "2026-11-02T02:00:00-05:00"}},
	// Berlin: 2026-03-29 02:00 CET → 03:00 CEST; 2026-10-25 03:00 CEST → 02:00 CET.
	// East of UTC, Go's time.Date picks the second occurrence of a repeated time.
	{"berlin spring-forward", "Europe/Berlin", 2, 30, "2026-03-28T12:00:00+01:00",
		[]string{"2026-03-29T03:00:00+02:00", "2026-03-30T02:30:00+02:00"}},
	{"berlin fall-back", "Europe/Berlin", 2, 30, "2026-10-24T12:00:00+02:00",
		[]string{"2026-10-25T02:30:00+02:00", "2026-10-26T02:30:00+01:00"}},
	// Santiago changes at midnight: 2026-09-06 00:00 → 01:00, 2026-04-05 00:00 → 04-04 23:00.
	{"santiago spring-forward at midnight", "America/Santiago", 0, 0, "2026-09-05T12:00:00-04:00",
		[]string{"2026-09-06T01:00:00-03:00", "2026-09-07T00:00:00-03:00"}},
	{"santiago spring-forward inside the midnight gap", "America/Santiago", 0, 30, "2026-09-05T12:00:00-04:00",
		[]string{"2026-09-06T01:00:00-03:00", "2026-09-07T00:30:00-03:00"}},
	{"santiago day before the midnight gap", "America/Santiago", 23, 30, "2026-09-05T12:00:00-04:00",
		[]string{"2026-09-05T23:30:00-04:00", "2026-09-06T23:30:00-03:00"}},
	{"santiago fall-back repeats the day's last hour", "America/Santiago", 23, 30, "2026-04-04T12:00:00-03:00",
		[]string{"2026-04-04T23:30:00-03:00", "2026-04-05T23:30:00-04:00"}},
	{"santiago fall-back midnight", "America/Santiago", 0, 0, "2026-04-04T12:00:00-03:00",
		[]string{"2026-04-05T00:00:00-04:00", "2026-04-06T00:00:00-04:00"}},
	// Beirut: 2026-03-29 00:00 → 01:00; 2026-10-25 00:00 EEST → 10-24 23:00 EET.
	{"beirut spring-forward at midnight", "Asia/Beirut", 0, 15, "2026-03-28T12:00:00+02:00",
		[]string{"2026-03-29T01:00:00+03:00", "2026-03-30T00:15:00+03:00"}},
	{"beirut fall-back first occurrence", "Asia/Beirut", 23, 30, "2026-10-24T12:00:00+03:00",
		[]string{"2026-10-24T23:30:00+03:00", "2026-10-25T23:30:00+02:00"}},
	// Havana: 2026-03-08 00:00 → 01:00; 2026-11-01 01:00 CDT → 00:00 CST.
	{"havana spring-forward at midnight", "America/Havana", 0, 0, "2026-03-07T12:00:00-05:00",
		[]string{"2026-03-08T01:00:00-04:00", "2026-03-09T00:00:00-04:00"}},
	{"havana fall-back repeats the first hour of the day", "America/Havana", 0, 30, "2026-10-31T12:00:00-04:00",
		[]string{"2026-11-01T00:30:00-04:00", "2026-11-02T00:30:00-05:00"}},
	// Lord Howe moves by 30 minutes: 2026-10-04 02:00 → 02:30, 2026-04-05 02:00 → 01:30.
	{"lord howe half-hour spring-forward", "Australia/Lord_Howe", 2, 15, "2026-10-03T12:00:00+10:30",
		[]string{"2026-10-04T02:30:00+11:00", "2026-10-05T02:15:00+11:00"}},
	{"lord howe half-hour fall-back", "Australia/Lord_Howe", 1, 45, "2026-04-04T12:00:00+11:00",
		[]string{"2026-04-05T01:45:00+11:00", "2026-04-06T01:45:00+10:30"}},
	// Calendar.
	{"leap day", "UTC", 0, 0, "2028-02-28T12:00:00Z",
		[]string{"2028-02-29T00:00:00Z", "2028-03-01T00:00:00Z"}},
	{"no leap day in 2026", "UTC", 23, 59, "2026-02-28T00:00:00Z",
		[]string{"2026-02-28T23:59:00Z", "2026-03-01T23:59:00Z"}},
	{"month and year end", "Europe/Berlin", 23, 30, "2026-12-30T23:30:00+01:00",
		[]string{"2026-12-31T23:30:00+01:00", "2027-01-01T23:30:00+01:00", "2027-01-02T23:30:00+01:00"}},
	{"leap day in a zone", "America/New_York", 6, 0, "2028-02-28T06:00:00-05:00",
		[]string{"2028-02-29T06:00:00-05:00", "2028-03-01T06:00:00-05:00"}},
	{"after exactly a fire time", "Asia/Tokyo", 9, 0, "2026-05-01T09:00:00+09:00",
		[]string{"2026-05-02T09:00:00+09:00"}},
	{"after a fire time by a fraction", "Asia/Tokyo", 9, 0, "2026-05-01T08:59:59+09:00",
		[]string{"2026-05-01T09:00:00+09:00"}},
	{"fixed offset zone", "Etc/GMT+5", 10, 0, "2026-03-08T12:00:00-05:00",
		[]string{"2026-03-09T10:00:00-05:00"}},
}

func TestNextDaily(t *testing.T) {
	t.Parallel()
	for _, tc := range dstCases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			loc := mustZone(t, tc.zone)
			after := mustTime(t, tc.after)
			var got []time.Time
			for range tc.want {
				after = schedule.NextDaily(after, tc.hour, tc.minute, loc)
				require.Equal(t, loc, after.Location())
				got = append(got, after)
			}
			require.Equal(t, tc.want, formatAll(got))
		})
	}
}

func TestNextRunsDaily(t *testing.T) {
	t.Parallel()
	for _, tc := range dstCases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got, err := schedule.NextRuns(daily(tc.zone, int32(tc.hour), int32(tc.minute)), mustTime(t, tc.after), len(tc.want))
			require.NoError(t, err)
			require.Equal(t, tc.want, formatAll(got))
		})
	}
}

// A daily schedule fires exactly once on every calendar day of its zone,
// DST days included, over three whole years of several zones.
func TestNextDailyOncePerDay(t *testing.T) {
	t.Parallel()
	for _, zone := range []string{"America/New_York", "Europe/Berlin", "America/Santiago", "Asia/Beirut", "America/Havana", "Australia/Lord_Howe"} {
		loc := mustZone(t, zone)
		for _, hm := range [][2]int{{0, 0}, {0, 30}, {1, 30}, {2, 0}, {2, 30}, {23, 30}} {
			after := time.Date(2026, 1, 1, 0, 0, 0, 0, loc).Add(-time.Second)
			day := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
			for day.Year() < 2029 {
				next := schedule.NextDaily(after, hm[0], hm[1], loc)
				require.True(t, next.After(after), "%s %02d:%02d: %s not after %s", zone, hm[0], hm[1], next, after)
				// The fire is on its day, or at the transition right after a
				// gap at the day's end.
				fired := time.Date(next.Year(), next.Month(), next.Day(), 0, 0, 0, 0, time.UTC)
				require.True(t, fired.Equal(day) || fired.Equal(day.AddDate(0, 0, 1)) && next.Hour() < 2,
					"%s %02d:%02d: fire %s is not for %s", zone, hm[0], hm[1], next, day.Format(time.DateOnly))
				if fired.Equal(day) {
					require.True(t, next.Hour() > hm[0] || next.Hour() == hm[0] && next.Minute() >= hm[1],
						"%s %02d:%02d: fire %s is before the wall time", zone, hm[0], hm[1], next)
				}
				after = next
				day = day.AddDate(0, 0, 1)
			}
		}
	}
}

func TestNextRunsEveryMinutes(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name  string
		sched *intakev1.Schedule
		after string
		want  []string
	}{
		{"every minute", everyMinutes("", 1), "2026-01-01T12:00:30Z",
			[]string{"2026-01-01T12:01:00Z", "2026-01-01T12:02:00Z", "2026-01-01T12:03:00Z"}},
		{"strictly after a tick", everyMinutes("", 15), "2026-01-01T12:15:00Z",
			[]string{"2026-01-01T12:30:00Z", "2026-01-01T12:45:00Z", "2026-01-01T13:00:00Z"}},
		// 7 does not divide 60: ticks are 7 real minutes apart across hours,
		// not "*/7" (which would fire at :56 and then :00).
		{"seven minutes across an hour", everyMinutes("", 7), "2026-01-01T00:50:00Z",
			[]string{"2026-01-01T00:56:00Z", "2026-01-01T01:03:00Z", "2026-01-01T01:10:00Z"}},
		{"real elapsed time across spring-forward", everyMinutes("America/New_York", 30), "2026-03-08T01:10:00-05:00",
			[]string{"2026-03-08T01:30:00-05:00", "2026-03-08T03:00:00-04:00", "2026-03-08T03:30:00-04:00", "2026-03-08T04:00:00-04:00"}},
		{"real elapsed time across fall-back", everyMinutes("America/New_York", 30), "2026-11-01T00:40:00-04:00",
			[]string{"2026-11-01T01:00:00-04:00", "2026-11-01T01:30:00-04:00", "2026-11-01T01:00:00-05:00", "2026-11-01T01:30:00-05:00", "2026-11-01T02:00:00-05:00"}},
		{"every 90 minutes over midnight and a leap day", everyMinutes("UTC", 90), "2028-02-28T22:00:00Z",
			[]string{"2028-02-28T22:30:00Z", "2028-02-29T00:00:00Z", "2028-02-29T01:30:00Z"}},
		{"shown in the schedule's zone", everyMinutes("Asia/Tokyo", 60), "2026-06-30T23:59:59Z",
			[]string{"2026-07-01T09:00:00+09:00", "2026-07-01T10:00:00+09:00"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got, err := schedule.NextRuns(tc.sched, mustTime(t, tc.after), len(tc.want))
			require.NoError(t, err)
			require.Equal(t, tc.want, formatAll(got))
			for i := 1; i < len(got); i++ {
				require.Equal(t, time.Duration(tc.sched.GetEveryMinutes().GetMinutes())*time.Minute, got[i].Sub(got[i-1]))
			}
		})
	}
}

func TestNextRunsErrors(t *testing.T) {
	t.Parallel()
	now := mustTime(t, "2026-01-01T00:00:00Z")
	for _, tc := range []struct {
		name  string
		sched *intakev1.Schedule
		n     int
		want  string
	}{
		{"no schedule", nil, 5, "schedule: not set"},
		{"no cadence", &intakev1.Schedule{TimeZone: "UTC"}, 5, "schedule: a cadence is required (every_minutes, hourly, daily, workdays, weekly, monthly or cron)"},
		{"zero minutes", everyMinutes("", 0), 5, "schedule.every_minutes.minutes: 0 is out of range (1-1440)"},
		{"negative minutes", everyMinutes("", -5), 5, "schedule.every_minutes.minutes: -5 is out of range (1-1440)"},
		{"more than a day", everyMinutes("", 1441), 5, "schedule.every_minutes.minutes: 1441 is out of range (1-1440)"},
		{"hour 24", daily("", 24, 0), 5, "schedule.daily.hour: 24 is not an hour (0-23)"},
		{"minute 60", daily("", 1, 60), 5, "schedule.daily.minute: 60 is not a minute (0-59)"},
		{"unknown zone", daily("Mars/Olympus_Mons", 1, 0), 5, `schedule.time_zone: unknown time zone "Mars/Olympus_Mons" (use an IANA name such as "Europe/Berlin")`},
		{"local zone", daily("Local", 1, 0), 5, `schedule.time_zone: "Local" is not an IANA time zone (e.g. "Europe/Berlin")`},
		{"negative count", daily("", 1, 0), -1, "schedule: next runs count is -1, must be 0 to 1000"},
		{"count too large", daily("", 1, 0), 1001, "schedule: next runs count is 1001, must be 0 to 1000"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got, err := schedule.NextRuns(tc.sched, now, tc.n)
			require.EqualError(t, err, tc.want)
			require.Nil(t, got)
		})
	}
	got, err := schedule.NextRuns(daily("", 1, 0), now, 0)
	require.NoError(t, err)
	require.Empty(t, got)
}

// Validate reports every bad field at once, with its path inside the
// Schedule, so the API can point at "job.schedule.daily.hour".
func TestValidate(t *testing.T) {
	t.Parallel()
	for _, ok := range []*intakev1.Schedule{
		daily("", 0, 0), daily("UTC", 23, 59), daily("America/New_York", 6, 30),
		everyMinutes("", 1), everyMinutes("Asia/Kolkata", schedule.MaxEveryMinutes),
	} {
		require.Nil(t, schedule.Validate(ok), "%v", ok)
	}

	es := schedule.Validate(daily("Nowhere/City", -1, 75))
	require.Equal(t, schedule.FieldErrors{
		{Field: "time_zone", Description: `unknown time zone "Nowhere/City" (use an IANA name such as "Europe/Berlin")`},
		{Field: "daily.hour", Description: "-1 is not an hour (0-23)"},
		{Field: "daily.minute", Description: "75 is not a minute (0-59)"},
	}, es)
	require.Equal(t, `schedule.time_zone: unknown time zone "Nowhere/City" (use an IANA name such as "Europe/Berlin"); `+
		"schedule.daily.hour: -1 is not an hour (0-23); schedule.daily.minute: 75 is not a minute (0-59)", es.Error())

	require.Equal(t, schedule.FieldErrors{{Field: "", Description: "not set"}}, schedule.Validate(nil))
	require.Equal(t, schedule.FieldErrors{{Field: "", Description: "a cadence is required (every_minutes, hourly, daily, workdays, weekly, monthly or cron)"}},
		schedule.Validate(&intakev1.Schedule{}))
	// A cadence whose message is unset is its zero value.
	require.Equal(t, schedule.FieldErrors{{Field: "every_minutes.minutes", Description: "0 is out of range (1-1440)"}},
		schedule.Validate(&intakev1.Schedule{Cadence: &intakev1.Schedule_EveryMinutes{}}))
	require.Nil(t, schedule.Validate(&intakev1.Schedule{Cadence: &intakev1.Schedule_Daily{}}), "daily at midnight")

	_, err := schedule.Parse(everyMinutes("Local", 0))
	var fes schedule.FieldErrors
	require.ErrorAs(t, err, &fes)
	require.Len(t, fes, 2)
	require.Equal(t, "time_zone", fes[0].Field)
	require.Equal(t, "every_minutes.minutes", fes[1].Field)
}

func TestLoadLocation(t *testing.T) {
	t.Parallel()
	loc, err := schedule.LoadLocation("")
	require.NoError(t, err)
	require.Equal(t, time.UTC, loc)
	loc, err = schedule.LoadLocation("America/New_York")
	require.NoError(t, err)
	require.Equal(t, "America/New_York", loc.String())
	_, err = schedule.LoadLocation("Local")
	require.EqualError(t, err, `"Local" is not an IANA time zone (e.g. "Europe/Berlin")`)
	_, err = schedule.LoadLocation("Nowhere/City")
	require.EqualError(t, err, `unknown time zone "Nowhere/City" (use an IANA name such as "Europe/Berlin")`)
	_, err = schedule.LoadLocation("Nowhere/City")
	require.Error(t, err, "an unknown zone stays unknown")
}

// Schedules in one zone share its *time.Location: it is loaded once, not per
// schedule (a scheduler holds thousands of schedules).
func TestLoadLocationIsShared(t *testing.T) {
	t.Parallel()
	a, err := schedule.LoadLocation("Australia/Adelaide")
	require.NoError(t, err)
	b, err := schedule.LoadLocation("Australia/Adelaide")
	require.NoError(t, err)
	require.Same(t, a, b)
	c1, err := schedule.Parse(daily("Australia/Adelaide", 6, 30))
	require.NoError(t, err)
	c2, err := schedule.Parse(cron("Australia/Adelaide", "* * * * *"))
	require.NoError(t, err)
	require.Same(t, a, c1.Location())
	require.Same(t, a, c2.Location())
	// Still correct: 06:30 ACDT (UTC+10:30) in January.
	require.Equal(t, "2026-01-05T20:00:00Z", c1.Next(mustTime(t, "2026-01-05T12:00:00Z")).UTC().Format(time.RFC3339))
}

func TestCadence(t *testing.T) {
	t.Parallel()
	c, err := schedule.Parse(daily("Europe/Berlin", 6, 30))
	require.NoError(t, err)
	require.Equal(t, "Europe/Berlin", c.Location().String())
	next := c.Next(mustTime(t, "2026-03-28T12:00:00Z"))
	require.Equal(t, "2026-03-29T06:30:00+02:00", next.Format(time.RFC3339))

	// The zero Cadence is daily at midnight UTC.
	var zero schedule.Cadence
	require.Equal(t, time.UTC, zero.Location())
	require.Equal(t, "2026-01-02T00:00:00Z", zero.Next(mustTime(t, "2026-01-01T00:00:00Z")).Format(time.RFC3339))
}

// Every-N-minutes ticks are the multiples of N minutes since the Unix epoch:
// the same on every replica, whenever it started, before 1970 too.
func TestNextEvery(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		after string
		every time.Duration
		want  string
	}{
		{"2026-01-01T12:07:00Z", 15 * time.Minute, "2026-01-01T12:15:00Z"},
		{"2026-01-01T12:15:00Z", 15 * time.Minute, "2026-01-01T12:30:00Z"},
		{"2026-01-01T12:14:59.999Z", 15 * time.Minute, "2026-01-01T12:15:00Z"},
		{"2026-01-01T12:15:00.5Z", 15 * time.Minute, "2026-01-01T12:30:00Z"},
		{"1970-01-01T00:00:00Z", time.Hour, "1970-01-01T01:00:00Z"},
		{"1969-12-31T23:10:00Z", 30 * time.Minute, "1969-12-31T23:30:00Z"},
		{"1969-12-31T23:30:00Z", 30 * time.Minute, "1970-01-01T00:00:00Z"},
		{"1969-12-31T23:30:00.25Z", 30 * time.Minute, "1970-01-01T00:00:00Z"},
		// 1440 minutes: midnight UTC, whatever the schedule's zone.
		{"2026-06-30T23:59:59+09:00", 24 * time.Hour, "2026-07-01T00:00:00Z"},
	} {
		got := schedule.NextEvery(mustTime(t, tc.after), tc.every)
		require.Equal(t, tc.want, got.Format(time.RFC3339), "%s every %s", tc.after, tc.every)
		require.Equal(t, time.UTC, got.Location())
	}
}
