// Package chunker cuts a CSV file into record-aligned chunks while streaming
// it, so a file of any size can be handed to the mappers piece by piece with
// flat memory.
//
// Record boundaries follow RFC 4180 the way encoding/csv reads them with
// LazyQuotes set:
//   - a record ends at a line feed ("\n" or "\r\n") that is not inside a
//     quoted field, or at the end of the file;
//   - a field that starts with the quote character is quoted: it may hold
//     delimiters, line feeds (LF or CRLF) and doubled quotes; it ends at a
//     quote followed by a delimiter or the end of the record; any other quote
//     inside it is literal;
//   - a quote inside an unquoted field is literal;
//   - a line that is empty ("\n", "\r\n") between records is not a record:
//     it is skipped, not counted, and not copied into any chunk.
//
// Records are numbered from 1 in file order, counting as encoding/csv
// counts them (blank lines do not count), so the header is record
// Options.HeaderRow and the first data record is HeaderRow+1. Parsing a
// chunk's Data with encoding/csv and numbering its records from
// Chunk.FirstRow gives the same records and numbers as parsing the whole
// file.
//
// Every chunk's Data ends with a record terminator: a last record of the
// file that has none gets a "\n" appended (a trailing "\r" before the end of
// the file, which encoding/csv drops, stays and becomes "\r\n"). Nothing
// else is changed: Data holds the file's bytes.
//
// A chunk never exceeds Options.MaxChunkBytes or MaxChunkRows; a single
// record larger than MaxChunkBytes is an error. The chunker holds at most
// one chunk plus one record in memory.
package chunker

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"unicode/utf8"
)

// Defaults of Options.
const (
	DefaultDelimiter     = ','
	DefaultQuote         = '"'
	DefaultHeaderRow     = 1
	DefaultMaxChunkBytes = 1 << 20
	DefaultMaxChunkRows  = 5000
)

// Errors about the file as a whole. Use errors.Is.
var (
	// ErrEmptyFile: the file has no record at all (no bytes, or only blank lines).
	ErrEmptyFile = errors.New("file is empty")
	// ErrNoRows: the file has a header but no record after it.
	ErrNoRows = errors.New("file has a header but no data rows")
	// ErrNoHeader: the file ends before the header row.
	ErrNoHeader = errors.New("file ends before the header row")
	// ErrUnterminatedQuote: a quoted field is still open at the end of the file.
	ErrUnterminatedQuote = errors.New("quoted field is not closed")
	// ErrRecordTooLarge: one record is larger than MaxChunkBytes.
	ErrRecordTooLarge = errors.New("record is larger than the chunk size limit")
)

// ParseError locates an ErrUnterminatedQuote or ErrRecordTooLarge.
type ParseError struct {
	// Record is the number of the faulty record (see the package doc).
	Record int64
	// Line is the 1-based line of the file on which the record starts.
	Line int64
	// QuoteLine is the line on which the quoted field that is still open was
	// opened; 0 when no quoted field is open.
	QuoteLine int64
	// Limit is MaxChunkBytes, for ErrRecordTooLarge.
	Limit int
	// Err is ErrUnterminatedQuote or ErrRecordTooLarge.
	Err error
}

func (e *ParseError) Error() string {
	switch e.Err {
	case ErrUnterminatedQuote:
		return fmt.Sprintf("row %d: the quoted field opened on line %d is not closed before the end of the file", e.Record, e.QuoteLine)
	case ErrRecordTooLarge:
		msg := fmt.Sprintf("row %d (starting on line %d) is larger than the limit of %d bytes", e.Record, e.Line, e.Limit)
		if e.QuoteLine > 0 {
			msg += fmt.Sprintf("; is the quoted field opened on line %d missing its closing quote?", e.QuoteLine)
		}
		return msg
	}
	return fmt.Sprintf("row %d (line %d): %v", e.Record, e.Line, e.Err)
}

func (e *ParseError) Unwrap() error { return e.Err }

// Options configure a Chunker. Zero values mean the defaults.
type Options struct {
	// Delimiter separates fields. Default ','.
	Delimiter byte
	// Comma, when not 0, is the delimiter as a character and overrides
	// Delimiter; it allows delimiters outside ASCII (as encoding/csv's
	// Reader.Comma does).
	Comma rune
	// Quote opens and closes a quoted field. Default '"'.
	Quote byte
	// HeaderRow is the 1-based record number of the header; the records
	// before it are skipped. Default 1.
	HeaderRow int
	// MaxChunkBytes bounds len(Chunk.Data). Default 1 MiB.
	MaxChunkBytes int
	// MaxChunkRows bounds Chunk.Rows. Default 5000.
	MaxChunkRows int
}

// WithDefaults returns o with every zero field set to its default.
func (o Options) WithDefaults() Options {
	if o.Delimiter == 0 {
		o.Delimiter = DefaultDelimiter
	}
	if o.Quote == 0 {
		o.Quote = DefaultQuote
	}
	if o.HeaderRow == 0 {
		o.HeaderRow = DefaultHeaderRow
	}
	if o.MaxChunkBytes == 0 {
		o.MaxChunkBytes = DefaultMaxChunkBytes
	}
	if o.MaxChunkRows == 0 {
		o.MaxChunkRows = DefaultMaxChunkRows
	}
	return o
}

// Validate checks the options (after defaults).
func (o Options) Validate() error {
	o = o.WithDefaults()
	if o.Comma != 0 {
		switch {
		case o.Comma == '\n' || o.Comma == '\r':
			return fmt.Errorf("chunker: delimiter %q: a line break cannot be the delimiter", o.Comma)
		case !utf8.ValidRune(o.Comma) || o.Comma == utf8.RuneError:
			return fmt.Errorf("chunker: delimiter %q is not a valid character", o.Comma)
		case o.Comma == rune(o.Quote):
			return fmt.Errorf("chunker: delimiter and quote are both %q", o.Comma)
		}
		o.Delimiter = ','
		if o.Quote == ',' {
			o.Delimiter = ';'
		}
	}
	switch {
	case o.Delimiter == '\n' || o.Delimiter == '\r':
		return fmt.Errorf("chunker: delimiter %q: a line break cannot be the delimiter", o.Delimiter)
	case o.Quote == '\n' || o.Quote == '\r':
		return fmt.Errorf("chunker: quote %q: a line break cannot be the quote character", o.Quote)
	case o.Delimiter == o.Quote:
		return fmt.Errorf("chunker: delimiter and quote are both %q", o.Delimiter)
	case o.HeaderRow < 0:
		return fmt.Errorf("chunker: header row %d: must be 1 or more", o.HeaderRow)
	case o.MaxChunkBytes < 0:
		return fmt.Errorf("chunker: max chunk bytes %d: must be positive", o.MaxChunkBytes)
	case o.MaxChunkRows < 0:
		return fmt.Errorf("chunker: max chunk rows %d: must be positive", o.MaxChunkRows)
	}
	return nil
}

// Chunk is a run of whole records of the file.
type Chunk struct {
	// Index is the 0-based position of the chunk in the file.
	Index int64
	// FirstRow is the record number of the chunk's first record.
	FirstRow int64
	// Rows is the number of records in Data.
	Rows int64
	// Data is the records' bytes, each ending with its terminator.
	Data []byte
}

// Chunker reads a CSV stream and yields its chunks. It is not safe for
// concurrent use.
type Chunker struct {
	r      *bufio.Reader
	opts   Options
	delim  []byte // the delimiter's bytes
	header []string

	line   int64 // lines started so far; the number of the current line
	record int64 // records completed so far

	cur      []byte // data of the chunk being filled
	curRows  int64
	curFirst int64
	index    int64
	err      error // sticky
}

const readBufferSize = 256 << 10

var bom = []byte{0xEF, 0xBB, 0xBF}

// New reads the records before the header and the header itself, and
// returns a Chunker positioned on the first data record. It returns
// ErrEmptyFile for a file without records, an error wrapping ErrNoHeader when
// the file ends before the header row, and a *ParseError for a header that
// cannot be read.
func New(r io.Reader, opts Options) (*Chunker, error) {
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	opts = opts.WithDefaults()
	c := &Chunker{r: bufio.NewReaderSize(r, readBufferSize), opts: opts, delim: []byte{opts.Delimiter}}
	if opts.Comma != 0 {
		c.delim = utf8.AppendRune(nil, opts.Comma)
	}
	if b, err := c.r.Peek(len(bom)); err == nil && bytes.Equal(b, bom) {
		_, _ = c.r.Discard(len(bom))
	}
	var rec []byte
	for c.record < int64(opts.HeaderRow) {
		var ok bool
		var err error
		rec, ok, err = c.readRecord(rec[:0])
		if err != nil {
			return nil, err
		}
		if !ok {
			if c.record == 0 {
				return nil, ErrEmptyFile
			}
			return nil, fmt.Errorf("%w: the header is record %d but the file has only %d records", ErrNoHeader, opts.HeaderRow, c.record)
		}
		c.record++
	}
	c.header = splitRecord(rec, c.delim, opts.Quote)
	c.cur = make([]byte, 0, c.bufCap())
	return c, nil
}

// Header returns the header's column names.
func (c *Chunker) Header() []string { return c.header }

// Options returns the options in effect (defaults applied).
func (c *Chunker) Options() Options { return c.opts }

// Next returns the next chunk, io.EOF after the last one, ErrNoRows when the
// file has no data record, or a *ParseError. Errors are sticky. The returned
// Data is owned by the caller.
func (c *Chunker) Next() (Chunk, error) {
	if c.err != nil {
		return Chunk{}, c.err
	}
	for {
		recStart := len(c.cur)
		var ok bool
		var err error
		c.cur, ok, err = c.readRecord(c.cur)
		if err != nil {
			c.err = err
			return Chunk{}, err
		}
		if !ok {
			if c.curRows > 0 {
				return c.emit(len(c.cur)), nil
			}
			if c.index == 0 {
				c.err = ErrNoRows
			} else {
				c.err = io.EOF
			}
			return Chunk{}, c.err
		}
		c.record++
		if c.curRows == 0 {
			c.curFirst = c.record
		}
		c.curRows++
		if len(c.cur) > c.opts.MaxChunkBytes {
			// The new record does not fit: the chunk ends before it, and the
			// record starts the next chunk.
			return c.emit(recStart), nil
		}
		if c.curRows >= int64(c.opts.MaxChunkRows) || len(c.cur) == c.opts.MaxChunkBytes {
			return c.emit(len(c.cur)), nil
		}
	}
}

// bufCap is the capacity of a chunk buffer: a full chunk plus a little, so
// the usual overflow by one record seldom reallocates.
func (c *Chunker) bufCap() int {
	n := c.opts.MaxChunkBytes
	if n > 64<<20 {
		n = 64 << 20
	}
	return n + n/8 + 512
}

// emit returns the records in c.cur[:end] as a chunk and keeps the rest
// (zero or one record) as the start of the next chunk.
func (c *Chunker) emit(end int) Chunk {
	rows := c.curRows
	var rest []byte
	if end < len(c.cur) {
		rows--
		rest = c.cur[end:]
	}
	ch := Chunk{Index: c.index, FirstRow: c.curFirst, Rows: rows, Data: c.cur[:end:end]}
	c.index++
	next := make([]byte, 0, c.bufCap())
	c.cur = append(next, rest...)
	c.curRows = 0
	if len(rest) > 0 {
		c.curRows = 1
		c.curFirst = c.record
	}
	return ch
}

// readRecord appends the next record's bytes to dst. ok is false at the end
// of the file (no more records). Blank lines before the record are dropped.
func (c *Chunker) readRecord(dst []byte) (out []byte, ok bool, err error) {
	start := len(dst)
	inQuote, fieldStart := false, true
	var quoteLine int64
	recLine := c.line + 1
	for {
		lineStart := len(dst)
		c.line++
		dst, err = c.readLine(dst, start, recLine, inQuote, quoteLine)
		if err != nil {
			return dst, false, err
		}
		line := dst[lineStart:]
		eof := len(line) == 0 || line[len(line)-1] != '\n'
		if lineStart == start && isTerminator(line) {
			// A blank line, or the end of the file, where a record would start.
			dst = dst[:start]
			if eof {
				c.line--
				return dst, false, nil
			}
			recLine = c.line + 1
			continue
		}
		if len(line) == 0 {
			// End of the file inside a quoted field (a record can only still be
			// open at the end of a line when a quote is open).
			return dst, false, &ParseError{Record: c.record + 1, Line: recLine, QuoteLine: quoteLine, Err: ErrUnterminatedQuote}
		}
		inQuote, fieldStart = c.scan(line, inQuote, fieldStart, &quoteLine)
		if !inQuote {
			if eof {
				dst = append(dst, '\n')
				if len(dst)-start > c.opts.MaxChunkBytes {
					return dst, false, &ParseError{Record: c.record + 1, Line: recLine, Limit: c.opts.MaxChunkBytes, Err: ErrRecordTooLarge}
				}
			}
			return dst, true, nil
		}
		if eof {
			return dst, false, &ParseError{Record: c.record + 1, Line: recLine, QuoteLine: quoteLine, Err: ErrUnterminatedQuote}
		}
	}
}

// readLine appends one line (up to and including '\n', or up to the end of
// the file) to dst, failing when the record being read, which started at
// dst[start], grows beyond MaxChunkBytes.
func (c *Chunker) readLine(dst []byte, start int, recLine int64, inQuote bool, quoteLine int64) ([]byte, error) {
	for {
		part, err := c.r.ReadSlice('\n')
		dst = append(dst, part...)
		if len(dst)-start > c.opts.MaxChunkBytes {
			if !inQuote {
				quoteLine = 0
			}
			return dst, &ParseError{Record: c.record + 1, Line: recLine, QuoteLine: quoteLine, Limit: c.opts.MaxChunkBytes, Err: ErrRecordTooLarge}
		}
		switch {
		case err == nil || err == io.EOF:
			return dst, nil
		case errors.Is(err, bufio.ErrBufferFull):
			continue
		default:
			return dst, fmt.Errorf("read line %d: %w", c.line, err)
		}
	}
}

// scan follows the quoting state through one line (which ends with '\n', or
// is the last of the file). It reports whether a quoted field is still open
// at the end of the line.
func (c *Chunker) scan(line []byte, inQuote, fieldStart bool, quoteLine *int64) (bool, bool) {
	q, d := c.opts.Quote, c.delim
	if !inQuote && bytes.IndexByte(line, q) < 0 {
		// Fast path: no quote on the line, so it is a whole record.
		return false, false
	}
	i, n := 0, len(line)
	for i < n {
		if inQuote {
			j := bytes.IndexByte(line[i:], q)
			if j < 0 {
				return true, false
			}
			i += j + 1
			switch {
			case i < n && line[i] == q:
				i++ // doubled quote
			case bytes.HasPrefix(line[i:], d):
				i += len(d)
				inQuote, fieldStart = false, true
			case isTerminator(line[i:]):
				return false, false
			default:
				// A quote inside a quoted field, not followed by a delimiter
				// or the end of the record: literal (as with LazyQuotes).
			}
			continue
		}
		if fieldStart {
			fieldStart = false
			if line[i] == q {
				inQuote = true
				*quoteLine = c.line
				i++
				continue
			}
		}
		j := index(line[i:], d)
		if j < 0 {
			return false, false
		}
		i += j + len(d)
		fieldStart = true
	}
	return inQuote, fieldStart
}

// isTerminator reports whether b is only a record terminator: "\n", "\r\n",
// or, at the end of the file, "\r" or nothing.
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

// splitRecord splits one well-formed record (as read by readRecord) into its
// fields, the way encoding/csv does with LazyQuotes: quotes are removed from
// quoted fields, doubled quotes become one, "\r\n" inside a quoted field
// becomes "\n", and the terminator is dropped.
func splitRecord(rec, d []byte, q byte) []string {
	var fields []string
	var buf []byte
	i, n := 0, len(rec)
	for {
		if i < n && rec[i] == q {
			i++
			buf = buf[:0]
			for {
				j := bytes.IndexByte(rec[i:], q)
				if j < 0 {
					// Not reached for a record from readRecord.
					buf = append(buf, stripTerminator(rec[i:])...)
					fields = append(fields, normalizeNL(buf))
					return fields
				}
				buf = append(buf, rec[i:i+j]...)
				i += j + 1
				switch {
				case i < n && rec[i] == q:
					buf = append(buf, q)
					i++
					continue
				case bytes.HasPrefix(rec[i:], d):
					fields = append(fields, normalizeNL(buf))
					i += len(d)
				case isTerminator(rec[i:]):
					return append(fields, normalizeNL(buf))
				default:
					buf = append(buf, q)
					continue
				}
				break
			}
			continue
		}
		j := index(rec[i:], d)
		if j < 0 {
			return append(fields, string(stripTerminator(rec[i:])))
		}
		fields = append(fields, string(rec[i:i+j]))
		i += j + len(d)
	}
}

// index is bytes.Index, faster for the usual one-byte delimiter.
func index(b, d []byte) int {
	if len(d) == 1 {
		return bytes.IndexByte(b, d[0])
	}
	return bytes.Index(b, d)
}

func stripTerminator(b []byte) []byte {
	switch {
	case bytes.HasSuffix(b, []byte("\r\n")):
		return b[:len(b)-2]
	case bytes.HasSuffix(b, []byte("\n")), bytes.HasSuffix(b, []byte("\r")):
		return b[:len(b)-1]
	}
	return b
}

func normalizeNL(b []byte) string {
	if bytes.IndexByte(b, '\r') < 0 {
		return string(b)
	}
	return string(bytes.ReplaceAll(b, []byte("\r\n"), []byte("\n")))
}
