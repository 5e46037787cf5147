package mapping

import (
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"
)

// numberFormat is how a number is written: its thousands separator (0 when
// the format has none) and its decimal separator.
type numberFormat struct {
	thousands rune
	decimal   byte
}

var defaultNumberFormat = numberFormat{thousands: ',', decimal: '.'}

// maxExponent bounds the exponent of a number such as "1e300", so a cell
// cannot make the mapper build a huge string.
const maxExponent = 1000

func isThousandsSep(r rune) bool {
	switch r {
	case ',', '.', ' ', '\u00a0', '\u202f', '\'', '\u2019', '_':
		return true
	}
	return false
}

// parseNumberFormat reads a source format written as an example number, such
// as "1,234.56", "1.234,56", "1 234,56" or "1234.5". For currency attributes
// a currency symbol or code in the example ("$1,234.56") is ignored.
func parseNumberFormat(f string, currency bool) (numberFormat, error) {
	s := trimSpace(f)
	if s == "" {
		return defaultNumberFormat, nil
	}
	if currency {
		s = trimSpace(strings.TrimSuffix(strings.TrimPrefix(s, "("), ")"))
		s = strings.TrimLeft(s, "+-")
		s = trimSpace(stripCurrencySuffix(trimSpace(stripCurrencyPrefix(s))))
	} else {
		s = strings.TrimLeft(s, "+-")
	}
	example := `write an example number such as "1,234.56", "1.234,56" or "1 234,56"`
	if s == "" || !isDigit(s[0]) || !isDigit(s[len(s)-1]) {
		return numberFormat{}, fmt.Errorf("%q is not a number format: %s", f, example)
	}
	// Separators in order: (rune, count of digits after it up to the next separator).
	type sep struct {
		r      rune
		digits int
	}
	var seps []sep
	for _, r := range s {
		switch {
		case r >= '0' && r <= '9':
			if len(seps) > 0 {
				seps[len(seps)-1].digits++
			}
		case isThousandsSep(r):
			seps = append(seps, sep{r: r})
		default:
			return numberFormat{}, fmt.Errorf("%q is not a number format (unexpected %q): %s", f, r, example)
		}
	}
	norm := func(r rune) rune {
		switch r {
		case '\u00a0', '\u202f':
			return ' '
		case '\u2019':
			return '\''
		}
		return r
	}
	if len(seps) == 0 {
		return numberFormat{decimal: '.'}, nil
	}
	last := seps[len(seps)-1]
	lastR := norm(last.r)
	sameAsLast := 0
	for _, sp := range seps {
		if norm(sp.r) == lastR {
			sameAsLast++
		}
	}
	if sameAsLast < len(seps) {
		// Two kinds of separators: the last one is the decimal separator.
		if sameAsLast != 1 || (lastR != '.' && lastR != ',') {
			return numberFormat{}, fmt.Errorf("%q is not a number format: the decimal separator must be one '.' or ',' after the thousands separators; %s", f, example)
		}
		th := norm(seps[0].r)
		for _, sp := range seps[:len(seps)-1] {
			if norm(sp.r) != th {
				return numberFormat{}, fmt.Errorf("%q is not a number format: it mixes thousands separators; %s", f, example)
			}
			if sp.digits != 3 {
				return numberFormat{}, fmt.Errorf("%q is not a number format: thousands separators must be followed by 3 digits; %s", f, example)
			}
		}
		return numberFormat{thousands: th, decimal: byte(lastR)}, nil
	}
	// One kind of separator.
	if len(seps) > 1 {
		for _, sp := range seps {
			if sp.digits != 3 {
				return numberFormat{}, fmt.Errorf("%q is not a number format: thousands separators must be followed by 3 digits; %s", f, example)
			}
		}
		switch lastR {
		case ',':
			return numberFormat{thousands: ',', decimal: '.'}, nil
		case '.':
			return numberFormat{thousands: '.', decimal: ','}, nil
		}
		return numberFormat{}, fmt.Errorf("%q is ambiguous: it does not show the decimal separator; write both separators, as in \"1 234,56\" or \"1 234.56\"", f)
	}
	if lastR != '.' && lastR != ',' {
		return numberFormat{}, fmt.Errorf("%q is ambiguous: it does not show the decimal separator; write both separators, as in \"1 234,56\" or \"1 234.56\"", f)
	}
	if last.digits == 3 {
		return numberFormat{}, fmt.Errorf("%q is ambiguous: %q may separate thousands or decimals; write both separators, as in \"1,234.56\" or \"1.234,56\"", f, lastR)
	}
	return numberFormat{decimal: byte(lastR)}, nil
}

// String shows the format as an example number.
func (nf numberFormat) String() string {
	if nf.thousands == 0 {
		return "1234" + string(rune(nf.decimal)) + "56"
	}
	return "1" + string(nf.thousands) + "234" + string(rune(nf.decimal)) + "56"
}

// thousandsAt reports the width of a thousands separator at s[i], or 0.
func (nf *numberFormat) thousandsAt(s string, i int) int {
	c := s[i]
	switch nf.thousands {
	case 0:
		return 0
	case ' ':
		if c == ' ' {
			return 1
		}
		if c >= utf8.RuneSelf {
			r, w := utf8.DecodeRuneInString(s[i:])
			if r == '\u00a0' || r == '\u202f' {
				return w
			}
		}
		return 0
	case '\'':
		if c == '\'' {
			return 1
		}
		if c >= utf8.RuneSelf && strings.HasPrefix(s[i:], "\u2019") {
			return len("\u2019")
		}
		return 0
	default:
		if rune(c) == nf.thousands {
			return 1
		}
		return 0
	}
}

// numberParser converts numbers to canonical decimal strings, reusing its
// buffers. It is not safe for concurrent use.
type numberParser struct {
	digits []byte
	out    []byte
	strs   arena
}

// parse converts a number cell (already trimmed, not empty). It returns the
// canonical decimal string and whether s is a number in format nf.
func (p *numberParser) parse(nf *numberFormat, s string) (string, bool) {
	if nf.decimal == '.' && isCanonicalDecimal(s) {
		return s, true
	}
	orig, neg := s, false
	if s[0] == '-' || s[0] == '+' {
		neg = s[0] == '-'
		s = s[1:]
	}
	return p.unsigned(nf, s, neg, orig)
}

// unsigned converts a number without its sign. When the canonical form is
// orig, orig is returned, so no string is made. It writes the canonical form
// in one pass; a number with an exponent goes to unsignedExp.
func (p *numberParser) unsigned(nf *numberFormat, s string, neg bool, orig string) (string, bool) {
	o := p.out[:0]
	if neg {
		o = append(o, '-')
	}
	start := len(o)
	i, n := 0, len(s)
	group, sawSep, nInt, nonZero := 0, false, 0, false
	for i < n {
		c := s[i]
		if isDigit(c) {
			if c != '0' || len(o) > start {
				o = append(o, c) // leading zeros are dropped
				nonZero = true
			}
			nInt++
			group++
			if sawSep && group > 3 {
				return "", false
			}
			i++
			continue
		}
		if w := nf.thousandsAt(s, i); w > 0 {
			if nInt == 0 || (sawSep && group != 3) || (!sawSep && group > 3) {
				return "", false
			}
			sawSep, group = true, 0
			i += w
			continue
		}
		break
	}
	if sawSep && group != 3 {
		return "", false
	}
	if len(o) == start {
		o = append(o, '0') // no integer digits, or only zeros
	}
	nFrac := 0
	if i < n && s[i] == nf.decimal {
		i++
		point := len(o)
		o = append(o, '.')
		for i < n && isDigit(s[i]) {
			if s[i] != '0' {
				nonZero = true
			}
			o = append(o, s[i])
			i++
			nFrac++
		}
		if nFrac == 0 {
			o = o[:point] // "5." is 5
		}
	}
	if nInt+nFrac == 0 {
		return "", false
	}
	if i < n {
		if s[i] == 'e' || s[i] == 'E' {
			return p.unsignedExp(nf, s, neg, orig)
		}
		return "", false
	}
	p.out = o[:0]
	if neg && !nonZero {
		o = o[1:] // no negative zero
	}
	if string(o) == orig {
		return orig, true
	}
	return p.strs.str(o), true
}

// unsignedExp is unsigned for a number that may have an exponent.
func (p *numberParser) unsignedExp(nf *numberFormat, s string, neg bool, orig string) (string, bool) {
	d := p.digits[:0]
	i, n := 0, len(s)
	group, sawSep, nInt := 0, false, 0
	for i < n {
		c := s[i]
		if isDigit(c) {
			d = append(d, c)
			nInt++
			group++
			if sawSep && group > 3 {
				return "", false
			}
			i++
			continue
		}
		if w := nf.thousandsAt(s, i); w > 0 {
			if nInt == 0 || (sawSep && group != 3) || (!sawSep && group > 3) {
				return "", false
			}
			sawSep, group = true, 0
			i += w
			continue
		}
		break
	}
	if sawSep && group != 3 {
		return "", false
	}
	if i < n && s[i] == nf.decimal {
		i++
		for i < n && isDigit(s[i]) {
			d = append(d, s[i])
			i++
		}
	}
	p.digits = d
	if len(d) == 0 {
		return "", false
	}
	exp := 0
	if i < n && (s[i] == 'e' || s[i] == 'E') {
		i++
		eneg := false
		if i < n && (s[i] == '+' || s[i] == '-') {
			eneg = s[i] == '-'
			i++
		}
		start := i
		for i < n && isDigit(s[i]) {
			exp = exp*10 + int(s[i]-'0')
			if exp > maxExponent {
				return "", false
			}
			i++
		}
		if i == start {
			return "", false
		}
		if eneg {
			exp = -exp
		}
	}
	if i != n {
		return "", false
	}
	return p.render(neg, d, nInt+exp, orig), true
}

// render writes digits with the decimal point after point digits.
func (p *numberParser) render(neg bool, d []byte, point int, orig string) string {
	o := p.out[:0]
	if neg && !allZeros(d) {
		o = append(o, '-')
	}
	switch {
	case point <= 0:
		o = append(o, '0', '.')
		for range -point {
			o = append(o, '0')
		}
		o = append(o, d...)
	case point >= len(d):
		ip := trimLeadingZeros(d)
		if len(ip) == 0 {
			o = append(o, '0')
			break
		}
		o = append(o, ip...)
		for range point - len(d) {
			o = append(o, '0')
		}
	default:
		ip := trimLeadingZeros(d[:point])
		if len(ip) == 0 {
			o = append(o, '0')
		}
		o = append(o, ip...)
		o = append(o, '.')
		o = append(o, d[point:]...)
	}
	p.out = o
	if string(o) == orig {
		return orig
	}
	return p.strs.str(o)
}

func allZeros(d []byte) bool {
	for _, c := range d {
		if c != '0' {
			return false
		}
	}
	return true
}

// trimLeadingZeros drops leading zeros of an integer part.
func trimLeadingZeros(d []byte) []byte {
	i := 0
	for i < len(d) && d[i] == '0' {
		i++
	}
	return d[i:]
}

// isCanonicalDecimal reports whether s is already in canonical form:
// -?(0|[1-9][0-9]*)(\.[0-9]+)?, and not a negative zero.
func isCanonicalDecimal(s string) bool {
	i, n := 0, len(s)
	neg := false
	if i < n && s[i] == '-' {
		neg = true
		i++
	}
	if i >= n {
		return false
	}
	nonZero := false
	if s[i] == '0' {
		i++
	} else {
		start := i
		for i < n && isDigit(s[i]) {
			i++
		}
		if i == start {
			return false
		}
		nonZero = true
	}
	if i < n {
		if s[i] != '.' {
			return false
		}
		i++
		start := i
		for i < n && isDigit(s[i]) {
			if s[i] != '0' {
				nonZero = true
			}
			i++
		}
		if i == start || i != n {
			return false
		}
	}
	return !neg || nonZero
}

// parseCurrency converts a currency cell (trimmed, not empty): a number in
// format nf with an optional currency symbol or code before or after it, a
// sign, or parentheses for a negative amount.
func (p *numberParser) parseCurrency(nf *numberFormat, s string) (string, bool) {
	if nf.decimal == '.' && isCanonicalDecimal(s) {
		return s, true
	}
	orig, neg, signed := s, false, false
	if len(s) >= 2 && s[0] == '(' && s[len(s)-1] == ')' {
		neg, signed = true, true
		s = trimSpace(s[1 : len(s)-1])
	}
	if s != "" && (s[0] == '-' || s[0] == '+') {
		if signed {
			return "", false
		}
		neg, signed = s[0] == '-', true
		s = trimSpace(s[1:])
	}
	s = trimSpace(stripCurrencyPrefix(s))
	if len(s) >= 2 && s[0] == '(' && s[len(s)-1] == ')' {
		if signed {
			return "", false
		}
		neg, signed = true, true
		s = trimSpace(s[1 : len(s)-1])
	}
	if s != "" && (s[0] == '-' || s[0] == '+') {
		if signed {
			return "", false
		}
		neg = s[0] == '-'
		s = trimSpace(s[1:])
	}
	s = trimSpace(stripCurrencySuffix(s))
	if s == "" || !(isDigit(s[0]) || s[0] == nf.decimal) {
		return "", false
	}
	return p.unsigned(nf, s, neg, orig)
}

// isCurrencyRune reports whether r may be part of a currency symbol or code.
func isCurrencyRune(r rune) bool {
	if r < utf8.RuneSelf {
		return r == '$' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z'
	}
	return unicode.Is(unicode.Sc, r) || unicode.IsLetter(r)
}

// maxCurrencyRunes bounds a currency symbol or code ("US$", "CHF", "€").
const maxCurrencyRunes = 4

// stripCurrencyPrefix drops a currency symbol or code at the start of s.
func stripCurrencyPrefix(s string) string {
	i, n := 0, 0
	for i < len(s) && n < maxCurrencyRunes {
		r, w := utf8.DecodeRuneInString(s[i:])
		if !isCurrencyRune(r) {
			break
		}
		i += w
		n++
	}
	if i < len(s) {
		if r, _ := utf8.DecodeRuneInString(s[i:]); isCurrencyRune(r) {
			return s // too long to be a currency symbol or code
		}
	}
	return s[i:]
}

// stripCurrencySuffix drops a currency symbol or code at the end of s.
func stripCurrencySuffix(s string) string {
	i, n := len(s), 0
	for i > 0 && n < maxCurrencyRunes {
		r, w := utf8.DecodeLastRuneInString(s[:i])
		if !isCurrencyRune(r) {
			break
		}
		i -= w
		n++
	}
	if i > 0 {
		if r, _ := utf8.DecodeLastRuneInString(s[:i]); isCurrencyRune(r) {
			return s
		}
	}
	return s[:i]
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

// trimSpace trims ASCII white space and no-break spaces, without allocating.
func trimSpace(s string) string {
	if s == "" || (s[0] > ' ' && s[0] < utf8.RuneSelf && s[len(s)-1] > ' ' && s[len(s)-1] < utf8.RuneSelf) {
		return s
	}
	return strings.TrimFunc(s, func(r rune) bool {
		return r == ' ' || r == '\t' || r == '\n' || r == '\r' || r == '\v' || r == '\f' || r == '\u00a0' || r == '\u202f'
	})
}
