// Package s3test runs a real S3-compatible server for tests: gofakes3
// (github.com/johannesboyne/gofakes3, in memory) served over real HTTP or
// HTTPS on a loopback port, behind an AWS Signature Version 4 check.
//
// gofakes3 itself accepts any request, signed or not, with any key. So that
// tests can check wrong credentials, this package puts its own SigV4
// verifier in front of it: every request must carry an Authorization header
// signed (AWS4-HMAC-SHA256) with a known access key and its secret, for the
// server's region and the "s3" service, with x-amz-date and
// x-amz-content-sha256 headers, as S3 does. Failures answer like S3:
// 403 InvalidAccessKeyId, 403 SignatureDoesNotMatch, 403 AccessDenied
// (anonymous, or a key made by DeniedConnection), 400
// AuthorizationHeaderMalformed (wrong region) or 400 InvalidToken; HEAD
// requests get the status without a body, as from S3. Not checked: the
// payload hash against the body, clock skew (gofakes3 checks ±15 min),
// presigned URLs (refused with AccessDenied).
//
// Typical use:
//
//	srv := s3test.New(t)
//	srv.CreateBucket("exports")
//	srv.PutObject("exports", "accounts.csv", data, time.Now())
//	client, err := source.Dial(ctx, srv.Conn("exports"), source.Options{})
package s3test

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/pem"
	"encoding/xml"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/johannesboyne/gofakes3"
	"github.com/johannesboyne/gofakes3/backend/s3mem"

	intakev1 "github.com/intakehq/intake/proto/gen/intake/v1"
)

// Region is the region every Server signs for.
const Region = "us-east-1"

// Server is a running S3-compatible server.
type Server struct {
	// URL is the endpoint, e.g. "http://127.0.0.1:40123" (https for NewTLS).
	URL string
	// Region is the signing region the server expects (Region).
	Region string
	// AccessKeyID and SecretAccessKey are accepted with full access.
	AccessKeyID     string
	SecretAccessKey string
	// DeniedAccessKeyID and DeniedSecretAccessKey authenticate but are
	// denied every request (403 AccessDenied), like a key without a policy.
	DeniedAccessKeyID     string
	DeniedSecretAccessKey string
	// CAPEM is the PEM certificate that signs the server's TLS certificate
	// (for 127.0.0.1), to pass as ca_pem; empty for a plain HTTP server.
	CAPEM string

	t       testing.TB
	srv     *httptest.Server
	backend *s3mem.Backend
	clock   *clock
	putMu   sync.Mutex // serialises PutObject, which sets clock

	requests atomic.Int64
	faultMu  sync.Mutex
	faults   []fault
}

type fault struct {
	status int
	code   string
}

// New starts a plain HTTP server on a loopback port, closed when t ends.
func New(t testing.TB) *Server {
	t.Helper()
	return start(t, false)
}

// NewTLS starts an HTTPS server on a loopback port, with a certificate for
// 127.0.0.1 signed by CAPEM, closed when t ends.
func NewTLS(t testing.TB) *Server {
	t.Helper()
	return start(t, true)
}

func start(t testing.TB, useTLS bool) *Server {
	c := &clock{}
	s := &Server{
		Region:                Region,
		AccessKeyID:           "AKIAS3TESTFULLACCESS",
		SecretAccessKey:       "s3test/secret+Full0123456789abcdefghijklm",
		DeniedAccessKeyID:     "AKIAS3TESTNOPOLICY00",
		DeniedSecretAccessKey: "s3test/secret+Denied456789abcdefghijklmn",
		t:                     t,
		clock:                 c,
		backend:               s3mem.New(s3mem.WithTimeSource(c)),
	}
	faker := gofakes3.New(s.backend, gofakes3.WithoutVersioning())
	s.srv = httptest.NewUnstartedServer(s.handler(faker.Server()))
	// Clients that fail the TLS handshake (a test of an untrusted CA) are
	// expected; keep them out of the test output.
	s.srv.Config.ErrorLog = log.New(io.Discard, "", 0)
	if useTLS {
		s.srv.StartTLS()
		s.CAPEM = string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: s.srv.Certificate().Raw}))
	} else {
		s.srv.Start()
	}
	s.URL = s.srv.URL
	t.Cleanup(s.srv.Close)
	return s
}

// Close stops the server now (it is also stopped when the test ends), e.g.
// to test a server that went away.
func (s *Server) Close() { s.srv.Close() }

// CreateBucket creates a bucket; the test fails if it cannot.
func (s *Server) CreateBucket(name string) {
	s.t.Helper()
	if err := gofakes3.ValidateBucketName(name); err != nil {
		s.t.Fatalf("s3test: bucket name %q: %v", name, err)
	}
	if err := s.backend.CreateBucket(name); err != nil {
		s.t.Fatalf("s3test: create bucket %q: %v", name, err)
	}
}

// PutObject stores data at key in bucket with modTime as its Last-Modified
// time (whole seconds, as S3 reports it in headers); a zero modTime means
// now. The test fails if it cannot.
func (s *Server) PutObject(bucket, key string, data []byte, modTime time.Time) {
	s.t.Helper()
	if modTime.IsZero() {
		modTime = time.Now()
	}
	modTime = modTime.UTC().Truncate(time.Second)
	s.putMu.Lock()
	defer s.putMu.Unlock()
	s.clock.set(modTime)
	defer s.clock.set(time.Time{})
	meta := map[string]string{"Last-Modified": modTime.Format(http.TimeFormat)}
	if _, err := s.backend.PutObject(bucket, key, meta, bytes.NewReader(data), int64(len(data)), nil); err != nil {
		s.t.Fatalf("s3test: put s3://%s/%s: %v", bucket, key, err)
	}
}

// S3Connection returns a connection to bucket with the full-access key and
// path-style addressing (and CAPEM for a TLS server).
func (s *Server) S3Connection(bucket string) *intakev1.S3Connection {
	return &intakev1.S3Connection{
		Endpoint:        s.URL,
		Region:          s.Region,
		Bucket:          bucket,
		PathStyle:       true,
		AccessKeyId:     s.AccessKeyID,
		SecretAccessKey: s.SecretAccessKey,
		CaPem:           s.CAPEM,
	}
}

// Conn wraps S3Connection(bucket) in an inline *intakev1.Connection.
func (s *Server) Conn(bucket string) *intakev1.Connection {
	return &intakev1.Connection{Kind: &intakev1.Connection_S3{S3: s.S3Connection(bucket)}}
}

// DeniedConnection is S3Connection with the key that authenticates but may
// do nothing (every request: 403 AccessDenied).
func (s *Server) DeniedConnection(bucket string) *intakev1.S3Connection {
	c := s.S3Connection(bucket)
	c.AccessKeyId, c.SecretAccessKey = s.DeniedAccessKeyID, s.DeniedSecretAccessKey
	return c
}

// FailNext makes the next n requests fail with the HTTP status and S3
// error code (e.g. 503, "SlowDown"), before any other check.
func (s *Server) FailNext(n, status int, code string) {
	s.faultMu.Lock()
	defer s.faultMu.Unlock()
	for range n {
		s.faults = append(s.faults, fault{status: status, code: code})
	}
}

// Requests returns how many HTTP requests the server has received.
func (s *Server) Requests() int64 { return s.requests.Load() }

func (s *Server) nextFault() (fault, bool) {
	s.faultMu.Lock()
	defer s.faultMu.Unlock()
	if len(s.faults) == 0 {
		return fault{}, false
	}
	f := s.faults[0]
	s.faults = s.faults[1:]
	return f, true
}

func (s *Server) handler(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.requests.Add(1)
		if f, ok := s.nextFault(); ok {
			writeError(w, r, f.status, f.code, "injected by s3test.FailNext")
			return
		}
		if status, code, msg := s.authenticate(r); status != 0 {
			writeError(w, r, status, code, msg)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// authenticate checks r's SigV4 signature; it returns a zero status when r
// may go on to gofakes3.
func (s *Server) authenticate(r *http.Request) (status int, code, msg string) {
	auth := r.Header.Get("Authorization")
	if auth == "" {
		if r.URL.Query().Has("X-Amz-Signature") {
			return http.StatusForbidden, "AccessDenied", "s3test does not support presigned URLs"
		}
		return http.StatusForbidden, "AccessDenied", "Anonymous access is forbidden for this operation"
	}
	const algo = "AWS4-HMAC-SHA256 "
	if !strings.HasPrefix(auth, algo) {
		return http.StatusBadRequest, "InvalidArgument", "Unsupported Authorization Type"
	}
	fields := map[string]string{}
	for part := range strings.SplitSeq(strings.TrimPrefix(auth, algo), ",") {
		k, v, _ := strings.Cut(strings.TrimSpace(part), "=")
		fields[k] = v
	}
	cred := strings.Split(fields["Credential"], "/")
	signedHeaders, signature := fields["SignedHeaders"], fields["Signature"]
	if len(cred) != 5 || cred[4] != "aws4_request" || signedHeaders == "" || signature == "" {
		return http.StatusBadRequest, "AuthorizationHeaderMalformed", "The authorization header is malformed"
	}
	keyID, day, region, service := cred[0], cred[1], cred[2], cred[3]
	var secret string
	switch keyID {
	case s.AccessKeyID:
		secret = s.SecretAccessKey
	case s.DeniedAccessKeyID:
		secret = s.DeniedSecretAccessKey
	default:
		return http.StatusForbidden, "InvalidAccessKeyId", "The AWS Access Key Id you provided does not exist in our records."
	}
	if region != s.Region {
		return http.StatusBadRequest, "AuthorizationHeaderMalformed",
			fmt.Sprintf("The authorization header is malformed; the region '%s' is wrong; expecting '%s'", region, s.Region)
	}
	if r.Header.Get("X-Amz-Security-Token") != "" {
		return http.StatusBadRequest, "InvalidToken", "The provided token is malformed or otherwise invalid."
	}
	amzDate := r.Header.Get("X-Amz-Date")
	payloadHash := r.Header.Get("X-Amz-Content-Sha256")
	if service != "s3" || amzDate == "" || !strings.HasPrefix(amzDate, day) || payloadHash == "" {
		return http.StatusForbidden, "SignatureDoesNotMatch", "The request signature we calculated does not match the signature you provided."
	}

	path, rawQuery, _ := strings.Cut(r.RequestURI, "?")
	if path == "" || path[0] != '/' { // absolute-form request target
		path = r.URL.EscapedPath()
	}
	var canonHeaders strings.Builder
	for name := range strings.SplitSeq(signedHeaders, ";") {
		var value string
		switch name {
		case "host":
			value = r.Host
		case "content-length":
			value = r.Header.Get("Content-Length")
			if value == "" {
				value = strconv.FormatInt(r.ContentLength, 10)
			}
		default:
			vals := r.Header.Values(name)
			for i, v := range vals {
				vals[i] = strings.Join(strings.Fields(v), " ")
			}
			value = strings.Join(vals, ",")
		}
		canonHeaders.WriteString(name + ":" + value + "\n")
	}
	canonical := strings.Join([]string{
		r.Method, path, canonicalQuery(rawQuery), canonHeaders.String(), signedHeaders, payloadHash,
	}, "\n")
	sum := sha256.Sum256([]byte(canonical))
	scope := strings.Join(cred[1:], "/")
	toSign := "AWS4-HMAC-SHA256\n" + amzDate + "\n" + scope + "\n" + hex.EncodeToString(sum[:])
	key := []byte("AWS4" + secret)
	for _, part := range []string{day, region, service, "aws4_request"} {
		key = hmacSHA256(key, part)
	}
	want := hex.EncodeToString(hmacSHA256(key, toSign))
	if !hmac.Equal([]byte(want), []byte(signature)) {
		return http.StatusForbidden, "SignatureDoesNotMatch", "The request signature we calculated does not match the signature you provided. Check your key and signing method."
	}
	if keyID == s.DeniedAccessKeyID {
		return http.StatusForbidden, "AccessDenied", "Access Denied"
	}
	return 0, "", ""
}

func hmacSHA256(key []byte, data string) []byte {
	h := hmac.New(sha256.New, key)
	h.Write([]byte(data))
	return h.Sum(nil)
}

// canonicalQuery sorts the query by key then value, each URI-encoded as
// SigV4 wants (RFC 3986 unreserved characters as is, the rest %XX).
func canonicalQuery(raw string) string {
	q, err := url.ParseQuery(raw)
	if err != nil {
		return raw
	}
	var pairs []string
	for k, vs := range q {
		for _, v := range vs {
			pairs = append(pairs, uriEncode(k)+"="+uriEncode(v))
		}
	}
	sort.Strings(pairs)
	return strings.Join(pairs, "&")
}

func uriEncode(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if 'A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-' || c == '_' || c == '.' || c == '~' {
			b.WriteByte(c)
		} else {
			fmt.Fprintf(&b, "%%%02X", c)
		}
	}
	return b.String()
}

type errorResponse struct {
	XMLName   xml.Name `xml:"Error"`
	Code      string   `xml:"Code"`
	Message   string   `xml:"Message"`
	RequestID string   `xml:"RequestId"`
}

func writeError(w http.ResponseWriter, r *http.Request, status int, code, msg string) {
	w.Header().Set("Content-Type", "application/xml")
	w.Header().Set("x-amz-request-id", "S3TEST")
	w.WriteHeader(status)
	if r.Method == http.MethodHead {
		return
	}
	_, _ = w.Write([]byte(xml.Header))
	_ = xml.NewEncoder(w).Encode(errorResponse{Code: code, Message: msg, RequestID: "S3TEST"})
}

// clock is gofakes3's time source: the real time, or the time PutObject
// sets for the object it stores.
type clock struct {
	mu sync.Mutex
	at time.Time
}

func (c *clock) set(at time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.at = at
}

// Now implements gofakes3.TimeSource.
func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.at.IsZero() {
		return c.at
	}
	return time.Now()
}

// Since implements gofakes3.TimeSource.
func (c *clock) Since(t time.Time) time.Duration { return c.Now().Sub(t) }
