package scheduler

import (
	"errors"
	"fmt"
	"time"
	// The schedule's IANA zones must load even in an image without
	// /usr/share/zoneinfo; the system database is still preferred when present.
	_ "time/tzdata"

	"google.golang.org/protobuf/proto"

	intakev1 "github.com/intakehq/intake/proto/gen/intake/v1"
)

// MaxNextRuns bounds the n of NextRuns.
const MaxNextRuns = 1000

// cadence is a parsed, validated Schedule.
type cadence struct {
	loc   *time.Location
	every time.Duration // every N minutes when > 0
	hour  int           // daily otherwise
	min   int
}

// parseSchedule validates s and returns its cadence.
func parseSchedule(s *intakev1.Schedule) (cadence, error) {
	if s == nil {
		return cadence{}, errors.New("schedule: not set")
	}
	loc, err := loadZone(s.GetTimeZone())
	if err != nil {
		return cadence{}, err
	}
	switch c := s.GetCadence().(type) {
	case *intakev1.Schedule_EveryMinutes:
		m := c.EveryMinutes.GetMinutes()
		if m < 1 {
			return cadence{}, fmt.Errorf("schedule: every_minutes.minutes is %d, must be at least 1", m)
		}
		return cadence{loc: loc, every: time.Duration(m) * time.Minute}, nil
	case *intakev1.Schedule_Daily:
		h, m := c.Daily.GetHour(), c.Daily.GetMinute()
		if h < 0 || h > 23 {
			return cadence{}, fmt.Errorf("schedule: daily.hour is %d, must be 0 to 23", h)
		}
		if m < 0 || m > 59 {
			return cadence{}, fmt.Errorf("schedule: daily.minute is %d, must be 0 to 59", m)
		}
		return cadence{loc: loc, hour: int(h), min: int(m)}, nil
	case nil:
		return cadence{}, errors.New("schedule: no cadence set (every_minutes or daily)")
	default:
		return cadence{}, fmt.Errorf("schedule: cadence %T is not supported by this scheduler", c)
	}
}

func loadZone(name string) (*time.Location, error) {
	if name == "" {
		return time.UTC, nil
	}
	if name == "Local" {
		return nil, errors.New(`schedule: time_zone "Local" is not an IANA time zone name`)
	}
	loc, err := time.LoadLocation(name)
	if err != nil {
		return nil, fmt.Errorf("schedule: time_zone %q is not a known IANA time zone: %w", name, err)
	}
	return loc, nil
}

// next is the first fire time strictly after after, in the schedule's zone.
func (c cadence) next(after time.Time) time.Time {
	if c.every > 0 {
		return nextEvery(after, c.every).In(c.loc)
	}
	return NextDaily(after, c.hour, c.min, c.loc)
}

// nextEvery is the first multiple of every since the Unix epoch strictly
// after after. Anchoring at the epoch (not at process start) gives every
// replica and every restart the same ticks, so the run of a tick is created
// once, and "every 15 minutes" fires at :00, :15, :30 and :45.
func nextEvery(after time.Time, every time.Duration) time.Time {
	p := int64(every / time.Second)
	u := after.Unix() // floor: after.Unix() <= after
	k := u / p
	if u%p != 0 && u < 0 {
		k--
	}
	return time.Unix((k+1)*p, 0).UTC()
}

// NextRuns returns the next n fire times of schedule strictly after after, in
// the schedule's time zone. It returns an error saying which field is wrong
// when the schedule is invalid.
func NextRuns(schedule *intakev1.Schedule, after time.Time, n int) ([]time.Time, error) {
	if n < 0 || n > MaxNextRuns {
		return nil, fmt.Errorf("schedule: next runs count is %d, must be 0 to %d", n, MaxNextRuns)
	}
	c, err := parseSchedule(schedule)
	if err != nil {
		return nil, err
	}
	out := make([]time.Time, 0, n)
	t := after
	for range n {
		t = c.next(t)
		out = append(out, t)
	}
	return out, nil
}

// NextDaily returns the first instant strictly after after at which a job
// that runs daily at hour:minute (wall clock of loc; hour 0–23, minute 0–59)
// fires, following ISC cron on daylight-saving days:
//   - a wall time that a spring-forward skips fires at the transition instant
//     (02:30 on a day that jumps 02:00 → 03:00 fires at 03:00);
//   - a wall time that a fall-back repeats fires once, at its first occurrence.
//
// This holds for zones whose transition is at midnight too. The result is in
// loc.
func NextDaily(after time.Time, hour, minute int, loc *time.Location) time.Time {
	a := after.In(loc)
	// Start a day early: a time in a gap at the end of a day fires at the
	// transition, which may be on the next calendar day.
	for i := -1; i <= 2; i++ {
		d := time.Date(a.Year(), a.Month(), a.Day()+i, 0, 0, 0, 0, time.UTC)
		t := dailyFire(d.Year(), d.Month(), d.Day(), hour, minute, loc)
		if t.After(after) {
			return t
		}
	}
	// Unreachable: the fire of the day after next is always later.
	panic(fmt.Sprintf("scheduler: no daily fire after %s for %02d:%02d in %s", after, hour, minute, loc))
}

// dailyFire is the instant a daily hour:minute job fires on the given date of
// loc.
func dailyFire(y int, m time.Month, d, hour, minute int, loc *time.Location) time.Time {
	want := time.Date(y, m, d, hour, minute, 0, 0, time.UTC) // the wall time, as a UTC value
	t := time.Date(y, m, d, hour, minute, 0, 0, loc)
	got := wallClock(t)
	switch {
	case got.Before(want):
		// In a spring-forward gap, time.Date went back by the gap: t is
		// before the transition, which is where its zone period ends.
		if _, end := t.ZoneBounds(); !end.IsZero() {
			return end.In(loc)
		}
		return t
	case got.After(want):
		// In a gap the other way: t is after the transition, where its
		// zone period starts.
		if start, _ := t.ZoneBounds(); !start.IsZero() {
			return start.In(loc)
		}
		return t
	}
	// The wall time exists; a fall-back may repeat it, and time.Date may
	// have picked the second occurrence (it does for zones east of UTC).
	// The first one, if any, is in the zone period before t's.
	start, _ := t.ZoneBounds()
	if start.IsZero() {
		return t
	}
	_, off := start.Add(-time.Second).Zone()
	earlier := time.Unix(want.Unix()-int64(off), 0).In(loc)
	if earlier.Before(t) && wallClock(earlier).Equal(want) {
		return earlier
	}
	return t
}

// wallClock returns t's wall clock in its location as a UTC value, for
// comparing wall clocks across offsets.
func wallClock(t time.Time) time.Time {
	return time.Date(t.Year(), t.Month(), t.Day(), t.Hour(), t.Minute(), t.Second(), t.Nanosecond(), time.UTC)
}

// fingerprint identifies a schedule's content: a changed fingerprint means
// the gocron job must be replaced.
func fingerprint(s *intakev1.Schedule) string {
	b, err := proto.MarshalOptions{Deterministic: true}.Marshal(s)
	if err != nil {
		// A Schedule always marshals; fall back to the text form.
		return s.String()
	}
	return string(b)
}
