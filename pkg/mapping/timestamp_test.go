package mapping

import (
	"testing"
	"time"
	_ "time/tzdata" // the tests' zones, wherever they run

	"github.com/stretchr/testify/require"
)

func mustLoad(t testing.TB, name string) *time.Location {
	t.Helper()
	loc, err := time.LoadLocation(name)
	require.NoError(t, err)
	return loc
}

func TestParseTimestamp(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		format, zone, in string
		want             string // RFC 3339 in UTC
		detail           string // expected detail when rejected
		reject           bool
	}{
		// ISO 8601 / RFC 3339, the default: with a zone it is exact.
		{in: "2024-03-01T10:15:00Z", want: "2024-03-01T10:15:00Z"},
		{in: "2024-03-01t10:15:00z", want: "2024-03-01T10:15:00Z"},
		{in: "2024-03-01T10:15:00.123456789Z", want: "2024-03-01T10:15:00.123456Z"},
		{in: "2024-03-01T10:15:00,5Z", want: "2024-03-01T10:15:00.5Z"},
		{in: "2024-03-01T10:15:00+02:00", zone: "America/New_York", want: "2024-03-01T08:15:00Z"},
		{in: "2024-03-01T10:15:00+0200", want: "2024-03-01T08:15:00Z"},
		{in: "2024-03-01T10:15:00-05", want: "2024-03-01T15:15:00Z"},
		{in: "2024-03-01T10:15:00+05:45", want: "2024-03-01T04:30:00Z"},
		{in: "2024-03-01 10:15:00+00", zone: "Europe/Berlin", want: "2024-03-01T10:15:00Z"}, // PostgreSQL's output
		{in: "2024-03-01 10:15:00 UTC", zone: "Europe/Berlin", want: "2024-03-01T10:15:00Z"},
		{in: "2024-03-01 10:15:00 +01:00", want: "2024-03-01T09:15:00Z"},
		{format: "iso8601", in: "2024-03-01T10:15Z", want: "2024-03-01T10:15:00Z"},
		// Without a zone: the job's time zone, UTC by default.
		{in: "2024-03-01 10:15", want: "2024-03-01T10:15:00Z"},
		{in: "2024-03-01 10:15", zone: "Europe/Berlin", want: "2024-03-01T09:15:00Z"},
		{in: "2024-07-01T10:15:00", zone: "Europe/Berlin", want: "2024-07-01T08:15:00Z"},
		{in: "2024-03-01", want: "2024-03-01T00:00:00Z"},
		{in: "2024-03-01", zone: "Europe/Berlin", want: "2024-02-29T23:00:00Z"},
		{in: "2024-03-01T24:00:00Z", want: "2024-03-02T00:00:00Z"},
		{in: "2016-12-31T23:59:60Z", want: "2017-01-01T00:00:00Z"},
		{in: "2024-03-01T24:30:00Z", reject: true, detail: "hour 24 is only 24:00 (the end of the day)"},
		{in: "2024-03-01T25:00Z", reject: true, detail: "hour 25 is not 0-23"},
		{in: "2024-03-01T10:61Z", reject: true, detail: "minute 61 is not 0-59"},
		{in: "2024-03-01T10:15:61Z", reject: true, detail: "second 61 is not 0-59"},
		{in: "2024-02-30T10:00:00Z", reject: true, detail: "day 30 is not 1-29 in February 2024"},
		{in: "2024-13-01T10:00:00Z", reject: true, detail: "month 13 is not 1-12"},
		{in: "2024-03-01T10:00:00+19:00", reject: true, detail: "offset +19:00 is not between -18:00 and +18:00"},
		{in: "2024-03-01T10:00:00 PST", reject: true},
		{in: "2024-03-01T10", reject: true},
		{in: "2024-03-01T10:00:00.Z", reject: true},
		{in: "2024-03-01T10:00:00Zjunk", reject: true},
		{in: "03/01/2024 10:00", reject: true},
		{in: "1709288100", reject: true},

		// Zone-less wall times around changes of the offset. New York
		// springs forward on 2024-03-10 at 02:00 EST (to 03:00 EDT) and
		// falls back on 2024-11-03 at 02:00 EDT (to 01:00 EST).
		{in: "2024-03-10 01:59:59", zone: "America/New_York", want: "2024-03-10T06:59:59Z"},
		{in: "2024-03-10 02:00", zone: "America/New_York", want: "2024-03-10T07:00:00Z"}, // skipped: 03:00 EDT
		{in: "2024-03-10 02:30", zone: "America/New_York", want: "2024-03-10T07:30:00Z"}, // skipped: 03:30 EDT
		{in: "2024-03-10 03:00", zone: "America/New_York", want: "2024-03-10T07:00:00Z"},
		{in: "2024-11-03 00:59", zone: "America/New_York", want: "2024-11-03T04:59:00Z"},
		{in: "2024-11-03 01:00", zone: "America/New_York", want: "2024-11-03T05:00:00Z"}, // ambiguous: the first, EDT
		{in: "2024-11-03 01:30", zone: "America/New_York", want: "2024-11-03T05:30:00Z"}, // ambiguous: the first, EDT
		{in: "2024-11-03 01:30-05:00", zone: "America/New_York", want: "2024-11-03T06:30:00Z"},
		{in: "2024-11-03 02:00", zone: "America/New_York", want: "2024-11-03T07:00:00Z"},
		{in: "2024-03-31 02:30", zone: "Europe/Berlin", want: "2024-03-31T01:30:00Z"}, // skipped: 03:30 CEST
		{in: "2024-10-27 02:30", zone: "Europe/Berlin", want: "2024-10-27T00:30:00Z"}, // ambiguous: the first, CEST
		// Half an hour (Lord Howe Island: +10:30 / +11).
		{in: "2024-10-06 02:15", zone: "Australia/Lord_Howe", want: "2024-10-05T15:45:00Z"}, // skipped: 02:45 +11
		{in: "2024-04-07 01:45", zone: "Australia/Lord_Howe", want: "2024-04-06T14:45:00Z"}, // ambiguous: the first, +11
		// Samoa skipped 2011-12-30 altogether (from -10 to +14).
		{in: "2011-12-29 23:59", zone: "Pacific/Apia", want: "2011-12-30T09:59:00Z"},
		{in: "2011-12-30 12:00", zone: "Pacific/Apia", want: "2011-12-30T22:00:00Z"},
		{in: "2011-12-31 00:00", zone: "Pacific/Apia", want: "2011-12-30T10:00:00Z"},

		// Patterns.
		{format: "yyyy-MM-dd HH:mm:ss.SSS", in: "2024-03-01 10:15:00.5", want: "2024-03-01T10:15:00.5Z"},
		{format: "yyyy-MM-dd HH:mm:ss.SSS", in: "2024-03-01 10:15:00.123", zone: "Asia/Tokyo", want: "2024-03-01T01:15:00.123Z"},
		{format: "yyyy-MM-dd'T'HH:mm:ssXXX", in: "2024-03-01T10:15:00+02:00", zone: "Asia/Tokyo", want: "2024-03-01T08:15:00Z"},
		{format: "yyyy-MM-dd'T'HH:mm:ssXXX", in: "2024-03-01T10:15:00Z", zone: "Asia/Tokyo", want: "2024-03-01T10:15:00Z"},
		{format: "yyyy-MM-dd'T'HH:mm:ssXXX", in: "2024-03-01T10:15:00", reject: true},
		{format: "yyyy-MM-dd'T'HH:mm:ssXXX", in: "2024-03-01T10:15:00+25:00", reject: true, detail: "offset +25:00 is not between -18:00 and +18:00"},
		{format: "yyyy-MM-dd HH:mm Z", in: "2024-03-01 10:15 -0800", want: "2024-03-01T18:15:00Z"},
		{format: "dd.MM.yyyy HH:mm", in: "01.03.2024 10:15", zone: "Europe/Berlin", want: "2024-03-01T09:15:00Z"},
		{format: "dd.MM.yyyy HH:mm", in: "01.03.2024 24:00", reject: true, detail: "hour 24 is not 0-23"},
		{format: "dd.MM.yyyy HH:mm", in: "31.04.2024 10:00", reject: true, detail: "day 31 is not 1-30 in April 2024"},
		{format: "MM/dd/yyyy h:mm a", in: "03/01/2024 12:05 AM", want: "2024-03-01T00:05:00Z"},
		{format: "MM/dd/yyyy h:mm a", in: "03/01/2024 12:05 pm", want: "2024-03-01T12:05:00Z"},
		{format: "MM/dd/yyyy h:mm a", in: "03/01/2024 1:05 PM", want: "2024-03-01T13:05:00Z"},
		{format: "MM/dd/yyyy h:mm a", in: "03/01/2024 13:05 PM", reject: true, detail: "hour 13 is not 1-12"},
		{format: "MM/dd/yyyy", in: "03/01/2024", zone: "Europe/Berlin", want: "2024-02-29T23:00:00Z"},
		{format: "d MMM yyyy HH:mm:ss", in: "1 Mar 2024 10:15:30", want: "2024-03-01T10:15:30Z"},

		// Unix time is UTC whatever the job's zone.
		{format: "unix", in: "1709288100", zone: "Europe/Berlin", want: "2024-03-01T10:15:00Z"},
		{format: "unix", in: "1709288100.25", want: "2024-03-01T10:15:00.25Z"},
		{format: "unix", in: "1709288100.1234567", want: "2024-03-01T10:15:00.123456Z"},
		{format: "unix", in: "-1.5", want: "1969-12-31T23:59:58.5Z"},
		{format: "unix", in: "0", want: "1970-01-01T00:00:00Z"},
		{format: "unix", in: "253402300799", want: "9999-12-31T23:59:59Z"},
		{format: "unix", in: "253402300800", reject: true, detail: "the timestamp is out of range (years 0000-9999)"},
		{format: "unix", in: "99999999999999999999", reject: true, detail: "the timestamp is out of range (years 0000-9999)"},
		{format: "unix", in: "1e9", reject: true},
		{format: "unix", in: "2024-03-01", reject: true},
		{format: "unix", in: "12.", reject: true},
		{format: "unix_ms", in: "1709288100123", want: "2024-03-01T10:15:00.123Z"},
		{format: "unix_ms", in: "1709288100123.5", want: "2024-03-01T10:15:00.1235Z"},
		{format: "unix_ms", in: "-1", want: "1969-12-31T23:59:59.999Z"},
		{format: "unix_ms", in: "1709288100", want: "1970-01-20T18:48:08.1Z"},
	} {
		t.Run(tc.format+"/"+tc.zone+"/"+tc.in, func(t *testing.T) {
			t.Parallel()
			loc := time.UTC
			if tc.zone != "" {
				loc = mustLoad(t, tc.zone)
			}
			df, err := parseDateFormat(tc.format)
			require.NoError(t, err)
			got, ok, detail := df.parseTimestamp(tc.in, loc)
			if tc.reject {
				require.False(t, ok, "accepted as %s", TimestampText(got))
				require.Equal(t, tc.detail, detail)
				return
			}
			require.True(t, ok, "rejected: %s", detail)
			require.Equal(t, tc.want, TimestampText(got))
		})
	}
}

// Every wall time that occurs reads back as the first instant that shows
// it.
func TestLocalToUnixFindsTheFirstInstant(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		zone string
		from time.Time
	}{
		{"America/New_York", time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)},
		{"Europe/Berlin", time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)},
		{"Australia/Lord_Howe", time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)},
		{"Pacific/Apia", time.Date(2011, 6, 1, 0, 0, 0, 0, time.UTC)},
		{"Asia/Kolkata", time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)},
	} {
		loc := mustLoad(t, tc.zone)
		wallOf := func(u int64) int64 {
			_, off := time.Unix(u, 0).In(loc).Zone()
			return u + int64(off)
		}
		start := tc.from.Unix()
		for u := start; u < start+366*86400; u += 15 * 60 {
			wall := wallOf(u)
			got := localToUnix(wall, loc)
			require.Equal(t, wall, wallOf(got), "%s: %s", tc.zone, time.Unix(u, 0).In(loc))
			require.LessOrEqual(t, got, u, "%s: %s", tc.zone, time.Unix(u, 0).In(loc))
			if got < u {
				require.Equal(t, wall, wallOf(got), "an earlier instant shows the same wall time")
			}
		}
	}
}

// Dates may carry a zone in their pattern; the date is taken as written.
func TestDatePatternWithZone(t *testing.T) {
	t.Parallel()
	df, err := parseDateFormat("yyyy-MM-dd'T'HH:mm:ssXXX")
	require.NoError(t, err)
	d, ok, _ := df.parse("2024-03-01T23:30:00-05:00")
	require.True(t, ok)
	require.Equal(t, "2024-03-01", DateText(d))
	_, err = parseDateFormat("yyyy-MM-dd XXX Z")
	require.ErrorContains(t, err, "it has the zone twice")
}
