package csv

import (
	"bytes"
	"errors"
	"fmt"
	"unicode/utf8"
)

// Errors of a record. Use errors.Is on the *ParseError.
var (
	// ErrExtraneousQuote: a quote inside a quoted field is neither escaped
	// nor followed by the delimiter or the end of the record. The record is
	// malformed; reading goes on with the next one.
	ErrExtraneousQuote = errors.New("extraneous quote in a quoted field")
	// ErrUnterminatedQuote: a quoted field is still open at the end of the
	// input. The record runs to the end of the input.
	ErrUnterminatedQuote = errors.New("quoted field is not closed")
	// ErrRecordTooLarge: a record is longer than MaxRecordBytes. Reading
	// stops there.
	ErrRecordTooLarge = errors.New("record is larger than the size limit")
)

// ParseError is a malformed record, or one too large to read.
type ParseError struct {
	// Record is the number of the record in the input, from 1.
	Record int64
	// Line is the 1-based line of the input on which the record starts.
	Line int64
	// ErrLine is the line of the problem: the stray quote, or the quote
	// that opened the field still open; 0 when unknown.
	ErrLine int64
	// Column is the 1-based character (not byte) on ErrLine; 0 when unknown.
	Column int
	// Limit is the size limit, for ErrRecordTooLarge.
	Limit int
	// Escape is the dialect's escape character, to say how a quote is written.
	Escape rune
	// Err is ErrExtraneousQuote, ErrUnterminatedQuote or ErrRecordTooLarge.
	Err error
}

// Error returns "record N (line L): " followed by Reason.
func (e *ParseError) Error() string {
	return fmt.Sprintf("record %d (line %d): %s", e.Record, e.Line, e.Reason())
}

// Unwrap returns Err.
func (e *ParseError) Unwrap() error { return e.Err }

// Reason describes the problem with its place in the record (not in the
// input), e.g. for a rejected row: `extraneous quote in a quoted field at
// character 7 (a quote inside quotes is written "")`.
func (e *ParseError) Reason() string {
	where := ""
	switch {
	case e.ErrLine > e.Line && e.Column > 0:
		where = fmt.Sprintf(" at line %d of the record, character %d", e.ErrLine-e.Line+1, e.Column)
	case e.Column > 0:
		where = fmt.Sprintf(" at character %d", e.Column)
	}
	switch e.Err {
	case ErrExtraneousQuote:
		how := `""`
		if e.Escape != 0 && e.Escape != '"' {
			how = string(e.Escape) + `"`
		}
		return fmt.Sprintf("%v%s (a quote inside quotes is written %s)", e.Err, where, how)
	case ErrUnterminatedQuote:
		if where != "" {
			return fmt.Sprintf("the quoted field opened%s is not closed before the end of the file", where)
		}
		return "a quoted field is not closed before the end of the file"
	case ErrRecordTooLarge:
		return fmt.Sprintf("the record is larger than the limit of %d bytes", e.Limit)
	}
	return fmt.Sprintf("%v%s", e.Err, where)
}

// position returns the line (counted from the record's first line) and the
// 1-based character column of offset off in the record's bytes raw.
func position(raw []byte, off int) (line int64, col int) {
	if off > len(raw) {
		off = len(raw)
	}
	start := 0
	if i := bytes.LastIndexByte(raw[:off], '\n'); i >= 0 {
		start = i + 1
	}
	return int64(bytes.Count(raw[:off], []byte{'\n'})), utf8.RuneCount(raw[start:off]) + 1
}
