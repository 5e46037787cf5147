// Package tlsconf builds the TLS settings of the control API and of its
// clients: the server's certificate, read from PEM files and read again
// when they change (a certificate renewed in place, as cert-manager or a
// mounted Secret does, needs no restart), and a client's transport
// credentials (a CA file, the system's CAs, or plaintext) and dial options.
package tlsconf

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"sync"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
)

// recheck is how often, at most, a handshake looks at the certificate
// files again.
const recheck = time.Second

// Server is a server certificate kept current with its files. It is safe
// for concurrent use.
type Server struct {
	certFile, keyFile string

	mu      sync.Mutex
	cert    *tls.Certificate
	stamps  [2]stamp
	checked time.Time
	// failed is the last reload error, while the files stay broken: the
	// previous certificate is served meanwhile.
	failed error
}

type stamp struct {
	mod  time.Time
	size int64
}

// NewServer reads the certificate chain of certFile and its key of keyFile
// (PEM); an error names the file and what is wrong.
func NewServer(certFile, keyFile string) (*Server, error) {
	switch {
	case certFile == "" || keyFile == "":
		return nil, errors.New("a TLS certificate needs both its file and its key's file")
	}
	s := &Server{certFile: certFile, keyFile: keyFile}
	cert, stamps, err := s.load()
	if err != nil {
		return nil, err
	}
	s.cert, s.stamps, s.checked = cert, stamps, time.Now()
	return s, nil
}

func (s *Server) load() (*tls.Certificate, [2]stamp, error) {
	var stamps [2]stamp
	for i, f := range []string{s.certFile, s.keyFile} {
		fi, err := os.Stat(f)
		if err != nil {
			return nil, stamps, fmt.Errorf("TLS certificate: %w", err)
		}
		stamps[i] = stamp{fi.ModTime(), fi.Size()}
	}
	cert, err := tls.LoadX509KeyPair(s.certFile, s.keyFile)
	if err != nil {
		return nil, stamps, fmt.Errorf("TLS certificate %s with key %s: %w", s.certFile, s.keyFile, err)
	}
	return &cert, stamps, nil
}

// Certificate returns the current certificate, read again first when its
// files changed since the last look (at most once a second). While the
// files are unreadable or do not match (a renewal half written), it keeps
// serving the previous certificate.
func (s *Server) Certificate() (*tls.Certificate, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if time.Since(s.checked) < recheck {
		return s.cert, nil
	}
	s.checked = time.Now()
	changed := false
	for i, f := range []string{s.certFile, s.keyFile} {
		fi, err := os.Stat(f)
		if err != nil || fi.ModTime() != s.stamps[i].mod || fi.Size() != s.stamps[i].size {
			changed = true
		}
	}
	if !changed {
		return s.cert, nil
	}
	cert, stamps, err := s.load()
	if err != nil {
		s.failed = err
		return s.cert, nil
	}
	s.cert, s.stamps, s.failed = cert, stamps, nil
	return s.cert, nil
}

// ReloadError is the error of the last attempt to read the changed files
// again, nil when the certificate served is the files' current one.
func (s *Server) ReloadError() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.failed
}

// Config is a server TLS configuration serving the current certificate,
// TLS 1.2 or later.
func (s *Server) Config() *tls.Config {
	return &tls.Config{
		MinVersion:     tls.VersionTLS12,
		GetCertificate: func(*tls.ClientHelloInfo) (*tls.Certificate, error) { return s.Certificate() },
	}
}

// Client returns the transport credentials of a client of the API: TLS,
// verifying the server with the CA certificates of caFile (PEM), or with
// the system's when caFile is empty and useTLS is set; plaintext when
// neither is set.
func Client(caFile string, useTLS bool) (credentials.TransportCredentials, error) {
	if caFile == "" && !useTLS {
		return insecure.NewCredentials(), nil
	}
	cfg := &tls.Config{MinVersion: tls.VersionTLS12}
	if caFile != "" {
		pool, err := caPool(caFile)
		if err != nil {
			return nil, err
		}
		cfg.RootCAs = pool
	}
	return credentials.NewTLS(cfg), nil
}

func caPool(caFile string) (*x509.CertPool, error) {
	pem, err := os.ReadFile(caFile)
	if err != nil {
		return nil, fmt.Errorf("CA file: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("CA file %s holds no PEM certificate", caFile)
	}
	return pool, nil
}

// Pinned returns the transport credentials of a client inside the server's
// own process (intake all): it accepts exactly the certificate the server
// serves (s's current one), whatever its names and issuer, and nothing
// else.
func Pinned(s *Server) credentials.TransportCredentials {
	return credentials.NewTLS(&tls.Config{
		MinVersion: tls.VersionTLS12,
		// The chain is not verified against CAs: the certificate itself
		// is compared below, byte for byte.
		InsecureSkipVerify: true, //nolint:gosec // pinned: VerifyPeerCertificate
		VerifyPeerCertificate: func(raw [][]byte, _ [][]*x509.Certificate) error {
			cert, err := s.Certificate()
			if err != nil {
				return err
			}
			if len(raw) == 0 || len(cert.Certificate) == 0 || !bytes.Equal(raw[0], cert.Certificate[0]) {
				return errors.New("the server's certificate is not the API's own")
			}
			return nil
		},
	})
}

// DialOptions are the dial options of a client of the API: the connection
// secured by transport (plaintext when nil) and perRPC (the caller's
// token) sent with every call (nothing when nil).
func DialOptions(transport credentials.TransportCredentials, perRPC credentials.PerRPCCredentials) []grpc.DialOption {
	if transport == nil {
		transport = insecure.NewCredentials()
	}
	opts := []grpc.DialOption{grpc.WithTransportCredentials(transport)}
	if perRPC != nil {
		opts = append(opts, grpc.WithPerRPCCredentials(perRPC))
	}
	return opts
}
