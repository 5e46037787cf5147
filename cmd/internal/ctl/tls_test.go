package ctl_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/encoding/protojson"

	"github.com/intakehq/intake/pkg/testutil"
	"github.com/intakehq/intake/pkg/tlsconf"
	"github.com/intakehq/intake/pkg/tlstest"
	intakev1 "github.com/intakehq/intake/proto/gen/intake/v1"
)

// intake all serving its API over TLS: intakectl calls it with the CA of
// its certificate; the workers inside the process (which pin the API's own
// certificate) run a job through; a client without TLS, or trusting
// another CA, is refused.
func TestTheAPIOverTLS(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	ca, cert, key := filepath.Join(dir, "ca.pem"), filepath.Join(dir, "api.pem"), filepath.Join(dir, "api-key.pem")
	require.NoError(t, tlstest.WriteCerts(ca, cert, key))
	otherCA := filepath.Join(dir, "other-ca.pem")
	require.NoError(t, tlstest.WriteCerts(otherCA, filepath.Join(dir, "other.pem"), filepath.Join(dir, "other-key.pem")))
	creds, err := tlsconf.Client(ca, false)
	require.NoError(t, err)
	restAddr := testutil.FreeAddr(t)
	addr, logs := startIntakeWith(t, nil, []string{"--tls-cert-file", cert, "--tls-key-file", key, "--rest-addr", restAddr}, creds)
	require.Contains(t, logs.String(), "control API serving")
	require.Regexp(t, `control API serving.* tls=true`, logs.String())

	files := httptest.NewServer(http.FileServer(http.Dir("../../../examples/data")))
	defer files.Close()
	jobFile := filepath.Join(dir, "job.yaml")
	require.NoError(t, os.WriteFile(jobFile, []byte(strings.Replace(jobYAML, "URL", files.URL+"/accounts.csv", 1)), 0o600))
	out, err := intakectl(t, addr, "job", "create", "-f", jobFile, "--api-ca-file", ca)
	require.NoError(t, err, out)
	out, err = intakectl(t, addr, "job", "run", "ctl-accounts", "--watch", "--api-ca-file", ca)
	require.NoError(t, err, "%s\nlogs:\n%s", out, logs)
	require.Contains(t, out, "State:    succeeded")
	require.Contains(t, out, "Rows:     50 read, 0 rejected, 50 created")

	// The REST mapping is served over TLS too, with the same certificate.
	pem, err := os.ReadFile(ca)
	require.NoError(t, err)
	pool := x509.NewCertPool()
	require.True(t, pool.AppendCertsFromPEM(pem))
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}}}
	code, body := testutil.PostJSON(context.Background(), t, client, "https://"+restAddr+"/intake.v1.JobService/ListJobs", testAdminToken, `{"readMask":"name"}`)
	require.Equal(t, http.StatusOK, code, string(body))
	var listed intakev1.ListJobsResponse
	require.NoError(t, protojson.Unmarshal(body, &listed), string(body))
	require.Len(t, listed.GetJobs(), 1)
	require.Equal(t, "jobs/ctl-accounts", listed.GetJobs()[0].GetName())
	require.Nil(t, listed.GetJobs()[0].GetMapping(), "the read mask keeps the name only")
	_, err = http.Post("http://"+restAddr+"/intake.v1.JobService/ListJobs", "application/json", strings.NewReader(`{}`))
	require.NoError(t, err, "a plaintext request gets the server's 400 answer")

	out, err = intakectl(t, addr, "job", "list", "--api-ca-file", otherCA)
	require.ErrorContains(t, err, "certificate signed by unknown authority", out)
	out, err = intakectl(t, addr, "job", "list")
	require.ErrorContains(t, err, "if it serves TLS, set --api-ca-file or --api-tls", "plaintext to a TLS API: %s", out)

	out, err = intakectl(t, addr, "job", "list", "--api-ca-file", filepath.Join(dir, "nope.pem"))
	require.ErrorContains(t, err, "--api-ca-file (or INTAKE_API_CA_FILE): CA file: open "+filepath.Join(dir, "nope.pem")+": no such file or directory", out)
}
