package main

import (
	"bytes"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

const header = "Account ID,Account Name,Status,Industry,Region,Employees,Annual Revenue,MRR,Active,Created,Renewal Date,Notes\n"

// formatsFile is what intake-benchgen -formats writes.
const formatsFile = header +
	`"ACC-0000001","Monarch Industries 1",active,"Retail",NA,"31,902","$3,731,658,609.12","$31,076.93",true,05/05/2010,2014-05-05,"Key account"` + "\n" +
	`"ACC-0000002","Stark Holdings, Inc. 2",active,"Healthcare",APAC,"14,485","$3,037,294,612.35","($277,966.25)",false,07/11/2010,,` + "\n" +
	`"ACC-0000003","The ""Acme"" Labs 3",trial,"Media, Entertainment",EMEA,671,"$290,212,403.39","$406,065.30",true,04/18/2014,2018-04-18,"Two` + "\nlines\"\n"

// plainFile is what intake-benchgen writes by default.
const plainFile = header +
	`"ACC-0000001","Monarch Industries 1",active,"Retail",NA,31902,3731658609.12,31076.93,true,2010-05-05,2014-05-05,"Key account"` + "\n"

func write(t *testing.T, content string) string {
	t.Helper()
	f := filepath.Join(t.TempDir(), "accounts.csv")
	require.NoError(t, os.WriteFile(f, []byte(content), 0o600))
	return f
}

func TestRunPrintsEveryPathAndTheRatioLast(t *testing.T) {
	for _, content := range []string{formatsFile, plainFile} {
		var out bytes.Buffer
		require.NoError(t, run([]string{"-file", write(t, content), "-runs", "2", "-chunk", "2"}, &out, io.Discard))
		lines := strings.Split(strings.TrimSpace(out.String()), "\n")
		rows := strings.Count(content, "ACC-")
		for _, path := range []string{"csv-read", "mapper", "mapper/encoding-csv", "mapper/cel-call"} {
			require.Regexp(t, regexp.MustCompile(`(?m)^`+regexp.QuoteMeta(path)+` +`+strconv.Itoa(rows)+` +\d+\.\d\d +\d+ +\d+\.\d{3} +\d+\.\d$`), out.String())
		}
		require.Contains(t, out.String(), "GOMAXPROCS=1, best of 2 runs")
		require.Regexp(t, `^mapbench: target 400000 rows/s mapped \(CSV parsing included\) on one core: (met|NOT met)$`, lines[len(lines)-2])
		require.Regexp(t, `^ratio mapper/csv-read: \d+\.\d\d$`, lines[len(lines)-1])
	}
}

func TestRunFailsOnARejectedRow(t *testing.T) {
	bad := strings.Replace(formatsFile, "07/11/2010", "2010-07-11", 1)
	err := run([]string{"-file", write(t, bad), "-runs", "1"}, io.Discard, io.Discard)
	require.EqualError(t, err, `mapper: 1 rows rejected, the first: [row 3, column "Created": "2010-07-11" does not match date format MM/dd/yyyy] (the benchmark maps a clean file written by intake-benchgen)`)
}

func TestRunRejectsBadInput(t *testing.T) {
	t.Parallel()
	err := run([]string{"-runs", "1"}, io.Discard, io.Discard)
	require.EqualError(t, err, "invalid config: file is required (-file)")
	err = run([]string{"-file", "x", "-runs", "0"}, io.Discard, io.Discard)
	require.EqualError(t, err, "invalid config: runs must be at least 1, got 0")
	err = run([]string{"-file", "x", "-chunk", "0"}, io.Discard, io.Discard)
	require.EqualError(t, err, "invalid config: chunk must be at least 1, got 0")
	err = run([]string{"-file", filepath.Join(t.TempDir(), "missing.csv")}, io.Discard, io.Discard)
	require.ErrorContains(t, err, "read the file: open ")
	err = run([]string{"-file", write(t, "a,b\n1,2\n")}, io.Discard, io.Discard)
	require.ErrorContains(t, err, `the header is ["a" "b"]; want intake-benchgen's`)
}
