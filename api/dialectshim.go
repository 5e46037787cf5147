package api

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"fmt"
	"io"
	"strings"

	"google.golang.org/protobuf/proto"

	intakev1 "github.com/intakehq/intake/proto/gen/intake/v1"
)

// openDialect stands in for pkg/dialect.Open until it lands: gzip by magic
// bytes, a UTF-8 BOM, a delimiter detected from the first line.
// TODO(issue 3): replace with dialect.Open.
func openDialect(r io.Reader, d *intakev1.CsvDialect) (io.Reader, *intakev1.CsvDialect, *intakev1.DialectDetection, error) {
	det := &intakev1.DialectDetection{Encoding: "utf-8", EncodingConfidence: 1}
	br := bufio.NewReaderSize(r, 64<<10)
	if magic, _ := br.Peek(2); d.GetCompression() != intakev1.Compression_COMPRESSION_NONE && bytes.Equal(magic, []byte{0x1f, 0x8b}) {
		zr, err := gzip.NewReader(br)
		if err != nil {
			return nil, nil, nil, fmt.Errorf("the file starts like gzip but is not: %w", err)
		}
		det.Gzip = true
		br = bufio.NewReaderSize(zr, 64<<10)
	}
	if b, _ := br.Peek(3); bytes.Equal(b, []byte{0xEF, 0xBB, 0xBF}) {
		det.Bom = true
		_, _ = br.Discard(3)
	}
	out := proto.Clone(d).(*intakev1.CsvDialect)
	if out == nil {
		out = &intakev1.CsvDialect{}
	}
	out.Encoding = "utf-8"
	if out.GetQuote() == "" {
		out.Quote = `"`
	}
	if out.GetEscape() == "" {
		out.Escape = out.GetQuote()
	}
	if out.GetDelimiter() == "" {
		head, _ := br.Peek(64 << 10)
		line, _, _ := bytes.Cut(head, []byte("\n"))
		best, n := ",", 0
		for _, c := range []string{",", ";", "\t", "|"} {
			if k := strings.Count(string(line), c); k > n {
				best, n = c, k
			}
		}
		out.Delimiter = best
		det.Delimiter = best
		det.DelimiterConfidence = 0.5
		if n > 0 {
			det.DelimiterConfidence = 0.9
		}
	} else {
		det.Delimiter = out.GetDelimiter()
		det.DelimiterConfidence = 1
	}
	return br, out, det, nil
}
