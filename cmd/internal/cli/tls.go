package cli

import (
	"errors"
	"flag"

	"google.golang.org/grpc/credentials"

	"github.com/intakehq/intake/pkg/tlsconf"
)

// TLS of the control API (pkg/tlsconf):
//   - the API (intake api, intake all) serves gRPC and --rest-addr over TLS
//     with --tls-cert-file and --tls-key-file (PEM; read again when the
//     files change, so a renewed certificate needs no restart);
//   - a worker or the scheduler verifies it with --api-ca-file (the CA of
//     the API's certificate) or, with --api-tls, the system's CAs. Over
//     TLS the worker token may go to an address that is not a loopback
//     one without --api-insecure.
//
// The workers inside intake all accept exactly the API's own certificate.
type tlsOptions struct {
	certFile, keyFile string
	apiCAFile         string
	apiTLS            bool
	// server is the API's certificate once newAPI read it; the workers of
	// the same process pin it.
	server *tlsconf.Server
}

// apiTLSFlags are the API's TLS flags (api, all).
func (o *options) apiTLSFlags(fs *flag.FlagSet) {
	fs.StringVar(&o.tls.certFile, "tls-cert-file", "",
		"PEM certificate (chain) the API serves gRPC and --rest-addr with, over TLS; with --tls-key-file. Read again when the file changes (empty: plaintext)")
	fs.StringVar(&o.tls.keyFile, "tls-key-file", "", "PEM private key of --tls-cert-file")
}

// apiClientTLSFlags are a worker's TLS flags toward the API.
func (o *options) apiClientTLSFlags(fs *flag.FlagSet) {
	fs.StringVar(&o.tls.apiCAFile, "api-ca-file", "",
		"PEM file of the CA(s) that verify the control API's certificate; turns TLS to the API on")
	fs.BoolVar(&o.tls.apiTLS, "api-tls", false, "call the control API over TLS, verified with the system's CAs (see --api-ca-file)")
}

// serverTLS reads the API's certificate, nil when none is configured.
func (o *options) serverTLS() (*tlsconf.Server, error) {
	switch {
	case o.tls.certFile == "" && o.tls.keyFile == "":
		return nil, nil
	case o.tls.certFile == "":
		return nil, errors.New("--tls-key-file needs --tls-cert-file (or INTAKE_TLS_CERT_FILE)")
	case o.tls.keyFile == "":
		return nil, errors.New("--tls-cert-file needs --tls-key-file (or INTAKE_TLS_KEY_FILE)")
	}
	s, err := tlsconf.NewServer(o.tls.certFile, o.tls.keyFile)
	if err != nil {
		return nil, err
	}
	o.tls.server = s
	return s, nil
}

// apiTLSOn reports whether a worker calls the API over TLS.
func (o *options) apiTLSOn() bool {
	return o.tls.server != nil || o.tls.apiCAFile != "" || o.tls.apiTLS
}

// apiTransport secures a worker's connection to the API: the API's own
// certificate pinned inside intake all, else the CA settings; nil is
// plaintext.
func (o *options) apiTransport() (credentials.TransportCredentials, error) {
	if o.tls.server != nil {
		return tlsconf.Pinned(o.tls.server), nil
	}
	if !o.apiTLSOn() {
		return nil, nil
	}
	creds, err := tlsconf.Client(o.tls.apiCAFile, o.tls.apiTLS)
	if err != nil {
		return nil, errors.New("--api-ca-file (or INTAKE_API_CA_FILE): " + err.Error())
	}
	return creds, nil
}
