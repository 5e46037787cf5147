package dialect

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"strings"
	"unicode/utf8"

	"golang.org/x/text/encoding/charmap"
	"golang.org/x/text/encoding/unicode"
	"golang.org/x/text/transform"
)

// The encodings Decoder supports, by their canonical names.
const (
	UTF8        = "utf-8"
	UTF16LE     = "utf-16le"
	UTF16BE     = "utf-16be"
	ISO88591    = "iso-8859-1"
	Windows1252 = "windows-1252"
)

// Encodings lists the supported encodings.
var Encodings = []string{UTF8, UTF16LE, UTF16BE, ISO88591, Windows1252}

var encodingAliases = map[string]string{
	"utf-8": UTF8, "utf8": UTF8, "ascii": UTF8, "us-ascii": UTF8,
	"utf-16le": UTF16LE, "utf16le": UTF16LE, "utf-16-le": UTF16LE, "utf-16": UTF16LE, "utf16": UTF16LE,
	"utf-16be": UTF16BE, "utf16be": UTF16BE, "utf-16-be": UTF16BE,
	"iso-8859-1": ISO88591, "iso8859-1": ISO88591, "iso_8859-1": ISO88591, "latin1": ISO88591, "latin-1": ISO88591, "l1": ISO88591,
	"windows-1252": Windows1252, "cp1252": Windows1252, "win-1252": Windows1252, "windows1252": Windows1252,
}

// NormalizeEncoding returns the canonical name of an encoding ("UTF8" →
// "utf-8", "latin1" → "iso-8859-1", "cp1252" → "windows-1252", "utf-16" →
// "utf-16le", where a byte order mark still decides), or an error listing
// the supported ones.
func NormalizeEncoding(name string) (string, error) {
	if n, ok := encodingAliases[strings.ToLower(strings.TrimSpace(name))]; ok {
		return n, nil
	}
	return "", fmt.Errorf("unknown encoding %q: supported are %s", name, strings.Join(Encodings, ", "))
}

// Decoder returns r decoded from the encoding to UTF-8, without a leading
// byte order mark. UTF-8 is passed through as it is (bytes that are not
// valid UTF-8 stay, for the mapper to reject their rows); UTF-16 with a byte
// order mark is read in the mark's byte order whatever the name says.
func Decoder(r io.Reader, encoding string) (io.Reader, error) {
	enc, err := NormalizeEncoding(encoding)
	if err != nil {
		return nil, err
	}
	switch enc {
	case UTF8:
		return skipBOM(r), nil
	case UTF16LE:
		return transform.NewReader(r, unicode.UTF16(unicode.LittleEndian, unicode.UseBOM).NewDecoder()), nil
	case UTF16BE:
		return transform.NewReader(r, unicode.UTF16(unicode.BigEndian, unicode.UseBOM).NewDecoder()), nil
	case ISO88591:
		return transform.NewReader(r, charmap.ISO8859_1.NewDecoder()), nil
	default: // Windows1252
		return transform.NewReader(r, charmap.Windows1252.NewDecoder()), nil
	}
}

var utf8BOM = []byte{0xEF, 0xBB, 0xBF}

// skipBOM returns r without a leading UTF-8 byte order mark.
func skipBOM(r io.Reader) io.Reader {
	br, ok := r.(*bufio.Reader)
	if !ok {
		br = bufio.NewReader(r)
	}
	if b, err := br.Peek(len(utf8BOM)); err == nil && bytes.Equal(b, utf8BOM) {
		_, _ = br.Discard(len(utf8BOM))
	}
	return br
}

// encodingGuess is what detectEncoding found.
type encodingGuess struct {
	name       string
	confidence float64
	bom        bool
}

// detectEncoding guesses the encoding of a sample of the file's bytes:
//   - a byte order mark decides (confidence 1);
//   - many NUL bytes at every other position mean UTF-16 without a mark;
//   - valid UTF-8 is UTF-8, the surer the more multi-byte characters the
//     sample holds: 0.5 for ASCII only (every supported 8-bit encoding reads
//     it the same), then 1 − 0.5^(n+1) for n multi-byte characters (random
//     Latin-1 text seldom forms valid UTF-8 sequences);
//   - otherwise Windows-1252 (0.8 when bytes 0x80–0x9F, its typographic
//     characters, appear; 0.7 otherwise, where ISO-8859-1 reads the same),
//     or ISO-8859-1 (0.6) when bytes Windows-1252 leaves undefined appear.
func detectEncoding(b []byte) encodingGuess {
	switch {
	case bytes.HasPrefix(b, utf8BOM):
		return encodingGuess{UTF8, 1, true}
	case bytes.HasPrefix(b, []byte{0xFF, 0xFE}):
		return encodingGuess{UTF16LE, 1, true}
	case bytes.HasPrefix(b, []byte{0xFE, 0xFF}):
		return encodingGuess{UTF16BE, 1, true}
	}
	if g, ok := detectUTF16(b); ok {
		return g
	}
	if n, ok := validUTF8(b); ok {
		if n == 0 {
			return encodingGuess{UTF8, 0.5, false}
		}
		c := 1.0
		for range min(n+1, 30) {
			c /= 2
		}
		return encodingGuess{UTF8, 1 - c, false}
	}
	c1, undefined := false, false
	for _, c := range b {
		if c >= 0x80 && c <= 0x9F {
			c1 = true
			switch c {
			case 0x81, 0x8D, 0x8F, 0x90, 0x9D:
				undefined = true
			}
		}
	}
	switch {
	case undefined:
		return encodingGuess{ISO88591, 0.6, false}
	case c1:
		return encodingGuess{Windows1252, 0.8, false}
	}
	return encodingGuess{Windows1252, 0.7, false}
}

// detectUTF16 recognises UTF-16 without a byte order mark by its NUL bytes:
// text that is mostly ASCII has one at every other position.
func detectUTF16(b []byte) (encodingGuess, bool) {
	n := len(b) / 2
	if n < 2 {
		return encodingGuess{}, false
	}
	even, odd := 0, 0
	for i := 0; i+1 < len(b); i += 2 {
		if b[i] == 0 {
			even++
		}
		if b[i+1] == 0 {
			odd++
		}
	}
	share := func(k int) float64 { return float64(k) / float64(n) }
	switch {
	case share(odd) >= 0.3 && share(even) < 0.05:
		return encodingGuess{UTF16LE, min(0.95, 0.5+share(odd)/2), false}, true
	case share(even) >= 0.3 && share(odd) < 0.05:
		return encodingGuess{UTF16BE, min(0.95, 0.5+share(even)/2), false}, true
	}
	return encodingGuess{}, false
}

// validUTF8 reports whether b is valid UTF-8, allowing a character cut at
// the end of the sample, and counts its multi-byte characters.
func validUTF8(b []byte) (multi int, ok bool) {
	for i := 0; i < len(b); {
		if b[i] < utf8.RuneSelf {
			i++
			continue
		}
		r, w := utf8.DecodeRune(b[i:])
		if r == utf8.RuneError && w == 1 {
			return multi, len(b)-i < utf8.UTFMax && !utf8.FullRune(b[i:])
		}
		multi++
		i += w
	}
	return multi, true
}
