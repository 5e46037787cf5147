package csv

import (
	"encoding/binary"
	"errors"
	"io"
	"math/bits"
	"unsafe"
)

// arenaSize is the size of the blocks that hold the fields' bytes.
const arenaSize = 64 << 10

// Reader reads records from a CSV stream. It is not safe for concurrent use.
//
// # Memory
//
// Read reuses the []string it returns: the slice (not the strings) is
// overwritten by the next Read, so copy it (slices.Clone) to keep it. The
// strings themselves are immutable and stay valid for good: they point into
// large blocks that the Reader fills and never rewrites, so reading a record
// costs no allocation on average. Keeping one field keeps its block (64 KiB)
// alive; use strings.Clone for a long-lived small field of a large file.
type Reader struct {
	// MaxRecordBytes, when positive, bounds the bytes of one record (see
	// Splitter.MaxRecordBytes). 0: no limit.
	MaxRecordBytes int
	// KeepBOM: see Splitter.KeepBOM. Set it before the first Read.
	KeepBOM bool

	s      *Splitter
	syn    syntax
	esc    rune
	record []string
	arena  []byte
	raw    []byte
}

// NewReader returns a Reader of r with dialect d. An invalid dialect is
// returned as the error of the first Read (check it first with
// Dialect.Validate).
func NewReader(r io.Reader, d Dialect) *Reader {
	s := NewSplitter(r, d)
	return &Reader{s: s, syn: s.syn, esc: d.Resolved().Escape}
}

// Read returns the next record, or io.EOF after the last one.
//
// A malformed record (ErrExtraneousQuote, ErrUnterminatedQuote) is returned
// with a *ParseError: the record holds its fields as read leniently (a stray
// quote kept as a literal), and the next Read goes on with the following
// record. Any other error (a read error, ErrRecordTooLarge, an invalid
// dialect) comes with a nil record and is returned by every later Read.
func (r *Reader) Read() (record []string, err error) {
	r.s.MaxRecordBytes, r.s.KeepBOM = r.MaxRecordBytes, r.KeepBOM
	raw, err := r.s.Next()
	if err != nil {
		var pe *ParseError
		if !errors.As(err, &pe) || pe.Err != ErrUnterminatedQuote {
			r.raw = nil
			return nil, err
		}
	}
	r.raw = TrimTerminator(raw)
	return r.parse(r.raw)
}

// ReadAll reads the remaining records into fresh slices. It stops at the
// first error (a malformed record included) and returns the records before it.
func (r *Reader) ReadAll() ([][]string, error) {
	var out [][]string
	for {
		rec, err := r.Read()
		if errors.Is(err, io.EOF) {
			return out, nil
		}
		if err != nil {
			return out, err
		}
		out = append(out, append([]string(nil), rec...))
	}
}

// Record returns the number of the last record read, from 1: records are
// counted in input order, blank lines not included, malformed ones included.
func (r *Reader) Record() int64 { return r.s.record }

// Line returns the 1-based line of the input on which the last record read
// starts.
func (r *Reader) Line() int64 { return r.s.recLine }

// RawRecord returns the last record's text as it is in the input, without
// its line terminator (a record spanning lines keeps its inner line
// breaks). It is valid until the next Read.
func (r *Reader) RawRecord() []byte { return r.raw }

// str makes a string of b without copying. b's bytes must never change.
func str(b []byte) string {
	if len(b) == 0 {
		return ""
	}
	return unsafe.String(&b[0], len(b))
}

// parse splits a record's text (terminator removed) into fields.
func (r *Reader) parse(body []byte) ([]string, error) {
	// The fields never take more bytes than the record: reserve them, so
	// the block is not reallocated while strings point into it.
	if cap(r.arena)-len(r.arena) < len(body) {
		r.arena = make([]byte, 0, max(arenaSize, len(body)))
	}
	y := &r.syn
	rec := r.record[:0]
	a := r.arena
	i, n := 0, len(body)

	if !r.s.quoted {
		start := len(a)
		a = append(a, body...)
		buf := a[start:]
		if len(y.comma) == 1 {
			rec = splitByte(buf, y.comma0, rec)
		} else {
			for {
				j := index(buf[i:], y.comma)
				if j < 0 {
					rec = append(rec, str(buf[i:]))
					break
				}
				rec = append(rec, str(buf[i:i+j]))
				i += j + len(y.comma)
			}
		}
		r.arena, r.record = a, rec
		return rec, nil
	}

	var perr *ParseError
	fail := func(off int, e error) {
		// The first stray quote, unless the record is never closed.
		if perr == nil || e == ErrUnterminatedQuote {
			line, col := position(body, off)
			perr = &ParseError{Record: r.s.record, Line: r.s.recLine, ErrLine: r.s.recLine + line, Column: col, Escape: r.esc, Err: e}
		}
	}
	// A "\r\n" can only be inside a quoted field; it reads as "\n".
	crlf := r.s.multiline && indexByte(body, '\r') >= 0
fields:
	for {
		fs := len(a)
		if i < n && body[i] == y.quote {
			open := i
			i++
			for {
				j := y.indexSpecial(body[i:])
				if j < 0 {
					a = appendText(a, body[i:], crlf)
					fail(open, ErrUnterminatedQuote)
					rec = append(rec, str(a[fs:]))
					break fields
				}
				a = appendText(a, body[i:i+j], crlf)
				i += j
				if y.escaped && body[i] == y.escape {
					if i+1 < n && (body[i+1] == y.quote || body[i+1] == y.escape) {
						a = append(a, body[i+1])
						i += 2
					} else {
						a = append(a, body[i]) // a literal escape character
						i++
					}
					continue
				}
				i++ // past the quote
				switch {
				case i < n && body[i] == y.quote:
					a = append(a, y.quote) // a doubled quote
					i++
				case y.hasComma(body[i:]):
					rec = append(rec, str(a[fs:]))
					i += len(y.comma)
					continue fields
				case i == n:
					rec = append(rec, str(a[fs:]))
					break fields
				default:
					fail(i-1, ErrExtraneousQuote)
					a = append(a, y.quote)
				}
			}
		}
		j := y.indexComma(body[i:])
		if j < 0 {
			a = append(a, body[i:]...)
			rec = append(rec, str(a[fs:]))
			break
		}
		a = append(a, body[i:i+j]...)
		rec = append(rec, str(a[fs:]))
		i += j + len(y.comma)
	}
	r.arena, r.record = a, rec
	if perr != nil {
		return rec, perr
	}
	return rec, nil
}

// appendText appends b to a, turning every "\r\n" into "\n" when crlf is set.
func appendText(a, b []byte, crlf bool) []byte {
	if !crlf {
		return append(a, b...)
	}
	for {
		j := indexByte(b, '\r')
		if j < 0 || j+1 >= len(b) {
			return append(a, b...)
		}
		if b[j+1] == '\n' {
			a = append(a, b[:j]...)
			b = b[j+1:]
			continue
		}
		a = append(a, b[:j+1]...)
		b = b[j+1:]
	}
}

// splitByte appends the fields of buf, separated by the byte c, to rec. It
// looks at 8 bytes at a time: fields are short, so this beats a call to
// bytes.IndexByte per field.
func splitByte(buf []byte, c byte, rec []string) []string {
	const low7 = 0x7f7f7f7f7f7f7f7f
	pat := uint64(c) * 0x0101010101010101
	start, k, n := 0, 0, len(buf)
	for ; k+8 <= n; k += 8 {
		x := binary.LittleEndian.Uint64(buf[k:]) ^ pat
		// The high bit of each byte of m is set where x's byte is zero,
		// that is where buf holds c.
		m := ^((x&low7 + low7) | x | low7)
		for m != 0 {
			j := k + bits.TrailingZeros64(m)>>3
			rec = append(rec, str(buf[start:j]))
			start = j + 1
			m &= m - 1
		}
	}
	for ; k < n; k++ {
		if buf[k] == c {
			rec = append(rec, str(buf[start:k]))
			start = k + 1
		}
	}
	return append(rec, str(buf[start:]))
}
