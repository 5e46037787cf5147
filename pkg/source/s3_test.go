package source_test

import (
	"bytes"
	"crypto/md5"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	intakev1 "github.com/intakehq/intake/proto/gen/intake/v1"

	"github.com/intakehq/intake/pkg/s3test"
	"github.com/intakehq/intake/pkg/source"
)

const (
	s3KindUnknownHost = intakev1.ConnectionErrorKind_CONNECTION_ERROR_KIND_UNKNOWN_HOST
	s3KindRefused     = intakev1.ConnectionErrorKind_CONNECTION_ERROR_KIND_CONNECTION_REFUSED
	s3KindTimeout     = intakev1.ConnectionErrorKind_CONNECTION_ERROR_KIND_TIMEOUT
	s3KindAuth        = intakev1.ConnectionErrorKind_CONNECTION_ERROR_KIND_AUTHENTICATION_FAILED
	s3KindTLS         = intakev1.ConnectionErrorKind_CONNECTION_ERROR_KIND_TLS
	s3KindNoBucket    = intakev1.ConnectionErrorKind_CONNECTION_ERROR_KIND_BUCKET_NOT_FOUND
	s3KindNoFile      = intakev1.ConnectionErrorKind_CONNECTION_ERROR_KIND_FILE_NOT_FOUND
	s3KindDenied      = intakev1.ConnectionErrorKind_CONNECTION_ERROR_KIND_PERMISSION_DENIED
	s3KindConfig      = intakev1.ConnectionErrorKind_CONNECTION_ERROR_KIND_INVALID_CONFIG
	s3KindOther       = intakev1.ConnectionErrorKind_CONNECTION_ERROR_KIND_OTHER
)

func s3Conn(c *intakev1.S3Connection) *intakev1.Connection {
	return &intakev1.Connection{Kind: &intakev1.Connection_S3{S3: c}}
}

// s3Dial dials through the production entry point, source.Dial.
func s3Dial(t *testing.T, c *intakev1.S3Connection, opts source.Options) source.Client {
	t.Helper()
	client, err := source.Dial(t.Context(), s3Conn(c), opts)
	require.NoError(t, err)
	t.Cleanup(func() { _ = client.Close() })
	return client
}

// requireS3Err asserts err is an *source.Error of kind whose message holds
// every one of want and none of the secrets of c.
func requireS3Err(t *testing.T, err error, kind intakev1.ConnectionErrorKind, transient bool, c *intakev1.S3Connection, want ...string) {
	t.Helper()
	require.Error(t, err)
	var e *source.Error
	require.True(t, errors.As(err, &e), "error %T %q is not a *source.Error", err, err)
	require.Equal(t, kind.String(), e.Kind.String(), "kind of %q", err)
	require.Equal(t, transient, e.Transient, "transient of %q", err)
	for _, w := range want {
		require.Contains(t, err.Error(), w)
	}
	for _, secret := range []string{c.GetSecretAccessKey(), c.GetSessionToken()} {
		if secret != "" {
			require.NotContains(t, err.Error(), secret, "a secret in the message")
		}
	}
}

func TestS3CheckStatOpen(t *testing.T) {
	t.Parallel()
	srv := s3test.New(t)
	srv.CreateBucket("exports")
	mod := time.Date(2024, 3, 1, 12, 30, 45, 0, time.UTC)
	srv.PutObject("exports", "accounts.csv", []byte("id,name\n1,Acme\n"), mod)
	srv.PutObject("exports", "daily/2024-03-01.csv", []byte("x"), mod)
	client := s3Dial(t, srv.S3Connection("exports"), source.Options{})
	ctx := t.Context()

	require.NoError(t, client.Check(ctx))

	info, err := client.Stat(ctx, "accounts.csv")
	require.NoError(t, err)
	require.Equal(t, source.FileInfo{Path: "accounts.csv", Size: 15, ModTime: mod}, s3NormTime(info))
	info, err = client.Stat(ctx, "/accounts.csv")
	require.NoError(t, err, "a leading slash is not part of the key")
	require.Equal(t, "accounts.csv", info.Path)
	info, err = client.Stat(ctx, "daily")
	require.NoError(t, err)
	require.Equal(t, source.FileInfo{Path: "daily", Dir: true}, info, "a prefix of keys is a directory")

	rc, meta, err := client.Open(ctx, "accounts.csv", source.Conditional{})
	require.NoError(t, err)
	b, err := io.ReadAll(rc)
	require.NoError(t, err)
	require.NoError(t, rc.Close())
	require.Equal(t, "id,name\n1,Acme\n", string(b))
	require.Equal(t, int64(15), meta.Size)
	require.True(t, meta.ModTime.Equal(mod), "modtime %v", meta.ModTime)
	require.Equal(t, `"`+s3MD5("id,name\n1,Acme\n")+`"`, meta.ETag)
	require.Equal(t, "Fri, 01 Mar 2024 12:30:45 GMT", meta.LastModified)
	require.False(t, meta.NotModified)

	// Conditional reads: unchanged by ETag or by date, then changed.
	rc, meta2, err := client.Open(ctx, "accounts.csv", source.Conditional{ETag: meta.ETag})
	require.NoError(t, err)
	require.Nil(t, rc)
	require.True(t, meta2.NotModified)
	rc, meta2, err = client.Open(ctx, "accounts.csv", source.Conditional{LastModified: meta.LastModified})
	require.NoError(t, err)
	require.Nil(t, rc)
	require.True(t, meta2.NotModified)
	srv.PutObject("exports", "accounts.csv", []byte("id,name\n1,Acme\n2,Beta\n"), mod.Add(time.Hour))
	rc, meta2, err = client.Open(ctx, "accounts.csv", source.Conditional{ETag: meta.ETag, LastModified: meta.LastModified})
	require.NoError(t, err)
	require.False(t, meta2.NotModified)
	b, err = io.ReadAll(rc)
	require.NoError(t, err)
	require.NoError(t, rc.Close())
	require.Equal(t, "id,name\n1,Acme\n2,Beta\n", string(b))
}

func TestS3OpenStreamsLargeObjectByteForByte(t *testing.T) {
	t.Parallel()
	srv := s3test.New(t)
	srv.CreateBucket("big")
	data := make([]byte, 12<<20+7)
	_, err := rand.Read(data)
	require.NoError(t, err)
	srv.PutObject("big", "exports/huge.csv", data, time.Time{})
	client := s3Dial(t, srv.S3Connection("big"), source.Options{Timeout: 5 * time.Second})

	rc, meta, err := client.Open(t.Context(), "exports/huge.csv", source.Conditional{})
	require.NoError(t, err)
	defer rc.Close()
	require.Equal(t, int64(len(data)), meta.Size)
	var got bytes.Buffer
	buf := make([]byte, 32<<10) // small reads, as a streaming consumer makes
	n, err := io.CopyBuffer(&got, rc, buf)
	require.NoError(t, err)
	require.Equal(t, int64(len(data)), n)
	require.True(t, bytes.Equal(data, got.Bytes()), "the bytes read differ from the bytes stored")
}

func TestS3ListDirsAndPages(t *testing.T) {
	t.Parallel()
	srv := s3test.New(t)
	srv.CreateBucket("exports")
	mod := time.Date(2024, 3, 1, 8, 0, 0, 0, time.UTC)
	for _, key := range []string{
		"a.csv", "daily/", "daily/1.csv", "daily/2.csv", "daily/3.csv", "daily/sub/x.csv",
		"daily-summary.csv", "m.csv", "weekly/w1.csv", "z.csv",
	} {
		srv.PutObject("exports", key, []byte(key), mod)
	}
	client := s3Dial(t, srv.S3Connection("exports"), source.Options{})
	ctx := t.Context()

	file := func(path string) source.FileInfo {
		return source.FileInfo{Path: path, Size: int64(len(path)), ModTime: mod}
	}
	dir := func(path string) source.FileInfo { return source.FileInfo{Path: path, Dir: true} }
	root := []source.FileInfo{
		file("a.csv"), file("daily-summary.csv"), dir("daily"), file("m.csv"), dir("weekly"), file("z.csv"),
	}
	all, tok, err := client.List(ctx, "", "", 0)
	require.NoError(t, err)
	require.Empty(t, tok)
	require.Equal(t, root, s3NormTimes(all), "S3 key order: \"daily-\" sorts before \"daily/\"")

	// Every page size gives the same entries, each page at most limit long.
	for limit := 1; limit <= 7; limit++ {
		var got []source.FileInfo
		tok, pages := "", 0
		for {
			page, next, err := client.List(ctx, "/", tok, limit)
			require.NoError(t, err)
			require.LessOrEqual(t, len(page), limit)
			got = append(got, page...)
			pages++
			require.Less(t, pages, 20, "pagination does not end")
			if next == "" {
				break
			}
			tok = next
		}
		require.Equal(t, root, s3NormTimes(got), "limit %d", limit)
		if limit < len(root) {
			require.Greater(t, pages, 1, "limit %d lists in pages", limit)
		}
	}

	daily := []source.FileInfo{file("daily/1.csv"), file("daily/2.csv"), file("daily/3.csv"), dir("daily/sub")}
	for _, d := range []string{"daily", "daily/", "/daily/"} {
		got, tok, err := client.List(ctx, d, "", 100)
		require.NoError(t, err)
		require.Empty(t, tok)
		require.Equal(t, daily, s3NormTimes(got), "list %q: the folder marker \"daily/\" is not listed", d)
	}
	got, _, err := client.List(ctx, "daily/sub", "", 0)
	require.NoError(t, err)
	require.Equal(t, []source.FileInfo{file("daily/sub/x.csv")}, s3NormTimes(got))
	got, tok, err = client.List(ctx, "nothing-here", "", 0)
	require.NoError(t, err)
	require.Empty(t, got)
	require.Empty(t, tok)

	_, _, err = client.List(ctx, "", "not-a-token", 10)
	requireS3Err(t, err, s3KindOther, false, nil, "page token")
}

func TestS3TLSWithPrivateCA(t *testing.T) {
	t.Parallel()
	srv := s3test.NewTLS(t)
	srv.CreateBucket("secure")
	srv.PutObject("secure", "f.csv", []byte("a,b\n"), time.Time{})
	require.True(t, strings.HasPrefix(srv.URL, "https://"))

	client := s3Dial(t, srv.S3Connection("secure"), source.Options{})
	require.NoError(t, client.Check(t.Context()))
	rc, _, err := client.Open(t.Context(), "f.csv", source.Conditional{})
	require.NoError(t, err)
	b, err := io.ReadAll(rc)
	require.NoError(t, err)
	require.NoError(t, rc.Close())
	require.Equal(t, "a,b\n", string(b))

	untrusted := srv.S3Connection("secure")
	untrusted.CaPem = ""
	err = s3Dial(t, untrusted, source.Options{}).Check(t.Context())
	requireS3Err(t, err, s3KindTLS, false, untrusted, srv.URL, `"secure"`, "certificate", "ca_pem")

	plain := srv.S3Connection("secure")
	plain.Endpoint = strings.Replace(srv.URL, "https://", "http://", 1)
	err = s3Dial(t, plain, source.Options{}).Check(t.Context())
	require.Error(t, err, "plain HTTP to a TLS port")
	require.NotContains(t, err.Error(), plain.SecretAccessKey)
}

func TestS3MissingBucketAndKey(t *testing.T) {
	t.Parallel()
	srv := s3test.New(t)
	srv.CreateBucket("exports")
	ctx := t.Context()

	missing := srv.S3Connection("no-such-bucket")
	client := s3Dial(t, missing, source.Options{})
	want := []string{`s3 bucket "no-such-bucket" does not exist at ` + srv.URL}
	requireS3Err(t, client.Check(ctx), s3KindNoBucket, false, missing, want...)
	_, err := client.Stat(ctx, "a.csv")
	requireS3Err(t, err, s3KindNoBucket, false, missing, want...)
	_, _, err = client.List(ctx, "daily", "", 0)
	requireS3Err(t, err, s3KindNoBucket, false, missing, want...)
	_, _, err = client.Open(ctx, "a.csv", source.Conditional{})
	requireS3Err(t, err, s3KindNoBucket, false, missing, want...)

	conn := srv.S3Connection("exports")
	client = s3Dial(t, conn, source.Options{})
	_, err = client.Stat(ctx, "exports/nope.csv")
	requireS3Err(t, err, s3KindNoFile, false, conn, "s3://exports/exports/nope.csv does not exist", srv.URL)
	_, _, err = client.Open(ctx, "exports/nope.csv", source.Conditional{})
	requireS3Err(t, err, s3KindNoFile, false, conn, "s3://exports/exports/nope.csv does not exist", srv.URL)
	_, _, err = client.Open(ctx, "exports/", source.Conditional{})
	requireS3Err(t, err, s3KindConfig, false, conn, "s3://exports/exports/", "not an object key")
}

func TestS3WrongCredentialsAreNotRetried(t *testing.T) {
	t.Parallel()
	srv := s3test.New(t)
	srv.CreateBucket("exports")
	srv.PutObject("exports", "a.csv", []byte("a"), time.Time{})
	ctx := t.Context()

	wrongSecret := srv.S3Connection("exports")
	wrongSecret.SecretAccessKey = "wrong/Secret+Key0123456789abcdefghijklmn"
	client := s3Dial(t, wrongSecret, source.Options{})
	before := srv.Requests()
	err := client.Check(ctx)
	requireS3Err(t, err, s3KindAuth, false, wrongSecret, srv.URL, `"exports"`, srv.AccessKeyID, "secret access key", "SignatureDoesNotMatch")
	require.Equal(t, int64(1), srv.Requests()-before, "a wrong key is not retried")
	_, err = client.Stat(ctx, "a.csv")
	requireS3Err(t, err, s3KindAuth, false, wrongSecret, "s3://exports/a.csv", srv.AccessKeyID)
	_, _, err = client.Open(ctx, "a.csv", source.Conditional{})
	requireS3Err(t, err, s3KindAuth, false, wrongSecret, "s3://exports/a.csv", srv.URL, srv.AccessKeyID)

	wrongKey := srv.S3Connection("exports")
	wrongKey.AccessKeyId, wrongKey.SecretAccessKey = "AKIAUNKNOWNKEY000000", "unknown/Secret+Key0123456789abcdefghijkl"
	err = s3Dial(t, wrongKey, source.Options{}).Check(ctx)
	requireS3Err(t, err, s3KindAuth, false, wrongKey, srv.URL, "AKIAUNKNOWNKEY000000", "InvalidAccessKeyId")

	withToken := srv.S3Connection("exports")
	withToken.SessionToken = "session/Token+0123456789"
	err = s3Dial(t, withToken, source.Options{}).Check(ctx)
	requireS3Err(t, err, s3KindAuth, false, withToken, srv.URL, "session token")

	denied := srv.DeniedConnection("exports")
	client = s3Dial(t, denied, source.Options{})
	requireS3Err(t, client.Check(ctx), s3KindDenied, false, denied, srv.URL, `"exports"`, srv.DeniedAccessKeyID, "AccessDenied")
	_, err = client.Stat(ctx, "a.csv")
	requireS3Err(t, err, s3KindDenied, false, denied, "s3://exports/a.csv", srv.DeniedAccessKeyID)
	_, _, err = client.Open(ctx, "a.csv", source.Conditional{})
	requireS3Err(t, err, s3KindDenied, false, denied, "s3://exports/a.csv", srv.URL)

	wrongRegion := srv.S3Connection("exports")
	wrongRegion.Region = "eu-west-3"
	err = s3Dial(t, wrongRegion, source.Options{}).Check(ctx)
	requireS3Err(t, err, s3KindConfig, false, wrongRegion, srv.URL, "region", "eu-west-3")
}

func TestS3UnreachableEndpoints(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	secret := "s3cret/Key+0123456789"
	conn := func(endpoint string) *intakev1.S3Connection {
		return &intakev1.S3Connection{Endpoint: endpoint, Bucket: "exports", PathStyle: true, AccessKeyId: "AKIAEXAMPLE", SecretAccessKey: secret}
	}

	unknown := conn("http://nonexistent.invalid:9000")
	client := s3Dial(t, unknown, source.Options{})
	requireS3Err(t, client.Check(ctx), s3KindUnknownHost, false, unknown, `unknown host "nonexistent.invalid"`, unknown.Endpoint, `"exports"`)
	_, _, err := client.Open(ctx, "a.csv", source.Conditional{})
	requireS3Err(t, err, s3KindUnknownHost, false, unknown, "nonexistent.invalid", "s3://exports/a.csv")

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := ln.Addr().String()
	require.NoError(t, ln.Close())
	refused := conn("http://" + addr)
	client = s3Dial(t, refused, source.Options{})
	requireS3Err(t, client.Check(ctx), s3KindRefused, true, refused, "connection refused", addr, `"exports"`)
	_, _, err = client.Open(ctx, "a.csv", source.Conditional{})
	requireS3Err(t, err, s3KindRefused, true, refused, "connection refused", "s3://exports/a.csv", addr)

	// A server that accepts connections and never answers.
	silent, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer silent.Close()
	go func() {
		for {
			c, err := silent.Accept()
			if err != nil {
				return
			}
			defer c.Close()
		}
	}()
	hung := conn("http://" + silent.Addr().String())
	client = s3Dial(t, hung, source.Options{Timeout: 300 * time.Millisecond})
	start := time.Now()
	_, _, err = client.Open(ctx, "a.csv", source.Conditional{})
	requireS3Err(t, err, s3KindTimeout, true, hung, "timed out", "s3://exports/a.csv", silent.Addr().String())
	require.Less(t, time.Since(start), 5*time.Second, "the timeout bounds the wait for headers")
}

func TestS3StalledBodyTimesOut(t *testing.T) {
	t.Parallel()
	release := make(chan struct{})
	defer close(release)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", "1000")
		w.Header().Set("ETag", `"abc"`)
		w.WriteHeader(http.StatusOK)
		_, _ = w.Write([]byte("id,name\n"))
		w.(http.Flusher).Flush()
		select { // stall mid-body
		case <-release:
		case <-r.Context().Done():
		}
	}))
	defer srv.Close()
	conn := &intakev1.S3Connection{Endpoint: srv.URL, Bucket: "exports", PathStyle: true, AccessKeyId: "AKIAEXAMPLE", SecretAccessKey: "s3cret/Key+0123456789"}
	client := s3Dial(t, conn, source.Options{Timeout: 400 * time.Millisecond})

	rc, _, err := client.Open(t.Context(), "slow.csv", source.Conditional{})
	require.NoError(t, err)
	defer rc.Close()
	time.Sleep(600 * time.Millisecond) // a consumer that pauses longer than the timeout is not cut off
	buf := make([]byte, 8)
	n, err := io.ReadFull(rc, buf)
	require.NoError(t, err)
	require.Equal(t, "id,name\n", string(buf[:n]))
	start := time.Now()
	_, err = io.ReadAll(rc)
	requireS3Err(t, err, s3KindTimeout, true, conn, "s3://exports/slow.csv", "timed out")
	require.Less(t, time.Since(start), 5*time.Second)
}

func TestS3ServerErrorsAreTransient(t *testing.T) {
	t.Parallel()
	srv := s3test.New(t)
	srv.CreateBucket("exports")
	srv.PutObject("exports", "a.csv", []byte("a"), time.Time{})
	conn := srv.S3Connection("exports")
	client := s3Dial(t, conn, source.Options{})
	ctx := t.Context()

	srv.FailNext(1, http.StatusServiceUnavailable, "SlowDown")
	before := srv.Requests()
	_, _, err := client.Open(ctx, "a.csv", source.Conditional{})
	requireS3Err(t, err, s3KindOther, true, conn, "s3://exports/a.csv", srv.URL, "SlowDown")
	require.Equal(t, int64(1), srv.Requests()-before, "Open makes one attempt; its caller retries")

	srv.FailNext(1, http.StatusInternalServerError, "InternalError")
	require.NoError(t, client.Check(ctx), "Check retries a transient error")

	srv.FailNext(3, http.StatusInternalServerError, "InternalError")
	before = srv.Requests()
	requireS3Err(t, client.Check(ctx), s3KindOther, true, conn, `"exports"`, "InternalError")
	require.Equal(t, int64(3), srv.Requests()-before, "at most 3 attempts")
	require.NoError(t, client.Check(ctx))
}

func TestS3InvalidConfig(t *testing.T) {
	t.Parallel()
	ok := &intakev1.S3Connection{Endpoint: "http://127.0.0.1:9000", Bucket: "b", AccessKeyId: "AKIAEXAMPLE", SecretAccessKey: "s3cret/Key+0123456789"}
	for name, tc := range map[string]struct {
		edit func(c *intakev1.S3Connection)
		want string
	}{
		"no bucket":                 {func(c *intakev1.S3Connection) { c.Bucket = "" }, "no bucket"},
		"endpoint without scheme":   {func(c *intakev1.S3Connection) { c.Endpoint = "minio:9000" }, "not a URL"},
		"endpoint with credentials": {func(c *intakev1.S3Connection) { c.Endpoint = "http://admin:s3cret%2FKey+0123456789@minio:9000" }, "must not hold credentials"},
		"key without secret":        {func(c *intakev1.S3Connection) { c.SecretAccessKey = "" }, `access key id "AKIAEXAMPLE" has no secret access key`},
		"secret without key":        {func(c *intakev1.S3Connection) { c.AccessKeyId = "" }, "without an access key id"},
		"bad ca_pem": {func(c *intakev1.S3Connection) {
			c.CaPem = "-----BEGIN CERTIFICATE-----\nnope\n-----END CERTIFICATE-----\n"
		}, "ca_pem"},
	} {
		t.Run(name, func(t *testing.T) {
			c := &intakev1.S3Connection{Endpoint: ok.Endpoint, Bucket: ok.Bucket, AccessKeyId: ok.AccessKeyId, SecretAccessKey: ok.SecretAccessKey}
			tc.edit(c)
			_, err := source.Dial(t.Context(), s3Conn(c), source.Options{})
			requireS3Err(t, err, s3KindConfig, false, ok, tc.want)
			require.NotContains(t, err.Error(), "s3cret")
		})
	}
}

// TestS3DefaultCredentialChain sets environment variables, so it does not
// run in parallel.
func TestS3DefaultCredentialChain(t *testing.T) {
	srv := s3test.New(t)
	srv.CreateBucket("exports")
	t.Setenv("AWS_CONFIG_FILE", "/nonexistent/aws-config")
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent/aws-credentials")
	t.Setenv("AWS_EC2_METADATA_DISABLED", "true")
	t.Setenv("AWS_PROFILE", "")
	t.Setenv("AWS_WEB_IDENTITY_TOKEN_FILE", "")
	t.Setenv("AWS_CONTAINER_CREDENTIALS_FULL_URI", "")
	t.Setenv("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", "")
	t.Setenv("AWS_SESSION_TOKEN", "")
	conn := srv.S3Connection("exports")
	conn.AccessKeyId, conn.SecretAccessKey = "", ""

	t.Setenv("AWS_ACCESS_KEY_ID", srv.AccessKeyID)
	t.Setenv("AWS_SECRET_ACCESS_KEY", srv.SecretAccessKey)
	require.NoError(t, s3Dial(t, conn, source.Options{}).Check(t.Context()), "the keys come from the environment")

	t.Setenv("AWS_ACCESS_KEY_ID", "")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "")
	err := s3Dial(t, conn, source.Options{}).Check(t.Context())
	requireS3Err(t, err, s3KindAuth, false, conn, `"exports"`, srv.URL, "no usable AWS credentials")
	require.NotContains(t, err.Error(), srv.SecretAccessKey)
}

func s3NormTime(fi source.FileInfo) source.FileInfo {
	fi.ModTime = fi.ModTime.UTC()
	return fi
}

func s3NormTimes(fis []source.FileInfo) []source.FileInfo {
	out := make([]source.FileInfo, len(fis))
	for i, fi := range fis {
		out[i] = s3NormTime(fi)
	}
	return out
}

func s3MD5(s string) string {
	sum := md5.Sum([]byte(s))
	return hex.EncodeToString(sum[:])
}
