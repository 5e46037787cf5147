package cli

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"strings"

	"github.com/intakehq/intake/pkg/natsconn"
)

// NATS credentials and TLS (pkg/natsconn): every command that dials NATS
// (--nats-url) takes
//
//   - a user and password: --nats-user with --nats-password-file or
//     INTAKE_NATS_PASSWORD (--nats-password, which ps shows);
//   - or a token: --nats-token-file or INTAKE_NATS_TOKEN;
//   - or an nkey seed file (--nats-nkey-file) or a credentials file
//     (--nats-creds-file, operator/JWT mode);
//   - and TLS: --nats-ca-file (the CA of the server's certificate),
//     --nats-cert-file and --nats-key-file (mutual TLS). A tls:// URL
//     turns TLS on with the system's CAs.
//
// Secrets come from files or the environment, as the API tokens do
// (auth.go), and appear in no error.

// natsFlags are the NATS credential and TLS settings.
type natsFlags struct {
	user, password, passwordFile string
	token, tokenFile             string
	nkeyFile, credsFile          string
	caFile, certFile, keyFile    string

	// conn is what the settings give, once validate has read the files.
	conn natsconn.Options
}

// natsAuthFlags registers the NATS credential and TLS flags.
func (o *options) natsAuthFlags(fs *flag.FlagSet) {
	n := &o.nats
	fs.StringVar(&n.user, "nats-user", "", "NATS user name, with its password (--nats-password-file or INTAKE_NATS_PASSWORD)")
	fs.StringVar(&n.passwordFile, "nats-password-file", "", "file holding the NATS user's password (its first line)")
	fs.StringVar(&n.password, "nats-password", "",
		"the NATS user's password itself: prefer the environment variable (e.g. from a Kubernetes Secret) to the flag, which shows in ps")
	fs.StringVar(&n.tokenFile, "nats-token-file", "", "file holding the NATS authentication token (its first line), instead of a user")
	fs.StringVar(&n.token, "nats-token", "",
		"the NATS token itself: prefer the environment variable to the flag, which shows in ps")
	fs.StringVar(&n.nkeyFile, "nats-nkey-file", "", "file holding a NATS user nkey seed (SU…), whose public key the server lists, instead of a user")
	fs.StringVar(&n.credsFile, "nats-creds-file", "", "NATS credentials file (user JWT and seed, as nsc makes it) for a server in operator mode, instead of a user")
	fs.StringVar(&n.caFile, "nats-ca-file", "",
		"PEM file of the CA(s) that verify the NATS server's certificate; turns TLS on (a tls:// URL alone verifies with the system's CAs)")
	fs.StringVar(&n.certFile, "nats-cert-file", "", "PEM client certificate for NATS mutual TLS, with --nats-key-file; turns TLS on")
	fs.StringVar(&n.keyFile, "nats-key-file", "", "PEM key of --nats-cert-file")
}

// validateNATS reads the NATS secrets from their files or the environment
// and checks the settings (natsconn.Options.Validate): at most one
// authentication method, readable files.
func (o *options) validateNATS(fs *flag.FlagSet) error {
	if fs.Lookup("nats-user") == nil {
		return nil
	}
	n := &o.nats
	password, err := readSecret(n.password, n.passwordFile, "INTAKE_NATS_PASSWORD (--nats-password)", "--nats-password-file", "password")
	if err != nil {
		return err
	}
	token, err := readSecret(n.token, n.tokenFile, "INTAKE_NATS_TOKEN (--nats-token)", "--nats-token-file", "token")
	if err != nil {
		return err
	}
	n.conn = natsconn.Options{
		User: n.user, Password: password, Token: token,
		NKeySeedFile: n.nkeyFile, CredsFile: n.credsFile,
		CAFile: n.caFile, CertFile: n.certFile, KeyFile: n.keyFile,
	}
	if fs.Lookup("nats-store") != nil && o.natsURL == "" && (n.conn.HasCredentials() || n.conn.HasTLS()) {
		return errors.New("the NATS credential and TLS flags (--nats-user, --nats-ca-file, …) are for an external NATS server: set --nats-url too (the embedded server takes no credentials)")
	}
	return n.conn.Validate()
}

// readSecret is a secret setting: its value, or the first line of its
// file; "" when neither is set. Errors name the settings and the file,
// never the secret.
func readSecret(value, file, valueName, fileName, what string) (string, error) {
	switch {
	case value != "" && file != "":
		return "", fmt.Errorf("set %s or %s, not both", fileName, valueName)
	case value != "":
		return strings.TrimRight(value, "\r\n"), nil
	case file == "":
		return "", nil
	}
	b, err := os.ReadFile(file)
	if err != nil {
		return "", fmt.Errorf("%s: %w", fileName, err)
	}
	line, _, _ := strings.Cut(string(b), "\n")
	if line = strings.TrimRight(line, "\r"); line == "" {
		return "", fmt.Errorf("%s: %s holds no %s on its first line", fileName, file, what)
	}
	return line, nil
}
