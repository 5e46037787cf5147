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
	s := r.s
	s.MaxRecordBytes, s.KeepBOM = r.MaxRecordBytes, r.KeepBOM
	line, err := s.first()
	if err != nil {
		r.raw = nil
		return nil, err
	}
	y := &r.syn
	if !y.quoting || indexByte(line, y.quote) < 0 {
		// No quote: the line is the record.
		s.record++
		s.multiline = false
		r.raw = TrimTerminator(line)
		return r.split(r.raw), nil
	}
	// One pass over a record of one line; the Splitter's scan (the same
	// rules) only for one that goes on after this line.
	s.quoted = true
	s.record++
	s.multiline = false
	body := TrimTerminator(line)
	r.reserve(body)
	mark := len(r.arena)
	rec, open, perr := r.parseQuoted(body)
	if !open || line[len(line)-1] != '\n' {
		r.raw = body
		if perr != nil {
			return rec, perr
		}
		return rec, nil
	}
	// A quoted field goes on on the next line: the fields read so far are
	// dropped (nobody has seen them) and the whole record is read again.
	s.record--
	r.arena = r.arena[:mark]
	raw, err := s.finish(line)
	if err != nil && !errors.Is(err, ErrUnterminatedQuote) {
		r.raw = nil
		return nil, err
	}
	r.raw = TrimTerminator(raw)
	rec, _, perr = r.parseQuoted(r.raw)
	if perr != nil {
		return rec, perr
	}
	return rec, nil
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

// reserve makes room in the arena for the fields of body: they never take
// more bytes than the record, and the arena must not be reallocated while
// strings point into it.
func (r *Reader) reserve(body []byte) {
	if cap(r.arena)-len(r.arena) < len(body) {
		r.arena = make([]byte, 0, max(arenaSize, len(body)))
	}
}

// split splits a record without quotes into fields.
func (r *Reader) split(body []byte) []string {
	r.reserve(body)
	y := &r.syn
	rec := r.record[:0]
	start := len(r.arena)
	r.arena = append(r.arena, body...)
	buf := r.arena[start:]
	if len(y.comma) == 1 {
		rec = splitByte(buf, y.comma0, rec)
	} else {
		for i := 0; ; {
			j := index(buf[i:], y.comma)
			if j < 0 {
				rec = append(rec, str(buf[i:]))
				break
			}
			rec = append(rec, str(buf[i:i+j]))
			i += j + len(y.comma)
		}
	}
	r.record = rec
	return rec
}

// parseQuoted splits a record's text (terminator removed) that has quotes
// into fields. open reports that a quoted field is still open at its end.
//
// The text is copied into the arena once; a field is a piece of that copy,
// the quotes around it dropped and, when it has escapes (or "\r\n"), its
// text moved left in place.
func (r *Reader) parseQuoted(body []byte) (rec []string, open bool, perr *ParseError) {
	r.reserve(body)
	start := len(r.arena)
	r.arena = append(r.arena, body...)
	buf := r.arena[start:] // buf[k] is body[k] until a field's text moves
	y := &r.syn
	rec = r.record[:0]
	i, n := 0, len(buf)
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
		if i < n && buf[i] == y.quote {
			quote := i
			i++
			fs, w := i, i // the field's text is buf[fs:w]
			for {
				j := y.indexSpecial(buf[i:])
				if j < 0 {
					w = moveText(buf, w, i, n, crlf)
					fail(quote, ErrUnterminatedQuote)
					open = true
					rec = append(rec, str(buf[fs:w]))
					break fields
				}
				w = moveText(buf, w, i, i+j, crlf)
				i += j
				if y.escaped && buf[i] == y.escape {
					if i+1 < n && (buf[i+1] == y.quote || buf[i+1] == y.escape) {
						buf[w] = buf[i+1]
						i += 2
					} else {
						buf[w] = buf[i] // a literal escape character
						i++
					}
					w++
					continue
				}
				i++ // past the quote
				switch {
				case i < n && buf[i] == y.quote:
					buf[w] = y.quote // a doubled quote
					w++
					i++
				case y.hasComma(buf[i:]):
					rec = append(rec, str(buf[fs:w]))
					i += len(y.comma)
					continue fields
				case i == n:
					rec = append(rec, str(buf[fs:w]))
					break fields
				default:
					fail(i-1, ErrExtraneousQuote)
					buf[w] = y.quote
					w++
				}
			}
		}
		j := y.indexComma(buf[i:])
		if j < 0 {
			rec = append(rec, str(buf[i:]))
			break
		}
		rec = append(rec, str(buf[i:i+j]))
		i += j + len(y.comma)
	}
	r.record = rec
	return rec, open, perr
}

// moveText moves buf[from:to] to buf[w:] (w <= from), turning every "\r\n"
// into "\n" when crlf is set, and returns the end of the moved text.
func moveText(buf []byte, w, from, to int, crlf bool) int {
	if !crlf {
		if w == from {
			return to
		}
		return w + copy(buf[w:], buf[from:to])
	}
	for from < to {
		j := indexByte(buf[from:to], '\r')
		if j < 0 || from+j+1 >= to || buf[from+j+1] != '\n' {
			k := to
			if j >= 0 && from+j+1 < to {
				k = from + j + 1 // up to and with a lone "\r"
			}
			w += copy(buf[w:], buf[from:k])
			from = k
			continue
		}
		w += copy(buf[w:], buf[from:from+j])
		from += j + 1 // drop the "\r"
	}
	return w
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
