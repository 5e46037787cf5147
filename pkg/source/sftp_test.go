package source_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/pem"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"

	intakev1 "github.com/intakehq/intake/proto/gen/intake/v1"

	"github.com/intakehq/intake/pkg/sftptest"
	"github.com/intakehq/intake/pkg/source"
)

const (
	sftpUnknownHost = intakev1.ConnectionErrorKind_CONNECTION_ERROR_KIND_UNKNOWN_HOST
	sftpRefused     = intakev1.ConnectionErrorKind_CONNECTION_ERROR_KIND_CONNECTION_REFUSED
	sftpTimeout     = intakev1.ConnectionErrorKind_CONNECTION_ERROR_KIND_TIMEOUT
	sftpAuth        = intakev1.ConnectionErrorKind_CONNECTION_ERROR_KIND_AUTHENTICATION_FAILED
	sftpMismatch    = intakev1.ConnectionErrorKind_CONNECTION_ERROR_KIND_HOST_KEY_MISMATCH
	sftpNotFound    = intakev1.ConnectionErrorKind_CONNECTION_ERROR_KIND_FILE_NOT_FOUND
	sftpDenied      = intakev1.ConnectionErrorKind_CONNECTION_ERROR_KIND_PERMISSION_DENIED
	sftpConfig      = intakev1.ConnectionErrorKind_CONNECTION_ERROR_KIND_INVALID_CONFIG
	sftpOther       = intakev1.ConnectionErrorKind_CONNECTION_ERROR_KIND_OTHER
)

func sftpConnection(c *intakev1.SftpConnection) *intakev1.Connection {
	return &intakev1.Connection{Kind: &intakev1.Connection_Sftp{Sftp: c}}
}

// dialSFTP dials c through source.Dial and closes the client at cleanup.
func dialSFTP(t *testing.T, c *intakev1.SftpConnection, timeout time.Duration) source.Client {
	t.Helper()
	client, err := source.Dial(t.Context(), sftpConnection(c), source.Options{Timeout: timeout})
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, client.Close()) })
	return client
}

// requireSFTPError checks err's Kind, whether it is transient, that its
// message holds every want, and none of the secrets.
func requireSFTPError(t *testing.T, err error, kind intakev1.ConnectionErrorKind, transient bool, want []string, secrets ...string) {
	t.Helper()
	require.Error(t, err)
	var e *source.Error
	require.ErrorAs(t, err, &e, "every error is a *source.Error: %v", err)
	require.Equal(t, kind.String(), source.KindOf(err).String(), "error: %v", err)
	require.Equal(t, transient, source.IsTransient(err), "transient? error: %v", err)
	for _, w := range want {
		require.Contains(t, err.Error(), w)
	}
	for _, s := range secrets {
		require.NotContains(t, err.Error(), s)
	}
}

func newEd25519Key(t *testing.T) (ssh.Signer, ed25519.PrivateKey) {
	t.Helper()
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	require.NoError(t, err)
	signer, err := ssh.NewSignerFromKey(priv)
	require.NoError(t, err)
	return signer, priv
}

// inUTC makes a FileInfo comparable with require.Equal.
func inUTC(fi source.FileInfo) source.FileInfo {
	fi.ModTime = fi.ModTime.UTC()
	return fi
}

func authorizedLine(k ssh.PublicKey) string {
	return strings.TrimSpace(string(ssh.MarshalAuthorizedKey(k)))
}

func TestSFTPAuthentication(t *testing.T) {
	s := sftptest.New(t)
	s.PutFile("accounts.csv", []byte("id\n1\n"), time.Time{})

	t.Run("password", func(t *testing.T) {
		c := dialSFTP(t, s.Connection(), 0)
		require.NoError(t, c.Check(t.Context()))
	})

	t.Run("private key", func(t *testing.T) {
		c := dialSFTP(t, s.KeyConnection(), 0)
		require.NoError(t, c.Check(t.Context()))
	})

	t.Run("encrypted private key with its passphrase", func(t *testing.T) {
		block, err := ssh.MarshalPrivateKeyWithPassphrase(s.ClientKey, "", []byte("open sesame"))
		require.NoError(t, err)
		conn := s.KeyConnection()
		conn.PrivateKey = string(pem.EncodeToMemory(block))
		conn.PrivateKeyPassphrase = "open sesame"
		require.NoError(t, dialSFTP(t, conn, 0).Check(t.Context()))

		conn.PrivateKeyPassphrase = ""
		_, err = source.Dial(t.Context(), sftpConnection(conn), source.Options{})
		requireSFTPError(t, err, sftpConfig, false, []string{s.Addr(), "private key is encrypted; set its passphrase"})

		conn.PrivateKeyPassphrase = "xyzzy-bad"
		_, err = source.Dial(t.Context(), sftpConnection(conn), source.Options{})
		requireSFTPError(t, err, sftpConfig, false, []string{s.Addr(), "passphrase is wrong"}, "xyzzy-bad")
	})

	t.Run("garbage private key", func(t *testing.T) {
		conn := s.KeyConnection()
		conn.PrivateKey = "-----BEGIN OPENSSH PRIVATE KEY-----\nc2VjcmV0LWtleS1tYXRlcmlhbA==\n-----END OPENSSH PRIVATE KEY-----\n"
		_, err := source.Dial(t.Context(), sftpConnection(conn), source.Options{})
		requireSFTPError(t, err, sftpConfig, false, []string{"private key cannot be read"}, "c2VjcmV0LWtleS1tYXRlcmlhbA")
	})

	t.Run("wrong password is not retried", func(t *testing.T) {
		conn := s.Connection()
		conn.Password = "not-" + s.Password
		err := dialSFTP(t, conn, 0).Check(t.Context())
		requireSFTPError(t, err, sftpAuth, false,
			[]string{fmt.Sprintf(`sftp %s: authentication failed for user "intake-sftp-test" (tried password)`, s.Addr())},
			conn.Password)
	})

	t.Run("unauthorized key", func(t *testing.T) {
		_, priv := newEd25519Key(t)
		block, err := ssh.MarshalPrivateKey(priv, "")
		require.NoError(t, err)
		conn := s.KeyConnection()
		conn.PrivateKey = string(pem.EncodeToMemory(block))
		err = dialSFTP(t, conn, 0).Check(t.Context())
		requireSFTPError(t, err, sftpAuth, false, []string{`authentication failed for user "intake-sftp-test" (tried publickey)`})
	})

	t.Run("wrong password and key", func(t *testing.T) {
		_, priv := newEd25519Key(t)
		block, err := ssh.MarshalPrivateKey(priv, "")
		require.NoError(t, err)
		conn := s.Connection()
		conn.Password = "wrong-password"
		conn.PrivateKey = string(pem.EncodeToMemory(block))
		err = dialSFTP(t, conn, 0).Check(t.Context())
		requireSFTPError(t, err, sftpAuth, false,
			[]string{fmt.Sprintf(`sftp %s: authentication failed for user "intake-sftp-test" (tried password, publickey)`, s.Addr())},
			"wrong-password")
	})

	t.Run("unknown user", func(t *testing.T) {
		conn := s.Connection()
		conn.User = "nobody-here"
		err := dialSFTP(t, conn, 0).Check(t.Context())
		requireSFTPError(t, err, sftpAuth, false, []string{`authentication failed for user "nobody-here"`}, s.Password)
	})

	t.Run("no credentials", func(t *testing.T) {
		conn := s.Connection()
		conn.Password = ""
		_, err := source.Dial(t.Context(), sftpConnection(conn), source.Options{})
		requireSFTPError(t, err, sftpConfig, false, []string{s.Addr(), `no password or private key for user "intake-sftp-test"`})
	})
}

func TestSFTPHostKeyPins(t *testing.T) {
	s := sftptest.New(t)
	hashed := knownhosts.HashHostname(knownhosts.Normalize(s.Addr())) + " " + s.HostKeyAuthorized
	keyscan := fmt.Sprintf("# %s:%d SSH-2.0-OpenSSH_9.2\n%s %s\n# %s:%d SSH-2.0-OpenSSH_9.2\n%s %s\n",
		s.Host, s.Port, s.Host, authorizedLine(s.ECDSAHostKey), s.Host, s.Port, s.Host, s.HostKeyAuthorized)

	accepted := map[string]string{
		"known_hosts line":                            s.HostKeyLine,
		"hashed known_hosts line":                     hashed,
		"marker-free line, other host name (ignored)": "files.example.com " + s.HostKeyAuthorized,
		"authorized_keys line":                        s.HostKeyAuthorized + " root@server",
		"fingerprint":                                 s.HostKeyFingerprint,
		"fingerprint with padding":                    s.HostKeyFingerprint + "=",
		"ecdsa key (the server's second key)":         authorizedLine(s.ECDSAHostKey),
		"ecdsa fingerprint (asked for after ed25519)": ssh.FingerprintSHA256(s.ECDSAHostKey),
		"ssh-keyscan output":                          keyscan,
	}
	for name, pin := range accepted {
		t.Run(name, func(t *testing.T) {
			conn := s.Connection()
			conn.HostKey = pin
			require.NoError(t, dialSFTP(t, conn, 0).Check(t.Context()))
		})
	}

	t.Run("another key of the same type", func(t *testing.T) {
		other, _ := newEd25519Key(t)
		conn := s.Connection()
		conn.HostKey = "[127.0.0.1]:22 " + authorizedLine(other.PublicKey())
		err := dialSFTP(t, conn, 0).Check(t.Context())
		requireSFTPError(t, err, sftpMismatch, false, []string{
			"sftp " + s.Addr() + ": host key mismatch",
			"expected ssh-ed25519 " + ssh.FingerprintSHA256(other.PublicKey()),
			"the server presented ssh-ed25519 " + s.HostKeyFingerprint,
			"ssh-keyscan -p " + strconv.Itoa(s.Port) + " 127.0.0.1",
		}, s.Password)
	})

	t.Run("another fingerprint", func(t *testing.T) {
		sum := sha256.Sum256([]byte("some other key"))
		fp := "SHA256:" + base64.RawStdEncoding.EncodeToString(sum[:])
		conn := s.Connection()
		conn.HostKey = fp
		err := dialSFTP(t, conn, 0).Check(t.Context())
		// Both of the server's keys were asked for, and neither matched.
		requireSFTPError(t, err, sftpMismatch, false, []string{
			s.Addr(), "expected " + fp,
			"ssh-ed25519 " + s.HostKeyFingerprint,
			"ecdsa-sha2-nistp256 " + ssh.FingerprintSHA256(s.ECDSAHostKey),
		})
	})

	t.Run("a key type the server does not have", func(t *testing.T) {
		rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
		require.NoError(t, err)
		pub, err := ssh.NewPublicKey(&rsaKey.PublicKey)
		require.NoError(t, err)
		conn := s.Connection()
		conn.HostKey = authorizedLine(pub)
		err = dialSFTP(t, conn, 0).Check(t.Context())
		requireSFTPError(t, err, sftpMismatch, false, []string{
			s.Addr(), "no host key of the pinned type", "ssh-ed25519", "expected ssh-rsa " + ssh.FingerprintSHA256(pub),
		})
	})

	t.Run("no pinned key", func(t *testing.T) {
		conn := s.Connection()
		conn.HostKey = "  "
		_, err := source.Dial(t.Context(), sftpConnection(conn), source.Options{})
		requireSFTPError(t, err, sftpConfig, false, []string{fmt.Sprintf(
			"sftp connection to %s has no pinned host key; add the server's key (ssh-keyscan -p %d 127.0.0.1) or its SHA256 fingerprint",
			s.Addr(), s.Port)})
	})

	invalid := map[string]string{
		"garbage":           "not a key at all",
		"short fingerprint": "SHA256:abc",
		"md5 fingerprint":   "MD5:16:27:ac:a5:76:28:2d:36:63:1b:56:4d:eb:df:a6:48",
		"cert authority":    "@cert-authority *.example.com " + s.HostKeyAuthorized,
		"revoked":           "@revoked * " + s.HostKeyAuthorized,
	}
	for name, pin := range invalid {
		t.Run("invalid: "+name, func(t *testing.T) {
			conn := s.Connection()
			conn.HostKey = pin
			_, err := source.Dial(t.Context(), sftpConnection(conn), source.Options{})
			requireSFTPError(t, err, sftpConfig, false, []string{"sftp " + s.Addr() + ": host key: "})
		})
	}
}

func TestSFTPConnectErrors(t *testing.T) {
	s := sftptest.New(t)

	t.Run("connection refused", func(t *testing.T) {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		require.NoError(t, err)
		port := l.Addr().(*net.TCPAddr).Port
		require.NoError(t, l.Close())
		conn := s.Connection()
		conn.Port = int32(port)
		err = dialSFTP(t, conn, 0).Check(t.Context())
		requireSFTPError(t, err, sftpRefused, true, []string{"sftp 127.0.0.1:" + strconv.Itoa(port) + ": connection refused"})
	})

	t.Run("unknown host", func(t *testing.T) {
		conn := s.Connection()
		conn.Host = "nonexistent.invalid"
		err := dialSFTP(t, conn, 0).Check(t.Context())
		requireSFTPError(t, err, sftpUnknownHost, false,
			[]string{"sftp nonexistent.invalid:" + strconv.Itoa(s.Port) + ": cannot resolve host nonexistent.invalid"})
	})

	t.Run("default port", func(t *testing.T) {
		conn := s.Connection()
		conn.Host, conn.Port = "nonexistent.invalid", 0
		err := dialSFTP(t, conn, 0).Check(t.Context())
		requireSFTPError(t, err, sftpUnknownHost, false, []string{"sftp nonexistent.invalid:22: "})
	})

	t.Run("server does not answer", func(t *testing.T) {
		s.Pause()
		defer s.Resume()
		start := time.Now()
		err := dialSFTP(t, s.Connection(), 500*time.Millisecond).Check(t.Context())
		requireSFTPError(t, err, sftpTimeout, true, []string{"sftp " + s.Addr() + ": no SSH handshake within 500ms"})
		require.Less(t, time.Since(start), 5*time.Second)
	})

	t.Run("context cancelled", func(t *testing.T) {
		s.Pause()
		defer s.Resume()
		ctx, cancel := context.WithTimeout(t.Context(), 300*time.Millisecond)
		defer cancel()
		start := time.Now()
		err := dialSFTP(t, s.Connection(), time.Minute).Check(ctx)
		requireSFTPError(t, err, sftpTimeout, false, []string{s.Addr(), "context deadline exceeded"})
		require.ErrorIs(t, err, context.DeadlineExceeded)
		require.Less(t, time.Since(start), 5*time.Second)
	})

	t.Run("not an SSH server", func(t *testing.T) {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		require.NoError(t, err)
		defer l.Close()
		go func() {
			for {
				c, err := l.Accept()
				if err != nil {
					return
				}
				_, _ = io.WriteString(c, "HTTP/1.1 400 Bad Request\r\n\r\n")
				_ = c.Close()
			}
		}()
		conn := s.Connection()
		conn.Port = int32(l.Addr().(*net.TCPAddr).Port)
		err = dialSFTP(t, conn, 0).Check(t.Context())
		require.Error(t, err)
		require.Contains(t, err.Error(), "sftp "+l.Addr().String()+": ")
	})
}

func TestSFTPFiles(t *testing.T) {
	s := sftptest.New(t)
	mod := time.Date(2024, 3, 1, 8, 30, 0, 0, time.UTC)
	s.PutFile("exports/accounts.csv", []byte("id,name\n1,Acme\n"), mod)
	s.PutFile("exports/users.csv", []byte("id\n"), mod.Add(time.Hour))
	s.PutFile("exports/secret.csv", []byte("id\n"), mod)
	s.Chmod("exports/secret.csv", 0)
	s.Mkdir("exports/private")
	s.Chmod("exports/private", 0o700)
	c := dialSFTP(t, s.Connection(), 0)

	t.Run("stat relative and absolute", func(t *testing.T) {
		for _, p := range []string{"exports/accounts.csv", "/exports/accounts.csv"} {
			fi, err := c.Stat(t.Context(), p)
			require.NoError(t, err)
			require.Equal(t, source.FileInfo{Path: p, Size: 15, ModTime: mod}, inUTC(fi))
		}
		fi, err := c.Stat(t.Context(), "exports")
		require.NoError(t, err)
		require.True(t, fi.Dir)
	})

	t.Run("open", func(t *testing.T) {
		rc, meta, err := c.Open(t.Context(), "exports/accounts.csv", source.Conditional{ETag: `"x"`})
		require.NoError(t, err)
		defer rc.Close()
		require.False(t, meta.NotModified)
		require.Equal(t, int64(15), meta.Size)
		require.True(t, meta.ModTime.Equal(mod))
		b, err := io.ReadAll(rc)
		require.NoError(t, err)
		require.Equal(t, "id,name\n1,Acme\n", string(b))
	})

	t.Run("missing file", func(t *testing.T) {
		_, err := c.Stat(t.Context(), "exports/nope.csv")
		requireSFTPError(t, err, sftpNotFound, false, []string{"sftp " + s.Addr() + ": stat exports/nope.csv: no such file or directory"})
		_, _, err = c.Open(t.Context(), "exports/nope.csv", source.Conditional{})
		requireSFTPError(t, err, sftpNotFound, false, []string{"open exports/nope.csv: no such file or directory"})
		_, _, err = c.List(t.Context(), "imports", "", 0)
		requireSFTPError(t, err, sftpNotFound, false, []string{"list imports: no such file or directory"})
	})

	t.Run("permission denied", func(t *testing.T) {
		_, _, err := c.Open(t.Context(), "exports/secret.csv", source.Conditional{})
		requireSFTPError(t, err, sftpDenied, false,
			[]string{"sftp " + s.Addr() + `: open exports/secret.csv: permission denied for user "intake-sftp-test"`})
		_, _, err = c.List(t.Context(), "exports/private", "", 0)
		requireSFTPError(t, err, sftpDenied, false, []string{"list exports/private: permission denied"})
	})

	t.Run("a directory is not a file", func(t *testing.T) {
		_, _, err := c.Open(t.Context(), "exports", source.Conditional{})
		requireSFTPError(t, err, sftpNotFound, false, []string{"exports is a directory"})
	})

	t.Run("the client still works after errors", func(t *testing.T) {
		require.NoError(t, c.Check(t.Context()))
	})
}

func TestSFTPList(t *testing.T) {
	s := sftptest.New(t)
	base := time.Date(2024, 1, 2, 3, 4, 5, 0, time.UTC)
	for i, name := range []string{"c.csv", "a.csv", "b.csv"} {
		s.PutFile("in/"+name, bytes.Repeat([]byte("x"), i+1), base.Add(time.Duration(i)*time.Minute))
	}
	s.PutFile("in/sub/deep.csv", []byte("deep"), base)
	s.Mkdir("in/empty")
	require.NoError(t, os.Symlink("a.csv", s.Path("in/link.csv")))
	c := dialSFTP(t, s.Connection(), 0)

	var all []source.FileInfo
	token := ""
	var pages [][]string
	for {
		page, next, err := c.List(t.Context(), "in", token, 2)
		require.NoError(t, err)
		var names []string
		for _, fi := range page {
			names = append(names, fi.Path)
		}
		pages = append(pages, names)
		all = append(all, page...)
		if next == "" {
			break
		}
		token = next
		require.Less(t, len(pages), 10, "pagination does not end")
	}
	require.Equal(t, [][]string{{"in/a.csv", "in/b.csv"}, {"in/c.csv", "in/empty"}, {"in/link.csv", "in/sub"}}, pages)
	require.Equal(t, source.FileInfo{Path: "in/a.csv", Size: 2, ModTime: base.Add(time.Minute)}, inUTC(all[0]))
	require.Equal(t, source.FileInfo{Path: "in/c.csv", Size: 1, ModTime: base}, inUTC(all[2]))
	require.False(t, all[0].Dir)
	require.True(t, all[3].Dir, "empty is a directory")
	require.Equal(t, source.FileInfo{Path: "in/link.csv", Size: 2, ModTime: base.Add(time.Minute)}, inUTC(all[4]),
		"a symbolic link is listed as what it points to")
	require.True(t, all[5].Dir, "sub is a directory")

	t.Run("a file is not a directory", func(t *testing.T) {
		_, _, err := c.List(t.Context(), "in/a.csv", "", 0)
		requireSFTPError(t, err, sftpNotFound, false, []string{"list in/a.csv: it is a file, not a directory"})
	})

	t.Run("absolute directory and no limit", func(t *testing.T) {
		page, next, err := c.List(t.Context(), "/in/sub", "", 0)
		require.NoError(t, err)
		require.Empty(t, next)
		require.Len(t, page, 1)
		require.Equal(t, "/in/sub/deep.csv", page[0].Path)
	})

	t.Run("login directory", func(t *testing.T) {
		page, _, err := c.List(t.Context(), "", "", 0)
		require.NoError(t, err)
		require.Len(t, page, 1)
		require.Equal(t, "in", page[0].Path)
		require.True(t, page[0].Dir)
	})

	t.Run("empty directory", func(t *testing.T) {
		page, next, err := c.List(t.Context(), "in/empty", "", 10)
		require.NoError(t, err)
		require.Empty(t, page)
		require.Empty(t, next)
	})
}

func TestSFTPStreamsLargeFile(t *testing.T) {
	s := sftptest.New(t)
	data := make([]byte, 24<<20+12345)
	_, err := rand.Read(data)
	require.NoError(t, err)
	s.PutFile("big/export.csv", data, time.Time{})
	want := sha256.Sum256(data)
	c := dialSFTP(t, s.KeyConnection(), 0)

	t.Run("io.Copy", func(t *testing.T) {
		rc, meta, err := c.Open(t.Context(), "big/export.csv", source.Conditional{})
		require.NoError(t, err)
		require.Equal(t, int64(len(data)), meta.Size)
		h := sha256.New()
		n, err := io.Copy(h, rc)
		require.NoError(t, err)
		require.NoError(t, rc.Close())
		require.Equal(t, int64(len(data)), n)
		require.Equal(t, want[:], h.Sum(nil), "the file read is not byte-for-byte the file on the server")
	})

	t.Run("small reads", func(t *testing.T) {
		rc, _, err := c.Open(t.Context(), "/big/export.csv", source.Conditional{})
		require.NoError(t, err)
		defer rc.Close()
		h := sha256.New()
		buf := make([]byte, 4096)
		n, err := io.CopyBuffer(h, struct{ io.Reader }{rc}, buf) // hide WriteTo
		require.NoError(t, err)
		require.Equal(t, int64(len(data)), n)
		require.Equal(t, want[:], h.Sum(nil))
	})
}

func TestSFTPStalledServer(t *testing.T) {
	s := sftptest.New(t)
	data := make([]byte, 16<<20)
	_, err := rand.Read(data)
	require.NoError(t, err)
	s.PutFile("big.csv", data, time.Time{})
	c := dialSFTP(t, s.Connection(), time.Second)

	rc, _, err := c.Open(t.Context(), "big.csv", source.Conditional{})
	require.NoError(t, err)
	defer rc.Close()
	first := make([]byte, 10)
	_, err = io.ReadFull(rc, first)
	require.NoError(t, err)
	require.Equal(t, data[:10], first)

	s.Pause()
	start := time.Now()
	_, err = io.Copy(io.Discard, rc)
	s.Resume()
	requireSFTPError(t, err, sftpTimeout, true, []string{"sftp " + s.Addr() + ": read big.csv: no data received for 1s"})
	require.Less(t, time.Since(start), 10*time.Second)

	// The client connects again for the next call.
	fi, err := c.Stat(t.Context(), "big.csv")
	require.NoError(t, err)
	require.Equal(t, int64(len(data)), fi.Size)
}

func TestSFTPClosedClient(t *testing.T) {
	s := sftptest.New(t)
	c, err := source.Dial(t.Context(), sftpConnection(s.Connection()), source.Options{})
	require.NoError(t, err)
	require.NoError(t, c.Check(t.Context()))
	require.NoError(t, c.Close())
	err = c.Check(t.Context())
	requireSFTPError(t, err, sftpOther, false, []string{"closed"})
}
