// Package dialect turns a CSV file as it arrives (maybe gzip-compressed, in
// UTF-16 or Windows-1252, with a delimiter nobody wrote down) into a UTF-8
// stream and the dialect to read it with, reporting what it detected and how
// sure it is.
//
// The usual entry point is Open:
//
//	text, resolved, detected, err := dialect.Open(file, job.GetMapping().GetDialect())
//	...
//	r, err := dialect.NewReader(text, resolved) // a *csv.Reader of the records
//
// Open peeks at the first SampleSize bytes: it un-gzips the file when the
// dialect's compression says so (or, by default, when the file starts with
// the gzip magic bytes 1f 8b), decodes it to UTF-8 with golang.org/x/text
// (the job's encoding, or the detected one) dropping a byte order mark, and
// detects the delimiter when the job leaves it empty. The resolved dialect
// has the delimiter, quote and escape always set, encoding "utf-8" and no
// compression: it describes the UTF-8 stream, and it is what the fetcher puts
// in every chunk.
//
// Detect runs the same detection on a sample in memory; CSV converts a
// dialect message into a csv.Dialect; Validate checks a job's dialect.
package dialect

import (
	"fmt"
	"strings"
	"unicode/utf8"

	"github.com/intakehq/intake/pkg/csv"
	intakev1 "github.com/intakehq/intake/proto/gen/intake/v1"
)

// NoQuote is the CsvDialect.quote (and escape) that turns quoting off.
const NoQuote = "none"

// CSV converts a dialect message into the csv.Dialect to read a UTF-8 stream
// with. An empty delimiter is a comma here (Open detects it instead). A nil
// dialect is the default one.
//
// delimiter: one character, or "tab" / `\t` (also "comma", "semicolon",
// "pipe"). quote: one ASCII character, empty for '"', "none" for no quoting.
// escape: one ASCII character, `\` or `\\` for a backslash, empty or "none"
// for the quote itself (a doubled quote).
func CSV(d *intakev1.CsvDialect) (csv.Dialect, error) {
	comma, err := Delimiter(d.GetDelimiter())
	if err != nil {
		return csv.Dialect{}, err
	}
	out := csv.Dialect{Comma: comma, Quote: '"'}
	switch q := d.GetQuote(); q {
	case "":
	case NoQuote:
		out.Quote = 0
	default:
		r, err := asciiChar("quote", q)
		if err != nil {
			return csv.Dialect{}, err
		}
		out.Quote = r
	}
	switch e := d.GetEscape(); e {
	case "", NoQuote:
		out.Escape = out.Quote
	case `\\`:
		out.Escape = '\\'
	default:
		r, err := asciiChar("escape character", e)
		if err != nil {
			return csv.Dialect{}, err
		}
		out.Escape = r
	}
	if out.Quote == 0 {
		out.Escape = 0
	}
	if err := out.Validate(); err != nil {
		return csv.Dialect{}, fmt.Errorf("the CSV dialect: %w", err)
	}
	return out, nil
}

// Delimiter resolves a dialect's delimiter: "" is a comma; "tab" or `\t`
// (or the tab itself) a tab; "comma", "semicolon" and "pipe" what they say;
// otherwise one character that is not a quote, a line break or NUL.
func Delimiter(d string) (rune, error) {
	switch strings.ToLower(d) {
	case "", "comma":
		return ',', nil
	case `\t`, "tab", "\t":
		return '\t', nil
	case "semicolon":
		return ';', nil
	case "pipe":
		return '|', nil
	}
	r, w := utf8.DecodeRuneInString(d)
	if w != len(d) {
		return 0, fmt.Errorf("the delimiter %q is not one character", d)
	}
	if r == '"' || r == '\r' || r == '\n' || r == utf8.RuneError || r == 0 {
		return 0, fmt.Errorf("the delimiter %q cannot be used (not a quote, a line break or a NUL)", d)
	}
	return r, nil
}

func asciiChar(what, s string) (rune, error) {
	r, w := utf8.DecodeRuneInString(s)
	switch {
	case w != len(s):
		return 0, fmt.Errorf("the %s %q is not one character", what, s)
	case r >= utf8.RuneSelf:
		return 0, fmt.Errorf("the %s %q must be an ASCII character", what, s)
	case r == '\r' || r == '\n' || r == 0:
		return 0, fmt.Errorf("the %s %q cannot be used (not a line break or a NUL)", what, s)
	}
	return r, nil
}

// Validate checks a job's dialect: delimiter, quote and escape (see CSV),
// the encoding name, the header row and the rows to skip. A nil dialect is
// valid (every default).
func Validate(d *intakev1.CsvDialect) error {
	if _, err := CSV(d); err != nil {
		return err
	}
	if d.GetEncoding() != "" {
		if _, err := NormalizeEncoding(d.GetEncoding()); err != nil {
			return err
		}
	}
	switch {
	case d.GetHeaderRow() < 0:
		return fmt.Errorf("the header row %d is not a row number (1 or more; 0 means 1)", d.GetHeaderRow())
	case d.GetSkipRows() < 0:
		return fmt.Errorf("the rows to skip after the header (%d) cannot be negative", d.GetSkipRows())
	}
	switch d.GetCompression() {
	case intakev1.Compression_COMPRESSION_AUTO, intakev1.Compression_COMPRESSION_NONE, intakev1.Compression_COMPRESSION_GZIP:
	default:
		return fmt.Errorf("unknown compression %v", d.GetCompression())
	}
	return nil
}

// format returns a dialect character as a CsvDialect field.
func format(r rune) string {
	if r == 0 {
		return NoQuote
	}
	return string(r)
}
