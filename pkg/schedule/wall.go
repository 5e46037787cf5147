package schedule

import (
	"slices"
	"sort"
	"time"
)

// scanDays bounds the search for a fire time: nine years of days, more than
// the longest gap of a valid schedule (a cron on February 29 waits eight
// years across 2100, which is not a leap year).
const scanDays = 9*366 + 1

// allHours is every hour of the day.
var allHours = []int{0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23}

func everyDay(int, time.Month, int, time.Weekday) bool { return true }

func workday(_ int, _ time.Month, _ int, wd time.Weekday) bool {
	return wd >= time.Monday && wd <= time.Friday
}

// daysIn is the number of days of month m of year y.
func daysIn(y int, m time.Month) int {
	return time.Date(y, m+1, 0, 0, 0, 0, 0, time.UTC).Day()
}

// A wallSpec is a cadence by wall-clock time: it fires at the given hours and
// minutes (sorted ascending, not empty) of the days day accepts.
type wallSpec struct {
	hours, minutes []int
	day            func(y int, m time.Month, d int, wd time.Weekday) bool
	// realTime: fire at every instant whose wall clock matches (hourly,
	// cron with a wildcard hour). Otherwise the ISC cron rule of fixed
	// times: every wall time fires once, a skipped one at the transition,
	// a repeated one at its first occurrence.
	realTime bool
}

// next is the first fire time strictly after after, or the zero time when
// there is none within scanDays.
func (w *wallSpec) next(after time.Time, loc *time.Location) time.Time {
	a := after.In(loc)
	// Start a day early: a skipped time at the end of a day fires at a
	// transition on the next calendar day. Far from any transition the
	// day before has no fire time after after.
	first := -1
	if farFromTransition(a) {
		first = 0
	}
	start := time.Date(a.Year(), a.Month(), a.Day()+first, 0, 0, 0, 0, time.UTC)
	var best time.Time
	for i := range scanDays {
		d := start.AddDate(0, 0, i)
		y, m, dd := d.Date()
		if !w.day(y, m, dd, d.Weekday()) {
			continue
		}
		t, ok := w.nextOnDay(y, m, dd, after, best, loc)
		if !ok {
			continue
		}
		if !best.IsZero() {
			// The day after the first day with a fire time may only
			// lower it in exotic zones (a repeated hour across midnight).
			return t
		}
		best = t
		if farFromTransition(best) {
			// The wall times of the next days all come later.
			return best
		}
		// Look at one more matching day, then stop.
	}
	return best
}

// farFromTransition reports whether no zone transition of t's location
// lies within two days of t: wall times there map to instants one to one,
// in order.
func farFromTransition(t time.Time) bool {
	const far = 2 * 24 * time.Hour
	start, end := t.ZoneBounds()
	return (start.IsZero() || t.Sub(start) > far) && (end.IsZero() || end.Sub(t) > far)
}

// nextOnDay is the earliest fire time strictly after after among the wall
// times of date y-m-d, when it is before bound (or bound is zero).
func (w *wallSpec) nextOnDay(y int, m time.Month, d int, after, bound time.Time, loc *time.Location) (time.Time, bool) {
	// pending: the wall time h:mi has an occurrence after after. It is
	// false for the day's first wall times, then true: latest occurrences
	// grow with the wall time (a skipped wall time counts as its
	// transition instant, which lies between its neighbours).
	pending := func(h, mi int) bool {
		occ := w.occurrences(y, m, d, h, mi, loc)
		if len(occ) == 0 {
			return dailyFire(y, m, d, h, mi, loc).After(after)
		}
		return occ[len(occ)-1].After(after)
	}
	lastMinute := w.minutes[len(w.minutes)-1]
	hi := sort.Search(len(w.hours), func(i int) bool { return pending(w.hours[i], lastMinute) })
	if hi == len(w.hours) {
		return bound, !bound.IsZero()
	}
	mi := sort.Search(len(w.minutes), func(i int) bool { return pending(w.hours[hi], w.minutes[i]) })
	best := bound
	for _, h := range w.hours[hi:] {
		for _, mm := range w.minutes[mi:] {
			occ := w.occurrences(y, m, d, h, mm, loc)
			if len(occ) == 0 {
				continue
			}
			// First occurrences grow with the wall time too: nothing
			// later on this day can be earlier than best.
			if !best.IsZero() && !occ[0].Before(best) {
				return best, true
			}
			for _, t := range occ {
				if t.After(after) && (best.IsZero() || t.Before(best)) {
					best = t
				}
			}
		}
		mi = 0
	}
	return best, !best.IsZero()
}

// occurrences are the instants, ascending, at which wall time y-m-d h:mi of
// loc fires: with realTime every instant showing that wall time (none in a
// spring-forward gap, two in a fall-back's repeated hour); otherwise exactly
// one, by the rule of daily.
func (w *wallSpec) occurrences(y int, m time.Month, d, h, mi int, loc *time.Location) []time.Time {
	if !w.realTime {
		return []time.Time{dailyFire(y, m, d, h, mi, loc)}
	}
	want := time.Date(y, m, d, h, mi, 0, 0, time.UTC)
	t := time.Date(y, m, d, h, mi, 0, 0, loc)
	start, end := t.ZoneBounds()
	// Far from a transition the wall time occurs once, at t.
	const far = 2 * 24 * time.Hour
	if (start.IsZero() || t.Sub(start) > far) && (end.IsZero() || end.Sub(t) > far) {
		return []time.Time{t}
	}
	_, off := t.Zone()
	offsets := []int{off}
	if !start.IsZero() {
		_, o := start.Add(-time.Second).Zone()
		offsets = append(offsets, o)
	}
	if !end.IsZero() {
		_, o := end.Zone()
		offsets = append(offsets, o)
	}
	var out []time.Time
	for _, o := range offsets {
		c := time.Unix(want.Unix()-int64(o), 0).In(loc)
		if wallClock(c).Equal(want) && !slices.ContainsFunc(out, c.Equal) {
			out = append(out, c)
		}
	}
	slices.SortFunc(out, time.Time.Compare)
	return out
}
