package ctl_test

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/intakehq/intake/cmd/internal/ctl"
	intakev1 "github.com/intakehq/intake/proto/gen/intake/v1"
)

func TestSchedule(t *testing.T) {
	t.Parallel()
	for want, s := range map[string]*intakev1.Schedule{
		"every minute (UTC)":     {Cadence: &intakev1.Schedule_EveryMinutes{EveryMinutes: &intakev1.EveryMinutes{Minutes: 1}}},
		"every 15 minutes (UTC)": {Cadence: &intakev1.Schedule_EveryMinutes{EveryMinutes: &intakev1.EveryMinutes{Minutes: 15}}},
		"hourly at :05 (Asia/Kolkata)": {TimeZone: "Asia/Kolkata",
			Cadence: &intakev1.Schedule_Hourly{Hourly: &intakev1.Hourly{Minute: 5}}},
		"daily at 03:00 (UTC)": {Cadence: &intakev1.Schedule_Daily{Daily: &intakev1.Daily{Hour: 3}}},
		"workdays (Mon-Fri) at 06:30 (Europe/Berlin)": {TimeZone: "Europe/Berlin",
			Cadence: &intakev1.Schedule_Workdays{Workdays: &intakev1.Workdays{Hour: 6, Minute: 30}}},
		"weekly on Mon, Thu, Sun at 23:45 (UTC)": {Cadence: &intakev1.Schedule_Weekly{Weekly: &intakev1.Weekly{
			Days: []intakev1.Weekday{intakev1.Weekday_WEEKDAY_MONDAY, intakev1.Weekday_WEEKDAY_THURSDAY, intakev1.Weekday_WEEKDAY_SUNDAY},
			Hour: 23, Minute: 45}}},
		"monthly on day 31 at 09:00 (UTC)": {Cadence: &intakev1.Schedule_Monthly{Monthly: &intakev1.Monthly{Day: 31, Hour: 9}}},
		"monthly on the last day at 23:30 (America/New_York)": {TimeZone: "America/New_York",
			Cadence: &intakev1.Schedule_Monthly{Monthly: &intakev1.Monthly{LastDay: true, Hour: 23, Minute: 30}}},
		`cron "30 6 * * 1-5" (UTC)`: {Cadence: &intakev1.Schedule_Cron{Cron: &intakev1.Cron{Expression: "30 6 * * 1-5"}}},
		"-":                         {},
	} {
		require.Equal(t, want, ctl.Schedule(s))
	}
	require.Equal(t, "-", ctl.Schedule(nil))
}
