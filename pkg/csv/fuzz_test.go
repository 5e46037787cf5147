package csv_test

import (
	"bytes"
	"errors"
	"io"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/intakehq/intake/pkg/csv"
)

// fuzzDialects are the dialects the fuzz tests pick from.
var fuzzDialects = []csv.Dialect{
	csv.Default,
	{Comma: ';', Quote: '"'},
	{Comma: '\t', Quote: '"'},
	{Comma: '|', Quote: '"', Escape: '\\'},
	{Comma: ',', Quote: '"', Escape: '\\'},
	{Comma: '§', Quote: '\''},
	{Comma: ';'}, // quoting off
}

// FuzzReader checks, for any input and dialect, that the Reader never
// panics and stops; that it reads the records the Splitter cuts, each of
// them read alone giving the same fields and error; that the records are the
// input's bytes, in order, with only blank lines between them; and, for the
// default dialect, that the records are those of encoding/csv with
// LazyQuotes. The corpus in testdata/fuzz/FuzzReader is replayed by go test.
func FuzzReader(f *testing.F) {
	for _, s := range []string{
		"a,b\n1,2\n",
		"a,b\r\n1,\"x\r\ny\"\r\n",
		"\xEF\xBB\xBFid,\"na\"\"me\"\n1,\"a,b\"",
		"1,\"a\"b\",c\n2,d\n",
		"a,\"x\"y\nz\",b\nc,d\n",
		"1,a\n2,\"never closed\n3,c\n",
		"\n\r\n,,\n\"\"\n\r",
		"1,5\" disk,\"say \\\"hi\\\"\"\n",
		"a;b\"c;\"d\"\n",
		"x\r",
		"\"\r",
		"\xEF\xBB\xBF\xEF\xBB\xBFa\n",
		"a§\"b§c\"§'d''e'\n",
	} {
		for sel := range len(fuzzDialects) {
			f.Add([]byte(s), uint8(sel))
		}
	}
	f.Fuzz(func(t *testing.T, data []byte, sel uint8) {
		d := fuzzDialects[int(sel)%len(fuzzDialects)]
		got := readAll(t, string(data), d)

		// The Splitter cuts the same records, in order, out of the input.
		s := csv.NewSplitter(bytes.NewReader(data), d)
		var raws [][]byte
		for {
			raw, err := s.Next()
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				require.ErrorIs(t, err, csv.ErrUnterminatedQuote)
			}
			raws = append(raws, append([]byte(nil), raw...))
		}
		require.Len(t, raws, len(got))
		rest := bytes.TrimPrefix(data, []byte("\xEF\xBB\xBF"))
		line := int64(1)
		for i, raw := range raws {
			j := bytes.Index(rest, raw)
			require.GreaterOrEqual(t, j, 0, "record %d %q is in the input", i+1, raw)
			gap := rest[:j]
			require.True(t, blank(gap, false), "only blank lines between records: %q", gap)
			line += int64(bytes.Count(gap, []byte{'\n'}))
			require.Equal(t, line, got[i].Line, "record %d starts on line %d", i+1, line)
			require.Equal(t, int64(i+1), got[i].Record)
			require.Equal(t, string(csv.TrimTerminator(raw)), got[i].Raw)
			line += int64(bytes.Count(raw, []byte{'\n'}))
			rest = rest[j+len(raw):]

			// Read alone, the record gives the same fields and error.
			if bytes.HasPrefix(raw, []byte("\xEF\xBB\xBF")) {
				continue // alone, its BOM would be skipped
			}
			alone := readAll(t, string(raw), d)
			require.Len(t, alone, 1, "record %q read alone", raw)
			require.Equal(t, got[i].Fields, alone[0].Fields, "record %q read alone", raw)
			require.Equal(t, got[i].Err, alone[0].Err, "record %q read alone", raw)
		}
		require.True(t, blank(rest, true), "nothing but blank lines after the last record: %q", rest)
		for i, g := range got {
			if g.Err != "" && !bytes.Contains([]byte(g.Err), []byte("extraneous")) {
				require.Equal(t, len(got)-1, i, "only the last record can be unterminated")
			}
		}

		if d == csv.Default {
			compareWithEncodingCSV(t, data)
		}
	})
}

// blank reports whether b is only blank lines ("\n", "\r\n"), and at the end
// of the input, a "\r".
func blank(b []byte, end bool) bool {
	if end {
		b = bytes.TrimSuffix(b, []byte("\r"))
	}
	return len(bytes.Trim(bytes.ReplaceAll(b, []byte("\r\n"), []byte("\n")), "\n")) == 0
}
