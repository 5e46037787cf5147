package schedule_test

import (
	"math/rand/v2"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/intakehq/intake/pkg/schedule"
)

// oracleZones have daylight saving at 02:00 or 03:00 (New York, Berlin),
// at midnight (Santiago), by 30 minutes (Lord Howe), with a 45-minute
// offset (Chatham), or none (Kolkata).
var oracleZones = []string{"America/New_York", "Europe/Berlin", "America/Santiago", "Australia/Lord_Howe", "Pacific/Chatham", "Asia/Kolkata"}

// oracleInstants are random instants of 2026 and 2027 and instants around
// every zone transition of those years, in loc.
func oracleInstants(t *testing.T, loc *time.Location) []time.Time {
	t.Helper()
	r := rand.New(rand.NewPCG(7, uint64(len(loc.String()))))
	from := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	var out []time.Time
	for range 300 {
		out = append(out, from.Add(time.Duration(r.Int64N(int64(2*365*24*time.Hour)))).Truncate(time.Second))
	}
	for tr := from.In(loc); tr.Year() < 2028; {
		_, end := tr.ZoneBounds()
		if end.IsZero() {
			break
		}
		for d := -26 * time.Hour; d <= 26*time.Hour; d += 17 * time.Minute {
			out = append(out, end.Add(d))
		}
		tr = end.In(loc)
	}
	return out
}

// Fire times computed by Next agree with slow, obviously right ones: the
// first whole minute after after whose wall clock shows minute M (hourly,
// and every minute for "* * * * *"), and NextDaily (daily), around every
// daylight-saving transition and at random instants.
func TestNextAgreesWithOracles(t *testing.T) {
	t.Parallel()
	for _, zone := range oracleZones {
		loc := mustZone(t, zone)
		hourly17, err := schedule.Parse(hourly(zone, 17))
		require.NoError(t, err)
		minutely, err := schedule.Parse(cron(zone, "* * * * *"))
		require.NoError(t, err)
		dailies := map[[2]int]schedule.Cadence{}
		for _, hm := range [][2]int{{0, 0}, {0, 30}, {1, 30}, {2, 30}, {3, 0}, {23, 45}} {
			c, err := schedule.Parse(daily(zone, int32(hm[0]), int32(hm[1])))
			require.NoError(t, err)
			dailies[hm] = c
		}
		for _, after := range oracleInstants(t, loc) {
			// Hourly at :17 and every minute: step minute by minute.
			m := after.Truncate(time.Minute).Add(time.Minute)
			var want17, wantMinute time.Time
			for s := m; s.Sub(m) < 3*time.Hour && want17.IsZero(); s = s.Add(time.Minute) {
				if wantMinute.IsZero() {
					wantMinute = s
				}
				if s.In(loc).Minute() == 17 {
					want17 = s
				}
			}
			require.Truef(t, want17.Equal(hourly17.Next(after)), "%s hourly :17 after %s: got %s, want %s",
				zone, after.In(loc), hourly17.Next(after), want17.In(loc))
			require.Truef(t, wantMinute.Equal(minutely.Next(after)), "%s every minute after %s: got %s, want %s",
				zone, after.In(loc), minutely.Next(after), wantMinute.In(loc))
			for hm, c := range dailies {
				want := schedule.NextDaily(after, hm[0], hm[1], loc)
				require.Truef(t, want.Equal(c.Next(after)), "%s daily %02d:%02d after %s: got %s, want %s",
					zone, hm[0], hm[1], after.In(loc), c.Next(after), want)
			}
		}
	}
}
