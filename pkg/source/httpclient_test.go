package source_test

import (
	"encoding/pem"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	intakev1 "github.com/intakehq/intake/proto/gen/intake/v1"

	"github.com/intakehq/intake/pkg/source"
)

const (
	ekUnknownHost = intakev1.ConnectionErrorKind_CONNECTION_ERROR_KIND_UNKNOWN_HOST
	ekRefused     = intakev1.ConnectionErrorKind_CONNECTION_ERROR_KIND_CONNECTION_REFUSED
	ekTimeout     = intakev1.ConnectionErrorKind_CONNECTION_ERROR_KIND_TIMEOUT
	ekAuth        = intakev1.ConnectionErrorKind_CONNECTION_ERROR_KIND_AUTHENTICATION_FAILED
	ekTLS         = intakev1.ConnectionErrorKind_CONNECTION_ERROR_KIND_TLS
	ekNotFound    = intakev1.ConnectionErrorKind_CONNECTION_ERROR_KIND_FILE_NOT_FOUND
	ekDenied      = intakev1.ConnectionErrorKind_CONNECTION_ERROR_KIND_PERMISSION_DENIED
	ekNoMatch     = intakev1.ConnectionErrorKind_CONNECTION_ERROR_KIND_NO_MATCH
	ekConfig      = intakev1.ConnectionErrorKind_CONNECTION_ERROR_KIND_INVALID_CONFIG
	ekOther       = intakev1.ConnectionErrorKind_CONNECTION_ERROR_KIND_OTHER
)

func storedHTTPConn(h *intakev1.HttpConnection) *intakev1.Connection {
	return &intakev1.Connection{Name: "connections/exports", Kind: &intakev1.Connection_Http{Http: h}}
}

func dialClient(t *testing.T, conn *intakev1.Connection, opts source.Options) source.Client {
	t.Helper()
	c, err := source.Dial(t.Context(), conn, opts)
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, c.Close()) })
	return c
}

func readAllClose(t *testing.T, rc io.ReadCloser) string {
	t.Helper()
	b, err := io.ReadAll(rc)
	require.NoError(t, err)
	require.NoError(t, rc.Close())
	return string(b)
}

// requireKind checks err's Kind, whether it is transient, and that its
// message holds want and none of the secrets.
func requireErrKind(t *testing.T, err error, kind intakev1.ConnectionErrorKind, transient bool, want string, secrets ...string) {
	t.Helper()
	require.Error(t, err)
	require.Equal(t, kind.String(), source.KindOf(err).String(), "error: %v", err)
	require.Equal(t, transient, source.IsTransient(err), "transient? error: %v", err)
	require.Contains(t, err.Error(), want)
	for _, s := range secrets {
		require.NotContains(t, err.Error(), s)
	}
}

func TestHTTPClientTLSWithOwnCA(t *testing.T) {
	t.Parallel()
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "id\n%s\n", r.URL.Path)
	}))
	defer srv.Close()
	caPEM := string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw}))

	c := dialClient(t, storedHTTPConn(&intakev1.HttpConnection{Url: srv.URL + "/exports/", CaPem: caPEM}), source.Options{})
	require.NoError(t, c.Check(t.Context()))
	rc, meta, err := c.Open(t.Context(), "accounts.csv", source.Conditional{})
	require.NoError(t, err)
	require.Equal(t, "id\n/exports/accounts.csv\n", readAllClose(t, rc))
	require.Equal(t, "accounts.csv", meta.Path)

	// The same server without its CA: not trusted.
	plain := dialClient(t, storedHTTPConn(&intakev1.HttpConnection{Url: srv.URL + "/exports/"}), source.Options{})
	_, _, err = plain.Open(t.Context(), "accounts.csv", source.Conditional{})
	requireErrKind(t, err, ekTLS, false, "GET "+srv.URL+"/exports/accounts.csv: TLS certificate of 127.0.0.1 is not trusted: ")
	requireErrKind(t, plain.Check(t.Context()), ekTLS, false, "HEAD "+srv.URL+"/exports/: TLS certificate of 127.0.0.1 is not trusted")

	// With its CA but under a name the certificate does not hold.
	local := strings.Replace(srv.URL, "127.0.0.1", "localhost", 1)
	named := dialClient(t, storedHTTPConn(&intakev1.HttpConnection{Url: local, CaPem: caPEM}), source.Options{})
	requireErrKind(t, named.Check(t.Context()), ekTLS, false, "TLS certificate of localhost is not trusted: x509: certificate is valid for")

	// A shared client (Options.HTTPClient) still trusts the connection's CA.
	shared := source.NewHTTPClient(5 * time.Second)
	viaShared := dialClient(t, storedHTTPConn(&intakev1.HttpConnection{Url: srv.URL, CaPem: caPEM}), source.Options{HTTPClient: shared})
	rc, _, err = viaShared.Open(t.Context(), "a.csv", source.Conditional{})
	require.NoError(t, err)
	require.Equal(t, "id\n/a.csv\n", readAllClose(t, rc))

	// Plain HTTP spoken to a TLS client.
	httpSrv := httptest.NewServer(http.NotFoundHandler())
	defer httpSrv.Close()
	tlsToPlain := dialClient(t, storedHTTPConn(&intakev1.HttpConnection{Url: strings.Replace(httpSrv.URL, "http:", "https:", 1)}), source.Options{})
	requireErrKind(t, tlsToPlain.Check(t.Context()), ekTLS, false, "the server does not speak TLS")

	_, err = source.Dial(t.Context(), storedHTTPConn(&intakev1.HttpConnection{Url: srv.URL, CaPem: "not a certificate"}), source.Options{})
	requireErrKind(t, err, ekConfig, false, "HTTP connection "+srv.URL+": ca_pem holds no valid PEM certificate")
}

func TestHTTPClientAuth(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		user, pw, basic := r.BasicAuth()
		switch {
		case r.URL.Path == "/forbidden.csv":
			w.WriteHeader(http.StatusForbidden)
		case basic && user == "acme" && pw == "s3cret-pw",
			r.Header.Get("Authorization") == "Bearer s3cret-token":
			fmt.Fprint(w, "id\n1\n")
		default:
			w.Header().Set("WWW-Authenticate", `Basic realm="exports"`)
			w.WriteHeader(http.StatusUnauthorized)
		}
	}))
	defer srv.Close()
	basic := func(user, pw string) *intakev1.Connection {
		return storedHTTPConn(&intakev1.HttpConnection{Url: srv.URL, Auth: &intakev1.HttpConnection_Basic{Basic: &intakev1.BasicAuth{Username: user, Password: pw}}})
	}
	bearer := func(token string) *intakev1.Connection {
		return storedHTTPConn(&intakev1.HttpConnection{Url: srv.URL, Auth: &intakev1.HttpConnection_Bearer{Bearer: &intakev1.BearerAuth{Token: token}}})
	}

	for name, conn := range map[string]*intakev1.Connection{"basic": basic("acme", "s3cret-pw"), "bearer": bearer("s3cret-token")} {
		c := dialClient(t, conn, source.Options{})
		require.NoError(t, c.Check(t.Context()), name)
		rc, _, err := c.Open(t.Context(), "a.csv", source.Conditional{})
		require.NoError(t, err, name)
		require.Equal(t, "id\n1\n", readAllClose(t, rc), name)
		_, _, err = c.Open(t.Context(), "forbidden.csv", source.Conditional{})
		requireErrKind(t, err, ekDenied, false, "GET "+srv.URL+"/forbidden.csv: 403 Forbidden (the credentials may not read this)")
	}

	wrong := dialClient(t, basic("acme", "wrong-pw"), source.Options{})
	_, _, err := wrong.Open(t.Context(), "a.csv", source.Conditional{})
	requireErrKind(t, err, ekAuth, false, "GET "+srv.URL+"/a.csv: 401 Unauthorized (the server refused the connection's credentials)", "wrong-pw")
	requireErrKind(t, wrong.Check(t.Context()), ekAuth, false, "HEAD "+srv.URL+": 401 Unauthorized", "wrong-pw")

	wrongToken := dialClient(t, bearer("wrong-token"), source.Options{})
	_, _, err = wrongToken.Open(t.Context(), "a.csv", source.Conditional{})
	requireErrKind(t, err, ekAuth, false, "401 Unauthorized (the server refused the connection's credentials)", "wrong-token")

	none := dialClient(t, storedHTTPConn(&intakev1.HttpConnection{Url: srv.URL}), source.Options{})
	_, _, err = none.Open(t.Context(), "a.csv", source.Conditional{})
	requireErrKind(t, err, ekAuth, false, "401 Unauthorized (the server wants credentials: set basic or bearer auth on the connection)")

	_, err = source.Dial(t.Context(), bearer(""), source.Options{})
	requireErrKind(t, err, ekConfig, false, "HTTP connection "+srv.URL+": bearer auth has no token")
}

func TestHTTPClientConditional(t *testing.T) {
	t.Parallel()
	modTime := time.Date(2025, 3, 30, 8, 0, 0, 0, time.UTC)
	content, etag := "id\n1\n", `"v1"`
	var gets int
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodGet {
			gets++
		}
		if r.URL.Path == "/etag.csv" {
			w.Header().Set("ETag", etag)
		}
		// ServeContent answers If-None-Match and If-Modified-Since.
		http.ServeContent(w, r, "a.csv", modTime, strings.NewReader(content))
	}))
	defer srv.Close()
	c := dialClient(t, storedHTTPConn(&intakev1.HttpConnection{Url: srv.URL}), source.Options{})

	rc, meta, err := c.Open(t.Context(), "etag.csv", source.Conditional{})
	require.NoError(t, err)
	require.Equal(t, content, readAllClose(t, rc))
	require.Equal(t, `"v1"`, meta.ETag)
	require.Equal(t, "Sun, 30 Mar 2025 08:00:00 GMT", meta.LastModified)
	require.True(t, meta.ModTime.Equal(modTime))
	require.Equal(t, int64(len(content)), meta.Size)
	require.False(t, meta.NotModified)

	// Unchanged: 304, no body.
	rc, meta2, err := c.Open(t.Context(), "etag.csv", source.Conditional{ETag: meta.ETag, LastModified: meta.LastModified})
	require.NoError(t, err)
	require.Nil(t, rc)
	require.True(t, meta2.NotModified)
	require.Equal(t, `"v1"`, meta2.ETag)

	// Changed: a new body and validators.
	content, etag = "id\n1\n2\n", `"v2"`
	rc, meta3, err := c.Open(t.Context(), "etag.csv", source.Conditional{ETag: meta.ETag, LastModified: meta.LastModified})
	require.NoError(t, err)
	require.Equal(t, content, readAllClose(t, rc))
	require.Equal(t, `"v2"`, meta3.ETag)
	require.False(t, meta3.NotModified)

	// A server with Last-Modified only.
	rc, meta, err = c.Open(t.Context(), "lm.csv", source.Conditional{})
	require.NoError(t, err)
	readAllClose(t, rc)
	require.Empty(t, meta.ETag)
	rc, meta, err = c.Open(t.Context(), "lm.csv", source.Conditional{LastModified: meta.LastModified})
	require.NoError(t, err)
	require.Nil(t, rc)
	require.True(t, meta.NotModified)
	modTime = modTime.Add(time.Hour)
	rc, meta, err = c.Open(t.Context(), "lm.csv", source.Conditional{LastModified: "Sun, 30 Mar 2025 08:00:00 GMT"})
	require.NoError(t, err)
	require.Equal(t, content, readAllClose(t, rc))
	require.Equal(t, "Sun, 30 Mar 2025 09:00:00 GMT", meta.LastModified)
	require.Equal(t, 6, gets)

	// Stat is a HEAD: size and modification time, no body.
	fi, err := c.Stat(t.Context(), "lm.csv")
	require.NoError(t, err)
	require.Equal(t, source.FileInfo{Path: "lm.csv", Size: int64(len(content)), ModTime: modTime}, fi)
	require.Equal(t, 6, gets)
}

func TestHTTPClientStatuses(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/busy.csv":
			w.WriteHeader(http.StatusServiceUnavailable)
		case "/slow-down.csv":
			w.WriteHeader(http.StatusTooManyRequests)
		case "/teapot.csv":
			w.WriteHeader(http.StatusTeapot)
		default:
			http.NotFound(w, r)
		}
	}))
	defer srv.Close()
	c := dialClient(t, storedHTTPConn(&intakev1.HttpConnection{Url: srv.URL + "/exports"}), source.Options{})

	_, _, err := c.Open(t.Context(), "missing.csv", source.Conditional{})
	requireErrKind(t, err, ekNotFound, false, "GET "+srv.URL+"/exports/missing.csv: 404 Not Found")
	_, err = c.Stat(t.Context(), "missing.csv")
	requireErrKind(t, err, ekNotFound, false, "HEAD "+srv.URL+"/exports/missing.csv: 404 Not Found")

	bad := dialClient(t, storedHTTPConn(&intakev1.HttpConnection{Url: srv.URL}), source.Options{})
	_, _, err = bad.Open(t.Context(), "busy.csv", source.Conditional{})
	requireErrKind(t, err, ekOther, true, "GET "+srv.URL+"/busy.csv: 503 Service Unavailable")
	_, _, err = bad.Open(t.Context(), "slow-down.csv", source.Conditional{})
	requireErrKind(t, err, ekOther, true, "429 Too Many Requests")
	_, _, err = bad.Open(t.Context(), "teapot.csv", source.Conditional{})
	requireErrKind(t, err, ekOther, false, "418 I'm a teapot")

	// The base URL is a directory without an index: the server answered,
	// so the connection works.
	require.NoError(t, c.Check(t.Context()))
	busy := dialClient(t, storedHTTPConn(&intakev1.HttpConnection{Url: srv.URL + "/busy.csv"}), source.Options{})
	requireErrKind(t, busy.Check(t.Context()), ekOther, true, "HEAD "+srv.URL+"/busy.csv: 503 Service Unavailable")

	_, _, err = c.List(t.Context(), "", "", 10)
	requireErrKind(t, err, ekConfig, false, "an HTTP connection cannot be browsed: name the file's path")
}

func TestHTTPClientHeadNotAllowed(t *testing.T) {
	t.Parallel()
	var methods []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		methods = append(methods, r.Method+" "+r.Header.Get("Range"))
		if r.Method == http.MethodHead {
			w.WriteHeader(http.StatusMethodNotAllowed)
			return
		}
		http.ServeContent(w, r, "a.csv", time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC), strings.NewReader("id\n1\n2\n"))
	}))
	defer srv.Close()
	c := dialClient(t, storedHTTPConn(&intakev1.HttpConnection{Url: srv.URL}), source.Options{})
	require.NoError(t, c.Check(t.Context()))
	fi, err := c.Stat(t.Context(), "a.csv")
	require.NoError(t, err)
	require.Equal(t, int64(7), fi.Size, "from Content-Range")
	require.Equal(t, time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC), fi.ModTime)
	require.Equal(t, []string{"HEAD ", "GET bytes=0-0", "HEAD ", "GET bytes=0-0"}, methods)
}

func TestHTTPClientPaths(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, r.URL.EscapedPath()+"?"+r.URL.RawQuery)
	}))
	defer srv.Close()
	for _, tc := range []struct{ base, path, want string }{
		{"/exports/", "accounts.csv", "/exports/accounts.csv?"},
		{"/exports", "accounts.csv", "/exports/accounts.csv?"},
		{"/exports", "/daily/accounts 2025.csv", "/exports/daily/accounts%202025.csv?"},
		{"/exports/data.csv?key=k1", "", "/exports/data.csv?key=k1"},
		{"/api?key=k1", "export?format=csv", "/api/export?key=k1&format=csv"},
		{"", "a.csv", "/a.csv?"},
	} {
		c := dialClient(t, storedHTTPConn(&intakev1.HttpConnection{Url: srv.URL + tc.base}), source.Options{})
		rc, _, err := c.Open(t.Context(), tc.path, source.Conditional{})
		require.NoError(t, err, tc)
		require.Equal(t, tc.want, readAllClose(t, rc), tc)
	}
	c := dialClient(t, storedHTTPConn(&intakev1.HttpConnection{Url: srv.URL + "/exports/?token=s3cret"}), source.Options{})
	_, _, err := c.Open(t.Context(), "../private/a.csv", source.Conditional{})
	requireErrKind(t, err, ekConfig, false, `path "../private/a.csv" leaves the connection's URL `+srv.URL+"/exports/?token=REDACTED", "s3cret")
	_, _, err = c.Open(t.Context(), "https://elsewhere.example/a.csv", source.Conditional{})
	requireErrKind(t, err, ekConfig, false, "must be relative to the connection's URL", "s3cret")

	_, err = source.Dial(t.Context(), storedHTTPConn(&intakev1.HttpConnection{Url: "ftp://u:pw@example.com/"}), source.Options{})
	requireErrKind(t, err, ekConfig, false, "URL ftp://example.com/: scheme must be http or https", "pw")
	_, err = source.Dial(t.Context(), storedHTTPConn(&intakev1.HttpConnection{}), source.Options{})
	requireErrKind(t, err, ekConfig, false, "the HTTP connection has no URL")
}

func TestHTTPClientNetworkErrors(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := ln.Addr().String()
	require.NoError(t, ln.Close())
	refused := dialClient(t, storedHTTPConn(&intakev1.HttpConnection{Url: "http://" + addr + "/exports/"}), source.Options{})
	_, _, err = refused.Open(t.Context(), "a.csv", source.Conditional{})
	requireErrKind(t, err, ekRefused, true, fmt.Sprintf("GET http://%s/exports/a.csv: cannot connect to %s: connection refused", addr, addr))
	requireErrKind(t, refused.Check(t.Context()), ekRefused, true, "connection refused")

	unknown := dialClient(t, storedHTTPConn(&intakev1.HttpConnection{Url: "https://nonexistent.invalid/"}), source.Options{Timeout: 5 * time.Second})
	requireErrKind(t, unknown.Check(t.Context()), ekUnknownHost, false, "HEAD https://nonexistent.invalid/: cannot resolve host nonexistent.invalid")

	release := make(chan struct{})
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	defer slow.Close()
	defer close(release)
	c := dialClient(t, storedHTTPConn(&intakev1.HttpConnection{Url: slow.URL}), source.Options{Timeout: 200 * time.Millisecond})
	_, _, err = c.Open(t.Context(), "a.csv", source.Conditional{})
	requireErrKind(t, err, ekTimeout, true, fmt.Sprintf("GET %s/a.csv: no response from %s within 200ms", slow.URL, strings.TrimPrefix(slow.URL, "http://")))
}
