package dialect

import (
	"bufio"
	"bytes"
	"compress/flate"
	"compress/gzip"
	"errors"
	"fmt"
	"io"

	"google.golang.org/protobuf/proto"

	"github.com/intakehq/intake/pkg/csv"
	intakev1 "github.com/intakehq/intake/proto/gen/intake/v1"
)

// DecodeError is a problem of the file's bytes rather than of reading them:
// gzip data that is corrupt or cut short, or a file that is not gzip data
// when the dialect says it is. Open returns it, and so does reading the
// stream Open returns.
type DecodeError struct {
	// Reason says what is wrong.
	Reason string
	// Err is the gzip package's error, if any.
	Err error
}

func (e *DecodeError) Error() string {
	return "the file is not valid gzip data: " + e.Reason
}

func (e *DecodeError) Unwrap() error { return e.Err }

// Open prepares the file r for reading with the job's dialect d (nil: every
// default). It returns the file as UTF-8 text, the resolved dialect to read
// that text with (delimiter, quote and escape set; encoding "utf-8"; no
// compression; the other fields as in d), and what detection found in the
// file (reported whatever d sets, for previews).
//
//   - Compression: GZIP un-gzips (a file without the gzip magic bytes is an
//     error), NONE never does, AUTO (the default) does when the file starts
//     with 1f 8b.
//   - Encoding: d.encoding (an unknown name is an error listing the
//     supported ones), or the detected one (see Detect): a byte order mark,
//     else UTF-8 when the sample is valid UTF-8, else Windows-1252. A byte
//     order mark is dropped.
//   - Delimiter: d.delimiter, or when empty the detected one (comma,
//     semicolon, tab or pipe).
//
// Errors are about the file or the dialect (a *DecodeError for bad gzip
// data), or a failure to read r. Open reads at most SampleSize bytes of r
// (plus what gzip and decoding need) before returning.
func Open(r io.Reader, d *intakev1.CsvDialect) (io.Reader, *intakev1.CsvDialect, *intakev1.DialectDetection, error) {
	syn, err := CSV(d)
	if err != nil {
		return nil, nil, nil, err
	}
	enc := ""
	if d.GetEncoding() != "" {
		if enc, err = NormalizeEncoding(d.GetEncoding()); err != nil {
			return nil, nil, nil, err
		}
	}
	var det Detection

	br := bufio.NewReaderSize(r, SampleSize)
	magic, err := br.Peek(len(gzipMagic))
	if err != nil && !errors.Is(err, io.EOF) {
		return nil, nil, nil, fmt.Errorf("read the file: %w", err)
	}
	det.Gzip = bytes.Equal(magic, gzipMagic)
	src := io.Reader(br)
	switch d.GetCompression() {
	case intakev1.Compression_COMPRESSION_GZIP:
		if !det.Gzip {
			return nil, nil, nil, &DecodeError{Reason: "it does not start with the gzip magic bytes 1f 8b, yet the dialect says it is gzip-compressed"}
		}
	case intakev1.Compression_COMPRESSION_NONE:
		det.Gzip = false
	}
	if det.Gzip {
		zr, err := gzip.NewReader(br)
		if err != nil {
			if err = gzipError(err); !isDecodeError(err) {
				err = fmt.Errorf("read the file: %w", err)
			}
			return nil, nil, nil, err
		}
		src = bufio.NewReaderSize(&gzipReader{zr}, SampleSize)
	}

	raw, err := peek(src.(*bufio.Reader))
	if err != nil {
		return nil, nil, nil, err
	}
	g := detectEncoding(raw)
	det.Encoding, det.EncodingConfidence, det.BOM = g.name, g.confidence, g.bom
	if enc == "" {
		enc = g.name
	}
	dec, err := Decoder(src, enc)
	if err != nil {
		return nil, nil, nil, err
	}
	text := bufio.NewReaderSize(dec, SampleSize)
	sample, err := peek(text)
	if err != nil {
		return nil, nil, nil, err
	}
	det.Delimiter, det.DelimiterConfidence = detectDelimiter(sample, syn.Quote)
	if d.GetDelimiter() == "" {
		syn.Comma = det.Delimiter
		if err := syn.Validate(); err != nil {
			return nil, nil, nil, fmt.Errorf("the detected delimiter %q: %w", det.Delimiter, err)
		}
	}

	resolved := &intakev1.CsvDialect{}
	if d != nil {
		resolved = proto.Clone(d).(*intakev1.CsvDialect)
	}
	resolved.Delimiter = string(syn.Comma)
	resolved.Quote = format(syn.Quote)
	resolved.Escape = format(syn.Escape)
	resolved.Encoding = UTF8
	resolved.Compression = intakev1.Compression_COMPRESSION_NONE
	return text, resolved, det.Proto(), nil
}

// NewReader returns a csv.Reader of the UTF-8 text Open returned, with the
// resolved dialect. It reads every record from the first (the header is
// record resolved.header_row).
func NewReader(text io.Reader, resolved *intakev1.CsvDialect) (*csv.Reader, error) {
	d, err := CSV(resolved)
	if err != nil {
		return nil, err
	}
	return csv.NewReader(text, d), nil
}

// peek returns up to SampleSize bytes from br without consuming them.
func peek(br *bufio.Reader) ([]byte, error) {
	b, err := br.Peek(SampleSize)
	if err != nil && !errors.Is(err, io.EOF) && !errors.Is(err, bufio.ErrBufferFull) {
		if isDecodeError(err) {
			return nil, err
		}
		return nil, fmt.Errorf("read the file: %w", err)
	}
	return b, nil
}

// gzipReader marks the errors of gzip data as *DecodeError; errors of the
// underlying reader pass through.
type gzipReader struct{ zr *gzip.Reader }

func (g *gzipReader) Read(p []byte) (int, error) {
	n, err := g.zr.Read(p)
	if err != nil && !errors.Is(err, io.EOF) {
		err = gzipError(err)
	}
	return n, err
}

func isDecodeError(err error) bool {
	var de *DecodeError
	return errors.As(err, &de)
}

// gzipError makes a *DecodeError of an error of gzip data; other errors
// (of the underlying reader) are returned as they are.
func gzipError(err error) error {
	var corrupt flate.CorruptInputError
	switch {
	case errors.Is(err, gzip.ErrHeader), errors.Is(err, gzip.ErrChecksum), errors.Is(err, io.ErrUnexpectedEOF),
		errors.As(err, &corrupt):
		return &DecodeError{Reason: "corrupt or cut short (" + err.Error() + ")", Err: err}
	}
	return err
}
