package mapping

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// day is the days since the epoch of a date, computed with package time.
func day(y int, m time.Month, d int) int32 {
	return int32(time.Date(y, m, d, 0, 0, 0, 0, time.UTC).Unix() / 86400)
}

func TestDaysFromCivil(t *testing.T) {
	t.Parallel()
	start := time.Date(1, 1, 1, 0, 0, 0, 0, time.UTC)
	for d := start; d.Year() < 10000; d = d.AddDate(0, 0, 13) {
		want := int(d.Unix() / 86400)
		if d.Unix() < 0 && d.Unix()%86400 != 0 {
			want--
		}
		require.Equal(t, want, daysFromCivil(d.Year(), int(d.Month()), d.Day()), d.Format(time.DateOnly))
	}
}

func TestParseDateFormat(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ format, err string }{
		{format: ""},
		{format: "iso8601"},
		{format: "unix"},
		{format: "unix_ms"},
		{format: "yyyy-MM-dd"},
		{format: "MM/dd/yyyy"},
		{format: "d.M.yy"},
		{format: "dd MMM yyyy"},
		{format: "MMMM d, yyyy"},
		{format: "yyyyMMdd"},
		{format: "yyyy-MM-dd'T'HH:mm:ss.SSS"},
		{format: "M/d/yyyy h:mm a"},
		{format: "dd 'de' MMMM 'de' yyyy"},
		{format: "YYYY-MM-DD", err: `"YYYY-MM-DD" is not a date format: "YYYY" at position 1 is not a pattern`},
		{format: "yyyy-MM-DD", err: `"DD" at position 9 is not a pattern`},
		{format: "yyy-MM-dd", err: `"yyy" at position 1 is not a pattern`},
		{format: "MM/yyyy", err: "it has no day (dd or d)"},
		{format: "HH:mm", err: "it has no year (yyyy or yy), no month (MMMM, MMM, MM or M), no day (dd or d)"},
		{format: "yyyy-MM-dd yy", err: "it has the year twice"},
		{format: "yyyy-MM-dd'T", err: "the quote at position 11 is not closed"},
		{format: "1,234.56", err: `"1,234.56" is not a date format`},
	} {
		t.Run(tc.format, func(t *testing.T) {
			t.Parallel()
			_, err := parseDateFormat(tc.format)
			if tc.err != "" {
				require.ErrorContains(t, err, tc.err)
				return
			}
			require.NoError(t, err)
		})
	}
}

func TestParseDate(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		format, in string
		want       int32
		detail     string // expected detail when rejected
		reject     bool
	}{
		{format: "", in: "1970-01-01", want: 0},
		{format: "", in: "2024-02-29", want: day(2024, 2, 29)},
		{format: "", in: "1969-12-31", want: -1},
		{format: "", in: "2024-01-31T10:20:30Z", want: day(2024, 1, 31)},
		{format: "", in: "2024-01-31T23:30:00-05:00", want: day(2024, 1, 31)},
		{format: "", in: "2024-01-31 10:20", want: day(2024, 1, 31)},
		{format: "", in: "2024-01-31T10:20:30.123456+0200", want: day(2024, 1, 31)},
		{format: "iso8601", in: "2024-01-31T10:20:30,5+02", want: day(2024, 1, 31)},
		{format: "", in: "2023-02-29", reject: true, detail: "day 29 is not 1-28 in February 2023"},
		{format: "", in: "2024-13-01", reject: true, detail: "month 13 is not 1-12"},
		{format: "", in: "01/31/2024", reject: true},
		{format: "", in: "2024-1-31", reject: true},
		{format: "", in: "2024-01-31T", reject: true},
		{format: "", in: "2024-01-31T10:61", reject: true},
		{format: "", in: "2024-01-31T10:20:30Zjunk", reject: true},
		{format: "MM/dd/yyyy", in: "01/31/2024", want: day(2024, 1, 31)},
		{format: "MM/dd/yyyy", in: "1/5/2024", want: day(2024, 1, 5)},
		{format: "MM/dd/yyyy", in: "13/45/2020", reject: true, detail: "month 13 is not 1-12"},
		{format: "MM/dd/yyyy", in: "2024-01-31", reject: true},
		{format: "MM/dd/yyyy", in: "01/31/2024 10:00", reject: true},
		{format: "MM/dd/yyyy", in: "01/31/24", reject: true},
		{format: "dd.MM.yy", in: "31.01.24", want: day(2024, 1, 31)},
		{format: "dd.MM.yy", in: "31.01.68", want: day(2068, 1, 31)},
		{format: "dd.MM.yy", in: "31.01.69", want: day(1969, 1, 31)},
		{format: "dd.MM.yy", in: "31.01.99", want: day(1999, 1, 31)},
		{format: "d MMM yyyy", in: "5 Jan 2024", want: day(2024, 1, 5)},
		{format: "d MMM yyyy", in: "5 jan 2024", want: day(2024, 1, 5)},
		{format: "d MMM yyyy", in: "5 SEPT 2024", want: day(2024, 9, 5)},
		{format: "d MMM yyyy", in: "5 Foo 2024", reject: true},
		{format: "MMMM d, yyyy", in: "February 29, 2024", want: day(2024, 2, 29)},
		{format: "MMMM d, yyyy", in: "Feb 29, 2024", want: day(2024, 2, 29)},
		{format: "yyyyMMdd", in: "20240131", want: day(2024, 1, 31)},
		{format: "yyyy-MM-dd'T'HH:mm:ss", in: "2024-01-31T23:59:59", want: day(2024, 1, 31)},
		{format: "yyyy-MM-dd HH:mm", in: "2024-01-31 24:00", reject: true, detail: "hour 24 is not 0-23"},
		{format: "M/d/yyyy h:mm a", in: "1/31/2024 9:05 PM", want: day(2024, 1, 31)},
		{format: "M/d/yyyy h:mm a", in: "1/31/2024 0:05 am", reject: true, detail: "hour 0 is not 1-12"},
		{format: "M/d/yyyy h:mm a", in: "1/31/2024 9:05 XM", reject: true},
		{format: "yyyy-MM-dd HH:mm:ss.SSS", in: "2024-01-31 10:00:00.5", want: day(2024, 1, 31)},
		{format: "unix", in: "0", want: 0},
		{format: "unix", in: "86399", want: 0},
		{format: "unix", in: "86400", want: 1},
		{format: "unix", in: "1706659200", want: day(2024, 1, 31)},
		{format: "unix", in: "1706659200.75", want: day(2024, 1, 31)},
		{format: "unix", in: "-1", want: -1},
		{format: "unix", in: "-0.5", want: -1},
		{format: "unix", in: "-86400", want: -1},
		{format: "unix", in: "abc", reject: true},
		{format: "unix", in: "1e9", reject: true},
		{format: "unix", in: "99999999999999999", reject: true, detail: "the timestamp is out of range"},
		{format: "unix_ms", in: "1706659200000", want: day(2024, 1, 31)},
		{format: "unix_ms", in: "-1", want: -1},
		{format: "unix_ms", in: "1706659200000.5", reject: true},
	} {
		t.Run(tc.format+"/"+tc.in, func(t *testing.T) {
			t.Parallel()
			df, err := parseDateFormat(tc.format)
			require.NoError(t, err)
			got, ok, detail := df.parse(tc.in)
			if tc.reject {
				require.False(t, ok, "accepted as %d", got)
				require.Equal(t, tc.detail, detail)
				return
			}
			require.True(t, ok, "rejected: %s", detail)
			require.Equal(t, tc.want, got)
		})
	}
}
