package dialect

import (
	"bytes"
	"compress/gzip"
	"errors"
	"io"

	"github.com/intakehq/intake/pkg/csv"
	intakev1 "github.com/intakehq/intake/proto/gen/intake/v1"
)

// SampleSize is how many bytes Open looks at to detect the encoding (of the
// file as stored, after gunzip) and the delimiter (of the decoded text).
const SampleSize = 64 << 10

// Detection is what a sample of a file shows. Confidences are from 0 (a
// guess) to 1 (certain).
type Detection struct {
	// Gzip: the sample starts with the gzip magic bytes 1f 8b.
	Gzip bool
	// Encoding is the detected encoding (a canonical name, see Encodings).
	Encoding           string
	EncodingConfidence float64
	// BOM: the (decompressed) sample starts with a byte order mark.
	BOM bool
	// Delimiter is the detected delimiter: ',', ';', '\t' or '|'.
	Delimiter           rune
	DelimiterConfidence float64
}

// Proto returns the detection as the API reports it.
func (d Detection) Proto() *intakev1.DialectDetection {
	return &intakev1.DialectDetection{
		Delimiter:           string(d.Delimiter),
		DelimiterConfidence: d.DelimiterConfidence,
		Encoding:            d.Encoding,
		EncodingConfidence:  d.EncodingConfidence,
		Gzip:                d.Gzip,
		Bom:                 d.BOM,
	}
}

var gzipMagic = []byte{0x1f, 0x8b}

// Detect looks at the first bytes of a file (SampleSize is plenty): whether
// it is gzip-compressed (then it looks at what the sample decompresses to),
// its encoding and its delimiter (see Open). A sample cut in the middle of a
// record is fine: a last line without a line feed is ignored.
func Detect(sample []byte) Detection {
	var det Detection
	if bytes.HasPrefix(sample, gzipMagic) {
		det.Gzip = true
		sample = gunzipSample(sample)
	}
	g := detectEncoding(sample)
	det.Encoding, det.EncodingConfidence, det.BOM = g.name, g.confidence, g.bom
	text := sample
	if dec, err := Decoder(bytes.NewReader(sample), g.name); err == nil {
		text, _ = io.ReadAll(dec)
	}
	det.Delimiter, det.DelimiterConfidence = detectDelimiter(text, '"')
	return det
}

// gunzipSample decompresses what it can of a gzip sample.
func gunzipSample(sample []byte) []byte {
	zr, err := gzip.NewReader(bytes.NewReader(sample))
	if err != nil {
		return nil
	}
	out, _ := io.ReadAll(io.LimitReader(zr, 4*SampleSize))
	return out
}

// candidates are the delimiters detection chooses from, in order of
// preference when they are as good.
var candidates = []rune{',', ';', '\t', '|'}

// maxSampleRecords bounds the records detection reads.
const maxSampleRecords = 1000

// detectDelimiter picks the candidate that splits the sample's records into
// the same number (two or more) of fields most consistently, reading quoted
// fields with the quote (0: no quoting). Its score is the share of records
// with the most common field count; the confidence is the score, halved when
// another candidate scores as well (ambiguous), and lowered when the sample
// holds fewer than six records. A sample that no candidate splits is one
// column: a comma, with confidence 0.
func detectDelimiter(text []byte, quote rune) (rune, float64) {
	type score struct {
		comma  rune
		share  float64
		fields int
		n      int
	}
	var best, second score
	complete := bytes.HasSuffix(text, []byte("\n"))
	for _, c := range candidates {
		counts := map[int]int{}
		var order []int
		r := csv.NewReader(bytes.NewReader(text), csv.Dialect{Comma: c, Quote: quote})
		var last int
		n := 0
		for n < maxSampleRecords {
			rec, err := r.Read()
			if errors.Is(err, io.EOF) {
				break
			}
			var pe *csv.ParseError
			if err != nil && !errors.As(err, &pe) {
				break
			}
			k := len(rec)
			if err != nil {
				k = -1 // a malformed record agrees with nothing
			}
			if counts[k] == 0 {
				order = append(order, k)
			}
			counts[k]++
			last = k
			n++
		}
		if !complete && n > 1 && n < maxSampleRecords {
			// The sample cuts the last record.
			counts[last]--
			n--
		}
		s := score{comma: c, n: n}
		for _, k := range order {
			if k >= 2 && (counts[k] > counts[s.fields] || counts[k] == counts[s.fields] && k > s.fields) {
				s.fields = k
			}
		}
		if s.fields >= 2 && n > 0 {
			s.share = float64(counts[s.fields]) / float64(n)
		}
		switch {
		case s.share > best.share || s.share == best.share && s.share > 0 && s.fields > best.fields:
			best, second = s, best
		case s.share > second.share:
			second = s
		}
	}
	if best.share == 0 {
		return ',', 0
	}
	conf := best.share * (1 - second.share/2)
	if best.n < 6 {
		conf *= 0.5 + 0.1*float64(best.n-1)
	}
	return best.comma, conf
}
