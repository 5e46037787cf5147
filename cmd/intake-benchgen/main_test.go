package main

import (
	"bytes"
	"encoding/csv"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestGenerateWritesParseableTypedRows(t *testing.T) {
	t.Parallel()
	const rows = 20000
	var buf bytes.Buffer
	st, err := Generate(&buf, Config{Rows: rows, Seed: 7})
	require.NoError(t, err)
	require.Equal(t, int64(buf.Len()), st.Bytes)

	r := csv.NewReader(&buf)
	r.FieldsPerRecord = len(Header)
	header, err := r.Read()
	require.NoError(t, err)
	require.Equal(t, Header, header)

	idRe := regexp.MustCompile(`^ACC-\d{7}$`)
	decimalRe := regexp.MustCompile(`^\d+\.\d{2}$`)
	ids := make(map[string]bool, rows)
	newlines, commas, nullNotes := 0, 0, 0
	for {
		rec, err := r.Read()
		if err == io.EOF {
			break
		}
		require.NoError(t, err)
		require.Regexp(t, idRe, rec[0])
		require.False(t, ids[rec[0]], "duplicate account id %s", rec[0])
		ids[rec[0]] = true
		_, err = strconv.Atoi(rec[5])
		require.NoError(t, err, "employees %q", rec[5])
		require.Regexp(t, decimalRe, rec[6])
		require.Regexp(t, decimalRe, rec[7])
		require.Contains(t, []string{"true", "false"}, rec[8])
		_, err = time.Parse(time.DateOnly, rec[9])
		require.NoError(t, err, "created %q", rec[9])
		if rec[10] != "" {
			_, err = time.Parse(time.DateOnly, rec[10])
			require.NoError(t, err, "renewal %q", rec[10])
		}
		if rec[11] == "" {
			nullNotes++
		}
		if strings.Contains(rec[11], "\n") {
			newlines++
		}
		if strings.Contains(strings.Join(rec, ""), ",") {
			commas++
		}
	}
	require.Len(t, ids, rows)
	require.Equal(t, st.NewlineRows, newlines)
	require.Equal(t, st.CommaRows, commas)
	// About 1% of rows hold a quoted newline.
	require.InDelta(t, rows/100, newlines, rows/400)
	require.Equal(t, st.NullNotes, nullNotes)
	require.Positive(t, st.NullRenewals)
	require.Positive(t, st.NullNotes)
}

func TestGenerateIsDeterministic(t *testing.T) {
	t.Parallel()
	var a, b, c bytes.Buffer
	_, err := Generate(&a, Config{Rows: 500, Seed: 1})
	require.NoError(t, err)
	_, err = Generate(&b, Config{Rows: 500, Seed: 1})
	require.NoError(t, err)
	_, err = Generate(&c, Config{Rows: 500, Seed: 2})
	require.NoError(t, err)
	require.Equal(t, a.Bytes(), b.Bytes())
	require.NotEqual(t, a.Bytes(), c.Bytes())
}

func TestRunWritesFileAndRejectsBadRows(t *testing.T) {
	t.Parallel()
	out := filepath.Join(t.TempDir(), "accounts.csv")
	var stderr bytes.Buffer
	require.NoError(t, run([]string{"-rows", "100", "-o", out}, io.Discard, &stderr))
	require.Contains(t, stderr.String(), "100 rows")
	data, err := os.ReadFile(out)
	require.NoError(t, err)
	recs, err := csv.NewReader(bytes.NewReader(data)).ReadAll()
	require.NoError(t, err)
	require.Len(t, recs, 101)

	err = run([]string{"-rows", "0"}, io.Discard, io.Discard)
	require.ErrorContains(t, err, "rows must be at least 1, got 0")
}
