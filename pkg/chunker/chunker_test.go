package chunker_test

import (
	"bytes"
	stdcsv "encoding/csv"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/intakehq/intake/pkg/chunker"
	"github.com/intakehq/intake/pkg/csv"
)

// chunkAll runs the chunker over input and returns the header and chunks.
func chunkAll(t *testing.T, input string, opts chunker.Options) ([]string, []chunker.Chunk, error) {
	t.Helper()
	c, err := chunker.New(strings.NewReader(input), opts)
	if err != nil {
		return nil, nil, err
	}
	var chunks []chunker.Chunk
	for {
		ch, err := c.Next()
		if errors.Is(err, io.EOF) {
			return c.Header(), chunks, nil
		}
		if err != nil {
			return c.Header(), chunks, err
		}
		chunks = append(chunks, ch)
	}
}

// parse reads data with encoding/csv as the mapper does.
func parse(t *testing.T, data []byte, comma rune) [][]string {
	t.Helper()
	r := stdcsv.NewReader(bytes.NewReader(data))
	r.Comma = comma
	r.LazyQuotes = true
	r.FieldsPerRecord = -1
	recs, err := r.ReadAll()
	require.NoError(t, err)
	return recs
}

// rows numbers the records of every chunk as the mapper does.
func rows(t *testing.T, chunks []chunker.Chunk) map[int64][]string {
	t.Helper()
	out := map[int64][]string{}
	for _, ch := range chunks {
		recs := parse(t, ch.Data, ',')
		require.Len(t, recs, int(ch.Rows), "chunk %d", ch.Index)
		for i, rec := range recs {
			out[ch.FirstRow+int64(i)] = rec
		}
	}
	return out
}

func TestQuotedNewlinesAndDelimiters(t *testing.T) {
	t.Parallel()
	in := "id,note\n1,\"line one\nline two\"\n2,\"a, b and \"\"c\"\"\"\n3,plain\n"
	header, chunks, err := chunkAll(t, in, chunker.Options{})
	require.NoError(t, err)
	require.Equal(t, []string{"id", "note"}, header)
	require.Len(t, chunks, 1)
	require.Equal(t, int64(2), chunks[0].FirstRow)
	require.Equal(t, int64(3), chunks[0].Rows)
	require.Equal(t, in[len("id,note\n"):], string(chunks[0].Data), "data is the file's bytes")
	require.Equal(t, map[int64][]string{
		2: {"1", "line one\nline two"},
		3: {"2", `a, b and "c"`},
		4: {"3", "plain"},
	}, rows(t, chunks))
}

func TestCRLF(t *testing.T) {
	t.Parallel()
	in := "id,note\r\n1,\"x\r\ny\"\r\n2,z\r\n"
	header, chunks, err := chunkAll(t, in, chunker.Options{MaxChunkRows: 1})
	require.NoError(t, err)
	require.Equal(t, []string{"id", "note"}, header)
	require.Len(t, chunks, 2)
	require.Equal(t, "1,\"x\r\ny\"\r\n", string(chunks[0].Data))
	require.Equal(t, "2,z\r\n", string(chunks[1].Data))
	require.Equal(t, map[int64][]string{2: {"1", "x\ny"}, 3: {"2", "z"}}, rows(t, chunks))
}

func TestBOMAndQuotedHeader(t *testing.T) {
	t.Parallel()
	in := "\xEF\xBB\xBF\"id\",\"full name\",\"say \"\"hi\"\"\",\"two\r\nlines\"\r\n1,Ann,hi,x\r\n"
	header, chunks, err := chunkAll(t, in, chunker.Options{})
	require.NoError(t, err)
	require.Equal(t, []string{"id", "full name", `say "hi"`, "two\nlines"}, header)
	require.Equal(t, map[int64][]string{2: {"1", "Ann", "hi", "x"}}, rows(t, chunks),
		"the header spans lines 1-2 but is one record")
}

func TestRecordNumbersCountRecordsNotLines(t *testing.T) {
	t.Parallel()
	in := "id,note\n1,\"a\nb\nc\"\n2,d\n"
	_, chunks, err := chunkAll(t, in, chunker.Options{MaxChunkRows: 1})
	require.NoError(t, err)
	require.Len(t, chunks, 2)
	require.Equal(t, int64(2), chunks[0].FirstRow)
	require.Equal(t, int64(3), chunks[1].FirstRow, "record 3 starts on line 5")
}

func TestLastLineWithoutNewline(t *testing.T) {
	t.Parallel()
	for name, tc := range map[string]struct {
		in, last string
		want     []string
	}{
		"plain":     {"id,n\n1,a\n2,b", "2,b\n", []string{"2", "b"}},
		"quoted":    {"id,n\n1,a\n2,\"b\nc\"", "2,\"b\nc\"\n", []string{"2", "b\nc"}},
		"cr at eof": {"id,n\n1,a\n2,b\r", "2,b\r\n", []string{"2", "b"}},
		"empty end": {"id,n\n1,a\n2,", "2,\n", []string{"2", ""}},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			_, chunks, err := chunkAll(t, tc.in, chunker.Options{MaxChunkRows: 1})
			require.NoError(t, err)
			require.Len(t, chunks, 2)
			require.Equal(t, tc.last, string(chunks[1].Data), "a newline is added to the last record")
			require.Equal(t, map[int64][]string{2: {"1", "a"}, 3: tc.want}, rows(t, chunks))
		})
	}
}

func TestBlankLinesAreNotRecords(t *testing.T) {
	t.Parallel()
	in := "\n\nid,n\n\n1,a\r\n\r\n\n2,b\n\n"
	header, chunks, err := chunkAll(t, in, chunker.Options{})
	require.NoError(t, err)
	require.Equal(t, []string{"id", "n"}, header)
	require.Len(t, chunks, 1)
	require.Equal(t, "1,a\r\n2,b\n", string(chunks[0].Data))
	require.Equal(t, map[int64][]string{2: {"1", "a"}, 3: {"2", "b"}}, rows(t, chunks))
}

func TestHeaderRowSkipsRecordsBefore(t *testing.T) {
	t.Parallel()
	in := "Export of accounts\n\"generated\non monday\",x\nid,name\n1,a\n"
	header, chunks, err := chunkAll(t, in, chunker.Options{HeaderRow: 3})
	require.NoError(t, err)
	require.Equal(t, []string{"id", "name"}, header)
	require.Equal(t, map[int64][]string{4: {"1", "a"}}, rows(t, chunks))
}

func TestDelimiterAndQuoteOptions(t *testing.T) {
	t.Parallel()
	in := "'id';'a;b'\n1;'x;''y'''\n"
	header, chunks, err := chunkAll(t, in, chunker.Options{Delimiter: ';', Quote: '\''})
	require.NoError(t, err)
	require.Equal(t, []string{"id", "a;b"}, header)
	require.Len(t, chunks, 1)
	require.Equal(t, int64(1), chunks[0].Rows)
}

func TestNonASCIIDelimiter(t *testing.T) {
	t.Parallel()
	// 'ç' ends in the same byte as '§' (0xA7): only the whole character
	// separates fields.
	in := "\"id\"§\"a§b\"\n1§ç\"x\"\n2§\"y\nz\"\n"
	header, chunks, err := chunkAll(t, in, chunker.Options{Comma: '§'})
	require.NoError(t, err)
	require.Equal(t, []string{"id", "a§b"}, header)
	require.Len(t, chunks, 1)
	recs := parse(t, chunks[0].Data, '§')
	require.Equal(t, [][]string{{"1", `ç"x"`}, {"2", "y\nz"}}, recs)
}

func TestQuoteInsideUnquotedFieldIsLiteral(t *testing.T) {
	t.Parallel()
	in := "id,size\n1,5\" disk\n2,\"3\"\" disk\"\n"
	_, chunks, err := chunkAll(t, in, chunker.Options{MaxChunkRows: 1})
	require.NoError(t, err)
	require.Equal(t, map[int64][]string{2: {"1", `5" disk`}, 3: {"2", `3" disk`}}, rows(t, chunks))
}

func TestChunkLimits(t *testing.T) {
	t.Parallel()
	var b strings.Builder
	b.WriteString("id,name\n")
	for i := range 100 {
		fmt.Fprintf(&b, "%d,name %d\n", i, i)
	}
	in := b.String()

	t.Run("rows", func(t *testing.T) {
		t.Parallel()
		_, chunks, err := chunkAll(t, in, chunker.Options{MaxChunkRows: 7})
		require.NoError(t, err)
		require.Len(t, chunks, 15)
		for i, ch := range chunks {
			require.Equal(t, int64(i), ch.Index)
			require.Equal(t, int64(2+7*i), ch.FirstRow)
			if i < 14 {
				require.Equal(t, int64(7), ch.Rows)
			}
		}
		require.Equal(t, int64(2), chunks[14].Rows)
		require.Len(t, rows(t, chunks), 100)
	})
	t.Run("bytes", func(t *testing.T) {
		t.Parallel()
		_, chunks, err := chunkAll(t, in, chunker.Options{MaxChunkBytes: 50})
		require.NoError(t, err)
		var total int64
		var data []byte
		for i, ch := range chunks {
			require.LessOrEqual(t, len(ch.Data), 50)
			if i < len(chunks)-1 {
				require.Greater(t, len(ch.Data), 50-14, "a chunk is filled before the next one starts")
			}
			total += ch.Rows
			data = append(data, ch.Data...)
		}
		require.Equal(t, int64(100), total)
		require.Equal(t, in[len("id,name\n"):], string(data), "every record in exactly one chunk, in order")
	})
}

func TestRecordTooLarge(t *testing.T) {
	t.Parallel()
	in := "id,note\n1,short\n2,\"" + strings.Repeat("x", 200) + "\n3,more\n"
	_, _, err := chunkAll(t, in, chunker.Options{MaxChunkBytes: 100})
	require.ErrorIs(t, err, chunker.ErrRecordTooLarge)
	require.EqualError(t, err, "row 3 (starting on line 3) is larger than the limit of 100 bytes")

	// Over several lines with an open quote, the message points at the quote.
	in = "id,note\n1,short\n2,\"" + strings.Repeat("x\n", 100) + "\n3,more\n"
	_, _, err = chunkAll(t, in, chunker.Options{MaxChunkBytes: 100})
	require.EqualError(t, err, "row 3 (starting on line 3) is larger than the limit of 100 bytes; is the quoted field opened on line 3 missing its closing quote?")
}

func TestUnterminatedQuote(t *testing.T) {
	t.Parallel()
	in := "id,note\n1,a\n\n2,b\n3,\"never closed\n4,d\n5,e\n"
	_, chunks, err := chunkAll(t, in, chunker.Options{MaxChunkRows: 1})
	require.ErrorIs(t, err, chunker.ErrUnterminatedQuote)
	require.EqualError(t, err, "row 4: the quoted field opened on line 5 is not closed before the end of the file")
	var perr *chunker.ParseError
	require.ErrorAs(t, err, &perr)
	require.Equal(t, int64(4), perr.Record)
	require.Equal(t, int64(5), perr.QuoteLine)
	require.Len(t, chunks, 2, "the records before it were chunked")

	// In the header: New fails.
	_, err = chunker.New(strings.NewReader("id,\"note\n1,a\n"), chunker.Options{})
	require.EqualError(t, err, "row 1: the quoted field opened on line 1 is not closed before the end of the file")

	// A quote closed but followed by text stays open (as encoding/csv reads it).
	_, _, err = chunkAll(t, "id,n\n1,\"a\"b\n", chunker.Options{})
	require.ErrorIs(t, err, chunker.ErrUnterminatedQuote)
}

func TestEmptyFile(t *testing.T) {
	t.Parallel()
	for _, in := range []string{"", "\n", "\r\n\n", "\xEF\xBB\xBF", "\xEF\xBB\xBF\n"} {
		_, err := chunker.New(strings.NewReader(in), chunker.Options{})
		require.ErrorIs(t, err, chunker.ErrEmptyFile, "%q", in)
		require.EqualError(t, err, "file is empty")
	}
}

func TestHeaderOnly(t *testing.T) {
	t.Parallel()
	for _, in := range []string{"id,name", "id,name\n", "id,name\r\n\r\n", "pre\nid,name\n"} {
		opts := chunker.Options{}
		if strings.HasPrefix(in, "pre") {
			opts.HeaderRow = 2
		}
		c, err := chunker.New(strings.NewReader(in), opts)
		require.NoError(t, err, "%q", in)
		require.Equal(t, []string{"id", "name"}, c.Header())
		_, err = c.Next()
		require.ErrorIs(t, err, chunker.ErrNoRows, "%q", in)
		require.EqualError(t, err, "file has a header but no data rows")
	}
}

func TestFileEndsBeforeHeader(t *testing.T) {
	t.Parallel()
	_, err := chunker.New(strings.NewReader("a\nb\n"), chunker.Options{HeaderRow: 3})
	require.ErrorIs(t, err, chunker.ErrNoHeader)
	require.EqualError(t, err, "file ends before the header row: the header is record 3 but the file has only 2 records")
}

func TestOptionsValidate(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		opts chunker.Options
		err  string
	}{
		{chunker.Options{Delimiter: '\n'}, `chunker: delimiter '\n': a line break cannot be the delimiter`},
		{chunker.Options{Quote: '\r'}, `chunker: quote '\r': a line break cannot be the quote character`},
		{chunker.Options{Delimiter: '"'}, `chunker: delimiter and quote are both '"'`},
		{chunker.Options{HeaderRow: -1}, "chunker: header row -1: must be 1 or more"},
		{chunker.Options{MaxChunkBytes: -1}, "chunker: max chunk bytes -1: must be positive"},
		{chunker.Options{MaxChunkRows: -5}, "chunker: max chunk rows -5: must be positive"},
		{chunker.Options{Comma: '\n'}, `chunker: delimiter '\n': a line break cannot be the delimiter`},
		{chunker.Options{Comma: 0xFFFD}, `chunker: delimiter '�' is not a valid character`},
		{chunker.Options{Comma: '"'}, `chunker: delimiter and quote are both '"'`},
	} {
		_, err := chunker.New(strings.NewReader("a\n1\n"), tc.opts)
		require.EqualError(t, err, tc.err)
	}
}

// TestMatchesEncodingCSV is a property test: random files, chunked with tiny
// limits, give exactly the records and record numbers encoding/csv reads from
// the whole file.
func TestMatchesEncodingCSV(t *testing.T) {
	t.Parallel()
	rng := rand.New(rand.NewPCG(1, 2))
	checked, unterminated := 0, 0
	for i := range 3000 {
		var data []byte
		comma := ','
		if i%2 == 0 {
			comma = []rune{',', ';', '\t', '|', '§', 'é'}[rng.IntN(6)]
			data = structuredCSV(rng, comma)
		} else {
			data = randomCSV(rng)
		}
		if checkAgainstCSV(t, rng, data, comma) {
			checked++
		} else {
			unterminated++
		}
	}
	t.Logf("%d files compared, %d with an unterminated quote", checked, unterminated)
	require.Greater(t, checked, 2000)
}

// checkAgainstCSV compares the chunker with encoding/csv on data. It returns
// false when the file ends inside a quoted field (which the chunker rejects
// and encoding/csv with LazyQuotes accepts).
func checkAgainstCSV(t *testing.T, rng *rand.Rand, data []byte, comma rune) bool {
	t.Helper()
	plain := bytes.TrimPrefix(data, []byte("\xEF\xBB\xBF"))
	r := stdcsv.NewReader(bytes.NewReader(plain))
	r.Comma, r.LazyQuotes, r.FieldsPerRecord = comma, true, -1
	var want [][]string
	maxSpan, prev := int64(0), int64(0)
	for {
		rec, err := r.Read()
		if err == io.EOF {
			break
		}
		require.NoError(t, err)
		want = append(want, rec)
		maxSpan = max(maxSpan, r.InputOffset()-prev)
		prev = r.InputOffset()
	}
	headerRow := 1 + rng.IntN(3)
	opts := chunker.Options{
		Comma:         comma,
		HeaderRow:     headerRow,
		MaxChunkBytes: int(maxSpan) + 1 + rng.IntN(60),
		MaxChunkRows:  1 + rng.IntN(4),
	}
	msg := fmt.Sprintf("file %q, options %+v", data, opts)

	c, err := chunker.New(bytes.NewReader(data), opts)
	if errors.Is(err, chunker.ErrUnterminatedQuote) {
		strict := stdcsv.NewReader(bytes.NewReader(plain))
		strict.Comma, strict.FieldsPerRecord = comma, -1
		_, serr := strict.ReadAll()
		require.Error(t, serr, msg)
		return false
	}
	switch {
	case len(want) == 0:
		require.ErrorIs(t, err, chunker.ErrEmptyFile, msg)
		return true
	case len(want) < headerRow:
		require.ErrorIs(t, err, chunker.ErrNoHeader, msg)
		return true
	}
	require.NoError(t, err, msg)
	require.Equal(t, want[headerRow-1], c.Header(), msg)

	next := int64(headerRow + 1) // record number expected next
	for index := int64(0); ; index++ {
		ch, err := c.Next()
		if errors.Is(err, chunker.ErrUnterminatedQuote) {
			return false
		}
		if index == 0 && len(want) == headerRow {
			require.ErrorIs(t, err, chunker.ErrNoRows, msg)
			return true
		}
		if err == io.EOF {
			break
		}
		require.NoError(t, err, msg)
		require.Equal(t, index, ch.Index, msg)
		require.Equal(t, next, ch.FirstRow, msg)
		require.LessOrEqual(t, len(ch.Data), opts.MaxChunkBytes, msg)
		require.LessOrEqual(t, ch.Rows, int64(opts.MaxChunkRows), msg)
		require.Positive(t, ch.Rows, msg)
		require.Equal(t, byte('\n'), ch.Data[len(ch.Data)-1], msg)
		cr := stdcsv.NewReader(bytes.NewReader(ch.Data))
		cr.Comma, cr.LazyQuotes, cr.FieldsPerRecord = comma, true, -1
		got, err := cr.ReadAll()
		require.NoError(t, err, msg)
		require.Equal(t, want[next-1:next-1+ch.Rows], got, "chunk %d %q of %s", index, ch.Data, msg)
		next += ch.Rows
	}
	require.Equal(t, int64(len(want)+1), next, "every record is in a chunk: %s", msg)
	return true
}

// structuredCSV writes records with plain, quoted and odd fields.
func structuredCSV(rng *rand.Rand, comma rune) []byte {
	var b bytes.Buffer
	if rng.IntN(5) == 0 {
		b.WriteString("\xEF\xBB\xBF")
	}
	words := []string{"a", "bc", "", "x y", "5\" disk", "it's", "é", " sp "}
	quoted := []string{"a,b", "a;b", "a\tb", "a|b", "a§b", "é\"\"é", "line\nbreak", "crlf\r\nbreak", `say ""hi""`, "", "\n", "trail\r", `""`}
	nrec := rng.IntN(12)
	for range nrec {
		if rng.IntN(6) == 0 {
			b.WriteString([]string{"\n", "\r\n"}[rng.IntN(2)])
		}
		nf := 1 + rng.IntN(5)
		for f := range nf {
			if f > 0 {
				b.WriteRune(comma)
			}
			if rng.IntN(3) == 0 {
				b.WriteString(`"` + quoted[rng.IntN(len(quoted))] + `"`)
			} else {
				w := words[rng.IntN(len(words))]
				if w == "" || w[0] != '"' {
					b.WriteString(w)
				}
			}
		}
		b.WriteString([]string{"\n", "\r\n"}[rng.IntN(2)])
	}
	out := b.Bytes()
	if len(out) > 0 && rng.IntN(3) == 0 {
		out = bytes.TrimRight(out, "\r\n")
	}
	return out
}

// randomCSV is random bytes over the characters that matter to the syntax.
func randomCSV(rng *rand.Rand) []byte {
	alphabet := []byte("aaab,,\"\"\n\n\r")
	n := rng.IntN(120)
	b := make([]byte, n)
	for i := range b {
		b[i] = alphabet[rng.IntN(len(alphabet))]
	}
	return b
}

// BenchmarkChunker chunks a generated ~50 MB file.
func BenchmarkChunker(b *testing.B) {
	data := benchFile(50 << 20)
	b.SetBytes(int64(len(data)))
	b.ResetTimer()
	for b.Loop() {
		c, err := chunker.New(bytes.NewReader(data), chunker.Options{})
		if err != nil {
			b.Fatal(err)
		}
		for {
			_, err := c.Next()
			if err == io.EOF {
				break
			}
			if err != nil {
				b.Fatal(err)
			}
		}
	}
}

func benchFile(size int) []byte {
	var b bytes.Buffer
	b.Grow(size + 200)
	b.WriteString("account_id,name,email,created,notes,revenue\n")
	for i := 0; b.Len() < size; i++ {
		if i%10 == 0 {
			fmt.Fprintf(&b, "%d,\"Company %d, Inc.\",ops%d@example.com,2024-01-%02d,\"said \"\"hello\"\"\nand left\",%d.%02d\r\n", i, i, i, i%28+1, i*7, i%100)
		} else {
			fmt.Fprintf(&b, "%d,Company %d,ops%d@example.com,2024-01-%02d,nothing to note,%d.%02d\n", i, i, i, i%28+1, i*7, i%100)
		}
	}
	return b.Bytes()
}

func TestSkipRows(t *testing.T) {
	t.Parallel()
	in := "id,amount\n\"\",EUR\nunits,\"x\ny\"\n1,5\n2,6\n"
	header, chunks, err := chunkAll(t, in, chunker.Options{SkipRows: 2, MaxChunkRows: 1})
	require.NoError(t, err)
	require.Equal(t, []string{"id", "amount"}, header)
	require.Len(t, chunks, 2)
	require.Equal(t, int64(4), chunks[0].FirstRow, "the skipped rows 2 and 3 still count")
	require.Equal(t, map[int64][]string{4: {"1", "5"}, 5: {"2", "6"}}, rows(t, chunks))

	// Skipping every data row leaves none.
	c, err := chunker.New(strings.NewReader("id\nunits\n"), chunker.Options{SkipRows: 1})
	require.NoError(t, err)
	_, err = c.Next()
	require.ErrorIs(t, err, chunker.ErrNoRows)
	c, err = chunker.New(strings.NewReader("id\nunits\n"), chunker.Options{SkipRows: 5})
	require.NoError(t, err)
	_, err = c.Next()
	require.ErrorIs(t, err, chunker.ErrNoRows)
}

// readChunk reads a chunk with pkg/csv, as the mapper does.
func readChunk(t *testing.T, ch chunker.Chunk, d csv.Dialect) [][]string {
	t.Helper()
	recs, err := csv.NewReader(bytes.NewReader(ch.Data), d).ReadAll()
	require.NoError(t, err)
	require.Len(t, recs, int(ch.Rows))
	return recs
}

func TestBackslashEscape(t *testing.T) {
	t.Parallel()
	in := "id,note\n1,\"say \\\"hi\\\",\nthen go\"\n2,\"c:\\\\\"\n"
	opts := chunker.Options{Escape: '\\', MaxChunkRows: 1}
	header, chunks, err := chunkAll(t, in, opts)
	require.NoError(t, err)
	require.Equal(t, []string{"id", "note"}, header)
	require.Len(t, chunks, 2)
	require.Equal(t, int64(3), chunks[1].FirstRow)
	d := opts.Dialect()
	require.Equal(t, csv.Dialect{Comma: ',', Quote: '"', Escape: '\\'}, d)
	require.Equal(t, [][]string{{"1", "say \"hi\",\nthen go"}}, readChunk(t, chunks[0], d))
	require.Equal(t, [][]string{{"2", `c:\`}}, readChunk(t, chunks[1], d))
}

func TestQuotingOff(t *testing.T) {
	t.Parallel()
	in := "id;note\n1;\"open\n2;5\" disk\n"
	opts := chunker.OptionsFor(csv.Dialect{Comma: ';'})
	require.Equal(t, chunker.NoQuote, opts.Quote)
	header, chunks, err := chunkAll(t, in, opts)
	require.NoError(t, err, "a quote opens nothing")
	require.Equal(t, []string{"id", "note"}, header)
	require.Len(t, chunks, 1)
	require.Equal(t, [][]string{{"1", `"open`}, {"2", `5" disk`}}, readChunk(t, chunks[0], opts.Dialect()))
	require.Equal(t, csv.Dialect{Comma: ';'}, opts.Dialect())
}

func TestOptionsForRoundTrip(t *testing.T) {
	t.Parallel()
	for _, d := range []csv.Dialect{
		csv.Default,
		{Comma: '\t', Quote: '\'', Escape: '\''},
		{Comma: '|', Quote: '"', Escape: '\\'},
		{Comma: '§'},
	} {
		require.Equal(t, d, chunker.OptionsFor(d).Dialect())
		require.NoError(t, chunker.OptionsFor(d).Validate())
	}
	_, err := chunker.New(strings.NewReader("a\n1\n"), chunker.Options{Quote: '«'})
	require.EqualError(t, err, `chunker: quote '«': must be an ASCII character`)
	_, err = chunker.New(strings.NewReader("a\n1\n"), chunker.Options{Escape: '\n'})
	require.EqualError(t, err, `chunker: invalid escape character '\n': a line break cannot be the escape character`)
	_, err = chunker.New(strings.NewReader("a\n1\n"), chunker.Options{SkipRows: -1})
	require.EqualError(t, err, "chunker: skip rows -1: must be 0 or more")
}
