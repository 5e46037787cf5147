package scheduler_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

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
