package mapping

import (
	"fmt"
	"strings"
)

type dateKind uint8

const (
	dateISO     dateKind = iota // ISO 8601, also the default
	dateUnix                    // seconds since the epoch
	dateUnixMs                  // milliseconds since the epoch
	datePattern                 // a yyyy-MM-dd style pattern
)

type tokKind uint8

const (
	tokLiteral tokKind = iota
	tokYear4
	tokYear2
	tokMonth
	tokMonthName
	tokDay
	tokHour24
	tokHour12
	tokMinute
	tokSecond
	tokFraction
	tokAmPm
	tokZone
)

type dateToken struct {
	kind     tokKind
	lit      string
	min, max int // digits of a numeric token
}

// dateFormat is a compiled date source format.
type dateFormat struct {
	kind   dateKind
	name   string // as shown in error messages
	tokens []dateToken
	// isoDay: the pattern is yyyy-MM-dd, whose usual values (2024-01-31)
	// the ISO parser reads faster.
	isoDay bool
}

const dateTokensHelp = "use yyyy, yy, MMMM, MMM, MM, M, dd, d, HH, H, hh, h, mm, ss, SSS, a and XXX (a zone offset), quote other letters with '...', or use iso8601, unix or unix_ms"

// parseDateFormat compiles a date source format.
func parseDateFormat(f string) (dateFormat, error) {
	switch strings.ToLower(strings.TrimSpace(f)) {
	case "":
		return dateFormat{kind: dateISO, name: "yyyy-MM-dd (ISO 8601)"}, nil
	case "iso8601", "iso 8601", "iso-8601":
		return dateFormat{kind: dateISO, name: "iso8601"}, nil
	case "unix":
		return dateFormat{kind: dateUnix, name: "unix"}, nil
	case "unix_ms":
		return dateFormat{kind: dateUnixMs, name: "unix_ms"}, nil
	}
	df := dateFormat{kind: datePattern, name: f}
	var lit strings.Builder
	flush := func() {
		if lit.Len() > 0 {
			df.tokens = append(df.tokens, dateToken{kind: tokLiteral, lit: lit.String()})
			lit.Reset()
		}
	}
	seen := map[tokKind]bool{}
	field := func(k tokKind) tokKind {
		switch k {
		case tokYear4, tokYear2:
			return tokYear4
		case tokMonth, tokMonthName:
			return tokMonth
		case tokHour24, tokHour12:
			return tokHour24
		}
		return k
	}
	fieldName := map[tokKind]string{tokYear4: "year", tokMonth: "month", tokDay: "day", tokHour24: "hour", tokMinute: "minute", tokSecond: "second", tokFraction: "fraction of a second", tokAmPm: "AM/PM marker", tokZone: "zone"}
	for i := 0; i < len(f); {
		c := f[i]
		if c == '\'' {
			// Quoted literal; '' is a quote.
			if i+1 < len(f) && f[i+1] == '\'' {
				lit.WriteByte('\'')
				i += 2
				continue
			}
			end := strings.IndexByte(f[i+1:], '\'')
			if end < 0 {
				return dateFormat{}, fmt.Errorf("%q is not a date format: the quote at position %d is not closed", f, i+1)
			}
			lit.WriteString(f[i+1 : i+1+end])
			i += end + 2
			continue
		}
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z') {
			lit.WriteByte(c)
			i++
			continue
		}
		j := i
		for j < len(f) && f[j] == c {
			j++
		}
		n := j - i
		var t dateToken
		ok := true
		switch {
		case c == 'y' && n == 4:
			t = dateToken{kind: tokYear4, min: 4, max: 4}
		case c == 'y' && n == 2:
			t = dateToken{kind: tokYear2, min: 2, max: 2}
		case c == 'M' && n <= 2:
			t = dateToken{kind: tokMonth, min: 1, max: 2}
		case c == 'M' && n <= 4:
			t = dateToken{kind: tokMonthName}
		case c == 'd' && n <= 2:
			t = dateToken{kind: tokDay, min: 1, max: 2}
		case c == 'H' && n <= 2:
			t = dateToken{kind: tokHour24, min: 1, max: 2}
		case c == 'h' && n <= 2:
			t = dateToken{kind: tokHour12, min: 1, max: 2}
		case c == 'm' && n <= 2:
			t = dateToken{kind: tokMinute, min: 1, max: 2}
		case c == 's' && n <= 2:
			t = dateToken{kind: tokSecond, min: 1, max: 2}
		case c == 'S' && n <= 9:
			t = dateToken{kind: tokFraction, min: 1, max: 9}
		case c == 'a' && n == 1:
			t = dateToken{kind: tokAmPm}
		case (c == 'X' || c == 'Z') && n <= 3:
			// Any of Z, +02, +0200, +02:00 (also UTC and GMT), whichever
			// of X, XX, XXX, Z the pattern says.
			t = dateToken{kind: tokZone}
		default:
			ok = false
		}
		if !ok {
			return dateFormat{}, fmt.Errorf("%q is not a date format: %q at position %d is not a pattern (%s)", f, f[i:j], i+1, dateTokensHelp)
		}
		fk := field(t.kind)
		if seen[fk] {
			return dateFormat{}, fmt.Errorf("%q is not a date format: it has the %s twice", f, fieldName[fk])
		}
		seen[fk] = true
		flush()
		df.tokens = append(df.tokens, t)
		i = j
	}
	flush()
	df.isoDay = f == "yyyy-MM-dd"
	var missing []string
	if !seen[tokYear4] {
		missing = append(missing, "year (yyyy or yy)")
	}
	if !seen[tokMonth] {
		missing = append(missing, "month (MMMM, MMM, MM or M)")
	}
	if !seen[tokDay] {
		missing = append(missing, "day (dd or d)")
	}
	if len(missing) > 0 {
		return dateFormat{}, fmt.Errorf("%q is not a date format: it has no %s (%s)", f, strings.Join(missing, ", no "), dateTokensHelp)
	}
	return df, nil
}

// dateFields are the fields a date or date-time value was read into.
type dateFields struct {
	y, mo, d   int
	h, mi, sec int
	// usec is the fraction of a second in microseconds (a longer fraction
	// is cut).
	usec int
	// zone is set when the value has a zone; off is its offset east of
	// UTC, in seconds.
	zone bool
	off  int
}

// parse converts a date cell (trimmed, not empty) to days since 1970-01-01.
// On failure it returns a detail ("" when the value simply does not match).
func (df *dateFormat) parse(s string) (days int32, ok bool, detail string) {
	switch df.kind {
	case dateISO:
		return parseISODate(s)
	case dateUnix:
		return parseUnix(s, 86400)
	case dateUnixMs:
		return parseUnix(s, 86400*1000)
	}
	if df.isoDay && len(s) == 10 && s[4] == '-' && s[7] == '-' {
		return parseISODate(s)
	}
	f, ok, detail := df.scan(s)
	if !ok {
		return 0, false, detail
	}
	return civilDays(f.y, f.mo, f.d)
}

// fields reads a cell of an ISO 8601 or pattern format into its fields,
// checking the time of day and the offset but not the calendar date.
func (df *dateFormat) fields(s string) (dateFields, bool, string) {
	if df.kind == dateISO {
		return parseISOFields(s)
	}
	return df.scan(s)
}

// scan reads a cell of a pattern format into its fields, checking the time
// of day and the offset but not the calendar date (civilDays does).
func (df *dateFormat) scan(s string) (dateFields, bool, string) {
	f := dateFields{y: -1, mo: -1, d: -1}
	h12, pm := false, false
	i := 0
	for _, t := range df.tokens {
		switch t.kind {
		case tokLiteral:
			if !strings.HasPrefix(s[i:], t.lit) {
				return f, false, ""
			}
			i += len(t.lit)
			continue
		case tokMonthName:
			m, w := monthName(s[i:])
			if m == 0 {
				return f, false, ""
			}
			f.mo = m
			i += w
			continue
		case tokAmPm:
			if len(s)-i < 2 || (s[i+1] != 'M' && s[i+1] != 'm') {
				return f, false, ""
			}
			c := s[i] | 0x20
			if c != 'a' && c != 'p' {
				return f, false, ""
			}
			pm = c == 'p'
			i += 2
			continue
		case tokZone:
			off, w, detail := parseOffset(s[i:])
			if w == 0 {
				return f, false, detail
			}
			f.zone, f.off = true, off
			i += w
			continue
		}
		v, j := 0, i
		for j < len(s) && j-i < t.max && isDigit(s[j]) {
			v = v*10 + int(s[j]-'0')
			j++
		}
		if j-i < t.min {
			return f, false, ""
		}
		switch t.kind {
		case tokYear4:
			f.y = v
		case tokYear2:
			if v >= 69 {
				f.y = 1900 + v
			} else {
				f.y = 2000 + v
			}
		case tokMonth:
			f.mo = v
		case tokDay:
			f.d = v
		case tokHour24:
			f.h = v
		case tokHour12:
			f.h, h12 = v, true
		case tokMinute:
			f.mi = v
		case tokSecond:
			f.sec = v
		case tokFraction:
			f.usec = fractionMicros(s[i:j])
		}
		i = j
	}
	if i != len(s) {
		return f, false, ""
	}
	if h12 {
		if f.h < 1 || f.h > 12 {
			return f, false, fmt.Sprintf("hour %d is not 1-12", f.h)
		}
		f.h %= 12
		if pm {
			f.h += 12
		}
	} else if f.h > 23 {
		return f, false, fmt.Sprintf("hour %d is not 0-23", f.h)
	}
	if f.mi > 59 {
		return f, false, fmt.Sprintf("minute %d is not 0-59", f.mi)
	}
	if f.sec > 60 {
		return f, false, fmt.Sprintf("second %d is not 0-59", f.sec)
	}
	return f, true, ""
}

// fractionMicros is a fraction of a second, given by its digits, in
// microseconds; digits past the sixth are cut.
func fractionMicros(digits string) int {
	us := 0
	for k := 0; k < 6; k++ {
		us *= 10
		if k < len(digits) {
			us += int(digits[k] - '0')
		}
	}
	return us
}

// maxOffsetHours bounds a zone offset (as ISO 8601 and package time do).
const maxOffsetHours = 18

// parseOffset reads a zone at the start of s: Z, UTC or GMT (any case), or
// an offset +hh, +hhmm or +hh:mm (or with '-'). It returns the offset east
// of UTC in seconds and the bytes read; 0 bytes when there is none, with a
// detail when the offset is out of range.
func parseOffset(s string) (off, n int, detail string) {
	if s == "" {
		return 0, 0, ""
	}
	switch s[0] {
	case 'Z', 'z':
		return 0, 1, ""
	case 'U', 'u', 'G', 'g':
		if len(s) >= 3 && (strings.EqualFold(s[:3], "UTC") || strings.EqualFold(s[:3], "GMT")) {
			return 0, 3, ""
		}
		return 0, 0, ""
	case '+', '-':
	default:
		return 0, 0, ""
	}
	oh, ok := digitsAt(s, 1, 2)
	if !ok {
		return 0, 0, ""
	}
	n, om := 3, 0
	switch {
	case len(s) >= 6 && s[3] == ':':
		if om, ok = digitsAt(s, 4, 2); !ok {
			return 0, 0, ""
		}
		n = 6
	case len(s) >= 5 && isDigit(s[3]):
		if om, ok = digitsAt(s, 3, 2); !ok {
			return 0, 0, ""
		}
		n = 5
	}
	if oh > maxOffsetHours || om > 59 || oh == maxOffsetHours && om > 0 {
		return 0, 0, fmt.Sprintf("offset %s is not between -18:00 and +18:00", s[:n])
	}
	off = oh*3600 + om*60
	if s[0] == '-' {
		off = -off
	}
	return off, n, ""
}

// civilDays validates a calendar date and returns its days since the epoch.
func civilDays(y, m, d int) (int32, bool, string) {
	if m < 1 || m > 12 {
		return 0, false, fmt.Sprintf("month %d is not 1-12", m)
	}
	if dim := daysIn(y, m); d < 1 || d > dim {
		return 0, false, fmt.Sprintf("day %d is not 1-%d in %s %d", d, dim, monthNames[m-1], y)
	}
	return int32(daysFromCivil(y, m, d)), true, ""
}

var monthNames = [12]string{"January", "February", "March", "April", "May", "June", "July", "August", "September", "October", "November", "December"}

// monthName matches an English month name or its abbreviation at the start
// of s, in any case. It returns the month (0 if none) and the bytes used.
func monthName(s string) (int, int) {
	for m, name := range monthNames {
		if len(s) >= len(name) && strings.EqualFold(s[:len(name)], name) {
			return m + 1, len(name)
		}
	}
	if len(s) >= 4 && strings.EqualFold(s[:4], "sept") {
		return 9, 4
	}
	for m, name := range monthNames {
		if len(s) >= 3 && strings.EqualFold(s[:3], name[:3]) {
			return m + 1, 3
		}
	}
	return 0, 0
}

func daysIn(y, m int) int {
	switch m {
	case 2:
		if y%4 == 0 && (y%100 != 0 || y%400 == 0) {
			return 29
		}
		return 28
	case 4, 6, 9, 11:
		return 30
	}
	return 31
}

// daysFromCivil is the number of days from 1970-01-01 to y-m-d in the
// proleptic Gregorian calendar (H. Hinnant's algorithm).
func daysFromCivil(y, m, d int) int {
	if m <= 2 {
		y--
	}
	era := y
	if era < 0 {
		era -= 399
	}
	era /= 400
	yoe := y - era*400
	mp := (m + 9) % 12
	doy := (153*mp+2)/5 + d - 1
	doe := yoe*365 + yoe/4 - yoe/100 + doy
	return era*146097 + doe - 719468
}

// civilFromDays is the inverse of daysFromCivil (H. Hinnant's algorithm).
func civilFromDays(z int) (y, m, d int) {
	z += 719468
	era := z
	if era < 0 {
		era -= 146096
	}
	era /= 146097
	doe := z - era*146097
	yoe := (doe - doe/1460 + doe/36524 - doe/146096) / 365
	y = yoe + era*400
	doy := doe - (365*yoe + yoe/4 - yoe/100)
	mp := (5*doy + 2) / 153
	d = doy - (153*mp+2)/5 + 1
	if mp < 10 {
		m = mp + 3
	} else {
		m = mp - 9
	}
	if m <= 2 {
		y++
	}
	return y, m, d
}

// digitsAt reads exactly n digits at s[i:].
func digitsAt(s string, i, n int) (int, bool) {
	if i+n > len(s) {
		return 0, false
	}
	v := 0
	for _, c := range []byte(s[i : i+n]) {
		if !isDigit(c) {
			return 0, false
		}
		v = v*10 + int(c-'0')
	}
	return v, true
}

// parseISODate reads an ISO 8601 calendar date with an optional time of day
// and offset: 2024-01-31, 2024-01-31T10:20, 2024-01-31 10:20:30.123+02:00,
// 2024-01-31T10:20:30Z. The date is taken as written.
func parseISODate(s string) (int32, bool, string) {
	y, ok1 := digitsAt(s, 0, 4)
	m, ok2 := digitsAt(s, 5, 2)
	d, ok3 := digitsAt(s, 8, 2)
	if !ok1 || !ok2 || !ok3 || s[4] != '-' || s[7] != '-' {
		return 0, false, ""
	}
	if len(s) > 10 {
		if !isoTime(s[10:]) {
			return 0, false, ""
		}
	}
	return civilDays(y, m, d)
}

// isoTime checks the time part of an ISO 8601 date-time, from its separator.
func isoTime(s string) bool {
	if s[0] != 'T' && s[0] != 't' && s[0] != ' ' {
		return false
	}
	h, ok1 := digitsAt(s, 1, 2)
	mi, ok2 := digitsAt(s, 4, 2)
	if !ok1 || !ok2 || s[3] != ':' || h > 24 || mi > 59 {
		return false
	}
	i := 6
	if i < len(s) && s[i] == ':' {
		sec, ok := digitsAt(s, i+1, 2)
		if !ok || sec > 60 {
			return false
		}
		i += 3
		if i < len(s) && (s[i] == '.' || s[i] == ',') {
			i++
			start := i
			for i < len(s) && isDigit(s[i]) {
				i++
			}
			if i == start {
				return false
			}
		}
	}
	if i == len(s) {
		return true
	}
	switch s[i] {
	case 'Z', 'z':
		return i+1 == len(s)
	case '+', '-':
		oh, ok := digitsAt(s, i+1, 2)
		if !ok || oh > 18 {
			return false
		}
		rest := s[i+3:]
		switch {
		case rest == "":
			return true
		case len(rest) == 3 && rest[0] == ':':
			om, ok := digitsAt(rest, 1, 2)
			return ok && om < 60
		case len(rest) == 2:
			om, ok := digitsAt(rest, 0, 2)
			return ok && om < 60
		}
	}
	return false
}

// parseUnix reads an integer (for seconds, optionally with a fraction)
// count of units since the epoch and returns its UTC date.
func parseUnix(s string, perDay int64) (int32, bool, string) {
	i, neg := 0, false
	if s[0] == '-' || s[0] == '+' {
		neg = s[0] == '-'
		i++
	}
	start := i
	var v int64
	for i < len(s) && isDigit(s[i]) {
		if i-start >= 15 {
			return 0, false, "the timestamp is out of range"
		}
		v = v*10 + int64(s[i]-'0')
		i++
	}
	if i == start {
		return 0, false, ""
	}
	if i < len(s) && s[i] == '.' && perDay == 86400 {
		i++
		fs := i
		for i < len(s) && isDigit(s[i]) {
			i++
		}
		if i == fs {
			return 0, false, ""
		}
		if neg && strings.Trim(s[fs:i], "0") != "" {
			v++ // -1.5 s is in the day before -1 s.
		}
	}
	if i != len(s) {
		return 0, false, ""
	}
	if neg {
		v = -v
	}
	days := v / perDay
	if v%perDay < 0 {
		days--
	}
	// PostgreSQL dates end at 5874897 AD; keep to years 0000-9999.
	if days < -719528 || days > 2932896 {
		return 0, false, "the timestamp is out of range"
	}
	return int32(days), true, ""
}
