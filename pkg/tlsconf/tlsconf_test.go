package tlsconf_test

import (
	"context"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/intakehq/intake/pkg/tlsconf"
	"github.com/intakehq/intake/pkg/tlstest"
)

type certs struct{ ca, cert, key string }

func writeCerts(t *testing.T, dir, name string) certs {
	t.Helper()
	c := certs{filepath.Join(dir, name+"-ca.pem"), filepath.Join(dir, name+".pem"), filepath.Join(dir, name+"-key.pem")}
	require.NoError(t, tlstest.WriteCerts(c.ca, c.cert, c.key))
	return c
}

// serve starts a gRPC server with the health service over TLS and returns
// its address.
func serve(t *testing.T, s *tlsconf.Server) string {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	gs := grpc.NewServer(grpc.Creds(credentials.NewTLS(s.Config())))
	healthpb.RegisterHealthServer(gs, health.NewServer())
	go func() { _ = gs.Serve(lis) }()
	t.Cleanup(gs.Stop)
	return lis.Addr().String()
}

// check calls the health service through creds.
func check(t *testing.T, addr string, creds credentials.TransportCredentials) error {
	t.Helper()
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(creds))
	require.NoError(t, err)
	defer conn.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_, err = healthpb.NewHealthClient(conn).Check(ctx, &healthpb.HealthCheckRequest{})
	return err
}

func TestClientsOfATLSServer(t *testing.T) {
	dir := t.TempDir()
	c := writeCerts(t, dir, "api")
	other := writeCerts(t, dir, "other")
	s, err := tlsconf.NewServer(c.cert, c.key)
	require.NoError(t, err)
	addr := serve(t, s)

	good, err := tlsconf.Client(c.ca, false)
	require.NoError(t, err)
	require.NoError(t, check(t, addr, good), "the server's CA")
	require.NoError(t, check(t, addr, tlsconf.Pinned(s)), "the server's own certificate")

	wrong, err := tlsconf.Client(other.ca, false)
	require.NoError(t, err)
	require.ErrorContains(t, check(t, addr, wrong), "certificate signed by unknown authority")
	system, err := tlsconf.Client("", true)
	require.NoError(t, err)
	require.ErrorContains(t, check(t, addr, system), "certificate signed by unknown authority", "the system's CAs do not know a private CA")
	plain, err := tlsconf.Client("", false)
	require.NoError(t, err)
	require.Error(t, check(t, addr, plain), "plaintext to a TLS server")

	// Another server's certificate is not the pinned one.
	s2, err := tlsconf.NewServer(other.cert, other.key)
	require.NoError(t, err)
	require.ErrorContains(t, check(t, addr, tlsconf.Pinned(s2)), "the server's certificate is not the API's own")
}

// A certificate renewed in place is served from the next handshake after
// the files change; files half written keep the previous one served.
func TestServerReadsARenewedCertificate(t *testing.T) {
	dir := t.TempDir()
	c := writeCerts(t, dir, "api")
	s, err := tlsconf.NewServer(c.cert, c.key)
	require.NoError(t, err)
	addr := serve(t, s)
	oldCA, err := tlsconf.Client(c.ca, false)
	require.NoError(t, err)
	require.NoError(t, check(t, addr, oldCA))

	// A broken renewal: the key file emptied.
	require.NoError(t, os.WriteFile(c.key, nil, 0o600))
	time.Sleep(1100 * time.Millisecond)
	require.NoError(t, check(t, addr, oldCA), "the previous certificate still served")
	require.ErrorContains(t, s.ReloadError(), c.key)

	// The renewal done: a new CA and certificate in the same files.
	require.NoError(t, tlstest.WriteCerts(c.ca, c.cert, c.key))
	time.Sleep(1100 * time.Millisecond)
	newCA, err := tlsconf.Client(c.ca, false)
	require.NoError(t, err)
	require.NoError(t, check(t, addr, newCA), "the renewed certificate")
	require.NoError(t, s.ReloadError())
	require.ErrorContains(t, check(t, addr, oldCA), "certificate signed by unknown authority")
}

func TestBadSettingsSayWhatIsWrong(t *testing.T) {
	dir := t.TempDir()
	c := writeCerts(t, dir, "api")
	other := writeCerts(t, dir, "other")

	_, err := tlsconf.NewServer(c.cert, "")
	require.ErrorContains(t, err, "a TLS certificate needs both its file and its key's file")
	_, err = tlsconf.NewServer(filepath.Join(dir, "missing.pem"), c.key)
	require.ErrorContains(t, err, "missing.pem: no such file or directory")
	_, err = tlsconf.NewServer(c.cert, other.key)
	require.ErrorContains(t, err, "TLS certificate "+c.cert+" with key "+other.key+": tls: private key does not match public key")

	_, err = tlsconf.Client(filepath.Join(dir, "missing-ca.pem"), false)
	require.ErrorContains(t, err, "CA file: open "+filepath.Join(dir, "missing-ca.pem")+": no such file or directory")
	_, err = tlsconf.Client(c.key, false)
	require.ErrorContains(t, err, "CA file "+c.key+" holds no PEM certificate")
}
