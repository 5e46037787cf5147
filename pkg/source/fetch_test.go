package source_test

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	intakev1 "github.com/intakehq/intake/proto/gen/intake/v1"

	"github.com/intakehq/intake/pkg/source"
)

// fastRetry retries like the default policy, without the long waits.
var fastRetry = source.RetryPolicy{Initial: time.Millisecond, Max: 2 * time.Millisecond}

func TestOpenFileStoredHTTP(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	calls := map[string]int{}
	modTime := time.Date(2025, 3, 30, 8, 0, 0, 0, time.UTC)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		calls[r.URL.Path]++
		n := calls[r.URL.Path]
		mu.Unlock()
		switch {
		case r.URL.Path == "/exports/flaky_2025-03-31.csv" && n <= 2:
			w.WriteHeader(http.StatusInternalServerError)
		case r.URL.Path == "/exports/down.csv":
			w.WriteHeader(http.StatusBadGateway)
		case r.Header.Get("Authorization") != "Bearer s3cret-token":
			w.WriteHeader(http.StatusUnauthorized)
		default:
			w.Header().Set("ETag", `"v1"`)
			http.ServeContent(w, r, "a.csv", modTime, strings.NewReader("id\n"+r.URL.Path+"\n"))
		}
	}))
	defer srv.Close()
	conn := func(token string) *intakev1.Connection {
		return storedHTTPConn(&intakev1.HttpConnection{Url: srv.URL + "/exports/", Auth: &intakev1.HttpConnection_Bearer{Bearer: &intakev1.BearerAuth{Token: token}}})
	}
	opts := source.Options{Retry: fastRetry}
	req := source.Request{
		Conn:     conn("s3cret-token"),
		File:     &intakev1.FileSelector{Selector: &intakev1.FileSelector_Path{Path: "flaky_{yyyy-MM-dd}.csv"}},
		At:       time.Date(2025, 3, 30, 23, 30, 0, 0, time.UTC),
		Location: mustZone(t, "Europe/Berlin"),
	}

	// Two 500s, then the file.
	rc, meta, err := source.OpenFile(t.Context(), req, opts)
	require.NoError(t, err)
	require.Equal(t, "id\n/exports/flaky_2025-03-31.csv\n", readAllClose(t, rc))
	require.Equal(t, 3, calls["/exports/flaky_2025-03-31.csv"])
	require.Equal(t, "flaky_2025-03-31.csv", meta.Path)
	require.Equal(t, "connections/exports: flaky_2025-03-31.csv", meta.Source)
	require.Equal(t, `"v1"`, meta.ETag)
	require.True(t, meta.ModTime.Equal(modTime))

	// Unchanged since the last run: no reader.
	req.Cond = source.Conditional{ETag: meta.ETag, LastModified: meta.LastModified}
	rc, meta, err = source.OpenFile(t.Context(), req, opts)
	require.NoError(t, err)
	require.Nil(t, rc)
	require.True(t, meta.NotModified)
	require.Equal(t, "connections/exports: flaky_2025-03-31.csv", meta.Source)
	req.Cond = source.Conditional{}

	// A wrong token is tried once.
	req.Conn = conn("wrong-token")
	req.File = &intakev1.FileSelector{Selector: &intakev1.FileSelector_Path{Path: "a.csv"}}
	_, _, err = source.OpenFile(t.Context(), req, opts)
	requireErrKind(t, err, ekAuth, false, "connections/exports: GET "+srv.URL+"/exports/a.csv: 401 Unauthorized", "wrong-token")
	require.Equal(t, 1, calls["/exports/a.csv"])

	// A server that stays down: every attempt, then the last error.
	req.Conn = conn("s3cret-token")
	req.File = &intakev1.FileSelector{Selector: &intakev1.FileSelector_Path{Path: "down.csv"}}
	_, _, err = source.OpenFile(t.Context(), req, opts)
	requireErrKind(t, err, ekOther, true, "connections/exports: GET "+srv.URL+"/exports/down.csv: 502 Bad Gateway (after 4 attempts)")
	require.Equal(t, 4, calls["/exports/down.csv"])

	// A pattern cannot be resolved over HTTP.
	req.File = &intakev1.FileSelector{Selector: &intakev1.FileSelector_Pattern{Pattern: "*.csv"}}
	_, _, err = source.OpenFile(t.Context(), req, opts)
	requireErrKind(t, err, ekConfig, false, `connections/exports: file pattern "*.csv": an HTTP connection cannot be browsed`)
}

func TestOpenFileStoredLocal(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	base := time.Date(2025, 3, 30, 8, 0, 0, 0, time.UTC)
	writeFile(t, dir, "exports/accounts_1.csv", "id\n1\n", base.Add(time.Hour))
	writeFile(t, dir, "exports/accounts_2.csv", "id\n2\n", base)
	req := source.Request{
		Conn: storedLocalConn(dir),
		File: &intakev1.FileSelector{Selector: &intakev1.FileSelector_Pattern{Pattern: "exports/accounts_*.csv"}},
	}
	rc, meta, err := source.OpenFile(t.Context(), req, source.Options{DevMode: true})
	require.NoError(t, err)
	require.Equal(t, "id\n1\n", readAllClose(t, rc))
	require.Equal(t, "exports/accounts_1.csv", meta.Path)
	require.Equal(t, "connections/dev: exports/accounts_1.csv", meta.Source)
	require.Equal(t, source.FileInfo{Path: "exports/accounts_1.csv", Size: 5, ModTime: base.Add(time.Hour)}, meta.FileInfo)

	req.File = &intakev1.FileSelector{Selector: &intakev1.FileSelector_Pattern{Pattern: "exports/users_*.csv"}}
	_, _, err = source.OpenFile(t.Context(), req, source.Options{DevMode: true})
	requireErrKind(t, err, ekNoMatch, false, "connections/dev: no file in exports/ matches users_*.csv (2 files there)")

	_, _, err = source.OpenFile(t.Context(), req, source.Options{})
	requireErrKind(t, err, ekConfig, false, "connections/dev: local files are only available in development mode")
	require.ErrorIs(t, err, source.ErrLocalNotAllowed)

	// An unsaved connection (no name) with a file: named by where it points.
	req.Conn = &intakev1.Connection{Kind: &intakev1.Connection_Local{Local: &intakev1.LocalConnection{Path: dir}}}
	req.File = &intakev1.FileSelector{Selector: &intakev1.FileSelector_Path{Path: "exports/accounts_2.csv"}}
	rc, meta, err = source.OpenFile(t.Context(), req, source.Options{DevMode: true})
	require.NoError(t, err)
	require.Equal(t, "id\n2\n", readAllClose(t, rc))
	require.Equal(t, dir+": exports/accounts_2.csv", meta.Source)
}

func TestOpenFileInline(t *testing.T) {
	t.Parallel()
	n := 0
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n++
		if n == 1 {
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		w.Header().Set("ETag", `"e"`)
		fmt.Fprint(w, "id\n1\n")
	}))
	defer srv.Close()
	url := srv.URL + "/a.csv?token=s3cret"
	rc, meta, err := source.OpenFile(t.Context(), source.Request{Conn: httpConn(url, nil)}, source.Options{Retry: fastRetry})
	require.NoError(t, err)
	require.Equal(t, "id\n1\n", readAllClose(t, rc))
	require.Equal(t, 2, n)
	require.Equal(t, srv.URL+"/a.csv?token=REDACTED", meta.Source)
	require.Equal(t, meta.Source, meta.Path)
	require.Equal(t, `"e"`, meta.ETag)

	path := filepath.Join(t.TempDir(), "a.csv")
	require.NoError(t, os.WriteFile(path, []byte("id\n"), 0o600))
	rc, meta, err = source.OpenFile(t.Context(), source.Request{Conn: localConn(path)}, source.Options{DevMode: true})
	require.NoError(t, err)
	require.Equal(t, "id\n", readAllClose(t, rc))
	require.Equal(t, path, meta.Source)
	require.Equal(t, int64(3), meta.Size)
	_, _, err = source.OpenFile(t.Context(), source.Request{Conn: localConn(path)}, source.Options{})
	require.ErrorIs(t, err, source.ErrLocalNotAllowed)

	_, _, err = source.OpenFile(t.Context(), source.Request{}, source.Options{})
	requireErrKind(t, err, ekConfig, false, "the job has no connection to read the file from")
	_, _, err = source.OpenFile(t.Context(), source.Request{Conn: &intakev1.Connection{Kind: &intakev1.Connection_S3{S3: &intakev1.S3Connection{Bucket: "b"}}}}, source.Options{})
	requireErrKind(t, err, ekConfig, false, "S3 connections cannot be inline: store the connection and name the file on it")
}
