package csv

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/bits"
)

// bufferSize is the read buffer of a Splitter.
const bufferSize = 64 << 10

var bom = []byte{0xEF, 0xBB, 0xBF}

// Splitter cuts a CSV stream into raw records without parsing their fields,
// with the rules of the package doc. Reader reads records through a
// Splitter, so both always agree on where a record ends. It is not safe for
// concurrent use.
type Splitter struct {
	// MaxRecordBytes, when positive, bounds the bytes of one record: a
	// longer one fails with a *ParseError wrapping ErrRecordTooLarge (and
	// reading stops), so a quote that is never closed cannot make the
	// Splitter hold the whole input in memory.
	MaxRecordBytes int
	// KeepBOM keeps a UTF-8 byte order mark at the start of the input as
	// data (of the first field) instead of skipping it: set it to read a
	// piece of a file, such as a chunk, whose start is not the file's.
	KeepBOM bool

	br      *bufio.Reader
	syn     syntax
	err     error // sticky: io.EOF, a dialect, read or size error
	started bool

	buf  []byte // a record of several lines
	long []byte // a line longer than the read buffer

	line      int64 // lines read so far
	record    int64 // records returned so far
	recLine   int64 // line on which the last record starts
	quoteLine int64 // line on which the last record's open quote was opened
	multiline bool
	quoted    bool // the last record has a quote character
}

// NewSplitter returns a Splitter reading r with dialect d. An invalid
// dialect is returned as the error of the first Next.
func NewSplitter(r io.Reader, d Dialect) *Splitter {
	s := &Splitter{br: bufio.NewReaderSize(r, bufferSize)}
	s.syn, s.err = newSyntax(d)
	return s
}

// Next returns the next record's bytes as they are in the input, its
// terminator ("\n", "\r\n", or for the last record "\r" or nothing)
// included. The slice is valid until the next call.
//
// At the end of the input Next returns io.EOF. A record whose quoted field
// is still open at the end of the input is returned (it runs to the end)
// with a *ParseError wrapping ErrUnterminatedQuote, and the next call
// returns io.EOF. Other errors (ErrRecordTooLarge, a read error, an invalid
// dialect) are returned with no record, and by every later call.
func (s *Splitter) Next() ([]byte, error) {
	line, err := s.first()
	if err != nil {
		return nil, err
	}
	return s.finish(line)
}

// first returns the first line of the next record, blank lines skipped,
// and sets the record's bookkeeping; the record is not counted yet.
func (s *Splitter) first() ([]byte, error) {
	if s.err != nil {
		return nil, s.err
	}
	if !s.started {
		s.started = true
		if b, err := s.br.Peek(len(bom)); !s.KeepBOM && err == nil && bytes.Equal(b, bom) {
			_, _ = s.br.Discard(len(bom))
		}
	}
	s.quoteLine = 0
	s.quoted = false
	for {
		line, err := s.readLine(s.MaxRecordBytes)
		if err != nil {
			switch {
			case errors.Is(err, io.EOF):
				s.err = io.EOF
			case errors.Is(err, ErrRecordTooLarge):
				s.recLine = s.line + 1
				return nil, s.tooLarge(false)
			default:
				s.err = err
			}
			return nil, s.err
		}
		s.line++
		if !isTerminator(line) {
			s.recLine = s.line
			return line, nil
		}
	}
}

// finish reads the rest of the record that starts with line (from first)
// and counts it.
func (s *Splitter) finish(line []byte) ([]byte, error) {
	inQuote, fieldStart := s.scan(line, false, true)
	if !inQuote {
		s.record++
		s.multiline = false
		return line, nil
	}
	s.buf = append(s.buf[:0], line...)
	for {
		if line[len(line)-1] != '\n' {
			return s.unterminated()
		}
		budget := 0
		if s.MaxRecordBytes > 0 {
			// At least 1: a record at the limit is too large only if
			// there is more of it (not at the end of the input).
			budget = max(s.MaxRecordBytes-len(s.buf), 1)
		}
		var err error
		line, err = s.readLine(budget)
		switch {
		case errors.Is(err, io.EOF):
			// The last line ended with "\n" inside a quoted field.
			return s.unterminated()
		case errors.Is(err, ErrRecordTooLarge):
			return nil, s.tooLarge(true)
		case err != nil:
			s.err = err
			return nil, err
		}
		s.line++
		inQuote, fieldStart = s.scan(line, inQuote, fieldStart)
		s.buf = append(s.buf, line...)
		if s.MaxRecordBytes > 0 && len(s.buf) > s.MaxRecordBytes {
			return nil, s.tooLarge(inQuote)
		}
		if !inQuote {
			s.record++
			s.multiline = true
			return s.buf, nil
		}
	}
}

func (s *Splitter) unterminated() ([]byte, error) {
	s.record++
	s.multiline = true
	s.err = io.EOF
	return s.buf, &ParseError{Record: s.record, Line: s.recLine, ErrLine: s.quoteLine, Err: ErrUnterminatedQuote}
}

func (s *Splitter) tooLarge(inQuote bool) error {
	ql := s.quoteLine
	if !inQuote {
		ql = 0
	}
	s.err = &ParseError{Record: s.record + 1, Line: s.recLine, ErrLine: ql, Limit: s.MaxRecordBytes, Err: ErrRecordTooLarge}
	return s.err
}

// Record returns the number of the last record Next returned (from 1).
func (s *Splitter) Record() int64 { return s.record }

// Line returns the line on which the last record Next returned starts.
func (s *Splitter) Line() int64 { return s.recLine }

// QuoteLine returns the line on which the last quoted field of the last
// record (or of the record that failed) was opened; 0 when it has none. With
// ErrUnterminatedQuote it is where the quote that is never closed was opened.
func (s *Splitter) QuoteLine() int64 { return s.quoteLine }

// Lines returns the number of lines read so far.
func (s *Splitter) Lines() int64 { return s.line }

// readLine returns the next line, "\n" included, or what is left at the end
// of the input; io.EOF when nothing is left. A line longer than budget
// (when positive) fails with ErrRecordTooLarge.
func (s *Splitter) readLine(budget int) ([]byte, error) {
	line, err := s.br.ReadSlice('\n')
	if err == nil {
		if budget > 0 && len(line) > budget {
			return nil, ErrRecordTooLarge
		}
		return line, nil
	}
	if errors.Is(err, bufio.ErrBufferFull) {
		s.long = append(s.long[:0], line...)
		for errors.Is(err, bufio.ErrBufferFull) {
			if budget > 0 && len(s.long) > budget {
				return nil, ErrRecordTooLarge
			}
			line, err = s.br.ReadSlice('\n')
			s.long = append(s.long, line...)
		}
		line = s.long
	}
	switch {
	case err != nil && !errors.Is(err, io.EOF):
		return nil, fmt.Errorf("read line %d: %w", s.line+1, err)
	case len(line) == 0:
		return nil, io.EOF
	case budget > 0 && len(line) > budget:
		return nil, ErrRecordTooLarge
	}
	return line, nil
}

// scan follows the quoting state through one line (which ends with "\n",
// or is the last of the input). It returns whether a quoted field is still
// open at the end of the line, and whether a field starts there.
func (s *Splitter) scan(line []byte, inQuote, fieldStart bool) (bool, bool) {
	y := &s.syn
	if !y.quoting || !inQuote && indexByte(line, y.quote) < 0 {
		// No quote on the line: it ends the record.
		return false, false
	}
	s.quoted = true
	i, n := 0, len(line)
	for i < n {
		if inQuote {
			j := y.indexSpecial(line[i:])
			if j < 0 {
				return true, false
			}
			i += j
			if y.escaped && line[i] == y.escape {
				if i+1 < n && (line[i+1] == y.quote || line[i+1] == y.escape) {
					i += 2
				} else {
					i++ // a literal escape character
				}
				continue
			}
			i++ // past the quote
			switch {
			case i < n && line[i] == y.quote:
				i++ // a doubled quote
			case y.hasComma(line[i:]):
				i += len(y.comma)
				inQuote, fieldStart = false, true
			case isTerminator(line[i:]):
				return false, false
			default:
				// An extraneous quote: literal here; the Reader reports it.
			}
			continue
		}
		if fieldStart {
			fieldStart = false
			if line[i] == y.quote {
				inQuote = true
				s.quoteLine = s.line
				i++
				continue
			}
		}
		j := y.indexComma(line[i:])
		if j < 0 {
			return false, false
		}
		i += j + len(y.comma)
		fieldStart = true
	}
	return inQuote, fieldStart
}

// isTerminator reports whether b is only a record terminator: "\n", "\r\n",
// or, at the end of the input, "\r" or nothing.
func isTerminator(b []byte) bool {
	switch len(b) {
	case 0:
		return true
	case 1:
		return b[0] == '\n' || b[0] == '\r'
	case 2:
		return b[0] == '\r' && b[1] == '\n'
	}
	return false
}

// TrimTerminator returns a raw record (as Splitter.Next returns it) without
// its terminator: "\r\n", "\n", or "\r" at the end of the input.
func TrimTerminator(raw []byte) []byte {
	n := len(raw)
	switch {
	case n == 0:
		return raw
	case raw[n-1] == '\n':
		if n >= 2 && raw[n-2] == '\r' {
			return raw[:n-2]
		}
		return raw[:n-1]
	case raw[n-1] == '\r':
		return raw[:n-1]
	}
	return raw
}

// indexByte is bytes.IndexByte, faster when c is near: fields are short,
// so the first 32 bytes are looked at 8 at a time, inline, before the
// vectorised search takes over.
func indexByte(b []byte, c byte) int {
	const ones, low7 = 0x0101010101010101, 0x7f7f7f7f7f7f7f7f
	pat := uint64(c) * ones
	k := 0
	for ; k < 32; k += 8 {
		if k+8 > len(b) {
			for ; k < len(b); k++ {
				if b[k] == c {
					return k
				}
			}
			return -1
		}
		x := binary.LittleEndian.Uint64(b[k:]) ^ pat
		// The high bit of a byte of m is set where x's byte is zero.
		if m := ^((x&low7 + low7) | x | low7); m != 0 {
			return k + bits.TrailingZeros64(m)>>3
		}
	}
	if j := bytes.IndexByte(b[k:], c); j >= 0 {
		return k + j
	}
	return -1
}

func index(b, sep []byte) int    { return bytes.Index(b, sep) }
func hasPrefix(b, p []byte) bool { return bytes.HasPrefix(b, p) }
