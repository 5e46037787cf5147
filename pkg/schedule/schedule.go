// Package schedule is the one place that knows what a job's Schedule means:
// which schedules are valid (Validate, with the field and reason of every
// problem) and when a valid one fires (Parse, then Cadence.Next and
// Cadence.Prev; NextRuns). The scheduler fires jobs at these times, and the
// control API validates jobs and shows their next run times with the same
// code, so the two always agree.
//
// Cadences, and how they behave across daylight-saving changes. The rules
// follow ISC cron, the behaviour users know from Linux:
//   - every N minutes fires at the multiples of N minutes of real elapsed time
//     since the Unix epoch (so "every 15 minutes" fires at :00, :15, :30 and
//     :45, every replica and every restart computes the same ticks, and time
//     zones and daylight saving do not move them);
//   - hourly at minute M fires at every instant whose wall clock in the zone
//     shows minute M: every real hour, neither catching up at a
//     spring-forward nor skipping the repeated hour of a fall-back (01:30
//     fires twice on a day New York falls back, an hour apart). In a zone whose
//     offset changes by 30 minutes (Australia/Lord_Howe) that instant moves by
//     30 minutes at the change, so one interval is 30 or 90 minutes, and a
//     minute inside a skipped half hour does not fire that once;
//   - daily, workdays (Monday to Friday), weekly (on chosen days) and monthly
//     fire at HH:MM wall-clock time on their days: a wall time that a
//     spring-forward skips fires at the transition instant (02:30 on a day
//     that jumps 02:00 → 03:00 fires at 03:00), a wall time that a fall-back
//     repeats fires once, at its first occurrence. The day is the calendar
//     day of the zone the time was meant for, also when a skipped time fires
//     at a transition on the next day. Monthly on a day the month does not
//     have (31 in April, 29-31 in February) fires on the month's last day;
//   - cron takes a standard five-field expression (minute, hour, day of
//     month, month, day of week; lists, ranges, steps, month and weekday
//     names, 7 for Sunday, and @hourly, @daily, @weekly, @monthly, @yearly).
//     With a fixed hour field (numbers, lists and ranges: "30 2 * * *",
//     "0 9-17 * * 1-5") it follows the wall-clock rule of daily; with a
//     wildcard or step hour field ("30 * * * *", "0 */2 * * *") it follows
//     the rule of hourly: it fires at every instant whose wall clock matches,
//     each once. As in ISC cron, when both the day of month and the day of
//     week are restricted (neither starts with "*") a day matching either
//     fires.
//
// It depends only on the standard library and the intake.v1 messages.
package schedule

import (
	"fmt"
	"strings"
	"sync"
	"time"
	// The schedule's IANA zones must load even in an image without
	// /usr/share/zoneinfo; the system database is still preferred when present.
	_ "time/tzdata"

	intakev1 "github.com/intakehq/intake/proto/gen/intake/v1"
)

// Limits of a schedule and of NextRuns.
const (
	// MaxEveryMinutes is the largest N of "every N minutes" (one day).
	MaxEveryMinutes = 1440
	// MaxNextRuns bounds the n of NextRuns.
	MaxNextRuns = 1000
)

// A FieldError is one invalid field of a Schedule.
type FieldError struct {
	// Field is the path of the field inside the Schedule: "time_zone",
	// "every_minutes.minutes", "hourly.minute", "daily.hour",
	// "workdays.minute", "weekly.days", "weekly.days[2]", "monthly.day",
	// "cron.expression", ..., or "" for the Schedule as a whole (not set, no
	// cadence).
	Field string
	// Description says what is wrong, e.g. "25 is not an hour (0-23)".
	Description string
}

// Error is "schedule.<field>: <description>".
func (e FieldError) Error() string {
	if e.Field == "" {
		return "schedule: " + e.Description
	}
	return "schedule." + e.Field + ": " + e.Description
}

// FieldErrors are all the problems of a Schedule, in field order.
type FieldErrors []FieldError

// Error joins the problems into one line.
func (es FieldErrors) Error() string {
	parts := make([]string, len(es))
	for i, e := range es {
		parts[i] = e.Error()
	}
	return strings.Join(parts, "; ")
}

// Validate checks every field of s and returns one FieldError per problem;
// nil when s is valid.
func Validate(s *intakev1.Schedule) FieldErrors {
	_, es := parse(s)
	return es
}

// A Cadence is a valid Schedule, ready to compute fire times. Make one with
// Parse; the zero Cadence fires daily at 00:00 UTC.
type Cadence struct {
	loc   *time.Location
	every time.Duration // every N minutes when > 0
	wall  *wallSpec     // the other cadences; nil with every == 0: daily at 00:00
}

// Parse validates s and returns its Cadence. The error is a FieldErrors
// listing every problem.
func Parse(s *intakev1.Schedule) (Cadence, error) {
	c, es := parse(s)
	if len(es) > 0 {
		return Cadence{}, es
	}
	return c, nil
}

// cadences lists the cadence fields, for the error of a Schedule without one.
const cadences = "every_minutes, hourly, daily, workdays, weekly, monthly or cron"

func parse(s *intakev1.Schedule) (Cadence, FieldErrors) {
	var es FieldErrors
	add := func(field, format string, args ...any) {
		es = append(es, FieldError{Field: field, Description: fmt.Sprintf(format, args...)})
	}
	if s == nil {
		add("", "not set")
		return Cadence{}, es
	}
	loc, err := LoadLocation(s.GetTimeZone())
	if err != nil {
		add("time_zone", "%v", err)
	}
	c := Cadence{loc: loc}
	// hourMinute checks the wall-clock time of a fixed-time cadence.
	hourMinute := func(field string, h, m int32) (hours, minutes []int) {
		if h < 0 || h > 23 {
			add(field+".hour", "%d is not an hour (0-23)", h)
		}
		if m < 0 || m > 59 {
			add(field+".minute", "%d is not a minute (0-59)", m)
		}
		return []int{int(h)}, []int{int(m)}
	}
	switch k := s.GetCadence().(type) {
	case nil:
		add("", "a cadence is required (%s)", cadences)
	case *intakev1.Schedule_EveryMinutes:
		m := k.EveryMinutes.GetMinutes()
		if m < 1 || m > MaxEveryMinutes {
			add("every_minutes.minutes", "%d is out of range (1-%d)", m, MaxEveryMinutes)
		}
		c.every = time.Duration(m) * time.Minute
	case *intakev1.Schedule_Hourly:
		m := k.Hourly.GetMinute()
		if m < 0 || m > 59 {
			add("hourly.minute", "%d is not a minute (0-59)", m)
		}
		c.wall = &wallSpec{hours: allHours, minutes: []int{int(m)}, day: everyDay, realTime: true}
	case *intakev1.Schedule_Daily:
		h, m := hourMinute("daily", k.Daily.GetHour(), k.Daily.GetMinute())
		c.wall = &wallSpec{hours: h, minutes: m, day: everyDay}
	case *intakev1.Schedule_Workdays:
		h, m := hourMinute("workdays", k.Workdays.GetHour(), k.Workdays.GetMinute())
		c.wall = &wallSpec{hours: h, minutes: m, day: workday}
	case *intakev1.Schedule_Weekly:
		var days [7]bool
		if len(k.Weekly.GetDays()) == 0 {
			add("weekly.days", "at least one day is required")
		}
		for i, d := range k.Weekly.GetDays() {
			if d < intakev1.Weekday_WEEKDAY_MONDAY || d > intakev1.Weekday_WEEKDAY_SUNDAY {
				add(fmt.Sprintf("weekly.days[%d]", i), "%s is not a day of the week (MONDAY-SUNDAY)", d)
				continue
			}
			days[time.Weekday(d%7)] = true // Sunday is 7 in the enum, 0 in Go
		}
		h, m := hourMinute("weekly", k.Weekly.GetHour(), k.Weekly.GetMinute())
		c.wall = &wallSpec{hours: h, minutes: m, day: func(_ int, _ time.Month, _ int, wd time.Weekday) bool { return days[wd] }}
	case *intakev1.Schedule_Monthly:
		day := int(k.Monthly.GetDay())
		last := k.Monthly.GetLastDay()
		if !last && (day < 1 || day > 31) {
			add("monthly.day", "%d is not a day of the month (1-31; or set last_day)", day)
		}
		h, m := hourMinute("monthly", k.Monthly.GetHour(), k.Monthly.GetMinute())
		c.wall = &wallSpec{hours: h, minutes: m, day: func(y int, mo time.Month, d int, _ time.Weekday) bool {
			n := daysIn(y, mo)
			if last {
				return d == n
			}
			return d == min(day, n)
		}}
	case *intakev1.Schedule_Cron:
		w, err := parseCron(k.Cron.GetExpression())
		if err != nil {
			add("cron.expression", "%v", err)
		}
		c.wall = w
	default:
		add("", "cadence %T is not supported", k)
	}
	return c, es
}

// LoadLocation loads an IANA time zone; empty means UTC. "Local" is refused:
// it would mean whatever zone the server happens to run in.
//
// A zone is loaded once per process and shared: time.LoadLocation reads and
// parses the zone file on every call (about 9 KB and 11 µs), and a
// *time.Location is immutable, so every schedule in one zone can use the
// same one. Unknown names are not remembered.
func LoadLocation(name string) (*time.Location, error) {
	if name == "" {
		return time.UTC, nil
	}
	if name == "Local" {
		return nil, fmt.Errorf("%q is not an IANA time zone (e.g. \"Europe/Berlin\")", name)
	}
	if loc, ok := locations.Load(name); ok {
		return loc.(*time.Location), nil
	}
	loc, err := time.LoadLocation(name)
	if err != nil {
		return nil, fmt.Errorf("unknown time zone %q (use an IANA name such as \"Europe/Berlin\")", name)
	}
	actual, _ := locations.LoadOrStore(name, loc)
	return actual.(*time.Location), nil
}

// locations caches the zones LoadLocation loaded, by name. It only grows
// with valid IANA names (a few hundred at most), and its values never
// change: a memo of the zone database, not state.
var locations sync.Map // string → *time.Location

// Location is the schedule's time zone.
func (c Cadence) Location() *time.Location {
	if c.loc == nil {
		return time.UTC
	}
	return c.loc
}

// Next is the first fire time strictly after after, in the schedule's zone.
// It is the zero time only if the schedule never fires in the next nine
// years, which Validate refuses.
func (c Cadence) Next(after time.Time) time.Time {
	switch {
	case c.every > 0:
		return NextEvery(after, c.every).In(c.Location())
	case c.wall == nil:
		return NextDaily(after, 0, 0, c.Location())
	}
	return c.wall.next(after, c.Location())
}

// Prev is the last fire time at or before at, in the schedule's zone: the
// tick a scheduler that was down at it would catch up. It is the zero time
// if the schedule did not fire in the nine years before at.
func (c Cadence) Prev(at time.Time) time.Time {
	if c.every > 0 {
		return NextEvery(at, c.every).Add(-c.every).In(c.Location())
	}
	// Walk forward from ever further back: fire times are a fixed set of
	// instants, so the last one found at or before at is the previous one.
	for _, back := range []time.Duration{2 * time.Hour, 50 * time.Hour, 33 * 24 * time.Hour, 367 * 24 * time.Hour, scanDays * 24 * time.Hour} {
		var prev time.Time
		for t := c.Next(at.Add(-back)); !t.IsZero() && !t.After(at); t = c.Next(t) {
			prev = t
		}
		if !prev.IsZero() {
			return prev
		}
	}
	return time.Time{}
}

// NextRuns returns the next n fire times of s strictly after after, in the
// schedule's time zone. It returns a FieldErrors saying which fields are
// wrong when s is invalid.
func NextRuns(s *intakev1.Schedule, after time.Time, n int) ([]time.Time, error) {
	if n < 0 || n > MaxNextRuns {
		return nil, fmt.Errorf("schedule: next runs count is %d, must be 0 to %d", n, MaxNextRuns)
	}
	c, err := Parse(s)
	if err != nil {
		return nil, err
	}
	return c.NextN(after, n), nil
}

// NextN returns the next n fire times strictly after after (fewer only if
// the schedule stops firing, which Validate refuses).
func (c Cadence) NextN(after time.Time, n int) []time.Time {
	out := make([]time.Time, 0, n)
	t := after
	for range n {
		if t = c.Next(t); t.IsZero() {
			break
		}
		out = append(out, t)
	}
	return out
}

// NextEvery is the first multiple of every (whole seconds, at least one)
// since the Unix epoch strictly after after, in UTC. Anchoring at the epoch
// (not at process start) gives every replica and every restart the same
// ticks, so the run of a tick is created once, and "every 15 minutes" fires
// at :00, :15, :30 and :45.
func NextEvery(after time.Time, every time.Duration) time.Time {
	p := int64(every / time.Second)
	if p < 1 {
		p = 1
	}
	u := after.Unix() // floor: after.Unix() <= after
	k := u / p
	if u%p != 0 && u < 0 {
		k--
	}
	return time.Unix((k+1)*p, 0).UTC()
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
	panic(fmt.Sprintf("schedule: no daily fire after %s for %02d:%02d in %s", after, hour, minute, loc))
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
