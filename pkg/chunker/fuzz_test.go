package chunker_test

import (
	"bytes"
	"errors"
	"io"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/intakehq/intake/pkg/chunker"
	"github.com/intakehq/intake/pkg/csv"
)

// fuzzDialects are the dialects FuzzChunker picks from.
var fuzzDialects = []csv.Dialect{
	csv.Default,
	{Comma: ';', Quote: '"'},
	{Comma: '\t', Quote: '"'},
	{Comma: '|', Quote: '"', Escape: '\\'},
	{Comma: ',', Quote: '"', Escape: '\\'},
	{Comma: '§', Quote: '\''},
	{Comma: ';'}, // quoting off
}

// record is one record as the whole file reads.
type record struct {
	fields []string
	reason string // the *csv.ParseError's Reason, or ""
	size   int    // bytes in a chunk: the raw record, with a "\n" added at the end of the file
}

// readWhole reads data with pkg/csv. open is true when the last record's
// quote is never closed.
func readWhole(t *testing.T, data []byte, d csv.Dialect) (recs []record, open bool) {
	t.Helper()
	r := csv.NewReader(bytes.NewReader(data), d)
	s := csv.NewSplitter(bytes.NewReader(data), d)
	for {
		fields, err := r.Read()
		raw, serr := s.Next()
		if errors.Is(err, io.EOF) {
			require.ErrorIs(t, serr, io.EOF)
			return recs, open
		}
		rec := record{fields: append([]string(nil), fields...), size: len(raw)}
		if !bytes.HasSuffix(raw, []byte("\n")) {
			rec.size++
		}
		var pe *csv.ParseError
		if err != nil {
			require.ErrorAs(t, err, &pe)
			rec.reason = pe.Reason()
			open = open || errors.Is(err, csv.ErrUnterminatedQuote)
		}
		recs = append(recs, rec)
	}
}

// FuzzChunker checks, for any file, dialect, header row, skipped rows and
// chunk limits, that the chunks read one by one with pkg/csv (as the mapper
// reads them) give exactly the records, errors and record numbers that
// reading the whole file gives, within the limits, and that the chunker
// fails exactly on the files it must fail on. The corpus in
// testdata/fuzz/FuzzChunker is replayed by go test.
func FuzzChunker(f *testing.F) {
	for i, s := range []string{
		"id,name\n1,a\n2,b\n",
		"id,note\r\n1,\"x\r\ny\"\r\n2,z\r\n",
		"\xEF\xBB\xBF\"id\",\"a\"\"b\"\n1,\"c,d\"",
		"h\n\n1,\"a\"b\",c\n\r\n2,d\n",
		"h\na,\"x\"y\nz\",b\nc,d\n",
		"h\n1,a\n2,\"never closed\n3,c\n",
		"h1;h2\nunits;\"€\"\n1;2\n3;4\r",
		"h\n1,\"say \\\"hi\\\"\",x\n2,\"c:\\\\\"\n",
		"h\n" + string(make([]byte, 40)) + "\n",
		"a§b\n'x§y'§'it''s'\n",
		"h\n\xEF\xBB\xBFx\n",
		"h,i\n\"\",\"\"\n,\n",
	} {
		f.Add([]byte(s), uint8(i), uint8(i%3), uint8(i%2), uint8(i%4), uint16(20+i*7))
	}
	f.Fuzz(func(t *testing.T, data []byte, sel, headerRow, skip, maxRows uint8, maxBytes uint16) {
		d := fuzzDialects[int(sel)%len(fuzzDialects)]
		opts := chunker.OptionsFor(d)
		opts.HeaderRow = 1 + int(headerRow)%3
		opts.SkipRows = int(skip) % 3
		opts.MaxChunkRows = 1 + int(maxRows)%5
		opts.MaxChunkBytes = 8 + int(maxBytes)%256
		whole, open := readWhole(t, data, d)
		tooLarge := false
		for _, r := range whole {
			tooLarge = tooLarge || r.size > opts.MaxChunkBytes
		}
		// failure reports whether err is one the file explains.
		failure := func(err error) bool {
			switch {
			case errors.Is(err, chunker.ErrUnterminatedQuote):
				require.True(t, open, "unterminated quote reported: %v", err)
				return true
			case errors.Is(err, chunker.ErrRecordTooLarge):
				require.True(t, tooLarge, "record too large reported: %v", err)
				return true
			}
			return false
		}

		c, err := chunker.New(bytes.NewReader(data), opts)
		if err != nil && failure(err) {
			return
		}
		switch {
		case len(whole) == 0:
			require.ErrorIs(t, err, chunker.ErrEmptyFile)
			return
		case len(whole) < opts.HeaderRow:
			require.ErrorIs(t, err, chunker.ErrNoHeader)
			return
		}
		require.NoError(t, err)
		require.Equal(t, whole[opts.HeaderRow-1].fields, c.Header())

		next := int64(opts.HeaderRow + opts.SkipRows + 1) // the record expected next
		for index := int64(0); ; index++ {
			ch, err := c.Next()
			if err != nil && failure(err) {
				return
			}
			if index == 0 && len(whole) < int(next) {
				require.ErrorIs(t, err, chunker.ErrNoRows)
				return
			}
			if errors.Is(err, io.EOF) {
				break
			}
			require.NoError(t, err)
			require.Equal(t, index, ch.Index)
			require.Equal(t, next, ch.FirstRow)
			require.Positive(t, ch.Rows)
			require.LessOrEqual(t, ch.Rows, int64(opts.MaxChunkRows))
			require.LessOrEqual(t, len(ch.Data), opts.MaxChunkBytes)
			require.Equal(t, byte('\n'), ch.Data[len(ch.Data)-1])

			// The mapper's reading of the chunk.
			r := csv.NewReader(bytes.NewReader(ch.Data), d)
			r.KeepBOM = true
			for {
				fields, err := r.Read()
				if errors.Is(err, io.EOF) {
					break
				}
				row := ch.FirstRow + r.Record() - 1
				require.LessOrEqual(t, row, int64(len(whole)))
				want := whole[row-1]
				require.Equal(t, want.fields, fields, "row %d", row)
				var pe *csv.ParseError
				if err != nil {
					require.ErrorAs(t, err, &pe)
					require.Equal(t, want.reason, pe.Reason(), "row %d", row)
				} else {
					require.Empty(t, want.reason, "row %d", row)
				}
			}
			require.Equal(t, ch.Rows, r.Record(), "the chunk holds Rows records")
			next += ch.Rows
		}
		require.False(t, open, "an unterminated quote is reported")
		require.False(t, tooLarge, "a record too large is reported")
		require.Equal(t, int64(len(whole)+1), next, "every record after the header is in a chunk")
	})
}
