// Package source opens the file of a job's connection for reading, as a
// stream: the fetcher archives it, the API samples it for previews.
//
// Kinds: HTTP(S) (a GET with the connection's headers) and, in development
// mode only, a local file. Every failure says what was opened and why it
// failed in words a user can act on; credentials never appear in messages
// or in Info.Source.
package source

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	intakev1 "github.com/intakehq/intake/proto/gen/intake/v1"
)

// DefaultTimeout is Options.Timeout when unset.
const DefaultTimeout = 30 * time.Second

// ErrLocalNotAllowed is returned for a local file outside development mode.
var ErrLocalNotAllowed = errors.New("local files are only available in development mode (scheduled imports need a data file connection)")

// Options configure Open.
type Options struct {
	// DevMode allows local file connections.
	DevMode bool
	// HTTPClient makes HTTP requests. Nil means a client from NewHTTPClient
	// made for this call; pass one to reuse connections between calls.
	HTTPClient *http.Client
	// Timeout bounds establishing a connection, waiting for the response
	// headers, and any pause while reading the body. It never bounds the
	// whole transfer, so large files can stream. Default 30s.
	Timeout time.Duration
}

// Info says where a file was read from.
type Info struct {
	// Source is the URL without credentials, or the local path.
	Source string
}

// NewHTTPClient returns a client with connect, TLS handshake and response
// header timeouts but no overall timeout.
func NewHTTPClient(timeout time.Duration) *http.Client {
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	dialer := &net.Dialer{Timeout: timeout, KeepAlive: 30 * time.Second}
	return &http.Client{Transport: &http.Transport{
		Proxy:                 http.ProxyFromEnvironment,
		DialContext:           dialer.DialContext,
		TLSHandshakeTimeout:   timeout,
		ResponseHeaderTimeout: timeout,
		ExpectContinueTimeout: time.Second,
		IdleConnTimeout:       90 * time.Second,
		MaxIdleConnsPerHost:   4,
		ForceAttemptHTTP2:     true,
		TLSClientConfig:       &tls.Config{MinVersion: tls.VersionTLS12},
	}}
}

// Open opens the connection's file. The caller closes the reader.
func Open(ctx context.Context, conn *intakev1.Connection, opts Options) (io.ReadCloser, Info, error) {
	if opts.Timeout <= 0 {
		opts.Timeout = DefaultTimeout
	}
	switch kind := conn.GetKind().(type) {
	case *intakev1.Connection_Http:
		return openHTTP(ctx, kind.Http, opts)
	case *intakev1.Connection_Local:
		return openLocal(kind.Local, opts)
	case nil:
		return nil, Info{}, errors.New("the job has no connection to read the file from")
	default:
		return nil, Info{}, fmt.Errorf("connection kind %T is not supported", kind)
	}
}

// Describe returns the Info.Source that Open reports for conn, without
// opening anything.
func Describe(conn *intakev1.Connection) string {
	switch kind := conn.GetKind().(type) {
	case *intakev1.Connection_Http:
		u, err := url.Parse(kind.Http.GetUrl())
		if err != nil {
			return ""
		}
		return Redact(u)
	case *intakev1.Connection_Local:
		return kind.Local.GetPath()
	}
	return ""
}

func openLocal(conn *intakev1.LocalConnection, opts Options) (io.ReadCloser, Info, error) {
	if !opts.DevMode {
		return nil, Info{}, ErrLocalNotAllowed
	}
	path := conn.GetPath()
	info := Info{Source: path}
	switch {
	case path == "":
		return nil, info, errors.New("the local file connection has no path")
	case !filepath.IsAbs(path):
		return nil, info, fmt.Errorf("local file path %q is not absolute", path)
	}
	f, err := os.Open(path)
	switch {
	case errors.Is(err, os.ErrNotExist):
		return nil, info, fmt.Errorf("local file %s does not exist", path)
	case errors.Is(err, os.ErrPermission):
		return nil, info, fmt.Errorf("local file %s cannot be read: permission denied", path)
	case err != nil:
		return nil, info, fmt.Errorf("open local file %s: %w", path, err)
	}
	st, err := f.Stat()
	if err != nil {
		_ = f.Close()
		return nil, info, fmt.Errorf("stat local file %s: %w", path, err)
	}
	if st.IsDir() {
		_ = f.Close()
		return nil, info, fmt.Errorf("local file %s is a directory", path)
	}
	return f, info, nil
}

func openHTTP(ctx context.Context, conn *intakev1.HttpConnection, opts Options) (io.ReadCloser, Info, error) {
	raw := conn.GetUrl()
	u, err := url.Parse(raw)
	if err != nil {
		return nil, Info{}, fmt.Errorf("file URL is not valid: %w", errors.Unwrap(err))
	}
	info := Info{Source: Redact(u)}
	switch {
	case u.Scheme != "http" && u.Scheme != "https":
		return nil, info, fmt.Errorf("file URL %s: scheme must be http or https", info.Source)
	case u.Host == "":
		return nil, info, fmt.Errorf("file URL %s has no host", info.Source)
	}

	client := opts.HTTPClient
	if client == nil {
		client = NewHTTPClient(opts.Timeout)
		defer client.CloseIdleConnections()
	}
	rctx, cancel := context.WithCancelCause(ctx)
	req, err := http.NewRequestWithContext(rctx, http.MethodGet, u.String(), nil)
	if err != nil {
		cancel(nil)
		return nil, info, fmt.Errorf("GET %s: %w", info.Source, err)
	}
	for k, v := range conn.GetHeaders() {
		if strings.EqualFold(k, "Host") {
			req.Host = v
			continue
		}
		req.Header.Set(k, v)
	}
	if req.Header.Get("User-Agent") == "" {
		req.Header.Set("User-Agent", "intake-fetcher")
	}
	// The transport's timeouts cover dial and headers; this one also covers
	// a TLS or proxy hang the transport would not see as such.
	headerTimer := time.AfterFunc(2*opts.Timeout, func() { cancel(errHeaderTimeout) })
	resp, err := client.Do(req)
	headerTimer.Stop()
	if err != nil {
		cause := context.Cause(rctx)
		cancel(nil)
		if ctx.Err() != nil {
			return nil, info, fmt.Errorf("GET %s: %w", info.Source, ctx.Err())
		}
		return nil, info, fmt.Errorf("GET %s: %s", info.Source, describe(err, cause, u, opts.Timeout))
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		_ = resp.Body.Close()
		cancel(nil)
		return nil, info, fmt.Errorf("GET %s: %s", info.Source, resp.Status)
	}
	return newIdleReader(resp.Body, cancel, opts.Timeout, info.Source), info, nil
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

// describe turns a request error into words naming the host.
func describe(err, cause error, u *url.URL, timeout time.Duration) string {
	var dnsErr *net.DNSError
	var netErr net.Error
	var certErr *tls.CertificateVerificationError
	switch {
	case errors.As(err, &dnsErr):
		if dnsErr.IsNotFound {
			return fmt.Sprintf("cannot resolve host %s: no such host", u.Hostname())
		}
		return fmt.Sprintf("cannot resolve host %s: %v", u.Hostname(), dnsErr.Err)
	case errors.Is(err, syscall.ECONNREFUSED):
		return fmt.Sprintf("cannot connect to %s: connection refused", hostPort(u))
	case errors.Is(err, syscall.EHOSTUNREACH), errors.Is(err, syscall.ENETUNREACH):
		return fmt.Sprintf("cannot connect to %s: host unreachable", hostPort(u))
	case errors.Is(cause, errHeaderTimeout),
		errors.As(err, &netErr) && netErr.Timeout():
		return fmt.Sprintf("no response from %s within %s", hostPort(u), timeout)
	case errors.As(err, &certErr):
		return fmt.Sprintf("TLS certificate of %s is not trusted: %v", u.Hostname(), certErr.Err)
	}
	var urlErr *url.Error
	if errors.As(err, &urlErr) {
		err = urlErr.Err
	}
	return fmt.Sprintf("request to %s failed: %v", hostPort(u), err)
}

// sensitiveParams are query parameters whose values are secrets (signed URL
// signatures, tokens).
var sensitiveParams = []string{"sig", "signature", "token", "key", "secret", "password", "credential", "auth"}

// Redact returns the URL without user info, fragment, and with the values of
// query parameters that look like secrets replaced by "REDACTED".
func Redact(u *url.URL) string {
	c := *u
	c.User = nil
	c.Fragment, c.RawFragment = "", ""
	if c.RawQuery != "" {
		q := c.Query()
		changed := false
		for k := range q {
			lk := strings.ToLower(k)
			for _, s := range sensitiveParams {
				if strings.Contains(lk, s) {
					q[k] = []string{"REDACTED"}
					changed = true
					break
				}
			}
		}
		if changed {
			c.RawQuery = q.Encode()
		}
	}
	return c.String()
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

func (r *idleReader) Read(p []byte) (int, error) {
	if r.fired.Load() {
		return 0, fmt.Errorf("read %s: no data received for %s", r.source, r.timeout)
	}
	r.timer.Reset(r.timeout)
	n, err := r.body.Read(p)
	r.timer.Stop() // only time spent waiting for the server counts
	if err != nil && err != io.EOF {
		if r.fired.Load() {
			return n, fmt.Errorf("read %s: no data received for %s", r.source, r.timeout)
		}
		return n, fmt.Errorf("read %s: %w", r.source, err)
	}
	return n, err
}

func (r *idleReader) Close() error {
	r.timer.Stop()
	err := r.body.Close()
	r.cancel(nil)
	return err
}
