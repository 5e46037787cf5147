package csv_test

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

	"github.com/intakehq/intake/pkg/csv"
)

// result is what one Read returned.
type result struct {
	Record int64
	Line   int64
	Fields []string
	Raw    string
	Err    string // ParseError.Reason, or ""
}

// readAll reads input to the end, recording every Read.
func readAll(t testing.TB, input string, d csv.Dialect) []result {
	t.Helper()
	r := csv.NewReader(strings.NewReader(input), d)
	var out []result
	for {
		rec, err := r.Read()
		if errors.Is(err, io.EOF) {
			return out
		}
		res := result{Record: r.Record(), Line: r.Line(), Fields: append([]string(nil), rec...), Raw: string(r.RawRecord())}
		if err != nil {
			var pe *csv.ParseError
			require.ErrorAs(t, err, &pe, "input %q", input)
			require.Equal(t, r.Record(), pe.Record)
			require.Equal(t, r.Line(), pe.Line)
			res.Err = pe.Reason()
		}
		out = append(out, res)
		require.Less(t, len(out), 10000, "Read does not stop")
	}
}

func ok(rec, line int64, raw string, fields ...string) result {
	return result{Record: rec, Line: line, Fields: fields, Raw: raw}
}

func bad(rec, line int64, raw, reason string, fields ...string) result {
	return result{Record: rec, Line: line, Fields: fields, Raw: raw, Err: reason}
}

var (
	semicolon = csv.Dialect{Comma: ';', Quote: '"'}
	backslash = csv.Dialect{Comma: ',', Quote: '"', Escape: '\\'}
	noQuote   = csv.Dialect{Comma: ';'}
)

func TestReaderRules(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name  string
		in    string
		d     csv.Dialect
		want  []result
		zeroD bool
	}{
		{name: "plain", in: "a,b,c\n1,2,3\n", want: []result{ok(1, 1, "a,b,c", "a", "b", "c"), ok(2, 2, "1,2,3", "1", "2", "3")}},
		{name: "crlf", in: "a,b\r\n1,2\r\n", want: []result{ok(1, 1, "a,b", "a", "b"), ok(2, 2, "1,2", "1", "2")}},
		{name: "no final newline", in: "a,b\n1,2", want: []result{ok(1, 1, "a,b", "a", "b"), ok(2, 2, "1,2", "1", "2")}},
		{name: "cr before eof is dropped", in: "a,b\n1,2\r", want: []result{ok(1, 1, "a,b", "a", "b"), ok(2, 2, "1,2", "1", "2")}},
		{name: "lone cr inside a field stays", in: "a\rb,c\n", want: []result{ok(1, 1, "a\rb,c", "a\rb", "c")}},
		{name: "blank lines are not records", in: "\n\r\na\n\n\r\nb\n\n", want: []result{ok(1, 3, "a", "a"), ok(2, 6, "b", "b")}},
		{name: "only blank lines", in: "\n\r\n\n", want: nil},
		{name: "empty input", in: "", want: nil},
		{name: "spaces are a record", in: " \n", want: []result{ok(1, 1, " ", " ")}},
		{name: "empty fields", in: ",,\n\"\",\"\"\n\"\"\n", want: []result{
			ok(1, 1, ",,", "", "", ""), ok(2, 2, `"",""`, "", ""), ok(3, 3, `""`, ""),
		}},
		{name: "quoted delimiter and newline", in: "1,\"a,b\nc\"\n2,x\n", want: []result{
			ok(1, 1, "1,\"a,b\nc\"", "1", "a,b\nc"), ok(2, 3, "2,x", "2", "x"),
		}},
		{name: "crlf inside quotes reads as lf", in: "1,\"a\r\nb\r\r\nc\"\r\n2,x\r\n", want: []result{
			ok(1, 1, "1,\"a\r\nb\r\r\nc\"", "1", "a\nb\r\nc"), ok(2, 4, "2,x", "2", "x"),
		}},
		{name: "doubled quotes", in: `"say ""hi""",""""` + "\n", want: []result{ok(1, 1, `"say ""hi""",""""`, `say "hi"`, `"`)}},
		{name: "quote in unquoted field is literal", in: "1,5\" disk,x\"y\"\n", want: []result{ok(1, 1, `1,5" disk,x"y"`, "1", `5" disk`, `x"y"`)}},
		{name: "space before quote: unquoted", in: "1, \"a\",b\n", want: []result{ok(1, 1, `1, "a",b`, "1", ` "a"`, "b")}},
		{name: "extraneous quote", in: "1,\"a\"b\",c\n2,d\n", want: []result{
			bad(1, 1, `1,"a"b",c`, `extraneous quote in a quoted field at character 5 (a quote inside quotes is written "")`, "1", `a"b`, "c"),
			ok(2, 2, "2,d", "2", "d"),
		}},
		{name: "extraneous quote keeps the field open across lines", in: "a,\"x\"y\nz\",b\nc,d\n", want: []result{
			bad(1, 1, "a,\"x\"y\nz\",b", `extraneous quote in a quoted field at character 5 (a quote inside quotes is written "")`, "a", "x\"y\nz", "b"),
			ok(2, 3, "c,d", "c", "d"),
		}},
		{name: "extraneous quote on a later line", in: "a,\"x\nyy\"z\",b\nc\n", want: []result{
			bad(1, 1, "a,\"x\nyy\"z\",b", `extraneous quote in a quoted field at line 2 of the record, character 3 (a quote inside quotes is written "")`, "a", "x\nyy\"z", "b"),
			ok(2, 3, "c", "c"),
		}},
		{name: "quote then cr mid-line is extraneous", in: "\"a\"\rb\"\n", want: []result{
			bad(1, 1, "\"a\"\rb\"", `extraneous quote in a quoted field at character 3 (a quote inside quotes is written "")`, "a\"\rb"),
		}},
		{name: "unterminated quote", in: "1,a\n2,\"b\n3,c\n", want: []result{
			ok(1, 1, "1,a", "1", "a"),
			bad(2, 2, "2,\"b\n3,c", "the quoted field opened at character 3 is not closed before the end of the file", "2", "b\n3,c"),
		}},
		{name: "unterminated quote on one line", in: "\"abc", want: []result{
			bad(1, 1, "\"abc", "the quoted field opened at character 1 is not closed before the end of the file", "abc"),
		}},
		{name: "utf-8 bom is skipped", in: "\xEF\xBB\xBFid,n\n1,a\n", want: []result{ok(1, 1, "id,n", "id", "n"), ok(2, 2, "1,a", "1", "a")}},
		{name: "bom alone", in: "\xEF\xBB\xBF", want: nil},
		{name: "semicolon", in: "a;\"b;c\";d\n", d: semicolon, want: []result{ok(1, 1, `a;"b;c";d`, "a", "b;c", "d")}},
		{name: "tab", in: "a\t\"b\tc\"\n", d: csv.Dialect{Comma: '\t', Quote: '"'}, want: []result{ok(1, 1, "a\t\"b\tc\"", "a", "b\tc")}},
		{name: "pipe", in: "a|b||\n", d: csv.Dialect{Comma: '|', Quote: '"'}, want: []result{ok(1, 1, "a|b||", "a", "b", "", "")}},
		{name: "non-ascii delimiter", in: "\"a§b\"§ç\"x\"§\n", d: csv.Dialect{Comma: '§', Quote: '"'}, want: []result{
			ok(1, 1, "\"a§b\"§ç\"x\"§", "a§b", `ç"x"`, ""),
		}},
		{name: "single quote", in: "'a,b','it''s'\n", d: csv.Dialect{Comma: ',', Quote: '\''}, want: []result{ok(1, 1, "'a,b','it''s'", "a,b", "it's")}},
		{name: "backslash escapes", in: `"a\"b","c\\",d` + "\n" + `"x\ny","p""q"` + "\n", d: backslash, want: []result{
			ok(1, 1, `"a\"b","c\\",d`, `a"b`, `c\`, "d"),
			ok(2, 2, `"x\ny","p""q"`, `x\ny`, `p"q`),
		}},
		{name: "backslash escape keeps the field open", in: `"a\",b` + "\n" + `c",d` + "\n", d: backslash, want: []result{
			ok(1, 1, "\"a\\\",b\nc\",d", "a\",b\nc", "d"),
		}},
		{name: "backslash at the end of a line", in: "\"a\\\nb\",c\n", d: backslash, want: []result{
			ok(1, 1, "\"a\\\nb\",c", "a\\\nb", "c"),
		}},
		{name: "backslash extraneous quote", in: `"a"b",c` + "\n", d: backslash, want: []result{
			bad(1, 1, `"a"b",c`, `extraneous quote in a quoted field at character 3 (a quote inside quotes is written \")`, `a"b`, "c"),
		}},
		{name: "backslash outside quotes is literal", in: `a\,b` + "\n", d: backslash, want: []result{ok(1, 1, `a\,b`, `a\`, "b")}},
		{name: "quoting off", in: "a;\"b;c\"\n\"x\n", d: noQuote, want: []result{
			ok(1, 1, `a;"b;c"`, "a", `"b`, `c"`), ok(2, 2, `"x`, `"x`),
		}},
		{name: "zero dialect: comma, quoting off", in: "a,\"b\n", zeroD: true, want: []result{ok(1, 1, `a,"b`, "a", `"b`)}},
		{name: "multi-line record numbering", in: "h\n\"a\nb\nc\"\n\nd\n", want: []result{
			ok(1, 1, "h", "h"), ok(2, 2, "\"a\nb\nc\"", "a\nb\nc"), ok(3, 6, "d", "d"),
		}},
		{name: "quoted field at eof without newline", in: "a,\"b\nc\"", want: []result{ok(1, 1, "a,\"b\nc\"", "a", "b\nc")}},
		{name: "quoted field then cr at eof", in: "a,\"b\"\r", want: []result{ok(1, 1, "a,\"b\"", "a", "b")}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			d := tc.d
			if d == (csv.Dialect{}) && !tc.zeroD {
				d = csv.Default
			}
			require.Equal(t, tc.want, readAll(t, tc.in, d))
		})
	}
}

func TestFieldsStayValidAfterLaterReads(t *testing.T) {
	t.Parallel()
	var b strings.Builder
	for i := range 20000 {
		fmt.Fprintf(&b, "%d,\"name %d, \"\"q\"\"\",plain %d\n", i, i, i)
	}
	r := csv.NewReader(strings.NewReader(b.String()), csv.Default)
	var kept [][]string
	for {
		rec, err := r.Read()
		if err == io.EOF {
			break
		}
		require.NoError(t, err)
		kept = append(kept, append([]string(nil), rec...))
	}
	require.Len(t, kept, 20000)
	for i, rec := range kept {
		require.Equal(t, []string{fmt.Sprint(i), fmt.Sprintf("name %d, \"q\"", i), fmt.Sprintf("plain %d", i)}, rec)
	}
}

func TestRecordSliceIsReused(t *testing.T) {
	t.Parallel()
	r := csv.NewReader(strings.NewReader("a,b\nc,d\n"), csv.Default)
	first, err := r.Read()
	require.NoError(t, err)
	a := first[0]
	second, err := r.Read()
	require.NoError(t, err)
	require.Equal(t, "c", first[0], "the slice is reused")
	require.Equal(t, "a", a, "the strings are not")
	require.Equal(t, []string{"c", "d"}, second)
}

func TestLongLines(t *testing.T) {
	t.Parallel()
	long := strings.Repeat("x", 200<<10)
	in := "a," + long + "\n\"" + long + "\n" + long + "\",b\nc\n"
	got := readAll(t, in, csv.Default)
	require.Equal(t, []result{
		ok(1, 1, "a,"+long, "a", long),
		ok(2, 2, "\""+long+"\n"+long+"\",b", long+"\n"+long, "b"),
		ok(3, 4, "c", "c"),
	}, got)
}

func TestMaxRecordBytes(t *testing.T) {
	t.Parallel()
	in := "a,b\n1,\"" + strings.Repeat("x\n", 100) + "\n2,c\n"
	r := csv.NewReader(strings.NewReader(in), csv.Default)
	r.MaxRecordBytes = 50
	_, err := r.Read()
	require.NoError(t, err)
	_, err = r.Read()
	require.ErrorIs(t, err, csv.ErrRecordTooLarge)
	require.EqualError(t, err, "record 2 (line 2): the record is larger than the limit of 50 bytes")
	var pe *csv.ParseError
	require.ErrorAs(t, err, &pe)
	require.Equal(t, int64(2), pe.ErrLine, "the open quote")
	_, err2 := r.Read()
	require.Equal(t, err, err2, "sticky")

	// One long line.
	r = csv.NewReader(strings.NewReader("a\n"+strings.Repeat("y", 100<<10)+"\n"), csv.Default)
	r.MaxRecordBytes = 1000
	_, err = r.Read()
	require.NoError(t, err)
	_, err = r.Read()
	require.ErrorIs(t, err, csv.ErrRecordTooLarge)
}

func TestDialectValidate(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		d   csv.Dialect
		err string
	}{
		{csv.Dialect{Comma: '\n'}, `invalid delimiter '\n': a line break cannot be the delimiter`},
		{csv.Dialect{Comma: '\r'}, `invalid delimiter '\r': a line break cannot be the delimiter`},
		{csv.Dialect{Comma: 0xFFFD}, `invalid delimiter '�': not a valid character`},
		{csv.Dialect{Comma: 0xD800}, `invalid delimiter '�': not a valid character`},
		{csv.Dialect{Comma: ',', Quote: '«'}, `invalid quote character '«': must be an ASCII character`},
		{csv.Dialect{Comma: ',', Quote: '\n'}, `invalid quote character '\n': a line break cannot be the quote`},
		{csv.Dialect{Comma: '"', Quote: '"'}, `invalid quote character: the delimiter and the quote are both '"'`},
		{csv.Dialect{Comma: ',', Quote: '"', Escape: 'é'}, `invalid escape character 'é': must be an ASCII character`},
		{csv.Dialect{Comma: ',', Quote: '"', Escape: '\r'}, `invalid escape character '\r': a line break cannot be the escape character`},
		{csv.Dialect{Comma: ',', Quote: '"', Escape: ','}, `invalid escape character: the delimiter and the escape character are both ','`},
	} {
		require.EqualError(t, tc.d.Validate(), tc.err)
		_, err := csv.NewReader(strings.NewReader("a\n"), tc.d).Read()
		require.EqualError(t, err, tc.err, "Read returns the dialect's error")
	}
	require.NoError(t, csv.Dialect{}.Validate())
	require.NoError(t, csv.Dialect{Comma: '\t', Escape: 'é'}.Validate(), "no quoting: the escape is unused")
	require.Equal(t, csv.Dialect{Comma: ',', Quote: '"', Escape: '"'}, csv.Dialect{Quote: '"'}.Resolved())
}

func TestReadAll(t *testing.T) {
	t.Parallel()
	recs, err := csv.NewReader(strings.NewReader("a,b\nc,d\n"), csv.Default).ReadAll()
	require.NoError(t, err)
	require.Equal(t, [][]string{{"a", "b"}, {"c", "d"}}, recs)
	recs, err = csv.NewReader(strings.NewReader("a,b\n\"c\"d\",e\nf\n"), csv.Default).ReadAll()
	require.ErrorIs(t, err, csv.ErrExtraneousQuote)
	require.EqualError(t, err, `record 2 (line 2): extraneous quote in a quoted field at character 3 (a quote inside quotes is written "")`)
	require.Equal(t, [][]string{{"a", "b"}}, recs)
}

// TestMatchesEncodingCSV: on random input, the default dialect reads the
// records encoding/csv reads with LazyQuotes (except a last record whose
// quote is never closed, which is an error here).
func TestMatchesEncodingCSV(t *testing.T) {
	t.Parallel()
	rng := rand.New(rand.NewPCG(7, 9))
	for range 5000 {
		in := randomCSV(rng)
		compareWithEncodingCSV(t, in)
	}
}

func compareWithEncodingCSV(t testing.TB, in []byte) {
	t.Helper()
	sr := stdcsv.NewReader(bytes.NewReader(bytes.TrimPrefix(in, []byte("\xEF\xBB\xBF"))))
	sr.LazyQuotes, sr.FieldsPerRecord = true, -1
	want, err := sr.ReadAll()
	require.NoError(t, err)
	got := readAll(t, string(in), csv.Default)
	require.Len(t, got, len(want), "input %q", in)
	for i := range got {
		if got[i].Err != "" && strings.Contains(got[i].Err, "not closed") {
			require.Equal(t, len(got)-1, i, "only the last record can be unterminated: %q", in)
			continue
		}
		require.Equal(t, want[i], got[i].Fields, "record %d of %q", i+1, in)
	}
}

// randomCSV is random bytes over the characters that matter to the syntax.
func randomCSV(rng *rand.Rand) []byte {
	alphabet := []byte("aab,,\"\"\"\n\n\r\\ é")
	n := rng.IntN(80)
	b := make([]byte, 0, n+3)
	if rng.IntN(10) == 0 {
		b = append(b, 0xEF, 0xBB, 0xBF)
	}
	for range n {
		b = append(b, alphabet[rng.IntN(len(alphabet))])
	}
	return b
}

func TestIndexByte(t *testing.T) {
	t.Parallel()
	rng := rand.New(rand.NewPCG(3, 4))
	for range 20000 {
		b := make([]byte, rng.IntN(100))
		for i := range b {
			b[i] = "ab,\"\x00\xff"[rng.IntN(6)]
		}
		for _, c := range []byte{',', '"', 0, 0xff, 'z'} {
			require.Equal(t, bytes.IndexByte(b, c), csv.IndexByteForTest(b, c), "%q %q", b, c)
		}
	}
}
