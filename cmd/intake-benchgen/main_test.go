package main

import (
	"bytes"
	"crypto/sha256"
	"encoding/csv"
	"fmt"
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

// TestDefaultOutputIsUnchanged pins the bytes of the default file: make
// bench compares Intake with COPY on it, so -formats must not change it.
func TestDefaultOutputIsUnchanged(t *testing.T) {
	t.Parallel()
	var buf bytes.Buffer
	_, err := Generate(&buf, Config{Rows: 5000, Seed: 3})
	require.NoError(t, err)
	require.Equal(t, "e50f4ea90730b67b8cb05da81940f25e4312fb77ce9f4e988a477dcd14a3573a", fmt.Sprintf("%x", sha256.Sum256(buf.Bytes())))
}

func TestFormatsWritesTheSameValuesAsAnExportWould(t *testing.T) {
	t.Parallel()
	const rows = 3000
	var plain, formatted bytes.Buffer
	_, err := Generate(&plain, Config{Rows: rows, Seed: 5})
	require.NoError(t, err)
	st, err := Generate(&formatted, Config{Rows: rows, Seed: 5, Formats: true})
	require.NoError(t, err)
	require.Equal(t, rows, st.Rows)
	want, err := csv.NewReader(&plain).ReadAll()
	require.NoError(t, err)
	got, err := csv.NewReader(&formatted).ReadAll()
	require.NoError(t, err)
	require.Len(t, got, rows+1)
	require.Equal(t, want[0], got[0])

	dollars := func(s string) string { // "($1,234.56)" -> "-1234.56"
		neg := strings.HasPrefix(s, "(")
		s = strings.NewReplacer("(", "", ")", "", "$", "", ",", "").Replace(s)
		if neg {
			return "-" + s
		}
		return s
	}
	negatives := 0
	for i := 1; i <= rows; i++ {
		w, g := want[i], got[i]
		require.Equal(t, w[5], strings.ReplaceAll(g[5], ",", ""), "employees of row %d", i+1)
		if len(w[5]) > 3 {
			require.Contains(t, g[5], ",")
		}
		require.Equal(t, w[6], dollars(g[6]), "annual revenue of row %d", i+1)
		require.Regexp(t, `^\(?\$\d{1,3}(,\d{3})*\.\d{2}\)?$`, g[7])
		if strings.HasPrefix(g[7], "(") {
			negatives++
			require.Equal(t, "-"+w[7], dollars(g[7]))
		} else {
			require.Equal(t, w[7], dollars(g[7]))
		}
		created, err := time.Parse("01/02/2006", g[9])
		require.NoError(t, err)
		require.Equal(t, w[9], created.Format(time.DateOnly))
		for _, c := range []int{0, 1, 2, 3, 4, 8, 10, 11} {
			require.Equal(t, w[c], g[c], "column %d of row %d", c, i+1)
		}
	}
	require.Equal(t, rows/50, negatives)
}
