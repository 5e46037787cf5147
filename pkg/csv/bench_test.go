package csv_test

import (
	"bytes"
	stdcsv "encoding/csv"
	"fmt"
	"io"
	"testing"

	"github.com/intakehq/intake/pkg/csv"
)

// benchData is a 12-column accounts file like the one of make bench: some
// quoted fields with delimiters and doubled quotes, some plain lines.
func benchData(rows int) []byte {
	var b bytes.Buffer
	b.WriteString("Account ID,Name,Status,Industry,Region,Parent,Employees,Revenue,MRR,Active,Created,Renewal\n")
	for i := range rows {
		if i%4 == 0 {
			fmt.Fprintf(&b, "ACC-%07d,\"Company %d, \"\"Inc.\"\"\",active,Software,EMEA,,\"%d,%03d\",\"$%d,%03d.%02d\",%d.50,yes,2024-%02d-%02d,%02d/%02d/2025\n",
				i, i, 1+i%50, i%1000, i%900+1, i%1000, i%100, i, i%12+1, i%28+1, i%12+1, i%28+1)
			continue
		}
		fmt.Fprintf(&b, "ACC-%07d,Company %d,active,Software,EMEA,ACC-%07d,%d,%d.%02d,%d.50,no,2024-%02d-%02d,%02d/%02d/2025\n",
			i, i, i/2, 1+i%5000, i%90000, i%100, i, i%12+1, i%28+1, i%12+1, i%28+1)
	}
	return b.Bytes()
}

// quotedData is like the file of make bench's mapper figure: most fields
// quoted, numbers with thousands separators.
func quotedData(rows int) []byte {
	var b bytes.Buffer
	b.WriteString("Account ID,Account Name,Status,Industry,Region,Employees,Annual Revenue,MRR,Active,Created,Renewal Date,Notes\n")
	for i := range rows {
		fmt.Fprintf(&b, "\"ACC-%07d\",\"Monarch Industries, Inc. %d\",active,\"Retail\",NA,\"%d,%03d\",\"$%d,%03d,%03d.%02d\",\"$%d,%03d.%02d\",true,%02d/%02d/2010,2014-05-05,\"Key account; quarterly \"\"QBR\"\"\"\n",
			i, i, 1+i%50, i%1000, 1+i%9, i%1000, i%997, i%100, i%300, i%1000, i%100, i%12+1, i%28+1)
	}
	return b.Bytes()
}

const benchRows = 100000

// BenchmarkReader reads a 12-column file with this package.
func BenchmarkReader(b *testing.B) {
	benchReader(b, benchData(benchRows))
}

// BenchmarkReaderQuoted reads a file of mostly quoted fields.
func BenchmarkReaderQuoted(b *testing.B) {
	benchReader(b, quotedData(benchRows))
}

// BenchmarkEncodingCSVQuoted reads it with encoding/csv (ReuseRecord).
func BenchmarkEncodingCSVQuoted(b *testing.B) {
	benchStd(b, quotedData(benchRows))
}

func benchReader(b *testing.B, data []byte) {
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		r := csv.NewReader(bytes.NewReader(data), csv.Default)
		n := 0
		for {
			_, err := r.Read()
			if err == io.EOF {
				break
			}
			if err != nil {
				b.Fatal(err)
			}
			n++
		}
		if n != benchRows+1 {
			b.Fatal(n)
		}
	}
	b.ReportMetric(float64(b.N*(benchRows+1))/b.Elapsed().Seconds(), "rows/s")
}

// BenchmarkEncodingCSV reads the same file with encoding/csv and
// ReuseRecord, for comparison.
func BenchmarkEncodingCSV(b *testing.B) {
	benchStd(b, benchData(benchRows))
}

func benchStd(b *testing.B, data []byte) {
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		r := stdcsv.NewReader(bytes.NewReader(data))
		r.ReuseRecord = true
		n := 0
		for {
			_, err := r.Read()
			if err == io.EOF {
				break
			}
			if err != nil {
				b.Fatal(err)
			}
			n++
		}
		if n != benchRows+1 {
			b.Fatal(n)
		}
	}
	b.ReportMetric(float64(b.N*(benchRows+1))/b.Elapsed().Seconds(), "rows/s")
}

// BenchmarkSplitter finds the record boundaries only (the chunker's work).
func BenchmarkSplitter(b *testing.B) {
	data := benchData(benchRows)
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		s := csv.NewSplitter(bytes.NewReader(data), csv.Default)
		for {
			_, err := s.Next()
			if err == io.EOF {
				break
			}
			if err != nil {
				b.Fatal(err)
			}
		}
	}
	b.ReportMetric(float64(b.N*(benchRows+1))/b.Elapsed().Seconds(), "rows/s")
}
