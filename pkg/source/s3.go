package source

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"syscall"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/ratelimit"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/smithy-go"
	"github.com/aws/smithy-go/logging"
	smithyhttp "github.com/aws/smithy-go/transport/http"

	intakev1 "github.com/intakehq/intake/proto/gen/intake/v1"
)

// s3DefaultRegion is the region of a connection that names none.
const s3DefaultRegion = "us-east-1"

// s3MaxKeys is the most entries S3 returns in one ListObjectsV2 page.
const s3MaxKeys = 1000

// s3Client reads the objects of one bucket of an S3-compatible service with
// aws-sdk-go-v2. It is safe for concurrent use.
//
// Check, Stat and List are retried by the SDK's standard retryer (at most 3
// attempts, transient errors only: 5xx, throttling, reset or refused
// connections; never a wrong key, a missing bucket or an unknown host).
// Open makes a single attempt: its caller's retry wrapper decides, from
// Error.Transient.
type s3Client struct {
	api       *s3.Client
	bucket    string
	where     string // the endpoint, for messages
	who       string // the credentials, for messages (never a secret)
	timeout   time.Duration
	transport *http.Transport
}

func dialS3(ctx context.Context, conn *intakev1.S3Connection, opts Options) (Client, error) {
	invalid := func(format string, args ...any) error {
		return Errorf(intakev1.ConnectionErrorKind_CONNECTION_ERROR_KIND_INVALID_CONFIG, false, nil, format, args...)
	}
	bucket := conn.GetBucket()
	if bucket == "" {
		return nil, invalid("the s3 connection has no bucket")
	}
	region := conn.GetRegion()
	if region == "" {
		region = s3DefaultRegion
	}
	endpoint := strings.TrimSuffix(conn.GetEndpoint(), "/")
	where := "https://s3." + region + ".amazonaws.com"
	if endpoint != "" {
		u, err := url.Parse(endpoint)
		switch {
		case err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https"):
			if err == nil && u.User == nil {
				return nil, invalid("s3 endpoint %q is not a URL like https://minio.internal:9000", endpoint)
			}
			return nil, invalid("the s3 endpoint is not a URL like https://minio.internal:9000")
		case u.User != nil:
			return nil, invalid("the s3 endpoint must not hold credentials (user:password@): set access_key_id and secret_access_key")
		case u.RawQuery != "" || u.Fragment != "":
			return nil, invalid("s3 endpoint %q must not have a query or fragment", u.Scheme+"://"+u.Host+u.Path)
		}
		where = endpoint
	}
	keyID, secret := conn.GetAccessKeyId(), conn.GetSecretAccessKey()
	switch {
	case keyID != "" && secret == "":
		return nil, invalid("s3 connection to bucket %q: access key id %q has no secret access key", bucket, keyID)
	case keyID == "" && (secret != "" || conn.GetSessionToken() != ""):
		return nil, invalid("s3 connection to bucket %q: a secret access key or session token is set without an access key id", bucket)
	}

	tlsConfig := &tls.Config{MinVersion: tls.VersionTLS12}
	if pemCerts := conn.GetCaPem(); strings.TrimSpace(pemCerts) != "" {
		pool, err := x509.SystemCertPool()
		if err != nil || pool == nil {
			pool = x509.NewCertPool()
		}
		if !pool.AppendCertsFromPEM([]byte(pemCerts)) {
			return nil, invalid("s3 connection to bucket %q: ca_pem holds no valid PEM certificate", bucket)
		}
		tlsConfig.RootCAs = pool
	}
	if opts.Timeout <= 0 {
		opts.Timeout = DefaultTimeout
	}
	transport := s3Transport(opts.Timeout, tlsConfig)
	httpClient := &http.Client{Transport: transport}

	retryer := func() aws.Retryer {
		return retry.NewStandard(func(o *retry.StandardOptions) {
			o.MaxAttempts = 3
			o.MaxBackoff = 2 * time.Second
			o.RateLimiter = ratelimit.None
			o.Retryables = append([]retry.IsErrorRetryable{retry.IsErrorRetryableFunc(s3NeverRetry)}, o.Retryables...)
		})
	}
	var cfg aws.Config
	who := fmt.Sprintf("access key id %q", keyID)
	if keyID != "" {
		cfg = aws.Config{
			Region:      region,
			Credentials: aws.NewCredentialsCache(credentials.NewStaticCredentialsProvider(keyID, secret, conn.GetSessionToken())),
		}
	} else {
		// The credential providers (STS, IMDS, ...) keep the SDK's own HTTP
		// client, which honours AWS_CA_BUNDLE; the bucket is reached through
		// httpClient below, which trusts the system roots and ca_pem.
		who = "the default AWS credentials"
		var err error
		cfg, err = config.LoadDefaultConfig(ctx,
			config.WithRegion(region),
			config.WithRetryer(retryer),
			config.WithLogger(logging.Nop{}),
		)
		if err != nil {
			return nil, Errorf(intakev1.ConnectionErrorKind_CONNECTION_ERROR_KIND_INVALID_CONFIG, false, err,
				"s3 connection to bucket %q: loading the default AWS configuration (environment, shared config): %v", bucket, err)
		}
		if cfg.Credentials == nil {
			cfg.Credentials = aws.AnonymousCredentials{}
		}
		cfg.Credentials = s3ChainProvider{cfg.Credentials}
	}
	cfg.HTTPClient = httpClient
	cfg.Retryer = retryer
	cfg.Logger = logging.Nop{}
	api := s3.NewFromConfig(cfg, func(o *s3.Options) {
		if endpoint != "" {
			o.BaseEndpoint = aws.String(endpoint)
		}
		o.UsePathStyle = conn.GetPathStyle()
		o.DisableLogOutputChecksumValidationSkipped = true
		o.Logger = logging.Nop{}
	})
	return &s3Client{api: api, bucket: bucket, where: where, who: who, timeout: opts.Timeout, transport: transport}, nil
}

// s3Transport makes an HTTP transport whose timeout bounds connecting, the
// TLS handshake, waiting for response headers and any single read (a
// stalled body), never a whole transfer.
func s3Transport(timeout time.Duration, tlsConfig *tls.Config) *http.Transport {
	dialer := &net.Dialer{Timeout: timeout, KeepAlive: 30 * time.Second}
	return &http.Transport{
		Proxy: http.ProxyFromEnvironment,
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			c, err := dialer.DialContext(ctx, network, addr)
			if err != nil {
				return nil, err
			}
			return &s3DeadlineConn{Conn: c, timeout: timeout}, nil
		},
		TLSClientConfig:       tlsConfig,
		TLSHandshakeTimeout:   timeout,
		ResponseHeaderTimeout: timeout,
		ExpectContinueTimeout: time.Second,
		IdleConnTimeout:       90 * time.Second,
		MaxIdleConnsPerHost:   8,
	}
}

// s3DeadlineConn fails a read that gets no byte within timeout. The
// deadline is set anew at every read, so a reader that pauses between
// reads (a slow consumer) is never cut off.
type s3DeadlineConn struct {
	net.Conn
	timeout time.Duration
}

func (c *s3DeadlineConn) Read(p []byte) (int, error) {
	if err := c.SetReadDeadline(time.Now().Add(c.timeout)); err != nil {
		return 0, err
	}
	return c.Conn.Read(p)
}

// s3ChainProvider marks the failures of the default credential chain, so
// that they are reported as such.
type s3ChainProvider struct{ aws.CredentialsProvider }

// s3ChainError is a failure of the default credential chain.
type s3ChainError struct{ err error }

func (e *s3ChainError) Error() string { return e.err.Error() }
func (e *s3ChainError) Unwrap() error { return e.err }

func (p s3ChainProvider) Retrieve(ctx context.Context) (aws.Credentials, error) {
	creds, err := p.CredentialsProvider.Retrieve(ctx)
	if err != nil {
		return creds, &s3ChainError{err: err}
	}
	return creds, nil
}

// s3NeverRetry tells the SDK's retryer not to retry errors that no retry
// can fix, which it would otherwise retry as connection errors.
func s3NeverRetry(err error) aws.Ternary {
	var dnsErr *net.DNSError
	if errors.As(err, &dnsErr) && dnsErr.IsNotFound {
		return aws.FalseTernary
	}
	if s3IsTLSError(err) {
		return aws.FalseTernary
	}
	return aws.UnknownTernary
}

// s3Key turns a connection path into an object key.
func s3Key(path string) string { return strings.TrimLeft(path, "/") }

func (c *s3Client) object(key string) string { return "s3://" + c.bucket + "/" + key }

// Check lists at most one key of the bucket: it proves the endpoint
// answers, the credentials are valid and may list the bucket.
func (c *s3Client) Check(ctx context.Context) error {
	_, err := c.api.ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: aws.String(c.bucket), MaxKeys: aws.Int32(1)})
	if err != nil {
		return c.fail(ctx, err, "", "listing")
	}
	return nil
}

// Stat describes an object. A key that is no object but a prefix of some
// ("exports" when "exports/a.csv" exists) is a directory; the empty path
// is the bucket's root directory.
func (c *s3Client) Stat(ctx context.Context, path string) (FileInfo, error) {
	key := strings.TrimSuffix(s3Key(path), "/")
	if key == "" {
		if err := c.Check(ctx); err != nil {
			return FileInfo{}, err
		}
		return FileInfo{Dir: true}, nil
	}
	out, err := c.api.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String(c.bucket), Key: aws.String(key)})
	if err == nil {
		return FileInfo{Path: key, Size: aws.ToInt64(out.ContentLength), ModTime: aws.ToTime(out.LastModified)}, nil
	}
	var apiErr smithy.APIError
	if ctx.Err() == nil && s3Status(err) >= 400 && s3Status(err) < 500 && (!errors.As(err, &apiErr) || s3BareCode(apiErr.ErrorCode())) {
		// A HEAD answer has no body, so no error code: a 404 may be a missing
		// key or a missing bucket, a 403 wrong credentials or a missing
		// permission. A one-byte GET tells which.
		probe, perr := c.api.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(c.bucket), Key: aws.String(key), Range: aws.String("bytes=0-0")})
		if perr == nil {
			_ = probe.Body.Close()
		} else if errors.As(perr, &apiErr) && !s3BareCode(apiErr.ErrorCode()) {
			err = perr
		}
	}
	fail := c.fail(ctx, err, key, "reading")
	if fail.Kind == intakev1.ConnectionErrorKind_CONNECTION_ERROR_KIND_FILE_NOT_FOUND {
		list, lerr := c.api.ListObjectsV2(ctx, &s3.ListObjectsV2Input{
			Bucket: aws.String(c.bucket), Prefix: aws.String(key + "/"), MaxKeys: aws.Int32(1),
		})
		if lerr == nil && len(list.Contents)+len(list.CommonPrefixes) > 0 {
			return FileInfo{Path: key, Dir: true}, nil
		}
	}
	return FileInfo{}, fail
}

// s3BareCode reports whether an error code is the SDK's stand-in for a
// response without an error body (HEAD).
func s3BareCode(code string) bool {
	switch code {
	case "", "NotFound", "Forbidden", "BadRequest", "Unknown":
		return true
	}
	return false
}

// s3PageToken is List's page token: S3's continuation token and the last
// key of the previous page. Entries up to that key are dropped from the
// next page, for servers that repeat a common prefix across a page
// boundary.
type s3PageToken struct {
	Token string `json:"t"`
	After string `json:"a"`
}

// List lists one level under dir (a prefix with "/" as delimiter): objects
// as files, common prefixes as directories (Path without the trailing
// "/"). Entries are in S3 key order, which sorts a directory as its name
// followed by "/". A directory marker object (the key dir + "/") is not
// listed. A prefix with no object under it lists empty.
func (c *s3Client) List(ctx context.Context, dir, pageToken string, limit int) ([]FileInfo, string, error) {
	prefix := s3Key(dir)
	if prefix != "" && !strings.HasSuffix(prefix, "/") {
		prefix += "/"
	}
	if limit <= 0 || limit > s3MaxKeys {
		limit = s3MaxKeys
	}
	var tok s3PageToken
	if pageToken != "" {
		raw, err := base64.RawURLEncoding.DecodeString(pageToken)
		if err == nil {
			err = json.Unmarshal(raw, &tok)
		}
		if err != nil || tok.Token == "" {
			return nil, "", Errorf(intakev1.ConnectionErrorKind_CONNECTION_ERROR_KIND_OTHER, false, err,
				"listing s3://%s/%s: the page token is not one this listing returned", c.bucket, prefix)
		}
	}
	for {
		in := &s3.ListObjectsV2Input{
			Bucket:    aws.String(c.bucket),
			Prefix:    aws.String(prefix),
			Delimiter: aws.String("/"),
			MaxKeys:   aws.Int32(int32(limit)),
		}
		if tok.Token != "" {
			in.ContinuationToken = aws.String(tok.Token)
		}
		out, err := c.api.ListObjectsV2(ctx, in)
		if err != nil {
			return nil, "", c.fail(ctx, err, prefix, "listing")
		}
		type entry struct {
			key  string
			info FileInfo
		}
		entries := make([]entry, 0, len(out.Contents)+len(out.CommonPrefixes))
		dirs := map[string]bool{}
		addDir := func(k string) {
			if !dirs[k] {
				dirs[k] = true
				entries = append(entries, entry{k, FileInfo{Path: strings.TrimSuffix(k, "/"), Dir: true}})
			}
		}
		for _, p := range out.CommonPrefixes {
			addDir(aws.ToString(p.Prefix))
		}
		for _, o := range out.Contents {
			k := aws.ToString(o.Key)
			if k == prefix {
				continue // a "folder" marker
			}
			if i := strings.Index(k[min(len(prefix), len(k)):], "/"); i >= 0 && strings.HasPrefix(k, prefix) {
				// A key below this level, which S3 rolls into a common
				// prefix but some servers return (gofakes3: "dir/" markers).
				addDir(k[:len(prefix)+i+1])
				continue
			}
			entries = append(entries, entry{k, FileInfo{Path: k, Size: aws.ToInt64(o.Size), ModTime: aws.ToTime(o.LastModified)}})
		}
		sort.Slice(entries, func(i, j int) bool { return entries[i].key < entries[j].key })
		last := tok.After
		if n := len(entries); n > 0 && entries[n-1].key > last {
			last = entries[n-1].key
		}
		infos := make([]FileInfo, 0, len(entries))
		for _, e := range entries {
			if tok.After == "" || e.key > tok.After {
				infos = append(infos, e.info)
			}
		}
		next := aws.ToString(out.NextContinuationToken)
		if !aws.ToBool(out.IsTruncated) || next == "" || next == tok.Token {
			return infos, "", nil
		}
		tok = s3PageToken{Token: next, After: last}
		if len(infos) > 0 {
			raw, _ := json.Marshal(tok)
			return infos, base64.RawURLEncoding.EncodeToString(raw), nil
		}
	}
}

// Open streams an object: the reader is the response body itself, so
// memory stays flat whatever the size. With cond.ETag or
// cond.LastModified set it is a conditional GET; an unchanged object
// returns a nil reader and Meta.NotModified.
func (c *s3Client) Open(ctx context.Context, path string, cond Conditional) (io.ReadCloser, Meta, error) {
	key := s3Key(path)
	if key == "" || strings.HasSuffix(key, "/") {
		return nil, Meta{}, Errorf(intakev1.ConnectionErrorKind_CONNECTION_ERROR_KIND_INVALID_CONFIG, false, nil,
			"%s at %s is not an object key: name a file", c.object(key), c.where)
	}
	in := &s3.GetObjectInput{Bucket: aws.String(c.bucket), Key: aws.String(key)}
	if cond.ETag != "" {
		in.IfNoneMatch = aws.String(cond.ETag)
	}
	if cond.LastModified != "" {
		if t, err := http.ParseTime(cond.LastModified); err == nil {
			in.IfModifiedSince = aws.Time(t)
		}
	}
	out, err := c.api.GetObject(ctx, in, func(o *s3.Options) { o.Retryer = aws.NopRetryer{} })
	if err != nil {
		if s3Status(err) == http.StatusNotModified {
			return nil, Meta{FileInfo: FileInfo{Path: key}, ETag: cond.ETag, LastModified: cond.LastModified, NotModified: true}, nil
		}
		return nil, Meta{}, c.fail(ctx, err, key, "reading")
	}
	meta := Meta{
		FileInfo: FileInfo{Path: key, Size: aws.ToInt64(out.ContentLength), ModTime: aws.ToTime(out.LastModified)},
		ETag:     aws.ToString(out.ETag),
	}
	if out.LastModified != nil {
		meta.LastModified = out.LastModified.UTC().Format(http.TimeFormat)
	}
	return &s3Body{body: out.Body, ctx: ctx, c: c, key: key}, meta, nil
}

// Close drops the client's idle connections.
func (c *s3Client) Close() error {
	c.transport.CloseIdleConnections()
	return nil
}

// s3Body turns the read errors of an object's body into *Error.
type s3Body struct {
	body io.ReadCloser
	ctx  context.Context
	c    *s3Client
	key  string
	n    int64
}

func (b *s3Body) Read(p []byte) (int, error) {
	n, err := b.body.Read(p)
	b.n += int64(n)
	if err != nil && err != io.EOF {
		var e *Error
		if !errors.As(err, &e) {
			e = b.c.fail(b.ctx, err, b.key, fmt.Sprintf("reading (after %d bytes)", b.n))
			if e.Kind == intakev1.ConnectionErrorKind_CONNECTION_ERROR_KIND_OTHER {
				e.Transient = true // the transfer broke off: a new attempt may get it whole
			}
		}
		return n, e
	}
	return n, err
}

func (b *s3Body) Close() error { return b.body.Close() }

// s3Status returns the HTTP status of an S3 response error, 0 when there
// was no response.
func s3Status(err error) int {
	var re *smithyhttp.ResponseError
	if errors.As(err, &re) && re.Response != nil {
		return re.Response.StatusCode
	}
	return 0
}

func s3IsTLSError(err error) bool {
	var (
		unknownAuthority x509.UnknownAuthorityError
		hostname         x509.HostnameError
		invalid          x509.CertificateInvalidError
		verification     *tls.CertificateVerificationError
		recordHeader     tls.RecordHeaderError
		alert            tls.AlertError
	)
	return errors.As(err, &unknownAuthority) || errors.As(err, &hostname) || errors.As(err, &invalid) ||
		errors.As(err, &verification) || errors.As(err, &recordHeader) || errors.As(err, &alert)
}

// fail turns an SDK error about key ("" for the bucket) into an *Error that
// names the endpoint and the bucket or object, and never a secret. doing
// is what was being done ("listing", "reading").
func (c *s3Client) fail(ctx context.Context, err error, key, doing string) *Error {
	const (
		unknownHost = intakev1.ConnectionErrorKind_CONNECTION_ERROR_KIND_UNKNOWN_HOST
		refused     = intakev1.ConnectionErrorKind_CONNECTION_ERROR_KIND_CONNECTION_REFUSED
		timeout     = intakev1.ConnectionErrorKind_CONNECTION_ERROR_KIND_TIMEOUT
		auth        = intakev1.ConnectionErrorKind_CONNECTION_ERROR_KIND_AUTHENTICATION_FAILED
		tlsFailed   = intakev1.ConnectionErrorKind_CONNECTION_ERROR_KIND_TLS
		noBucket    = intakev1.ConnectionErrorKind_CONNECTION_ERROR_KIND_BUCKET_NOT_FOUND
		noFile      = intakev1.ConnectionErrorKind_CONNECTION_ERROR_KIND_FILE_NOT_FOUND
		denied      = intakev1.ConnectionErrorKind_CONNECTION_ERROR_KIND_PERMISSION_DENIED
		badConfig   = intakev1.ConnectionErrorKind_CONNECTION_ERROR_KIND_INVALID_CONFIG
		other       = intakev1.ConnectionErrorKind_CONNECTION_ERROR_KIND_OTHER
	)
	target := fmt.Sprintf("s3 bucket %q", c.bucket)
	if key != "" {
		target = c.object(key)
	}
	// at: "<doing> <target> at <endpoint>", the context of every message.
	at := fmt.Sprintf("%s %s at %s", doing, target, c.where)

	if ctxErr := ctx.Err(); ctxErr != nil {
		if errors.Is(ctxErr, context.DeadlineExceeded) {
			return Errorf(timeout, true, err, "%s: timed out (deadline of the operation)", at)
		}
		return Errorf(other, false, err, "%s: cancelled", at)
	}

	var chainErr *s3ChainError
	if errors.As(err, &chainErr) {
		return Errorf(auth, false, err, "%s: no usable AWS credentials (access key id empty, so the default chain was used: environment, shared config, web identity, instance or pod role): %v",
			at, chainErr.err)
	}

	var apiErr smithy.APIError
	if errors.As(err, &apiErr) {
		code := apiErr.ErrorCode()
		switch code {
		case "NoSuchBucket":
			return Errorf(noBucket, false, err, "s3 bucket %q does not exist at %s", c.bucket, c.where)
		case "NoSuchKey":
			return Errorf(noFile, false, err, "%s does not exist at %s", c.object(key), c.where)
		case "InvalidAccessKeyId":
			return Errorf(auth, false, err, "%s: authentication failed: %s does not exist (InvalidAccessKeyId)", at, c.who)
		case "SignatureDoesNotMatch":
			return Errorf(auth, false, err, "%s: authentication failed: the secret access key of %s is wrong (SignatureDoesNotMatch)", at, c.who)
		case "InvalidToken", "ExpiredToken", "TokenRefreshRequired", "InvalidSecurity", "InvalidClientTokenId":
			return Errorf(auth, false, err, "%s: authentication failed: the session token of %s is invalid or expired (%s)", at, c.who, code)
		case "AccessDenied", "AllAccessDisabled", "AccountProblem":
			return Errorf(denied, false, err, "%s: permission denied: %s may not do this (%s)", at, c.who, code)
		case "AuthorizationHeaderMalformed", "PermanentRedirect", "IllegalLocationConstraintException":
			return Errorf(badConfig, false, err, "%s: wrong region%s (%s: %s)", at, s3RegionHint(err), code, apiErr.ErrorMessage())
		case "InvalidBucketName":
			return Errorf(badConfig, false, err, "%s: %q is not a valid bucket name", at, c.bucket)
		case "RequestTimeTooSkewed":
			return Errorf(other, false, err, "%s: this machine's clock differs too much from the server's (RequestTimeTooSkewed)", at)
		case "SlowDown", "Throttling", "ThrottlingException", "RequestLimitExceeded", "TooManyRequestsException",
			"InternalError", "ServiceUnavailable", "RequestTimeout":
			return Errorf(other, true, err, "%s: the server is busy or failing, try again (%s)", at, code)
		}
		status := s3Status(err)
		switch {
		case status == http.StatusNotFound && key == "":
			return Errorf(noBucket, false, err, "s3 bucket %q does not exist at %s", c.bucket, c.where)
		case status == http.StatusNotFound:
			return Errorf(noFile, false, err, "%s does not exist at %s", c.object(key), c.where)
		case status == http.StatusForbidden:
			return Errorf(denied, false, err, "%s: access denied to %s (wrong credentials or missing permission)", at, c.who)
		case status == http.StatusMovedPermanently:
			return Errorf(badConfig, false, err, "%s: wrong region or endpoint%s (HTTP 301)", at, s3RegionHint(err))
		case status >= 500 || status == http.StatusTooManyRequests:
			return Errorf(other, true, err, "%s: the server failed (HTTP %d %s), try again", at, status, code)
		case status != 0:
			return Errorf(other, false, err, "%s: HTTP %d %s: %s", at, status, code, apiErr.ErrorMessage())
		}
	}

	var dnsErr *net.DNSError
	switch {
	case errors.As(err, &dnsErr):
		if dnsErr.IsNotFound {
			return Errorf(unknownHost, false, err, "%s: unknown host %q", at, dnsErr.Name)
		}
		return Errorf(unknownHost, dnsErr.IsTemporary || dnsErr.IsTimeout, err, "%s: cannot resolve host %q: %v", at, dnsErr.Name, dnsErr.Err)
	case errors.Is(err, syscall.ECONNREFUSED):
		return Errorf(refused, true, err, "%s: connection refused (is the endpoint's host and port right, is the server up?)", at)
	case s3IsTLSError(err):
		return Errorf(tlsFailed, false, err, "%s: TLS failed: %s (set ca_pem to trust a private certificate authority)", at, s3Cause(err))
	}
	var netErr net.Error
	if errors.As(err, &netErr) && netErr.Timeout() {
		return Errorf(timeout, true, err, "%s: timed out after %s", at, c.timeout)
	}
	if errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) {
		return Errorf(other, true, err, "%s: the connection broke off: %s", at, s3Cause(err))
	}
	return Errorf(other, false, err, "%s: %v", at, err)
}

// s3RegionHint names the bucket's region when the server said it.
func s3RegionHint(err error) string {
	var re *smithyhttp.ResponseError
	if errors.As(err, &re) && re.Response != nil {
		if r := re.Response.Header.Get("X-Amz-Bucket-Region"); r != "" {
			return fmt.Sprintf(": the bucket is in region %q", r)
		}
	}
	return ""
}

// s3Cause returns the innermost message of err, without the SDK's
// operation and URL wrapping.
func s3Cause(err error) string {
	for {
		next := errors.Unwrap(err)
		if next == nil {
			return err.Error()
		}
		err = next
	}
}
