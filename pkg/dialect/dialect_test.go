package dialect_test

import (
	"bytes"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"
	"unicode/utf16"

	"github.com/stretchr/testify/require"

	"github.com/intakehq/intake/pkg/csv"
	"github.com/intakehq/intake/pkg/dialect"
	intakev1 "github.com/intakehq/intake/proto/gen/intake/v1"
)

func utf16LE(s string, bom bool) []byte {
	var b []byte
	if bom {
		b = append(b, 0xFF, 0xFE)
	}
	for _, u := range utf16.Encode([]rune(s)) {
		b = append(b, byte(u), byte(u>>8))
	}
	return b
}

func utf16BE(s string, bom bool) []byte {
	var b []byte
	if bom {
		b = append(b, 0xFE, 0xFF)
	}
	for _, u := range utf16.Encode([]rune(s)) {
		b = append(b, byte(u>>8), byte(u))
	}
	return b
}

func gz(t testing.TB, b []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	w := gzip.NewWriter(&buf)
	_, err := w.Write(b)
	require.NoError(t, err)
	require.NoError(t, w.Close())
	return buf.Bytes()
}

const accounts = "id;name;city\n1;Zoë;Köln\n2;\"Acme; Inc.\";Paris\n3;Bob;Zürich\n"

func TestDetectEncoding(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		in   []byte
		enc  string
		conf float64
		bom  bool
	}{
		{"utf-8 bom", append([]byte("\xEF\xBB\xBF"), "a,b\n"...), "utf-8", 1, true},
		{"utf-16le bom", utf16LE("a,b\n", true), "utf-16le", 1, true},
		{"utf-16be bom", utf16BE("a,b\n", true), "utf-16be", 1, true},
		{"utf-16le no bom", utf16LE("id,name\n1,Ann\n", false), "utf-16le", 0.95, false},
		{"utf-16be no bom", utf16BE("id,name\n1,Ann\n", false), "utf-16be", 0.95, false},
		{"ascii: any 8-bit encoding reads it", []byte("id,name\n1,Ann\n"), "utf-8", 0.5, false},
		{"utf-8, one multi-byte character", []byte("id,name\n1,Zoë\n"), "utf-8", 0.75, false},
		{"utf-8, many", []byte(strings.Repeat("Zoë Köln Zürich\n", 5)), "utf-8", 1 - 1.0/(1<<16), false},
		{"utf-8 cut in a character", []byte("id,name\n1,Zo\xc3"), "utf-8", 0.5, false},
		{"latin-1 letters", []byte("id,name\n1,Caf\xe9\n2,Gar\xe7on\n"), "windows-1252", 0.7, false},
		{"windows-1252 quotes and euro", []byte("id,note\n1,\x93quoted\x94 \x80 5\n"), "windows-1252", 0.8, false},
		{"bytes windows-1252 leaves undefined", []byte("id,note\n1,\x81\xe9\n"), "iso-8859-1", 0.6, false},
		{"empty", nil, "utf-8", 0.5, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			det := dialect.Detect(tc.in)
			require.Equal(t, tc.enc, det.Encoding)
			require.InDelta(t, tc.conf, det.EncodingConfidence, 1e-9)
			require.Equal(t, tc.bom, det.BOM)
			require.False(t, det.Gzip)
		})
	}
}

func TestDetectDelimiter(t *testing.T) {
	t.Parallel()
	rows := func(sep string, n int) string {
		var b strings.Builder
		fmt.Fprintf(&b, "id%sname%scity\n", sep, sep)
		for i := range n {
			fmt.Fprintf(&b, "%d%sname %d%scity\n", i, sep, i, sep)
		}
		return b.String()
	}
	for _, tc := range []struct {
		name  string
		in    string
		delim rune
		conf  float64 // at least
		below float64 // at most
	}{
		{"comma", rows(",", 10), ',', 1, 1},
		{"semicolon", rows(";", 10), ';', 1, 1},
		{"tab", rows("\t", 10), '\t', 1, 1},
		{"pipe", rows("|", 10), '|', 1, 1},
		{"quoted delimiters do not count", "id,note\n1,\"a; b; c\"\n2,\"d; e\"\n3,f\n4,g\n5,h\n6,i\n", ',', 0.9, 1},
		{"decimal commas in a semicolon file", "id;amount;price\n1;1,5;2,75\n2;3,25;1,0\n3;4;5\n4;1,1;2,2\n5;6;7\n", ';', 0.7, 1},
		{"quoted field spanning lines", "id|note\n1|\"a\nb|c|d\"\n2|x\n3|y\n4|z\n5|w\n", '|', 1, 1},
		{"ambiguous: as good as each other", "a;b,c\n1;2,3\n4;5,6\n7;8,9\n1;2,3\n4;5,6\n", ',', 0.5, 0.5},
		{"header only: unsure", "id;name;city\n", ';', 0.5, 0.5},
		{"few rows: less sure", "id\tname\n1\tAnn\n2\tBob\n", '\t', 0.7, 0.7},
		{"inconsistent rows", "a,b,c\n1,2,3\n1,2\n1,2,3\n1\n1,2,3\n", ',', 0.5, 0.7},
		{"one column: nothing to detect", "name\nAnn\nBob\n", ',', 0, 0},
		{"cut last line is ignored", rows(";", 10) + "11;x", ';', 1, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			det := dialect.Detect([]byte(tc.in))
			require.Equal(t, string(tc.delim), string(det.Delimiter))
			require.GreaterOrEqual(t, det.DelimiterConfidence, tc.conf-1e-9)
			require.LessOrEqual(t, det.DelimiterConfidence, tc.below+1e-9)
		})
	}
}

func TestDetectGzip(t *testing.T) {
	t.Parallel()
	det := dialect.Detect(gz(t, utf16LE(accounts, true)))
	require.True(t, det.Gzip)
	require.Equal(t, "utf-16le", det.Encoding)
	require.True(t, det.BOM)
	require.Equal(t, ';', det.Delimiter)
	require.Equal(t, &intakev1.DialectDetection{Delimiter: ";", DelimiterConfidence: det.DelimiterConfidence,
		Encoding: "utf-16le", EncodingConfidence: 1, Gzip: true, Bom: true}, det.Proto())

	// A sample cut in the middle of the gzip stream still tells.
	var big strings.Builder
	big.WriteString("a|b\n")
	for i := range 100000 {
		fmt.Fprintf(&big, "%d|%x\n", i, i*7919)
	}
	z := gz(t, []byte(big.String()))
	require.Greater(t, len(z), dialect.SampleSize)
	det = dialect.Detect(z[:dialect.SampleSize])
	require.True(t, det.Gzip)
	require.Equal(t, '|', det.Delimiter)
	require.InDelta(t, 1, det.DelimiterConfidence, 1e-9)
}

// open runs Open and reads the whole text.
func open(t *testing.T, file []byte, d *intakev1.CsvDialect) (string, *intakev1.CsvDialect, *intakev1.DialectDetection) {
	t.Helper()
	text, resolved, det, err := dialect.Open(bytes.NewReader(file), d)
	require.NoError(t, err)
	b, err := io.ReadAll(text)
	require.NoError(t, err)
	return string(b), resolved, det
}

func TestOpen(t *testing.T) {
	t.Parallel()
	resolvedSemicolon := &intakev1.CsvDialect{Delimiter: ";", Quote: `"`, Escape: `"`, Encoding: "utf-8",
		Compression: intakev1.Compression_COMPRESSION_NONE}
	for _, tc := range []struct {
		name     string
		file     []byte
		d        *intakev1.CsvDialect
		text     string
		resolved *intakev1.CsvDialect
		enc      string
	}{
		{"utf-8", []byte(accounts), nil, accounts, resolvedSemicolon, "utf-8"},
		{"utf-8 with bom", append([]byte("\xEF\xBB\xBF"), accounts...), nil, accounts, resolvedSemicolon, "utf-8"},
		{"utf-16le with bom", utf16LE(accounts, true), nil, accounts, resolvedSemicolon, "utf-16le"},
		{"utf-16be with bom", utf16BE(accounts, true), nil, accounts, resolvedSemicolon, "utf-16be"},
		{"utf-16le without bom", utf16LE(accounts, false), nil, accounts, resolvedSemicolon, "utf-16le"},
		{"gzip utf-16le", gz(t, utf16LE(accounts, true)), nil, accounts, resolvedSemicolon, "utf-16le"},
		{"latin-1 detected as windows-1252", []byte("id;name\n1;Caf\xe9\n2;Gar\xe7on\n"), nil, "id;name\n1;Café\n2;Garçon\n",
			resolvedSemicolon, "windows-1252"},
		{"windows-1252 typography", []byte("id,note\n1,\x93hi\x94 \x80\n"), nil, "id,note\n1,“hi” €\n",
			&intakev1.CsvDialect{Delimiter: ",", Quote: `"`, Escape: `"`, Encoding: "utf-8", Compression: intakev1.Compression_COMPRESSION_NONE}, "windows-1252"},
		{"encoding given: iso-8859-1", []byte("id;x\n1;\x80\xe9\n"), &intakev1.CsvDialect{Encoding: "Latin1"}, "id;x\n1;\u0080é\n",
			resolvedSemicolon, "windows-1252"},
		{"encoding given: utf-8 keeps bad bytes", []byte("id;x\n1;Caf\xe9\n"), &intakev1.CsvDialect{Encoding: "UTF8"}, "id;x\n1;Caf\xe9\n",
			resolvedSemicolon, "windows-1252"},
		{"delimiter given", []byte(accounts), &intakev1.CsvDialect{Delimiter: "tab", HeaderRow: 2, SkipRows: 1, NullValues: []string{"NULL"}, TrimSpace: true},
			accounts, &intakev1.CsvDialect{Delimiter: "\t", HeaderRow: 2, SkipRows: 1, NullValues: []string{"NULL"}, TrimSpace: true,
				Quote: `"`, Escape: `"`, Encoding: "utf-8", Compression: intakev1.Compression_COMPRESSION_NONE}, "utf-8"},
		{"quoting off", []byte("a|b\n\"x|y\n"), &intakev1.CsvDialect{Quote: "none"}, "a|b\n\"x|y\n",
			&intakev1.CsvDialect{Delimiter: "|", Quote: "none", Escape: "none", Encoding: "utf-8", Compression: intakev1.Compression_COMPRESSION_NONE}, "utf-8"},
		{"backslash escape", []byte("a,b\n\"x\\\"y\",z\n"), &intakev1.CsvDialect{Escape: `\\`}, "a,b\n\"x\\\"y\",z\n",
			&intakev1.CsvDialect{Delimiter: ",", Quote: `"`, Escape: `\`, Encoding: "utf-8", Compression: intakev1.Compression_COMPRESSION_NONE}, "utf-8"},
		{"compression none: gzip bytes stay", gz(t, []byte("a\n")), &intakev1.CsvDialect{Compression: intakev1.Compression_COMPRESSION_NONE, Encoding: "iso-8859-1"},
			string(decodeLatin1(gz(t, []byte("a\n")))), &intakev1.CsvDialect{Delimiter: ",", Quote: `"`, Escape: `"`, Encoding: "utf-8",
				Compression: intakev1.Compression_COMPRESSION_NONE}, ""},
		{"empty file", nil, nil, "", &intakev1.CsvDialect{Delimiter: ",", Quote: `"`, Escape: `"`, Encoding: "utf-8",
			Compression: intakev1.Compression_COMPRESSION_NONE}, "utf-8"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			text, resolved, det := open(t, tc.file, tc.d)
			require.Equal(t, tc.text, text)
			require.Equal(t, tc.resolved.String(), resolved.String())
			if tc.enc != "" {
				require.Equal(t, tc.enc, det.GetEncoding())
			}
		})
	}
}

func decodeLatin1(b []byte) []byte {
	var out []byte
	for _, c := range b {
		out = append(out, string(rune(c))...)
	}
	return out
}

func TestOpenDoesNotChangeTheJobsDialect(t *testing.T) {
	t.Parallel()
	d := &intakev1.CsvDialect{HeaderRow: 3}
	_, resolved, _ := open(t, []byte(accounts), d)
	require.Empty(t, d.GetDelimiter())
	require.Equal(t, ";", resolved.GetDelimiter())
	require.Equal(t, int32(3), resolved.GetHeaderRow())
}

func TestOpenLargeFiles(t *testing.T) {
	t.Parallel()
	var b strings.Builder
	b.WriteString("id;name;note\n")
	for i := range 50000 {
		fmt.Fprintf(&b, "%d;Zoë %d;\"a;b\nc\"\n", i, i)
	}
	want := b.String()
	for name, file := range map[string][]byte{
		"utf-8":         []byte(want),
		"utf-16le gzip": gz(t, utf16LE(want, true)),
		"utf-16be":      utf16BE(want, true),
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			text, resolved, _ := open(t, file, nil)
			require.Equal(t, len(want), len(text))
			require.True(t, text == want)
			require.Equal(t, ";", resolved.GetDelimiter())
		})
	}
}

func TestOpenErrors(t *testing.T) {
	t.Parallel()
	good := gz(t, []byte(accounts))
	badCRC := append([]byte(nil), good...)
	badCRC[len(badCRC)-8] ^= 0xFF // the CRC-32 in the trailer
	for _, tc := range []struct {
		name   string
		file   []byte
		d      *intakev1.CsvDialect
		open   string // Open's error
		read   string // the stream's error
		decode bool   // a *DecodeError
	}{
		{name: "unknown encoding", file: []byte(accounts), d: &intakev1.CsvDialect{Encoding: "ebcdic"},
			open: `unknown encoding "ebcdic": supported are utf-8, utf-16le, utf-16be, iso-8859-1, windows-1252`},
		{name: "bad delimiter", file: []byte(accounts), d: &intakev1.CsvDialect{Delimiter: ";;"},
			open: `the delimiter ";;" is not one character`},
		{name: "gzip required", file: []byte(accounts), d: &intakev1.CsvDialect{Compression: intakev1.Compression_COMPRESSION_GZIP},
			decode: true, open: "the file is not valid gzip data: it does not start with the gzip magic bytes 1f 8b, yet the dialect says it is gzip-compressed"},
		{name: "corrupt gzip header", file: []byte{0x1f, 0x8b, 0x00, 0x00}, decode: true,
			open: "the file is not valid gzip data: corrupt or cut short (unexpected EOF)"},
		{name: "truncated gzip", file: good[:len(good)-10], decode: true,
			open: "the file is not valid gzip data: corrupt or cut short (unexpected EOF)"},
		{name: "bad checksum", file: badCRC, decode: true,
			open: "the file is not valid gzip data: corrupt or cut short (gzip: invalid checksum)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			text, _, _, err := dialect.Open(bytes.NewReader(tc.file), tc.d)
			if tc.open != "" {
				require.EqualError(t, err, tc.open)
			} else {
				require.NoError(t, err)
				_, err = io.ReadAll(text)
				require.EqualError(t, err, tc.read)
			}
			var de *dialect.DecodeError
			require.Equal(t, tc.decode, errors.As(err, &de))
		})
	}

	// Past the sample, the error comes from reading the stream.
	var big strings.Builder
	for i := range 100000 {
		fmt.Fprintf(&big, "%d,%x\n", i, i*7919)
	}
	z := gz(t, []byte(big.String()))
	z[len(z)-8] ^= 0xFF
	text, _, _, err := dialect.Open(bytes.NewReader(z), nil)
	require.NoError(t, err)
	_, err = io.ReadAll(text)
	require.EqualError(t, err, "the file is not valid gzip data: corrupt or cut short (gzip: invalid checksum)")
	var de *dialect.DecodeError
	require.ErrorAs(t, err, &de)
	require.ErrorIs(t, err, gzip.ErrChecksum)

	// Errors of the reader pass through, not as a *DecodeError.
	broken := io.MultiReader(bytes.NewReader(good[:20]), errReader{errors.New("connection reset")})
	_, _, _, err = dialect.Open(broken, nil)
	require.EqualError(t, err, "read the file: connection reset")
	require.False(t, errors.As(err, &de))
}

type errReader struct{ err error }

func (e errReader) Read([]byte) (int, error) { return 0, e.err }

func TestCSV(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		d    *intakev1.CsvDialect
		want csv.Dialect
	}{
		{nil, csv.Default},
		{&intakev1.CsvDialect{Delimiter: ";"}, csv.Dialect{Comma: ';', Quote: '"', Escape: '"'}},
		{&intakev1.CsvDialect{Delimiter: `\t`}, csv.Dialect{Comma: '\t', Quote: '"', Escape: '"'}},
		{&intakev1.CsvDialect{Delimiter: "Tab"}, csv.Dialect{Comma: '\t', Quote: '"', Escape: '"'}},
		{&intakev1.CsvDialect{Delimiter: "pipe", Quote: "'"}, csv.Dialect{Comma: '|', Quote: '\'', Escape: '\''}},
		{&intakev1.CsvDialect{Delimiter: "§", Escape: `\`}, csv.Dialect{Comma: '§', Quote: '"', Escape: '\\'}},
		{&intakev1.CsvDialect{Escape: `\\`}, csv.Dialect{Comma: ',', Quote: '"', Escape: '\\'}},
		{&intakev1.CsvDialect{Quote: "none", Escape: `\`}, csv.Dialect{Comma: ','}},
		{&intakev1.CsvDialect{Quote: "none", Escape: "none"}, csv.Dialect{Comma: ','}},
	} {
		got, err := dialect.CSV(tc.d)
		require.NoError(t, err, "%v", tc.d)
		require.Equal(t, tc.want, got, "%v", tc.d)
	}
	for _, tc := range []struct {
		d   *intakev1.CsvDialect
		err string
	}{
		{&intakev1.CsvDialect{Delimiter: ";;"}, `the delimiter ";;" is not one character`},
		{&intakev1.CsvDialect{Delimiter: `"`}, `the delimiter "\"" cannot be used (not a quote, a line break or a NUL)`},
		{&intakev1.CsvDialect{Quote: "«"}, `the quote "«" must be an ASCII character`},
		{&intakev1.CsvDialect{Quote: "''"}, `the quote "''" is not one character`},
		{&intakev1.CsvDialect{Escape: "\n"}, `the escape character "\n" cannot be used (not a line break or a NUL)`},
		{&intakev1.CsvDialect{Delimiter: "'", Quote: "'"}, `the CSV dialect: invalid quote character: the delimiter and the quote are both '\''`},
		{&intakev1.CsvDialect{Escape: ","}, `the CSV dialect: invalid escape character: the delimiter and the escape character are both ','`},
	} {
		_, err := dialect.CSV(tc.d)
		require.EqualError(t, err, tc.err)
		require.EqualError(t, dialect.Validate(tc.d), tc.err)
	}
}

func TestValidate(t *testing.T) {
	t.Parallel()
	require.NoError(t, dialect.Validate(nil))
	require.NoError(t, dialect.Validate(&intakev1.CsvDialect{Delimiter: ";", Encoding: "CP1252", HeaderRow: 2, SkipRows: 1}))
	require.EqualError(t, dialect.Validate(&intakev1.CsvDialect{Encoding: "koi8-r"}),
		`unknown encoding "koi8-r": supported are utf-8, utf-16le, utf-16be, iso-8859-1, windows-1252`)
	require.EqualError(t, dialect.Validate(&intakev1.CsvDialect{HeaderRow: -1}), "the header row -1 is not a row number (1 or more; 0 means 1)")
	require.EqualError(t, dialect.Validate(&intakev1.CsvDialect{SkipRows: -2}), "the rows to skip after the header (-2) cannot be negative")
	require.EqualError(t, dialect.Validate(&intakev1.CsvDialect{Compression: 7}), "unknown compression 7")
}

func TestNormalizeEncoding(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		"UTF-8": "utf-8", " utf8 ": "utf-8", "UTF-16": "utf-16le", "utf-16BE": "utf-16be",
		"Latin-1": "iso-8859-1", "ISO-8859-1": "iso-8859-1", "cp1252": "windows-1252", "Windows-1252": "windows-1252",
	} {
		got, err := dialect.NormalizeEncoding(in)
		require.NoError(t, err, in)
		require.Equal(t, want, got, in)
	}
}

func TestNewReader(t *testing.T) {
	t.Parallel()
	text, resolved, _, err := dialect.Open(bytes.NewReader(gz(t, utf16LE(accounts, true))), nil)
	require.NoError(t, err)
	r, err := dialect.NewReader(text, resolved)
	require.NoError(t, err)
	recs, err := r.ReadAll()
	require.NoError(t, err)
	require.Equal(t, [][]string{{"id", "name", "city"}, {"1", "Zoë", "Köln"}, {"2", "Acme; Inc.", "Paris"}, {"3", "Bob", "Zürich"}}, recs)
}
