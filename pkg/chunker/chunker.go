// Package chunker cuts a CSV file into record-aligned chunks while streaming
// it, so a file of any size can be handed to the mappers piece by piece with
// flat memory.
//
// Record boundaries are those of pkg/csv (see its package doc), found by
// csv.Splitter with the dialect of Options (delimiter, quote, escape): the
// mapper reads a chunk with csv.Reader and the same dialect, so reading the
// chunks one by one gives exactly the records, and the record numbers, that
// reading the whole file gives. In short:
//   - a record ends at a line feed ("\n" or "\r\n") that is not inside a
//     quoted field, or at the end of the file;
//   - a quoted field may hold delimiters, line feeds and escaped quotes; a
//     stray quote inside it is literal for finding the end of the record (the
//     mapper rejects that record);
//   - a quote inside an unquoted field is literal;
//   - a line that is empty ("\n", "\r\n") between records is not a record:
//     it is skipped, not counted, and not copied into any chunk.
//
// Records are numbered from 1 in file order, blank lines not counted, so the
// header is record Options.HeaderRow and the first data record is
// HeaderRow+1 (plus SkipRows: the data rows dropped right after the header
// still count). Reading a chunk's Data with csv.Reader and numbering its
// records from Chunk.FirstRow gives the same records and numbers as reading
// the whole file.
//
// Every chunk's Data ends with a record terminator: a last record of the
// file that has none gets a "\n" appended (a trailing "\r" before the end of
// the file, which the reader drops, stays and becomes "\r\n"). Nothing
// else is changed: Data holds the file's bytes (a UTF-8 byte order mark at
// the start of the file is skipped).
//
// A chunk never exceeds Options.MaxChunkBytes or MaxChunkRows; a single
// record larger than MaxChunkBytes is an error. The chunker holds at most
// one chunk plus one record in memory.
package chunker

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"unicode/utf8"

	"github.com/intakehq/intake/pkg/csv"
)

// Defaults of Options.
const (
	DefaultDelimiter     = ','
	DefaultQuote         = '"'
	DefaultHeaderRow     = 1
	DefaultMaxChunkBytes = 1 << 20
	DefaultMaxChunkRows  = 5000
)

// NoQuote as Options.Quote turns quoting off: every quote is literal.
const NoQuote rune = -1

// Errors about the file as a whole. Use errors.Is.
var (
	// ErrEmptyFile: the file has no record at all (no bytes, or only blank lines).
	ErrEmptyFile = errors.New("file is empty")
	// ErrNoRows: the file has a header but no record after it (or after the
	// skipped rows).
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
	// Quote opens and closes a quoted field: an ASCII character. Default
	// '"'; NoQuote turns quoting off.
	Quote rune
	// Escape escapes a quote inside a quoted field: an ASCII character.
	// Default (0) is the quote itself, a doubled quote as in RFC 4180; '\\'
	// means backslash escapes.
	Escape rune
	// HeaderRow is the 1-based record number of the header; the records
	// before it are skipped. Default 1.
	HeaderRow int
	// SkipRows data records right after the header are dropped (e.g. a row
	// of units); they still count in record numbers.
	SkipRows int
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

// Dialect returns the CSV dialect of the options (after defaults), the one
// to read the chunks with.
func (o Options) Dialect() csv.Dialect {
	o = o.WithDefaults()
	d := csv.Dialect{Comma: rune(o.Delimiter), Quote: o.Quote, Escape: o.Escape}
	if o.Comma != 0 {
		d.Comma = o.Comma
	}
	if o.Quote == NoQuote {
		d.Quote, d.Escape = 0, 0
	}
	return d.Resolved()
}

// OptionsFor returns options that read the dialect d (zero values of d mean
// its defaults: a comma; a Quote of 0 turns quoting off).
func OptionsFor(d csv.Dialect) Options {
	d = d.Resolved()
	o := Options{Comma: d.Comma, Quote: d.Quote, Escape: d.Escape}
	if d.Quote == 0 {
		o.Quote, o.Escape = NoQuote, 0
	}
	return o
}

// Validate checks the options (after defaults).
func (o Options) Validate() error {
	o = o.WithDefaults()
	comma := rune(o.Delimiter)
	if o.Comma != 0 {
		comma = o.Comma
	}
	switch {
	case comma == '\n' || comma == '\r':
		return fmt.Errorf("chunker: delimiter %q: a line break cannot be the delimiter", comma)
	case !utf8.ValidRune(comma) || comma == utf8.RuneError:
		return fmt.Errorf("chunker: delimiter %q is not a valid character", comma)
	case o.Quote == '\n' || o.Quote == '\r':
		return fmt.Errorf("chunker: quote %q: a line break cannot be the quote character", o.Quote)
	case o.Quote != NoQuote && (o.Quote < 0 || o.Quote >= utf8.RuneSelf):
		return fmt.Errorf("chunker: quote %q: must be an ASCII character", o.Quote)
	case comma == o.Quote:
		return fmt.Errorf("chunker: delimiter and quote are both %q", comma)
	case o.HeaderRow < 0:
		return fmt.Errorf("chunker: header row %d: must be 1 or more", o.HeaderRow)
	case o.SkipRows < 0:
		return fmt.Errorf("chunker: skip rows %d: must be 0 or more", o.SkipRows)
	case o.MaxChunkBytes < 0:
		return fmt.Errorf("chunker: max chunk bytes %d: must be positive", o.MaxChunkBytes)
	case o.MaxChunkRows < 0:
		return fmt.Errorf("chunker: max chunk rows %d: must be positive", o.MaxChunkRows)
	}
	if err := o.Dialect().Validate(); err != nil {
		return fmt.Errorf("chunker: %w", err)
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
	s      *csv.Splitter
	opts   Options
	header []string

	cur      []byte // data of the chunk being filled
	curRows  int64
	curFirst int64
	index    int64
	err      error // sticky
}

// New reads the records before the header, the header itself and the
// skipped rows, and returns a Chunker positioned on the first data record.
// It returns ErrEmptyFile for a file without records, an error wrapping
// ErrNoHeader when the file ends before the header row, and a *ParseError
// for a header that cannot be read.
func New(r io.Reader, opts Options) (*Chunker, error) {
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	opts = opts.WithDefaults()
	d := opts.Dialect()
	c := &Chunker{s: csv.NewSplitter(r, d), opts: opts}
	c.s.MaxRecordBytes = opts.MaxChunkBytes
	var raw []byte
	for c.s.Record() < int64(opts.HeaderRow) {
		var ok bool
		var err error
		raw, ok, err = c.next()
		if err != nil {
			return nil, err
		}
		if !ok {
			if c.s.Record() == 0 {
				return nil, ErrEmptyFile
			}
			return nil, fmt.Errorf("%w: the header is record %d but the file has only %d records", ErrNoHeader, opts.HeaderRow, c.s.Record())
		}
	}
	// A stray quote in the header is read leniently (kept as a literal): a
	// mapped column's name then shows it.
	hr := csv.NewReader(bytes.NewReader(raw), d)
	hr.KeepBOM = true // the file's BOM is skipped already
	header, err := hr.Read()
	var pe *csv.ParseError
	if err != nil && !errors.As(err, &pe) {
		return nil, fmt.Errorf("chunker: read the header: %w", err)
	}
	c.header = append([]string(nil), header...)
	for range opts.SkipRows {
		if _, ok, err := c.next(); err != nil || !ok {
			c.err = err
			if err == nil {
				c.err = ErrNoRows
			}
			break
		}
	}
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
		raw, ok, err := c.next()
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
		recStart := len(c.cur)
		c.cur = append(c.cur, raw...)
		if raw[len(raw)-1] != '\n' {
			c.cur = append(c.cur, '\n')
		}
		if c.curRows == 0 {
			c.curFirst = c.s.Record()
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

// next returns the next record's bytes (valid until the next call); ok is
// false at the end of the file.
func (c *Chunker) next() (raw []byte, ok bool, err error) {
	raw, err = c.s.Next()
	if err == nil {
		if raw[len(raw)-1] != '\n' && len(raw)+1 > c.opts.MaxChunkBytes {
			// With the "\n" it gets, the last record does not fit.
			return nil, false, &ParseError{Record: c.s.Record(), Line: c.s.Line(), Limit: c.opts.MaxChunkBytes, Err: ErrRecordTooLarge}
		}
		return raw, true, nil
	}
	return c.fail(err)
}

// fail converts an error of the Splitter.
func (c *Chunker) fail(err error) ([]byte, bool, error) {
	var pe *csv.ParseError
	switch {
	case errors.Is(err, io.EOF):
		return nil, false, nil
	case errors.As(err, &pe) && errors.Is(err, csv.ErrUnterminatedQuote):
		return nil, false, &ParseError{Record: pe.Record, Line: pe.Line, QuoteLine: pe.ErrLine, Err: ErrUnterminatedQuote}
	case errors.As(err, &pe) && errors.Is(err, csv.ErrRecordTooLarge):
		return nil, false, &ParseError{Record: pe.Record, Line: pe.Line, QuoteLine: pe.ErrLine, Limit: c.opts.MaxChunkBytes, Err: ErrRecordTooLarge}
	}
	return nil, false, err
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
	// The next chunk will likely be as large as this one: small chunks
	// (few rows per chunk) do not each need a buffer of MaxChunkBytes.
	next := make([]byte, 0, min(c.bufCap(), len(c.cur)+len(c.cur)/4+512))
	c.cur = append(next, rest...)
	c.curRows = 0
	if len(rest) > 0 {
		c.curRows = 1
		c.curFirst = c.s.Record()
	}
	return ch
}
