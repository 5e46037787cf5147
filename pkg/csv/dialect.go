// Package csv reads CSV files fast, with few allocations and a configurable
// dialect, and finds record boundaries for the chunker with exactly the same
// rules, so that cutting a file into chunks and reading each chunk gives the
// records (and record numbers) reading the whole file gives.
//
// # Syntax
//
// A Dialect sets the delimiter (Comma, any character but a line break), the
// quote character (Quote, ASCII, or 0 for no quoting) and the escape
// character used inside quoted fields (Escape, ASCII; the quote itself, the
// default, means a doubled quote as in RFC 4180).
//
//   - A record ends at a line feed ("\n" or "\r\n") outside a quoted field,
//     or at the end of the input (where a trailing "\r" is dropped).
//   - A line that is empty ("\n", "\r\n") where a record would start is not
//     a record: it is skipped and not counted.
//   - A field that starts with the quote is quoted. It may hold delimiters,
//     line feeds (a "\r\n" in it reads as "\n") and escaped quotes. It ends at
//     a quote followed by the delimiter or by the end of the record.
//   - Inside a quoted field, a doubled quote ("") is one quote. With an escape
//     character other than the quote (e.g. '\\'), the escape followed by the
//     quote or by itself is that character; followed by anything else it is
//     literal. (A doubled quote is accepted in that mode too.)
//   - Any other quote inside a quoted field is literal for finding where the
//     record ends (as encoding/csv's LazyQuotes reads it), but the record is
//     malformed: Reader.Read returns it with a *ParseError wrapping
//     ErrExtraneousQuote.
//   - A quote inside an unquoted field is literal (5" disk).
//   - A quoted field still open at the end of the input is an error
//     (ErrUnterminatedQuote); the record then runs to the end of the input.
//   - A UTF-8 byte order mark at the very start of the input is skipped
//     (unless KeepBOM is set).
//
// With the default dialect and well-formed input the records are those of
// encoding/csv with LazyQuotes set.
//
// Records are numbered from 1 in input order, blank lines not counted, and a
// malformed record still counts: after it, reading goes on with the next
// record, found as the Splitter (and so the chunker) finds it.
package csv

import (
	"errors"
	"fmt"
	"unicode/utf8"
)

// Dialect describes how a CSV file is written.
type Dialect struct {
	// Comma is the field delimiter. 0 means ','.
	Comma rune
	// Quote opens and closes a quoted field; 0 turns quoting off (every
	// quote is literal). Must be ASCII.
	Quote rune
	// Escape escapes a quote inside a quoted field. 0 or Quote means a
	// doubled quote (RFC 4180); '\\' means backslash escapes. Must be ASCII.
	Escape rune
}

// Default is the RFC 4180 dialect: comma, double quote, doubled quotes.
var Default = Dialect{Comma: ',', Quote: '"', Escape: '"'}

// Errors of Dialect.Validate. Use errors.Is.
var (
	ErrInvalidDelimiter = errors.New("invalid delimiter")
	ErrInvalidQuote     = errors.New("invalid quote character")
	ErrInvalidEscape    = errors.New("invalid escape character")
)

// Resolved returns d with its defaults applied: Comma ',' when 0, Escape
// Quote when 0 (and 0 when quoting is off).
func (d Dialect) Resolved() Dialect {
	if d.Comma == 0 {
		d.Comma = ','
	}
	if d.Escape == 0 || d.Quote == 0 {
		d.Escape = d.Quote
	}
	return d
}

// Validate checks the dialect (after defaults): a delimiter that is one valid
// character and not a line break, and a quote and escape that are ASCII,
// not line breaks and not the delimiter.
func (d Dialect) Validate() error {
	d = d.Resolved()
	switch c := d.Comma; {
	case c == '\n' || c == '\r':
		return fmt.Errorf("%w %q: a line break cannot be the delimiter", ErrInvalidDelimiter, c)
	case c < 0 || !utf8.ValidRune(c) || c == utf8.RuneError:
		return fmt.Errorf("%w %q: not a valid character", ErrInvalidDelimiter, c)
	}
	if d.Quote == 0 {
		return nil
	}
	switch q := d.Quote; {
	case q < 0 || q >= utf8.RuneSelf:
		return fmt.Errorf("%w %q: must be an ASCII character", ErrInvalidQuote, q)
	case q == '\n' || q == '\r':
		return fmt.Errorf("%w %q: a line break cannot be the quote", ErrInvalidQuote, q)
	case q == d.Comma:
		return fmt.Errorf("%w: the delimiter and the quote are both %q", ErrInvalidQuote, q)
	}
	switch e := d.Escape; {
	case e < 0 || e >= utf8.RuneSelf:
		return fmt.Errorf("%w %q: must be an ASCII character", ErrInvalidEscape, e)
	case e == '\n' || e == '\r':
		return fmt.Errorf("%w %q: a line break cannot be the escape character", ErrInvalidEscape, e)
	case e == d.Comma:
		return fmt.Errorf("%w: the delimiter and the escape character are both %q", ErrInvalidEscape, e)
	}
	return nil
}

// syntax is a validated dialect in the form the scanners use.
type syntax struct {
	comma   []byte // the delimiter's UTF-8 bytes
	comma0  byte   // comma[0]
	quoting bool
	quote   byte
	escape  byte
	escaped bool // escape != quote
}

func newSyntax(d Dialect) (syntax, error) {
	if err := d.Validate(); err != nil {
		return syntax{}, err
	}
	d = d.Resolved()
	s := syntax{comma: utf8.AppendRune(nil, d.Comma)}
	s.comma0 = s.comma[0]
	if d.Quote != 0 {
		s.quoting, s.quote, s.escape = true, byte(d.Quote), byte(d.Escape)
		s.escaped = s.escape != s.quote
	}
	return s, nil
}

// indexComma returns the index of the first delimiter in b, or -1.
func (s *syntax) indexComma(b []byte) int {
	if len(s.comma) == 1 {
		return indexByte(b, s.comma0)
	}
	return index(b, s.comma)
}

// hasComma reports whether b starts with the delimiter.
func (s *syntax) hasComma(b []byte) bool {
	if len(s.comma) == 1 {
		return len(b) > 0 && b[0] == s.comma0
	}
	return hasPrefix(b, s.comma)
}

// indexSpecial returns the index in b of the first quote or (when it is not
// the quote) escape character, or -1.
func (s *syntax) indexSpecial(b []byte) int {
	j := indexByte(b, s.quote)
	if !s.escaped {
		return j
	}
	if j < 0 {
		return indexByte(b, s.escape)
	}
	if k := indexByte(b[:j], s.escape); k >= 0 {
		return k
	}
	return j
}
