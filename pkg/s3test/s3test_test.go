package s3test_test

import (
	"crypto/sha256"
	"encoding/hex"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/stretchr/testify/require"

	"github.com/intakehq/intake/pkg/s3test"
)

// get sends a GET for path, signed by the SDK's SigV4 signer with keyID
// and secret, after tamper may change the signed request; it returns the
// status and body.
func get(t *testing.T, srv *s3test.Server, path, keyID, secret string, tamper func(*http.Request)) (int, string) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, srv.URL+path, nil)
	require.NoError(t, err)
	if keyID != "" {
		empty := sha256.Sum256(nil)
		hash := hex.EncodeToString(empty[:])
		req.Header.Set("X-Amz-Content-Sha256", hash)
		creds := aws.Credentials{AccessKeyID: keyID, SecretAccessKey: secret}
		err = v4.NewSigner(func(o *v4.SignerOptions) { o.DisableURIPathEscaping = true }).
			SignHTTP(t.Context(), creds, req, hash, "s3", srv.Region, time.Now())
		require.NoError(t, err)
	}
	if tamper != nil {
		tamper(req)
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp.StatusCode, string(body)
}

func TestS3SignatureIsChecked(t *testing.T) {
	t.Parallel()
	srv := s3test.New(t)
	srv.CreateBucket("exports")
	srv.PutObject("exports", "dir/a b.csv", []byte("id\n1\n"), time.Date(2024, 1, 2, 3, 4, 5, 0, time.UTC))

	status, body := get(t, srv, "/exports/dir/a%20b.csv", srv.AccessKeyID, srv.SecretAccessKey, nil)
	require.Equal(t, http.StatusOK, status, body)
	require.Equal(t, "id\n1\n", body)
	status, body = get(t, srv, "/exports?list-type=2&prefix=dir%2F&delimiter=%2F", srv.AccessKeyID, srv.SecretAccessKey, nil)
	require.Equal(t, http.StatusOK, status, body)
	require.Contains(t, body, "<Key>dir/a b.csv</Key>")
	require.Contains(t, body, "<LastModified>2024-01-02T03:04:05")

	status, body = get(t, srv, "/exports/dir/a%20b.csv", "", "", nil)
	require.Equal(t, http.StatusForbidden, status)
	require.Contains(t, body, "<Code>AccessDenied</Code>", "anonymous")

	status, body = get(t, srv, "/exports/dir/a%20b.csv", srv.AccessKeyID, "wrong-secret", nil)
	require.Equal(t, http.StatusForbidden, status)
	require.Contains(t, body, "<Code>SignatureDoesNotMatch</Code>")

	status, body = get(t, srv, "/exports/dir/a%20b.csv", "AKIANOSUCHKEY", srv.SecretAccessKey, nil)
	require.Equal(t, http.StatusForbidden, status)
	require.Contains(t, body, "<Code>InvalidAccessKeyId</Code>")

	// A request changed after signing no longer matches its signature.
	status, body = get(t, srv, "/exports/dir/a%20b.csv", srv.AccessKeyID, srv.SecretAccessKey, func(r *http.Request) {
		r.URL.Path, r.URL.RawPath = "/exports/other.csv", ""
	})
	require.Equal(t, http.StatusForbidden, status)
	require.Contains(t, body, "<Code>SignatureDoesNotMatch</Code>", "path changed")
	status, body = get(t, srv, "/exports?list-type=2&prefix=a", srv.AccessKeyID, srv.SecretAccessKey, func(r *http.Request) {
		r.URL.RawQuery = strings.Replace(r.URL.RawQuery, "prefix=a", "prefix=b", 1)
	})
	require.Equal(t, http.StatusForbidden, status)
	require.Contains(t, body, "<Code>SignatureDoesNotMatch</Code>", "query changed")

	status, body = get(t, srv, "/exports/dir/a%20b.csv", srv.DeniedAccessKeyID, srv.DeniedSecretAccessKey, nil)
	require.Equal(t, http.StatusForbidden, status)
	require.Contains(t, body, "<Code>AccessDenied</Code>", "the denied key")

	srv.FailNext(1, http.StatusServiceUnavailable, "SlowDown")
	status, body = get(t, srv, "/exports/dir/a%20b.csv", srv.AccessKeyID, srv.SecretAccessKey, nil)
	require.Equal(t, http.StatusServiceUnavailable, status)
	require.Contains(t, body, "<Code>SlowDown</Code>")
	status, _ = get(t, srv, "/exports/dir/a%20b.csv", srv.AccessKeyID, srv.SecretAccessKey, nil)
	require.Equal(t, http.StatusOK, status, "FailNext(1) fails one request")
}
