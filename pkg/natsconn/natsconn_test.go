package natsconn_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/jwt/v2"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nkeys"
	"github.com/stretchr/testify/require"

	"github.com/intakehq/intake/pkg/natsconn"
)

// startServer runs a NATS server with opts on a loopback port for the
// duration of t and returns its URL.
func startServer(t *testing.T, opts *server.Options) string {
	t.Helper()
	opts.Host, opts.Port, opts.NoLog, opts.NoSigs = "127.0.0.1", -1, true, true
	s, err := server.NewServer(opts)
	require.NoError(t, err)
	go s.Start()
	if !s.ReadyForConnections(10 * time.Second) {
		t.Fatal("NATS server not ready")
	}
	t.Cleanup(func() { s.Shutdown(); s.WaitForShutdown() })
	return s.ClientURL()
}

// connect connects with o and checks that the connection works.
func connect(t *testing.T, url string, o natsconn.Options) {
	t.Helper()
	nc, err := natsconn.Connect(context.Background(), url, o, "natsconn-test")
	require.NoError(t, err)
	defer nc.Close()
	require.NoError(t, nc.Flush())
	require.Equal(t, "natsconn-test", nc.Opts.Name)
	require.Equal(t, -1, nc.Opts.MaxReconnect, "reconnects forever")
}

// connectFails connects with o and returns the error, which must hold none
// of the secrets.
func connectFails(t *testing.T, url string, o natsconn.Options, secrets ...string) string {
	t.Helper()
	nc, err := natsconn.Connect(context.Background(), url, o, "natsconn-test", nats.Timeout(2*time.Second))
	if err == nil {
		nc.Close()
		t.Fatal("connected, want an error")
	}
	msg := err.Error()
	for _, s := range secrets {
		require.NotContains(t, msg, s, "the error shows a secret")
	}
	return msg
}

func writeFile(t *testing.T, name, content string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	require.NoError(t, os.WriteFile(path, []byte(content), 0o600))
	return path
}

func TestUserPassword(t *testing.T) {
	t.Parallel()
	url := startServer(t, &server.Options{
		Users:     []*server.User{{Username: "intake", Password: "right-pass-7f3a"}},
		JetStream: true, StoreDir: t.TempDir(),
	})

	connect(t, url, natsconn.Options{User: "intake", Password: "right-pass-7f3a"})
	// A user of a server without accounts has JetStream (as the services
	// need, and as deploy/k8s's NATS servers are set up).
	nc, err := natsconn.Connect(t.Context(), url, natsconn.Options{User: "intake", Password: "right-pass-7f3a"}, "natsconn-test")
	require.NoError(t, err)
	defer nc.Close()
	js, err := jetstream.New(nc)
	require.NoError(t, err)
	_, err = js.CreateStream(t.Context(), jetstream.StreamConfig{Name: "TEST", Subjects: []string{"test.>"}})
	require.NoError(t, err)

	msg := connectFails(t, url, natsconn.Options{User: "intake", Password: "wrong-pass-91c2"}, "wrong-pass-91c2", "right-pass-7f3a")
	require.Contains(t, msg, "connect to NATS at "+url)
	require.Contains(t, strings.ToLower(msg), "authorization violation")
	require.Contains(t, msg, `the server refused user "intake" and its password (check --nats-user and --nats-password-file or INTAKE_NATS_PASSWORD)`)

	msg = connectFails(t, url, natsconn.Options{})
	require.Contains(t, msg, "the server requires credentials: set --nats-user with --nats-password-file or INTAKE_NATS_PASSWORD")

	// Credentials in the URL work too, and the error hides them.
	withCreds := strings.Replace(url, "nats://", "nats://intake:wrong-pass-91c2@", 1)
	msg = connectFails(t, withCreds, natsconn.Options{}, "wrong-pass-91c2")
	require.Contains(t, msg, "nats://REDACTED@127.0.0.1")
	require.Contains(t, msg, "the server refused the credentials in the URL")
	connect(t, strings.Replace(url, "nats://", "nats://intake:right-pass-7f3a@", 1), natsconn.Options{})
}

func TestToken(t *testing.T) {
	t.Parallel()
	url := startServer(t, &server.Options{Authorization: "right-token-5d1e"})
	connect(t, url, natsconn.Options{Token: "right-token-5d1e"})
	msg := connectFails(t, url, natsconn.Options{Token: "wrong-token-0b9a"}, "wrong-token-0b9a", "right-token-5d1e")
	require.Contains(t, msg, "the server refused the token (check --nats-token-file or INTAKE_NATS_TOKEN)")
}

func TestNKey(t *testing.T) {
	t.Parallel()
	kp, err := nkeys.CreateUser()
	require.NoError(t, err)
	pub, err := kp.PublicKey()
	require.NoError(t, err)
	seed, err := kp.Seed()
	require.NoError(t, err)
	url := startServer(t, &server.Options{Nkeys: []*server.NkeyUser{{Nkey: pub}}})
	connect(t, url, natsconn.Options{NKeySeedFile: writeFile(t, "user.nk", string(seed)+"\n")})

	other, err := nkeys.CreateUser()
	require.NoError(t, err)
	otherSeed, err := other.Seed()
	require.NoError(t, err)
	file := writeFile(t, "other.nk", string(otherSeed))
	msg := connectFails(t, url, natsconn.Options{NKeySeedFile: file}, string(otherSeed), string(seed))
	require.Contains(t, msg, "the server refused the nkey of "+file+" (check --nats-nkey-file")
}

func TestCredsFile(t *testing.T) {
	t.Parallel()
	operator, err := nkeys.CreateOperator()
	require.NoError(t, err)
	opPub, err := operator.PublicKey()
	require.NoError(t, err)
	account, err := nkeys.CreateAccount()
	require.NoError(t, err)
	accPub, err := account.PublicKey()
	require.NoError(t, err)
	accJWT, err := jwt.NewAccountClaims(accPub).Encode(operator)
	require.NoError(t, err)
	resolver := &server.MemAccResolver{}
	require.NoError(t, resolver.Store(accPub, accJWT))
	url := startServer(t, &server.Options{TrustedKeys: []string{opPub}, AccountResolver: resolver})

	creds := func(signer nkeys.KeyPair) (string, string) {
		user, err := nkeys.CreateUser()
		require.NoError(t, err)
		pub, err := user.PublicKey()
		require.NoError(t, err)
		userJWT, err := jwt.NewUserClaims(pub).Encode(signer)
		require.NoError(t, err)
		seed, err := user.Seed()
		require.NoError(t, err)
		b, err := jwt.FormatUserConfig(userJWT, seed)
		require.NoError(t, err)
		return writeFile(t, "user.creds", string(b)), string(seed)
	}
	good, _ := creds(account)
	connect(t, url, natsconn.Options{CredsFile: good})

	// A user of an account the operator did not sign.
	stranger, err := nkeys.CreateAccount()
	require.NoError(t, err)
	bad, seed := creds(stranger)
	msg := connectFails(t, url, natsconn.Options{CredsFile: bad}, seed)
	require.Contains(t, msg, "the server refused the credentials of "+bad+" (check --nats-creds-file)")
}

// pki is a CA and the files of certificates it signed.
type pki struct {
	dir     string
	caFile  string
	ca      *x509.Certificate
	caKey   *ecdsa.PrivateKey
	serials int64
}

func newPKI(t *testing.T, name string) *pki {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	require.NoError(t, err)
	ca, err := x509.ParseCertificate(der)
	require.NoError(t, err)
	p := &pki{dir: t.TempDir(), ca: ca, caKey: key, serials: 1}
	p.caFile = p.write(t, "ca.pem", "CERTIFICATE", der)
	return p
}

func (p *pki) write(t *testing.T, name, typ string, der []byte) string {
	t.Helper()
	path := filepath.Join(p.dir, name)
	require.NoError(t, os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600))
	return path
}

// issue makes a certificate for 127.0.0.1 and localhost (a server's, or a
// client's) and returns its certificate and key files.
func (p *pki) issue(t *testing.T, name string, usage x509.ExtKeyUsage) (string, string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	p.serials++
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(p.serials), Subject: pkix.Name{CommonName: name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{usage},
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, DNSNames: []string{"localhost"},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, p.ca, &key.PublicKey, p.caKey)
	require.NoError(t, err)
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	require.NoError(t, err)
	return p.write(t, name+".pem", "CERTIFICATE", der), p.write(t, name+"-key.pem", "PRIVATE KEY", keyDER)
}

// startTLSServer runs a NATS server with a certificate of p; verify: it
// requires client certificates of p.
func startTLSServer(t *testing.T, p *pki, verify bool, opts *server.Options) string {
	t.Helper()
	cert, key := p.issue(t, "server", x509.ExtKeyUsageServerAuth)
	tc, err := server.GenTLSConfig(&server.TLSConfigOpts{CertFile: cert, KeyFile: key, CaFile: p.caFile, Verify: verify})
	require.NoError(t, err)
	opts.TLS, opts.TLSConfig, opts.TLSVerify, opts.TLSTimeout = true, tc, verify, 2
	return startServer(t, opts)
}

func TestTLS(t *testing.T) {
	t.Parallel()
	p := newPKI(t, "intake test CA")
	url := startTLSServer(t, p, false, &server.Options{Users: []*server.User{{Username: "intake", Password: "tls-pass-2c8d"}}})

	o := natsconn.Options{User: "intake", Password: "tls-pass-2c8d", CAFile: p.caFile}
	nc, err := natsconn.Connect(context.Background(), url, o, "natsconn-test")
	require.NoError(t, err)
	state, err := nc.TLSConnectionState()
	require.NoError(t, err, "the connection is TLS")
	require.True(t, state.HandshakeComplete)
	nc.Close()
	// The same with a tls:// URL.
	connect(t, strings.Replace(url, "nats://", "tls://", 1), o)

	wrong := newPKI(t, "another CA")
	msg := connectFails(t, url, natsconn.Options{User: "intake", Password: "tls-pass-2c8d", CAFile: wrong.caFile}, "tls-pass-2c8d")
	require.Contains(t, msg, "certificate signed by unknown authority")
	require.Contains(t, msg, "the server's certificate is not signed by a CA of "+wrong.caFile+" (--nats-ca-file)")

	msg = connectFails(t, url, natsconn.Options{User: "intake", Password: "tls-pass-2c8d"}, "tls-pass-2c8d")
	require.Contains(t, msg, "not signed by a CA this system trusts: give its CA with --nats-ca-file")
}

func TestMutualTLS(t *testing.T) {
	t.Parallel()
	p := newPKI(t, "intake test CA")
	url := startTLSServer(t, p, true, &server.Options{})
	cert, key := p.issue(t, "client", x509.ExtKeyUsageClientAuth)
	connect(t, url, natsconn.Options{CAFile: p.caFile, CertFile: cert, KeyFile: key})

	other := newPKI(t, "another CA")
	cert, key = other.issue(t, "client", x509.ExtKeyUsageClientAuth)
	msg := connectFails(t, url, natsconn.Options{CAFile: p.caFile, CertFile: cert, KeyFile: key})
	require.Contains(t, msg, "the server refused the client certificate "+cert+" (--nats-cert-file)")

	msg = connectFails(t, url, natsconn.Options{CAFile: p.caFile})
	require.Contains(t, msg, "the server requires a client certificate: set --nats-cert-file and --nats-key-file")
}

func TestTLSWantedButNotOffered(t *testing.T) {
	t.Parallel()
	url := startServer(t, &server.Options{})
	p := newPKI(t, "intake test CA")
	msg := connectFails(t, url, natsconn.Options{CAFile: p.caFile})
	require.Contains(t, msg, "the server does not offer TLS, which the settings ask for")
	msg = connectFails(t, strings.Replace(url, "nats://", "tls://", 1), natsconn.Options{})
	require.Contains(t, msg, "the server does not offer TLS")
}

func TestNoServer(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := ln.Addr().String()
	require.NoError(t, ln.Close())
	msg := connectFails(t, "nats://"+addr, natsconn.Options{})
	require.Contains(t, msg, "connect to NATS at nats://"+addr)
	require.Contains(t, msg, "is NATS running there")
}

func TestConnectStopsWithContext(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := natsconn.Connect(ctx, "nats://192.0.2.1:4222", natsconn.Options{}, "natsconn-test")
	require.ErrorIs(t, err, context.Canceled)
}

func TestValidate(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	missing := filepath.Join(dir, "missing.pem")
	notPEM := writeFile(t, "not.pem", "hello")
	p := newPKI(t, "intake test CA")
	cert, key := p.issue(t, "client", x509.ExtKeyUsageClientAuth)
	for _, tc := range []struct {
		o    natsconn.Options
		want string
	}{
		{natsconn.Options{User: "intake", Password: "pw-1", Token: "tok-1"}, "set one authentication method, not --nats-user and its password and --nats-token-file or INTAKE_NATS_TOKEN"},
		{natsconn.Options{Token: "tok-1", CredsFile: missing}, "not --nats-token-file or INTAKE_NATS_TOKEN and --nats-creds-file"},
		{natsconn.Options{User: "intake"}, `user "intake" needs a password: set --nats-password-file or INTAKE_NATS_PASSWORD`},
		{natsconn.Options{Password: "pw-1"}, "needs a user: set --nats-user"},
		{natsconn.Options{NKeySeedFile: missing}, "NATS nkey seed file (--nats-nkey-file): open " + missing + ": no such file or directory"},
		{natsconn.Options{NKeySeedFile: notPEM}, notPEM + " holds no nkey seed"},
		{natsconn.Options{CredsFile: notPEM}, notPEM + " holds no user JWT"},
		{natsconn.Options{CAFile: missing}, "NATS CA file (--nats-ca-file): open " + missing},
		{natsconn.Options{CAFile: notPEM}, "NATS CA file (--nats-ca-file) " + notPEM + " holds no PEM certificate"},
		{natsconn.Options{CertFile: cert}, "needs its key: set --nats-key-file"},
		{natsconn.Options{KeyFile: key}, "needs its certificate: set --nats-cert-file"},
		{natsconn.Options{CertFile: cert, KeyFile: notPEM}, "NATS client certificate " + cert + " and key " + notPEM},
	} {
		err := tc.o.Validate()
		require.Error(t, err, "%+v", tc.o)
		require.Contains(t, err.Error(), tc.want)
		require.NotContains(t, err.Error(), "pw-1")
		require.NotContains(t, err.Error(), "tok-1")
		// Connect checks the same before dialing.
		_, err = natsconn.Connect(context.Background(), "nats://192.0.2.1:4222", tc.o, "natsconn-test")
		require.ErrorContains(t, err, tc.want)
	}
	require.NoError(t, natsconn.Options{}.Validate())
	require.NoError(t, natsconn.Options{User: "intake", Password: "pw", CAFile: p.caFile, CertFile: cert, KeyFile: key}.Validate())

	_, err := natsconn.Connect(context.Background(), "nats://intake:pw-1@192.0.2.1:4222", natsconn.Options{Token: "tok-1"}, "natsconn-test")
	require.ErrorContains(t, err, "connect to NATS at nats://REDACTED@192.0.2.1:4222: the URL holds credentials, and so does --nats-token-file")
	require.NotContains(t, err.Error(), "pw-1")
}

func TestRedact(t *testing.T) {
	t.Parallel()
	require.Equal(t, "nats://a:4222,tls://REDACTED@b:4222,REDACTED@c:4222",
		natsconn.Redact("nats://a:4222,tls://user:p@ss@b:4222,tok@c:4222"))
}
