// Package source reads the files of a job's connection, as streams: the
// fetcher archives them, the API samples them for previews, tests
// connections and browses them.
//
// A Client (Dial) reads one stored connection: HTTP(S) under a base URL,
// S3-compatible buckets, SFTP servers and, in development mode only, a local
// directory. A FileSelector names a path or a pattern with date placeholders
// (Resolve, ExpandPlaceholders); OpenFile is the one entry point that opens
// a job's file, with retries of transient failures (Retry). Open reads an
// inline connection (an HTTP URL, a local file).
//
// Every failure is an *Error with a Kind and says what was opened and why it
// failed in words a user can act on; credentials never appear in messages
// or in sources.
package source

import (
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	intakev1 "github.com/intakehq/intake/proto/gen/intake/v1"
)

// DefaultTimeout is Options.Timeout when unset.
const DefaultTimeout = 30 * time.Second

// ErrLocalNotAllowed is returned for a local file outside development mode.
var ErrLocalNotAllowed = errors.New("local files are only available in development mode (scheduled imports need a data file connection)")

// Options configure Open, Dial and OpenFile.
type Options struct {
	// DevMode allows local file and local directory connections.
	DevMode bool
	// HTTPClient makes HTTP requests. Nil means a client from NewHTTPClient
	// made for this call; pass one to reuse connections between calls. An
	// HTTP connection with its own CA (ca_pem) uses a clone of its
	// transport that trusts that CA.
	HTTPClient *http.Client
	// Timeout bounds establishing a connection, waiting for the response
	// headers, and any pause while reading the body. It never bounds the
	// whole transfer, so large files can stream. Default 30s.
	Timeout time.Duration
	// Retry is how OpenFile retries transient failures; the zero value is
	// the default policy (see RetryPolicy).
	Retry RetryPolicy
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

// Open opens the file of an inline connection (an HTTP URL, or a local file
// path in development mode), in one attempt. The caller closes the reader.
// Errors are *Error. It is OpenFile without a file selector, retries or
// validators; stored connections with a file selector go through OpenFile.
func Open(ctx context.Context, conn *intakev1.Connection, opts Options) (io.ReadCloser, Info, error) {
	if opts.Timeout <= 0 {
		opts.Timeout = DefaultTimeout
	}
	if conn.GetKind() == nil {
		return nil, Info{}, Errorf(kindConfig, false, nil, "the job has no connection to read the file from")
	}
	opts.Retry = RetryPolicy{Attempts: 1}
	rc, fm, err := openInlineFile(ctx, Request{Conn: conn}, opts)
	return rc, Info{Source: fm.Source}, err
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

// clientReader is a file's reader whose Close also closes its Client.
type clientReader struct {
	io.ReadCloser
	client Client
}

func (r *clientReader) Close() error {
	return errors.Join(r.ReadCloser.Close(), r.client.Close())
}

// localNotAllowed is ErrLocalNotAllowed as an *Error.
func localNotAllowed() *Error {
	return &Error{Kind: kindConfig, Msg: ErrLocalNotAllowed.Error(), Err: ErrLocalNotAllowed}
}

// openLocal opens the file of an inline local connection (its path is the
// file's).
func openLocal(conn *intakev1.LocalConnection, opts Options) (io.ReadCloser, Info, error) {
	if !opts.DevMode {
		return nil, Info{}, localNotAllowed()
	}
	path := conn.GetPath()
	info := Info{Source: path}
	switch {
	case path == "":
		return nil, info, Errorf(kindConfig, false, nil, "the local file connection has no path")
	case !filepath.IsAbs(path):
		return nil, info, Errorf(kindConfig, false, nil, "local file path %q is not absolute", path)
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, info, localFileError(path, err)
	}
	st, err := f.Stat()
	if err != nil {
		_ = f.Close()
		return nil, info, Errorf(kindOther, false, err, "stat local file %s: %v", path, err)
	}
	if st.IsDir() {
		_ = f.Close()
		return nil, info, Errorf(kindConfig, false, nil, "local file %s is a directory", path)
	}
	return f, info, nil
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
