package source

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	intakev1 "github.com/intakehq/intake/proto/gen/intake/v1"
)

// Kind shorthands for this package's messages.
const (
	kindUnknownHost = intakev1.ConnectionErrorKind_CONNECTION_ERROR_KIND_UNKNOWN_HOST
	kindRefused     = intakev1.ConnectionErrorKind_CONNECTION_ERROR_KIND_CONNECTION_REFUSED
	kindTimeout     = intakev1.ConnectionErrorKind_CONNECTION_ERROR_KIND_TIMEOUT
	kindAuth        = intakev1.ConnectionErrorKind_CONNECTION_ERROR_KIND_AUTHENTICATION_FAILED
	kindTLS         = intakev1.ConnectionErrorKind_CONNECTION_ERROR_KIND_TLS
	kindNotFound    = intakev1.ConnectionErrorKind_CONNECTION_ERROR_KIND_FILE_NOT_FOUND
	kindDenied      = intakev1.ConnectionErrorKind_CONNECTION_ERROR_KIND_PERMISSION_DENIED
	kindNoMatch     = intakev1.ConnectionErrorKind_CONNECTION_ERROR_KIND_NO_MATCH
	kindConfig      = intakev1.ConnectionErrorKind_CONNECTION_ERROR_KIND_INVALID_CONFIG
	kindOther       = intakev1.ConnectionErrorKind_CONNECTION_ERROR_KIND_OTHER
)

// errHTTPNotBrowsable is the message of List on an HTTP connection.
const errHTTPNotBrowsable = "an HTTP connection cannot be browsed: name the file's path"

// httpConnClient is the Client of an HTTP(S) connection: its URL is a base,
// and a path is resolved against it (an empty path reads the URL itself).
//
// Paths are file paths, not URL-encoded: "exports/accounts 2024.csv" is sent
// as "exports/accounts%202024.csv". Anything after a "?" in a path is a query
// string (already encoded), appended to the base URL's own query.
//
// Check sends a HEAD to the base URL (a GET of its first byte when the server
// does not allow HEAD). It fails only when the server cannot be reached,
// refuses the credentials (401, 407) or is failing (429, 5xx): a base URL is
// often a directory that answers 403 or 404 (no index) while the files under
// it are readable, so those statuses mean "the server answered and did not
// refuse the credentials" and pass. A missing or forbidden file shows at
// Stat or Open.
type httpConnClient struct {
	base    *url.URL
	headers map[string]string
	basic   *intakev1.BasicAuth
	bearer  string
	client  *http.Client
	owned   bool // client was made for this connection: Close releases it
	timeout time.Duration
}

func dialHTTP(_ context.Context, conn *intakev1.HttpConnection, opts Options) (Client, error) {
	return dialHTTPConn(conn, opts, "URL")
}

// dialHTTPConn makes the client of conn; label names the URL in messages
// ("URL" for a stored connection, "file URL" for an inline one).
func dialHTTPConn(conn *intakev1.HttpConnection, opts Options, label string) (*httpConnClient, error) {
	if opts.Timeout <= 0 {
		opts.Timeout = DefaultTimeout
	}
	raw := conn.GetUrl()
	if raw == "" {
		return nil, Errorf(kindConfig, false, nil, "the HTTP connection has no %s", label)
	}
	u, err := url.Parse(raw)
	if err != nil {
		// The url.Error would quote the URL, secrets and all.
		return nil, Errorf(kindConfig, false, errors.Unwrap(err), "%s is not valid: %v", label, errors.Unwrap(err))
	}
	where := Redact(u)
	switch {
	case u.Scheme != "http" && u.Scheme != "https":
		return nil, Errorf(kindConfig, false, nil, "%s %s: scheme must be http or https", label, where)
	case u.Host == "":
		return nil, Errorf(kindConfig, false, nil, "%s %s has no host", label, where)
	}
	c := &httpConnClient{base: u, headers: conn.GetHeaders(), timeout: opts.Timeout}
	switch auth := conn.GetAuth().(type) {
	case *intakev1.HttpConnection_Basic:
		c.basic = auth.Basic
	case *intakev1.HttpConnection_Bearer:
		if auth.Bearer.GetToken() == "" {
			return nil, Errorf(kindConfig, false, nil, "HTTP connection %s: bearer auth has no token", where)
		}
		c.bearer = auth.Bearer.GetToken()
	}

	c.client = opts.HTTPClient
	if pem := conn.GetCaPem(); pem != "" {
		pool, err := x509.SystemCertPool()
		if err != nil {
			pool = x509.NewCertPool()
		}
		if !pool.AppendCertsFromPEM([]byte(pem)) {
			return nil, Errorf(kindConfig, false, nil, "HTTP connection %s: ca_pem holds no valid PEM certificate", where)
		}
		var t *http.Transport
		if opts.HTTPClient != nil {
			if ht, ok := opts.HTTPClient.Transport.(*http.Transport); ok {
				t = ht.Clone()
			}
		}
		if t == nil {
			t = NewHTTPClient(opts.Timeout).Transport.(*http.Transport)
		}
		cfg := &tls.Config{MinVersion: tls.VersionTLS12}
		if t.TLSClientConfig != nil {
			cfg = t.TLSClientConfig.Clone()
		}
		cfg.RootCAs = pool
		t.TLSClientConfig = cfg
		c.client = &http.Client{Transport: t}
		if opts.HTTPClient != nil {
			c.client.CheckRedirect = opts.HTTPClient.CheckRedirect
		}
		c.owned = true
	} else if c.client == nil {
		c.client = NewHTTPClient(opts.Timeout)
		c.owned = true
	}
	return c, nil
}

// url resolves a path against the base URL.
func (c *httpConnClient) url(p string) (*url.URL, error) {
	u := *c.base
	if p == "" {
		return &u, nil
	}
	rel, query, hasQuery := strings.Cut(p, "?")
	if strings.Contains(rel, "://") {
		return nil, Errorf(kindConfig, false, nil, "path %q must be relative to the connection's URL %s", p, Redact(c.base))
	}
	rel = strings.TrimPrefix(rel, "/")
	for seg := range strings.SplitSeq(rel, "/") {
		if seg == ".." {
			return nil, Errorf(kindConfig, false, nil, "path %q leaves the connection's URL %s (\"..\" is not allowed)", p, Redact(c.base))
		}
	}
	u.Path = strings.TrimSuffix(c.base.Path, "/") + "/" + rel
	u.RawPath = ""
	if c.base.RawPath != "" {
		segs := strings.Split(rel, "/")
		for i, s := range segs {
			segs[i] = url.PathEscape(s)
		}
		u.RawPath = strings.TrimSuffix(c.base.RawPath, "/") + "/" + strings.Join(segs, "/")
	}
	if hasQuery && query != "" {
		if u.RawQuery != "" {
			u.RawQuery += "&" + query
		} else {
			u.RawQuery = query
		}
	}
	return &u, nil
}

// do sends one request. On success the caller closes the response body and
// then calls cancel; on error both are done.
func (c *httpConnClient) do(ctx context.Context, method string, u *url.URL, extra map[string]string) (*http.Response, context.CancelCauseFunc, error) {
	where := Redact(u)
	rctx, cancel := context.WithCancelCause(ctx)
	req, err := http.NewRequestWithContext(rctx, method, u.String(), nil)
	if err != nil {
		cancel(nil)
		return nil, nil, Errorf(kindConfig, false, nil, "%s %s: the request cannot be made: %v", method, where, errors.Unwrap(err))
	}
	for k, v := range c.headers {
		if strings.EqualFold(k, "Host") {
			req.Host = v
			continue
		}
		req.Header.Set(k, v)
	}
	if req.Header.Get("User-Agent") == "" {
		req.Header.Set("User-Agent", "intake-fetcher")
	}
	switch {
	case c.basic != nil:
		req.SetBasicAuth(c.basic.GetUsername(), c.basic.GetPassword())
	case c.bearer != "":
		req.Header.Set("Authorization", "Bearer "+c.bearer)
	}
	for k, v := range extra {
		if v != "" {
			req.Header.Set(k, v)
		}
	}
	// The transport's timeouts cover dial and headers; this one also covers
	// a TLS or proxy hang the transport would not see as such.
	headerTimer := time.AfterFunc(2*c.timeout, func() { cancel(errHeaderTimeout) })
	resp, err := c.client.Do(req)
	headerTimer.Stop()
	if err != nil {
		cause := context.Cause(rctx)
		cancel(nil)
		if ctx.Err() != nil {
			return nil, nil, &Error{Kind: kindOther, Msg: fmt.Sprintf("%s %s: %v", method, where, ctx.Err()), Err: ctx.Err()}
		}
		kind, transient, msg := classify(err, cause, u, c.timeout)
		return nil, nil, &Error{Kind: kind, Transient: transient, Msg: fmt.Sprintf("%s %s: %s", method, where, msg), Err: err}
	}
	return resp, cancel, nil
}

// statusError is the error of a response that is not a success.
func (c *httpConnClient) statusError(method string, u *url.URL, resp *http.Response) *Error {
	where := Redact(u)
	code := resp.StatusCode
	msg := fmt.Sprintf("%s %s: %s", method, where, resp.Status)
	switch {
	case code == http.StatusUnauthorized || code == http.StatusProxyAuthRequired:
		if !c.sendsCredentials() {
			return Errorf(kindAuth, false, nil, "%s (the server wants credentials: set basic or bearer auth on the connection)", msg)
		}
		return Errorf(kindAuth, false, nil, "%s (the server refused the connection's credentials)", msg)
	case code == http.StatusForbidden:
		return Errorf(kindDenied, false, nil, "%s (the credentials may not read this)", msg)
	case code == http.StatusNotFound || code == http.StatusGone:
		return Errorf(kindNotFound, false, nil, "%s", msg)
	case code == http.StatusRequestTimeout:
		return Errorf(kindTimeout, true, nil, "%s", msg)
	case code == http.StatusTooManyRequests || code >= 500:
		return Errorf(kindOther, true, nil, "%s", msg)
	}
	return Errorf(kindOther, false, nil, "%s", msg)
}

// sendsCredentials reports whether requests carry any credentials.
func (c *httpConnClient) sendsCredentials() bool {
	if c.basic != nil || c.bearer != "" || c.base.User != nil {
		return true
	}
	for k := range c.headers {
		if strings.EqualFold(k, "Authorization") {
			return true
		}
	}
	return false
}

// head asks for a URL's headers: a HEAD, or a GET of its first byte when the
// server does not allow HEAD. The returned response has no body to read.
func (c *httpConnClient) head(ctx context.Context, u *url.URL) (*http.Response, string, error) {
	resp, cancel, err := c.do(ctx, http.MethodHead, u, nil)
	if err != nil {
		return nil, http.MethodHead, err
	}
	_ = resp.Body.Close()
	cancel(nil)
	if resp.StatusCode != http.StatusMethodNotAllowed && resp.StatusCode != http.StatusNotImplemented {
		return resp, http.MethodHead, nil
	}
	resp, cancel, err = c.do(ctx, http.MethodGet, u, map[string]string{"Range": "bytes=0-0"})
	if err != nil {
		return nil, http.MethodGet, err
	}
	_ = resp.Body.Close()
	cancel(nil)
	return resp, http.MethodGet, nil
}

// Check implements Client (see httpConnClient for what passes).
func (c *httpConnClient) Check(ctx context.Context) error {
	resp, method, err := c.head(ctx, c.base)
	if err != nil {
		return err
	}
	switch code := resp.StatusCode; {
	case code == http.StatusUnauthorized || code == http.StatusProxyAuthRequired,
		code == http.StatusTooManyRequests || code >= 500:
		return c.statusError(method, c.base, resp)
	}
	return nil
}

// Stat implements Client with a HEAD of the file.
func (c *httpConnClient) Stat(ctx context.Context, p string) (FileInfo, error) {
	u, err := c.url(p)
	if err != nil {
		return FileInfo{}, err
	}
	resp, method, err := c.head(ctx, u)
	if err != nil {
		return FileInfo{}, err
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return FileInfo{}, c.statusError(method, u, resp)
	}
	fi := FileInfo{Path: p, Size: resp.ContentLength, ModTime: lastModified(resp)}
	if resp.StatusCode == http.StatusPartialContent {
		fi.Size = rangeTotal(resp.Header.Get("Content-Range"))
	}
	return fi, nil
}

// List implements Client: an HTTP server cannot be listed.
func (c *httpConnClient) List(context.Context, string, string, int) ([]FileInfo, string, error) {
	return nil, "", Errorf(kindConfig, false, nil, errHTTPNotBrowsable)
}

// Open implements Client with a GET, conditional when cond is set.
func (c *httpConnClient) Open(ctx context.Context, p string, cond Conditional) (io.ReadCloser, Meta, error) {
	u, err := c.url(p)
	if err != nil {
		return nil, Meta{}, err
	}
	conditional := cond.ETag != "" || cond.LastModified != ""
	resp, cancel, err := c.do(ctx, http.MethodGet, u, map[string]string{
		"If-None-Match":     cond.ETag,
		"If-Modified-Since": cond.LastModified,
	})
	if err != nil {
		return nil, Meta{}, err
	}
	meta := Meta{
		FileInfo:     FileInfo{Path: p, Size: resp.ContentLength, ModTime: lastModified(resp)},
		ETag:         resp.Header.Get("ETag"),
		LastModified: resp.Header.Get("Last-Modified"),
	}
	switch code := resp.StatusCode; {
	case code == http.StatusNotModified && conditional:
		_ = resp.Body.Close()
		cancel(nil)
		meta.NotModified = true
		meta.Size = -1
		if meta.ETag == "" {
			meta.ETag = cond.ETag
		}
		if meta.LastModified == "" {
			meta.LastModified = cond.LastModified
			meta.ModTime, _ = http.ParseTime(cond.LastModified)
		}
		return nil, meta, nil
	case code >= 200 && code <= 299:
		return newIdleReader(resp.Body, cancel, c.timeout, Redact(u)), meta, nil
	default:
		_ = resp.Body.Close()
		cancel(nil)
		return nil, Meta{}, c.statusError(http.MethodGet, u, resp)
	}
}

// Close implements Client.
func (c *httpConnClient) Close() error {
	if c.owned {
		c.client.CloseIdleConnections()
	}
	return nil
}

// lastModified parses a response's Last-Modified; zero when absent or bad.
func lastModified(resp *http.Response) time.Time {
	t, err := http.ParseTime(resp.Header.Get("Last-Modified"))
	if err != nil {
		return time.Time{}
	}
	return t
}

// rangeTotal is the complete length of a Content-Range ("bytes 0-0/1234"),
// -1 when unknown.
func rangeTotal(cr string) int64 {
	_, total, ok := strings.Cut(cr, "/")
	if !ok {
		return -1
	}
	n, err := strconv.ParseInt(strings.TrimSpace(total), 10, 64)
	if err != nil {
		return -1
	}
	return n
}

var (
	errHeaderTimeout = errors.New("response header timeout")
	errIdle          = errors.New("idle body")
)

// hostPort is the host:port a URL connects to.
func hostPort(u *url.URL) string {
	if u.Port() != "" {
		return u.Host
	}
	if u.Scheme == "https" {
		return net.JoinHostPort(u.Hostname(), "443")
	}
	return net.JoinHostPort(u.Hostname(), "80")
}

// classify turns a request error into a Kind, whether it is worth retrying,
// and words naming the host.
func classify(err, cause error, u *url.URL, timeout time.Duration) (intakev1.ConnectionErrorKind, bool, string) {
	var dnsErr *net.DNSError
	var netErr net.Error
	var certErr *tls.CertificateVerificationError
	var recErr tls.RecordHeaderError
	var alertErr tls.AlertError
	switch {
	case errors.As(err, &dnsErr):
		if dnsErr.IsNotFound {
			return kindUnknownHost, false, fmt.Sprintf("cannot resolve host %s: no such host", u.Hostname())
		}
		return kindUnknownHost, dnsErr.IsTemporary || dnsErr.IsTimeout,
			fmt.Sprintf("cannot resolve host %s: %v", u.Hostname(), dnsErr.Err)
	case errors.Is(err, syscall.ECONNREFUSED):
		return kindRefused, true, fmt.Sprintf("cannot connect to %s: connection refused", hostPort(u))
	case errors.Is(err, syscall.EHOSTUNREACH), errors.Is(err, syscall.ENETUNREACH):
		return kindOther, true, fmt.Sprintf("cannot connect to %s: host unreachable", hostPort(u))
	case errors.Is(cause, errHeaderTimeout),
		errors.As(err, &netErr) && netErr.Timeout():
		return kindTimeout, true, fmt.Sprintf("no response from %s within %s", hostPort(u), timeout)
	case errors.As(err, &certErr):
		return kindTLS, false, fmt.Sprintf("TLS certificate of %s is not trusted: %v", u.Hostname(), certErr.Err)
	case errors.As(err, &recErr), strings.Contains(err.Error(), "server gave HTTP response to HTTPS client"):
		return kindTLS, false, fmt.Sprintf("TLS handshake with %s failed: the server does not speak TLS (use http://)", hostPort(u))
	case errors.As(err, &alertErr):
		return kindTLS, false, fmt.Sprintf("TLS handshake with %s failed: %v", hostPort(u), alertErr)
	case errors.Is(err, syscall.ECONNRESET), errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return kindOther, true, fmt.Sprintf("connection to %s was closed by the server", hostPort(u))
	}
	var urlErr *url.Error
	if errors.As(err, &urlErr) {
		err = urlErr.Err // its URL may hold secrets
	}
	return kindOther, false, fmt.Sprintf("request to %s failed: %v", hostPort(u), err)
}

// idleReader fails a read when the body pauses longer than timeout.
type idleReader struct {
	body    io.ReadCloser
	cancel  context.CancelCauseFunc
	timer   *time.Timer
	timeout time.Duration
	source  string
	fired   atomic.Bool
}

func newIdleReader(body io.ReadCloser, cancel context.CancelCauseFunc, timeout time.Duration, source string) *idleReader {
	r := &idleReader{body: body, cancel: cancel, timeout: timeout, source: source}
	r.timer = time.AfterFunc(timeout, func() {
		r.fired.Store(true)
		cancel(errIdle)
	})
	r.timer.Stop()
	return r
}

func (r *idleReader) idleError() error {
	return Errorf(kindTimeout, true, errIdle, "read %s: no data received for %s", r.source, r.timeout)
}

func (r *idleReader) Read(p []byte) (int, error) {
	if r.fired.Load() {
		return 0, r.idleError()
	}
	r.timer.Reset(r.timeout)
	n, err := r.body.Read(p)
	r.timer.Stop() // only time spent waiting for the server counts
	if err != nil && err != io.EOF {
		if r.fired.Load() {
			return n, r.idleError()
		}
		return n, Errorf(kindOther, true, err, "read %s: %v", r.source, err)
	}
	return n, err
}

func (r *idleReader) Close() error {
	r.timer.Stop()
	err := r.body.Close()
	r.cancel(nil)
	return err
}
