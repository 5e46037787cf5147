package mapping

import (
	"fmt"
	"time"

	intakev1 "github.com/intakehq/intake/proto/gen/intake/v1"
)

// The range of a timestamp, in microseconds since the epoch: years 0000 to
// 9999, like dates.
const (
	minTimestampDays = -719528 // 0000-01-01
	maxTimestampDays = 2932896 // 9999-12-31
	microsPerDay     = 86400 * 1_000_000
	minTimestamp     = minTimestampDays * microsPerDay
	maxTimestamp     = (maxTimestampDays+1)*microsPerDay - 1
)

// timestampISOName is how an error message names the default (ISO 8601)
// timestamp format.
const timestampISOName = "ISO 8601 (e.g. 2024-03-01T10:15:00Z)"

// parseTimestamp converts a timestamp cell (trimmed, not empty) to
// microseconds since 1970-01-01T00:00:00Z. A value without a zone is a wall
// time of loc (see localToUnix). On failure it returns a detail ("" when the
// value simply does not match).
func (df *dateFormat) parseTimestamp(s string, loc *time.Location) (int64, bool, string) {
	switch df.kind {
	case dateUnix:
		return parseUnixMicros(s, 1_000_000)
	case dateUnixMs:
		return parseUnixMicros(s, 1_000)
	}
	f, ok, detail := df.fields(s)
	if !ok {
		return 0, false, detail
	}
	days, ok, detail := civilDays(f.y, f.mo, f.d)
	if !ok {
		return 0, false, detail
	}
	// Hour 24 (ISO 8601's 24:00) and second 60 roll over, as in PostgreSQL.
	wall := int64(days)*86400 + int64(f.h)*3600 + int64(f.mi)*60 + int64(f.sec)
	var unix int64
	if f.zone {
		unix = wall - int64(f.off)
	} else {
		unix = localToUnix(wall, loc)
	}
	us := unix*1_000_000 + int64(f.usec)
	if us < minTimestamp || us > maxTimestamp {
		return 0, false, "the timestamp is out of range (years 0000-9999)"
	}
	return us, true, ""
}

// localToUnix converts a wall time of loc, given as seconds since the epoch
// as if it were UTC, to seconds since the epoch. Around a change of the
// zone's offset a wall time can be ambiguous or skipped:
//   - an ambiguous wall time (it occurs twice, when clocks go back) is read
//     with the earlier offset, the one before the change, as java.time
//     does (PostgreSQL takes the later one): 01:30 on the night New York
//     goes from EDT to EST is 01:30 EDT (05:30Z), the first 01:30;
//   - a skipped wall time (when clocks go forward) is moved forward by the
//     length of the gap, i.e. read with the offset before the change: 02:30
//     on the night New York goes from EST to EDT is 03:30 EDT (07:30Z), as
//     PostgreSQL and java.time read it.
func localToUnix(wall int64, loc *time.Location) int64 {
	if loc == nil || loc == time.UTC {
		return wall
	}
	// The true instant is within a day of wall, so in the zone period
	// (offset) in effect at wall, the one before or the one after.
	at := time.Unix(wall, 0).In(loc)
	_, off := at.Zone()
	start, end := at.ZoneBounds()
	// Usually the period goes on for more than two days either side (more
	// than any two offsets differ): then its offset is the only reading.
	const margin = 2 * 86400
	u := wall - int64(off)
	if (start.IsZero() || u-start.Unix() > margin) && (end.IsZero() || end.Unix()-u > margin) {
		return u
	}
	offs := [3]int{off, off, off}
	if !start.IsZero() {
		_, offs[1] = start.Add(-time.Second).Zone()
	}
	if !end.IsZero() {
		_, offs[2] = end.Zone()
	}
	offsetAt := func(unix int64) int {
		_, o := time.Unix(unix, 0).In(loc).Zone()
		return o
	}
	best, found := int64(0), false
	for _, o := range offs {
		if u := wall - int64(o); offsetAt(u) == o && (!found || u < best) {
			best, found = u, true
		}
	}
	if found {
		return best
	}
	// A gap: read with the offset before it, which puts the instant after
	// the change (where the offset is larger).
	for _, o := range offs {
		if u := wall - int64(o); offsetAt(u) > o {
			return u
		}
	}
	return wall - int64(off)
}

// parseISOFields reads an ISO 8601 / RFC 3339 date or date-time:
// 2024-01-31 (midnight), 2024-01-31T10:20, 2024-01-31 10:20:30,
// 2024-01-31T10:20:30.123456Z, 2024-01-31T10:20:30+02:00 (also +02, +0200,
// and a space before the zone, and UTC or GMT as it).
func parseISOFields(s string) (dateFields, bool, string) {
	var f dateFields
	var ok1, ok2, ok3 bool
	f.y, ok1 = digitsAt(s, 0, 4)
	f.mo, ok2 = digitsAt(s, 5, 2)
	f.d, ok3 = digitsAt(s, 8, 2)
	if !ok1 || !ok2 || !ok3 || s[4] != '-' || s[7] != '-' {
		return f, false, ""
	}
	if len(s) == 10 {
		return f, true, ""
	}
	if c := s[10]; c != 'T' && c != 't' && c != ' ' {
		return f, false, ""
	}
	f.h, ok1 = digitsAt(s, 11, 2)
	f.mi, ok2 = digitsAt(s, 14, 2)
	if !ok1 || !ok2 || s[13] != ':' {
		return f, false, ""
	}
	i := 16
	if i < len(s) && s[i] == ':' {
		var ok bool
		if f.sec, ok = digitsAt(s, i+1, 2); !ok {
			return f, false, ""
		}
		i += 3
		if i < len(s) && (s[i] == '.' || s[i] == ',') {
			i++
			start := i
			for i < len(s) && isDigit(s[i]) {
				i++
			}
			if i == start {
				return f, false, ""
			}
			f.usec = fractionMicros(s[start:i])
		}
	}
	if i < len(s) {
		j := i
		if s[j] == ' ' {
			j++
		}
		off, w, detail := parseOffset(s[j:])
		if w == 0 || j+w != len(s) {
			return f, false, detail
		}
		f.zone, f.off = true, off
	}
	switch {
	case f.h == 24 && (f.mi != 0 || f.sec != 0 || f.usec != 0):
		return f, false, "hour 24 is only 24:00 (the end of the day)"
	case f.h > 24:
		return f, false, fmt.Sprintf("hour %d is not 0-23", f.h)
	case f.mi > 59:
		return f, false, fmt.Sprintf("minute %d is not 0-59", f.mi)
	case f.sec > 60:
		return f, false, fmt.Sprintf("second %d is not 0-59", f.sec)
	}
	return f, true, ""
}

// parseUnixMicros reads a count of units (unit microseconds each) since the
// epoch, with an optional sign and fraction, as microseconds; a fraction
// finer than a microsecond is cut.
func parseUnixMicros(s string, unit int64) (int64, bool, string) {
	i, neg := 0, false
	if s[0] == '-' || s[0] == '+' {
		neg = s[0] == '-'
		i++
	}
	start := i
	var v int64
	for i < len(s) && isDigit(s[i]) {
		if v > maxTimestamp/unit {
			return 0, false, "the timestamp is out of range (years 0000-9999)"
		}
		v = v*10 + int64(s[i]-'0')
		i++
	}
	if i == start {
		return 0, false, ""
	}
	if v > maxTimestamp/unit+1 {
		return 0, false, "the timestamp is out of range (years 0000-9999)"
	}
	us := v * unit
	if i < len(s) && s[i] == '.' {
		i++
		fs := i
		for i < len(s) && isDigit(s[i]) {
			i++
		}
		if i == fs {
			return 0, false, ""
		}
		// The fraction's digits, in microseconds of a unit.
		var frac, scale int64 = 0, unit
		for k := fs; k < i && scale >= 10; k++ {
			scale /= 10
			frac += int64(s[k]-'0') * scale
		}
		us += frac
	}
	if i != len(s) {
		return 0, false, ""
	}
	if neg {
		us = -us
	}
	if us < minTimestamp || us > maxTimestamp {
		return 0, false, "the timestamp is out of range (years 0000-9999)"
	}
	return us, true, ""
}

// TimestampText formats microseconds since the epoch as RFC 3339 in UTC,
// with as many digits of a fraction of a second as it needs:
// "2024-03-01T10:15:00Z", "2024-03-01T10:15:00.25Z".
func TimestampText(us int64) string {
	return time.UnixMicro(us).UTC().Format(time.RFC3339Nano)
}

// JobLocation is the time zone a job's timestamps without a zone are read
// in: its schedule's IANA time zone; UTC when it has none, or one that is
// not known here (or "Local", which would be whatever zone the server runs
// in).
func JobLocation(job *intakev1.Job) *time.Location {
	name := job.GetSchedule().GetTimeZone()
	if name == "" || name == "Local" {
		return time.UTC
	}
	loc, err := time.LoadLocation(name)
	if err != nil {
		return time.UTC
	}
	return loc
}
