package schedule

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// cronMacros are the @ shorthands of a cron expression.
var cronMacros = map[string]string{
	"@yearly":   "0 0 1 1 *",
	"@annually": "0 0 1 1 *",
	"@monthly":  "0 0 1 * *",
	"@weekly":   "0 0 * * 0",
	"@daily":    "0 0 * * *",
	"@midnight": "0 0 * * *",
	"@hourly":   "0 * * * *",
}

// A cronField is one of the five fields of a cron expression.
type cronField struct {
	name     string
	min, max int
	names    []string // names[i] is the value min+i ("jan" is 1)
}

var (
	cronMinute = cronField{name: "minute", min: 0, max: 59}
	cronHour   = cronField{name: "hour", min: 0, max: 23}
	cronDom    = cronField{name: "day of month", min: 1, max: 31}
	cronMonth  = cronField{name: "month", min: 1, max: 12,
		names: []string{"jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"}}
	// Day of week 7 is Sunday too, as in ISC cron.
	cronDow = cronField{name: "day of week", min: 0, max: 7,
		names: []string{"sun", "mon", "tue", "wed", "thu", "fri", "sat"}}
)

// parseCron parses a standard five-field cron expression ("minute hour
// day-of-month month day-of-week") into a wallSpec. The error says which
// field is wrong and why, e.g. "minute 61 is out of range 0-59".
func parseCron(expr string) (*wallSpec, error) {
	expr = strings.TrimSpace(expr)
	if expr == "" {
		return nil, errors.New(`required (five fields: minute hour day-of-month month day-of-week, e.g. "30 6 * * 1-5")`)
	}
	if strings.HasPrefix(expr, "@") {
		m, ok := cronMacros[strings.ToLower(expr)]
		if !ok {
			return nil, fmt.Errorf("%q is not a cron shorthand (use @hourly, @daily, @weekly, @monthly or @yearly)", expr)
		}
		expr = m
	}
	fields := strings.Fields(expr)
	if len(fields) > 0 && (strings.HasPrefix(fields[0], "TZ=") || strings.HasPrefix(fields[0], "CRON_TZ=")) {
		return nil, fmt.Errorf("%q: set the zone in the schedule's time_zone, not in the expression", fields[0])
	}
	if len(fields) != 5 {
		return nil, fmt.Errorf("has %d fields, want 5 (minute hour day-of-month month day-of-week)", len(fields))
	}
	minutes, err := cronMinute.parse(fields[0])
	if err != nil {
		return nil, err
	}
	hours, err := cronHour.parse(fields[1])
	if err != nil {
		return nil, err
	}
	doms, err := cronDom.parse(fields[2])
	if err != nil {
		return nil, err
	}
	months, err := cronMonth.parse(fields[3])
	if err != nil {
		return nil, err
	}
	dows, err := cronDow.parse(fields[4])
	if err != nil {
		return nil, err
	}
	if dows[7] {
		dows[0] = true
	}
	// ISC cron: when either day field starts with "*" a day must match
	// both; when both are restricted it must match either.
	domStar, dowStar := strings.HasPrefix(fields[2], "*"), strings.HasPrefix(fields[4], "*")
	either := !domStar && !dowStar
	if !either && !domStar {
		// Only the day of month restricts the days: one of its months
		// must have one of its days (not "0 0 30 2 *").
		first := 1
		for !doms[first] {
			first++
		}
		ok := false
		for m := time.January; m <= time.December; m++ {
			ok = ok || months[m] && first <= daysIn(2028, m) // 2028: a leap year
		}
		if !ok {
			return nil, fmt.Errorf("never fires: no month in %q has day %d", fields[3], first)
		}
	}
	return &wallSpec{
		minutes: members(minutes),
		hours:   members(hours),
		day: func(_ int, m time.Month, d int, wd time.Weekday) bool {
			if !months[m] {
				return false
			}
			if either {
				return doms[d] || dows[wd]
			}
			return doms[d] && dows[wd]
		},
		// A wildcard or stepped hour follows real elapsed time, like
		// hourly; fixed hours follow the wall-clock rule of daily.
		realTime: strings.ContainsAny(fields[1], "*/"),
	}, nil
}

// members lists the set values, ascending.
func members(set []bool) []int {
	var out []int
	for v, ok := range set {
		if ok {
			out = append(out, v)
		}
	}
	return out
}

// parse parses one field: a comma-separated list of "*", a value, or a range
// "a-b", each optionally with a step "/n" ("a/n" means a to the maximum).
func (f cronField) parse(s string) ([]bool, error) {
	set := make([]bool, f.max+1)
	for item := range strings.SplitSeq(s, ",") {
		if item == "" {
			return nil, fmt.Errorf("%s %q has an empty list item", f.name, s)
		}
		rng, stepText, stepped := strings.Cut(item, "/")
		step := 1
		if stepped {
			n, err := strconv.Atoi(stepText)
			if err != nil || n < 1 {
				return nil, fmt.Errorf("%s step %q in %q is not a whole number of at least 1", f.name, stepText, item)
			}
			step = n
		}
		lo, hi := f.min, f.max
		if rng != "*" {
			loText, hiText, isRange := strings.Cut(rng, "-")
			var err error
			if lo, err = f.value(loText); err != nil {
				return nil, err
			}
			hi = lo
			switch {
			case isRange:
				if hi, err = f.value(hiText); err != nil {
					return nil, err
				}
				if hi < lo {
					return nil, fmt.Errorf("%s range %q is reversed (%d is after %d)", f.name, rng, lo, hi)
				}
			case stepped:
				hi = f.max
			}
		}
		for v := lo; v <= hi; v += step {
			set[v] = true
		}
	}
	return set, nil
}

// value parses a number or name of the field and checks its range.
func (f cronField) value(s string) (int, error) {
	for i, n := range f.names {
		if strings.EqualFold(s, n) {
			return f.min + i, nil
		}
	}
	v, err := strconv.Atoi(s)
	if err != nil {
		if f.names != nil {
			return 0, fmt.Errorf("%s %q is not a number or a name (%s-%s)", f.name, s, f.names[0], f.names[len(f.names)-1])
		}
		return 0, fmt.Errorf("%s %q is not a number", f.name, s)
	}
	if v < f.min || v > f.max {
		return 0, fmt.Errorf("%s %d is out of range %d-%d", f.name, v, f.min, f.max)
	}
	return v, nil
}
