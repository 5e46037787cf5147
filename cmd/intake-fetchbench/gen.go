package main

import (
	"fmt"
	"io"
	"math/rand/v2"
	"strconv"
	"time"
)

// genHeader is the first line of every generated file.
const genHeader = "Account ID,Account Name,Status,Region,Annual Revenue,Created,Notes\n"

// genRowLen is the length of every generated record but the last, which
// is longer by up to genRowLen-1 bytes so that the file has exactly the
// size asked for.
const genRowLen = 128

// genMinSize is the smallest file a generator writes: the header and one
// record.
const genMinSize = int64(len(genHeader)) + genRowLen

// genBufSize is how many bytes of records a generator formats at once.
const genBufSize = 256 << 10

var (
	genNames   = []string{"Monarch Analytics, Inc.", "Acme Labs", "Northwind Traders", "Globex", "Initech GmbH", "Umbrella Holdings", "Stark Industries", "Wayne Enterprises"}
	genStatus  = []string{"active", "churned", "prospect"}
	genRegions = []string{"EMEA", "AMER", "APAC", "LATAM"}
	// genNotes is long enough for a notes field that starts anywhere in
	// its first 64 bytes and fills the longest record (2*genRowLen). It
	// holds commas (the field is quoted) but no quote and no newline.
	genNotes = "Renewal at risk, champion left; asked for a discount on the second year, wants SSO and audit logs, " +
		"budget approved in Q3, legal review pending, procurement via reseller, expansion to two more teams, " +
		"onboarding call booked, NPS 9, uses the API daily, exports weekly, pays by invoice, net 30, EUR account, " +
		"quarterly business review with the CFO, moving off the legacy CRM."
	// genDates are the Created dates a record takes: ten years of days.
	genDates = func() []string {
		d := make([]string, 3650)
		t := time.Date(2015, 1, 1, 0, 0, 0, 0, time.UTC)
		for i := range d {
			d[i] = t.AddDate(0, 0, i).Format(time.DateOnly)
		}
		return d
	}()
)

// generator is a deterministic CSV file of accounts, written on the fly:
// the same seed and size give the same bytes. It is an io.Reader of
// exactly size bytes: a header, then records of genRowLen bytes (the last
// one longer to fill the size), each ending in a newline.
type generator struct {
	size    int64 // bytes in all
	planned int64 // bytes formatted into buf so far (across fills)
	rows    int64
	rng     *rand.Rand
	buf     []byte
	off     int // read position in buf
}

// newGenerator returns a generator of a file of size bytes (at least
// genMinSize) for seed.
func newGenerator(seed uint64, size int64) (*generator, error) {
	if size < genMinSize {
		return nil, fmt.Errorf("a generated file has at least %d bytes, not %d", genMinSize, size)
	}
	return &generator{
		size: size,
		rng:  rand.New(rand.NewPCG(seed, 0x1e7a4b3c)),
		buf:  make([]byte, 0, genBufSize+2*genRowLen),
	}, nil
}

// Read implements io.Reader.
func (g *generator) Read(p []byte) (int, error) {
	if g.off == len(g.buf) {
		if g.planned == g.size {
			return 0, io.EOF
		}
		g.fill()
	}
	n := copy(p, g.buf[g.off:])
	g.off += n
	return n, nil
}

// fill formats the next records into buf.
func (g *generator) fill() {
	g.buf, g.off = g.buf[:0], 0
	if g.planned == 0 {
		g.buf = append(g.buf, genHeader...)
		g.planned = int64(len(genHeader))
	}
	for len(g.buf) < genBufSize && g.planned < g.size {
		n := int64(genRowLen)
		if rem := g.size - g.planned; rem < 2*genRowLen {
			n = rem // the last record
		}
		g.buf = g.appendRow(g.buf, int(n))
		g.planned += n
	}
}

// appendRow appends one record of exactly n bytes (genRowLen ≤ n <
// 2*genRowLen).
func (g *generator) appendRow(b []byte, n int) []byte {
	start := len(b)
	g.rows++
	r := g.rng.Uint64()
	b = append(b, "ACC-"...)
	b = appendPadded(b, g.rows, 9)
	b = append(b, ",\""...)
	b = append(b, genNames[r%uint64(len(genNames))]...)
	b = append(b, ' ')
	b = strconv.AppendUint(b, (r>>8)%100000, 10)
	b = append(b, "\","...)
	b = append(b, genStatus[(r>>32)%uint64(len(genStatus))]...)
	b = append(b, ',')
	b = append(b, genRegions[(r>>40)%uint64(len(genRegions))]...)
	b = append(b, ',')
	cents := g.rng.Uint64() % 1_000_000_000_00
	b = strconv.AppendUint(b, cents/100, 10)
	b = append(b, '.')
	b = appendPadded(b, int64(cents%100), 2)
	b = append(b, ',')
	b = append(b, genDates[(r>>48)%uint64(len(genDates))]...)
	b = append(b, ",\""...)
	notes := n - (len(b) - start) - 2 // the closing quote and the newline
	from := int((r >> 56) % 64)
	b = append(b, genNotes[from:from+notes]...)
	return append(b, "\"\n"...)
}

// appendPadded appends v in decimal with leading zeros to width digits.
func appendPadded(b []byte, v int64, width int) []byte {
	var d [20]byte
	s := strconv.AppendInt(d[:0], v, 10)
	for i := len(s); i < width; i++ {
		b = append(b, '0')
	}
	return append(b, s...)
}
