package main

import (
	"bytes"
	"context"
	stdcsv "encoding/csv"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/intakehq/intake/pkg/sftptest"
)

// TestMain runs the child process of a fetch when the benchmark under
// test re-executes the test binary with -child.
func TestMain(m *testing.M) {
	if len(os.Args) == 2 && os.Args[1] == "-child" {
		if err := childMain(context.Background(), os.Stdin, os.Stdout); err != nil {
			fmt.Fprintln(os.Stderr, "intake-fetchbench:", err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

func generate(t *testing.T, seed uint64, size int64) []byte {
	t.Helper()
	g, err := newGenerator(seed, size)
	require.NoError(t, err)
	data, err := io.ReadAll(g)
	require.NoError(t, err)
	return data
}

func TestGeneratorWritesExactlyTheSizeAsValidCSV(t *testing.T) {
	t.Parallel()
	for _, size := range []int64{genMinSize, genMinSize + 1, 1000, 1_000_003, 3*genBufSize + 17} {
		data := generate(t, 1, size)
		require.Len(t, data, int(size), "size %d", size)
		require.Equal(t, data, generate(t, 1, size), "size %d: the same seed gives the same bytes", size)
		require.True(t, strings.HasPrefix(string(data), genHeader))

		lines := strings.SplitAfter(strings.TrimPrefix(string(data), genHeader), "\n")
		require.Equal(t, "", lines[len(lines)-1], "the file ends with a newline")
		lines = lines[:len(lines)-1]
		for i, l := range lines[:len(lines)-1] {
			require.Len(t, l, genRowLen, "size %d, record %d", size, i+1)
		}
		last := len(lines[len(lines)-1])
		require.True(t, last >= genRowLen && last < 2*genRowLen, "size %d: last record of %d bytes", size, last)

		r := stdcsv.NewReader(bytes.NewReader(data))
		r.FieldsPerRecord = 7
		records, err := r.ReadAll()
		require.NoError(t, err, "size %d", size)
		require.Len(t, records, len(lines)+1)
		require.Equal(t, fmt.Sprintf("ACC-%09d", len(lines)), records[len(records)-1][0])
	}
	require.NotEqual(t, generate(t, 1, 5000), generate(t, 2, 5000), "another seed, other bytes")
}

func TestGeneratorNotesFillTheLongestRecord(t *testing.T) {
	t.Parallel()
	// A notes field starts in the first 64 bytes of genNotes and may fill
	// a record of 2*genRowLen-1 bytes after the shortest other fields.
	require.GreaterOrEqual(t, len(genNotes), 64+2*genRowLen)
	require.NotContains(t, genNotes, `"`)
	require.NotContains(t, genNotes, "\n")
}

func TestGeneratorRefusesAFileSmallerThanOneRecord(t *testing.T) {
	t.Parallel()
	_, err := newGenerator(1, genMinSize-1)
	require.ErrorContains(t, err, fmt.Sprintf("at least %d bytes", genMinSize))
}

func TestParseSizeReadsDecimalAndBinaryUnits(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]int64{
		"200MB": 200_000_000, "2GB": 2_000_000_000, "1.5GB": 1_500_000_000, "64MiB": 64 << 20,
		"1GiB": 1 << 30, "10KB": 10_000, "4KiB": 4096, "1000": 1000, "1000B": 1000, " 3 MB ": 3_000_000,
	} {
		got, err := parseSize(in)
		require.NoError(t, err, in)
		require.Equal(t, want, got, in)
	}
	for _, in := range []string{"", "MB", "-1GB", "0", "2TB", "lots"} {
		_, err := parseSize(in)
		require.Error(t, err, in)
	}
	sizes, err := parseSizes("2GB, 200MB,2GB,")
	require.NoError(t, err)
	require.Equal(t, []int64{200_000_000, 2_000_000_000}, sizes, "sorted, without duplicates")
}

func TestParseProcStatusReadsRSSAndPeak(t *testing.T) {
	t.Parallel()
	rss, hwm, err := parseProcStatus([]byte("Name:\tx\nVmPeak:\t 900000 kB\nVmHWM:\t   41000 kB\nVmRSS:\t   39000 kB\nThreads:\t5\n"))
	require.NoError(t, err)
	require.Equal(t, int64(39000<<10), rss)
	require.Equal(t, int64(41000<<10), hwm)

	_, _, err = parseProcStatus([]byte("VmRSS:\t1 kB\n"))
	require.ErrorContains(t, err, "no VmRSS or VmHWM")
	_, _, err = parseProcStatus([]byte("VmRSS:\t1 MB\nVmHWM:\t2 kB\n"))
	require.ErrorContains(t, err, "malformed line")

	rss, hwm, err = readProcStatus()
	require.NoError(t, err)
	require.Positive(t, rss)
	require.GreaterOrEqual(t, hwm, rss, "the peak is at least the current RSS")
}

func TestHarnessTurnsAHelpersFailureIntoAnError(t *testing.T) {
	t.Parallel()
	var log bytes.Buffer
	h := newHarness(t.TempDir(), &log)
	var order []int
	var dir string
	require.NoError(t, h.run(func() {
		h.Cleanup(func() { order = append(order, 1) })
		h.Cleanup(func() { order = append(order, 2) })
		dir = h.TempDir()
		h.Logf("started on port %d", 22)
	}))
	require.DirExists(t, dir)
	require.Equal(t, "started on port 22\n", log.String())
	require.False(t, h.Failed())

	err := h.run(func() {
		h.Fatalf("sftptest: start sshd: %v", "exited")
		t.Error("Fatalf returned")
	})
	require.EqualError(t, err, "sftptest: start sshd: exited")
	require.True(t, h.Failed())

	err = h.run(func() { h.Setenv("A", "B") }) // not implemented by harness
	require.ErrorContains(t, err, "unexpected panic")

	h.close()
	require.Equal(t, []int{2, 1}, order, "cleanups run last first")
	require.NoDirExists(t, dir)
}

func TestVerdictComparesEveryPeakWithTheBound(t *testing.T) {
	t.Parallel()
	r := func(kind string, size, peakMiB int64) row {
		return row{kind: kind, size: size, res: fetchResult{PeakRSS: peakMiB << 20}}
	}
	rows := []row{
		r(kindSFTP, 200e6, 40), r(kindHTTPS, 200e6, 30),
		r(kindSFTP, 2e9, 43), {kind: kindHTTPS, size: 2e9, res: fetchResult{PeakRSS: 30<<20 - 300<<10}},
	}
	require.Equal(t,
		"fetch peak RSS: 43 MiB at most over 4 fetches; sftp +3 MiB from 200 MB to 2.00 GB, https +0 MiB from 200 MB to 2.00 GB (target < 128 MiB at any size): met",
		verdict(rows, 128<<20))
	require.True(t, strings.HasSuffix(verdict(append(rows, r(kindS3, 1e9, 128)), 128<<20), "): NOT met"),
		"a peak at the bound is over it")
	require.Equal(t, "fetch peak RSS: 30 MiB at most over 1 fetches (target < 64 MiB at any size): met",
		verdict(rows[1:2], 64<<20), "one size: no change to tell")
}

func TestCheckDiskFetchesLargeFilesAtTheFallbackSizeWhenSpaceIsShort(t *testing.T) {
	t.Parallel()
	b := &bench{natsStore: t.TempDir(), stderr: io.Discard, cfg: Config{
		Sizes: []int64{1e6, 1e9, 3e9}, MinFree: 1 << 62, Fallback: 1e9,
	}}
	require.NoError(t, b.checkDisk(""))
	require.Equal(t, []int64{1e6, 1e9}, b.cfg.Sizes)
	require.Len(t, b.notes, 1)
	require.Regexp(t, `^only \d+\.\d GiB free on the disk of .* \(under \d+ GiB\): files of 3.00 GB are fetched at 1.00 GB$`, b.notes[0])

	b = &bench{natsStore: t.TempDir(), stderr: io.Discard, cfg: Config{Sizes: []int64{1e6, 3e9}, MinFree: 1, Fallback: 1e9}}
	require.NoError(t, b.checkDisk(""))
	require.Equal(t, []int64{1e6, 3e9}, b.cfg.Sizes, "enough space: the sizes stay")
	require.Empty(t, b.notes)
}

// TestBenchmarkFetchesEveryKindThroughChildProcesses runs the benchmark
// end to end on small files: real servers (sshd when the test runs as
// root), a child process per fetch, every file checked by size and
// SHA-256 in the object store.
func TestBenchmarkFetchesEveryKindThroughChildProcesses(t *testing.T) {
	kinds := "sftp,s3,https"
	if _, err := os.Stat(sftptest.SSHD); err != nil || os.Geteuid() != 0 {
		kinds = "s3,https" // the SFTP server needs root and sshd
	}
	dir := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 45*time.Second)
	defer cancel()
	var out, log bytes.Buffer
	err := run(ctx, []string{"-dir", dir, "-sizes", "300KB,3MB", "-s3-max", "1MB", "-kinds", kinds}, &out, &log)
	require.NoError(t, err, "log:\n%s", log.String())
	text := out.String()

	line := regexp.MustCompile(`(?m)^fetch (sftp|s3|https) (\d+ [KMG]B): \d+ MB/s, peak RSS (\d+) MiB$`)
	var got []string
	for _, m := range line.FindAllStringSubmatch(text, -1) {
		got = append(got, m[1]+" "+m[2])
		var peak int
		_, _ = fmt.Sscan(m[3], &peak)
		require.Positive(t, peak, m[0])
	}
	wantRuns := []string{"s3 300 KB", "s3 1 MB", "https 300 KB", "https 3 MB"}
	if strings.HasPrefix(kinds, "sftp") {
		wantRuns = append([]string{"sftp 300 KB", "sftp 3 MB"}, wantRuns...)
	}
	require.Equal(t, wantRuns, got, "output:\n%s", text)
	require.Contains(t, text, "S3 files are at most 1 MB")
	require.Regexp(t, `(?m)^fetch peak RSS: \d+ MiB at most over \d fetches; .* \(target < 128 MiB at any size\): met$`, text)
	require.True(t, strings.HasSuffix(strings.TrimSpace(text), "met"), "the verdict is the last line")

	require.NoDirExists(t, filepath.Join(dir, "nats"), "the JetStream store is removed")
	leftover, _ := filepath.Glob(filepath.Join(dir, "fetch-*.log"))
	require.Empty(t, leftover, "empty logs are removed")
}
