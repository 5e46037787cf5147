package source_test

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	intakev1 "github.com/intakehq/intake/proto/gen/intake/v1"

	"github.com/intakehq/intake/pkg/source"
)

func httpConn(url string, headers map[string]string) *intakev1.Connection {
	return &intakev1.Connection{Kind: &intakev1.Connection_Http{Http: &intakev1.HttpConnection{Url: url, Headers: headers}}}
}

func localConn(path string) *intakev1.Connection {
	return &intakev1.Connection{Kind: &intakev1.Connection_Local{Local: &intakev1.LocalConnection{Path: path}}}
}

func TestHTTPOKWithHeaders(t *testing.T) {
	t.Parallel()
	var got http.Header
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got = r.Header.Clone()
		fmt.Fprint(w, "id,name\n1,a\n")
	}))
	defer srv.Close()

	url := strings.Replace(srv.URL, "http://", "http://user:pw@", 1) + "/accounts.csv?day=1&X-Amz-Signature=abc"
	rc, info, err := source.Open(t.Context(), httpConn(url, map[string]string{
		"Authorization": "Bearer s3cret", "X-Tenant": "acme",
	}), source.Options{})
	require.NoError(t, err)
	b, err := io.ReadAll(rc)
	require.NoError(t, err)
	require.NoError(t, rc.Close())
	require.Equal(t, "id,name\n1,a\n", string(b))
	require.Equal(t, "Bearer s3cret", got.Get("Authorization"))
	require.Equal(t, "acme", got.Get("X-Tenant"))
	require.Equal(t, "intake-fetcher", got.Get("User-Agent"))
	require.Equal(t, srv.URL+"/accounts.csv?X-Amz-Signature=REDACTED&day=1", info.Source,
		"no user info, no secrets in the source")
}

func TestHTTPNotFound(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(http.NotFoundHandler())
	defer srv.Close()
	_, info, err := source.Open(t.Context(), httpConn(srv.URL+"/missing.csv", nil), source.Options{})
	require.EqualError(t, err, "GET "+srv.URL+"/missing.csv: 404 Not Found")
	require.Equal(t, srv.URL+"/missing.csv", info.Source)
}

func TestHTTPConnectionRefused(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := ln.Addr().String()
	require.NoError(t, ln.Close())
	_, _, err = source.Open(t.Context(), httpConn("http://"+addr+"/a.csv", nil), source.Options{})
	require.EqualError(t, err, fmt.Sprintf("GET http://%s/a.csv: cannot connect to %s: connection refused", addr, addr))
}

func TestHTTPUnknownHost(t *testing.T) {
	t.Parallel()
	_, _, err := source.Open(t.Context(), httpConn("https://no-such-host.invalid/a.csv", nil), source.Options{Timeout: 5 * time.Second})
	require.Error(t, err)
	require.Contains(t, err.Error(), "GET https://no-such-host.invalid/a.csv: cannot resolve host no-such-host.invalid")
}

func TestHTTPHeaderTimeout(t *testing.T) {
	t.Parallel()
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	defer srv.Close()
	defer close(release)
	host := strings.TrimPrefix(srv.URL, "http://")
	_, _, err := source.Open(t.Context(), httpConn(srv.URL+"/slow.csv", nil), source.Options{Timeout: 200 * time.Millisecond})
	require.EqualError(t, err, fmt.Sprintf("GET %s/slow.csv: no response from %s within 200ms", srv.URL, host))
}

func TestHTTPSlowBodyStreamsAndStalledBodyFails(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		parts := 6
		if r.URL.Path == "/stall.csv" {
			parts = 2
		}
		for i := range parts {
			fmt.Fprintf(w, "row %d\n", i)
			w.(http.Flusher).Flush()
			time.Sleep(100 * time.Millisecond)
		}
		if r.URL.Path == "/stall.csv" {
			select {
			case <-r.Context().Done():
			case <-time.After(5 * time.Second):
			}
		}
	}))
	defer srv.Close()
	opts := source.Options{Timeout: 300 * time.Millisecond}

	// 600ms in total, longer than the timeout, but never idle that long.
	rc, _, err := source.Open(t.Context(), httpConn(srv.URL+"/slow.csv", nil), opts)
	require.NoError(t, err)
	b, err := io.ReadAll(rc)
	require.NoError(t, err)
	require.NoError(t, rc.Close())
	require.Equal(t, 6, strings.Count(string(b), "\n"))

	rc, _, err = source.Open(t.Context(), httpConn(srv.URL+"/stall.csv", nil), opts)
	require.NoError(t, err)
	defer rc.Close()
	_, err = io.ReadAll(rc)
	require.EqualError(t, err, "read "+srv.URL+"/stall.csv: no data received for 300ms")
}

func TestHTTPBadURL(t *testing.T) {
	t.Parallel()
	_, _, err := source.Open(t.Context(), httpConn("ftp://example.com/a.csv", nil), source.Options{})
	require.EqualError(t, err, "file URL ftp://example.com/a.csv: scheme must be http or https")
	_, _, err = source.Open(t.Context(), httpConn("http:///a.csv", nil), source.Options{})
	require.EqualError(t, err, "file URL http:///a.csv has no host")
}

func TestHTTPCancelled(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { <-r.Context().Done() }))
	defer srv.Close()
	ctx, cancel := context.WithCancel(t.Context())
	time.AfterFunc(50*time.Millisecond, cancel)
	_, _, err := source.Open(ctx, httpConn(srv.URL+"/a.csv", nil), source.Options{})
	require.ErrorIs(t, err, context.Canceled)
}

func TestLocal(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	path := filepath.Join(dir, "accounts.csv")
	require.NoError(t, os.WriteFile(path, []byte("id\n1\n"), 0o600))

	rc, info, err := source.Open(t.Context(), localConn(path), source.Options{DevMode: true})
	require.NoError(t, err)
	b, err := io.ReadAll(rc)
	require.NoError(t, err)
	require.NoError(t, rc.Close())
	require.Equal(t, "id\n1\n", string(b))
	require.Equal(t, path, info.Source)

	_, _, err = source.Open(t.Context(), localConn(path), source.Options{})
	require.ErrorIs(t, err, source.ErrLocalNotAllowed)
	require.EqualError(t, err, "local files are only available in development mode (scheduled imports need a data file connection)")

	missing := filepath.Join(dir, "missing.csv")
	_, _, err = source.Open(t.Context(), localConn(missing), source.Options{DevMode: true})
	require.EqualError(t, err, "local file "+missing+" does not exist")

	_, _, err = source.Open(t.Context(), localConn("data/a.csv"), source.Options{DevMode: true})
	require.EqualError(t, err, `local file path "data/a.csv" is not absolute`)

	_, _, err = source.Open(t.Context(), localConn(dir), source.Options{DevMode: true})
	require.EqualError(t, err, "local file "+dir+" is a directory")
}

func TestNoConnection(t *testing.T) {
	t.Parallel()
	_, _, err := source.Open(t.Context(), nil, source.Options{})
	require.EqualError(t, err, "the job has no connection to read the file from")
}

func TestDescribe(t *testing.T) {
	t.Parallel()
	require.Equal(t, "https://h.example/a.csv?token=REDACTED", source.Describe(httpConn("https://u:p@h.example/a.csv?token=x#frag", nil)))
	require.Equal(t, "/data/a.csv", source.Describe(localConn("/data/a.csv")))
	require.Empty(t, source.Describe(nil))
}
