// Package natsconn connects Intake's services to NATS with the credentials
// and TLS settings of their configuration: a user and password, a token,
// an nkey seed file or a credentials file (JWT), a CA that verifies the
// server's certificate and a client certificate for mutual TLS.
//
// Every service dials NATS through Connect, so they all take the same
// settings (the intake command's --nats-* flags, whose names the errors
// give) and fail the same way: an error says what was refused and which
// setting to check, and never holds a password, token or key.
package natsconn

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nkeys"
)

// Options are the credentials and TLS settings of a NATS connection. The
// zero value connects without credentials, over TLS only when the server
// URL is tls:// or the server requires it (verified against the system's
// CAs).
//
// At most one authentication method may be set: User and Password, Token,
// NKeySeedFile or CredsFile (and none of them when the URL holds
// credentials itself).
type Options struct {
	// User and Password authenticate with a user name and its password
	// (the server's authorization.users).
	User     string
	Password string
	// Token authenticates with a token (the server's authorization.token).
	Token string
	// NKeySeedFile is a file holding a user nkey seed ("SU…"); the server
	// lists its public key (authorization.users[].nkey).
	NKeySeedFile string
	// CredsFile is a NATS credentials file (a user JWT and its nkey seed,
	// as nsc makes them), for servers in operator (JWT) mode.
	CredsFile string

	// CAFile holds PEM certificates of the CAs that verify the server's
	// certificate (default: the system's). Setting it turns TLS on.
	CAFile string
	// CertFile and KeyFile are a PEM client certificate and its key, for a
	// server that verifies its clients (mutual TLS). Setting them turns
	// TLS on.
	CertFile string
	KeyFile  string
}

// The intake command's settings, named in the errors.
const (
	userSetting     = "--nats-user"
	passwordSetting = "--nats-password-file or INTAKE_NATS_PASSWORD"
	tokenSetting    = "--nats-token-file or INTAKE_NATS_TOKEN"
	nkeySetting     = "--nats-nkey-file"
	credsSetting    = "--nats-creds-file"
	caSetting       = "--nats-ca-file"
	certSetting     = "--nats-cert-file"
	keySetting      = "--nats-key-file"
)

// methods are the authentication methods o sets, by their settings.
func (o Options) methods() []string {
	var m []string
	if o.User != "" || o.Password != "" {
		m = append(m, userSetting+" and its password")
	}
	if o.Token != "" {
		m = append(m, tokenSetting)
	}
	if o.NKeySeedFile != "" {
		m = append(m, nkeySetting)
	}
	if o.CredsFile != "" {
		m = append(m, credsSetting)
	}
	return m
}

// HasCredentials reports whether o sets an authentication method.
func (o Options) HasCredentials() bool { return len(o.methods()) > 0 }

// HasTLS reports whether o sets TLS files, which turn TLS on.
func (o Options) HasTLS() bool { return o.CAFile != "" || o.CertFile != "" || o.KeyFile != "" }

// Validate checks that o sets at most one authentication method, each
// completely, and that its files are readable and hold what they should.
// Its errors name the settings and files, never a secret.
func (o Options) Validate() error {
	if m := o.methods(); len(m) > 1 {
		return fmt.Errorf("NATS credentials: set one authentication method, not %s", strings.Join(m, " and "))
	}
	switch {
	case o.User == "" && o.Password != "":
		return fmt.Errorf("NATS credentials: a password (%s) needs a user: set %s", passwordSetting, userSetting)
	case o.User != "" && o.Password == "":
		return fmt.Errorf("NATS credentials: user %q needs a password: set %s", o.User, passwordSetting)
	case o.CertFile != "" && o.KeyFile == "":
		return fmt.Errorf("NATS TLS: the client certificate %s (%s) needs its key: set %s", o.CertFile, certSetting, keySetting)
	case o.CertFile == "" && o.KeyFile != "":
		return fmt.Errorf("NATS TLS: the client key %s (%s) needs its certificate: set %s", o.KeyFile, keySetting, certSetting)
	}
	if o.NKeySeedFile != "" {
		if err := checkSeedFile(o.NKeySeedFile); err != nil {
			return fmt.Errorf("NATS nkey seed file (%s): %w", nkeySetting, err)
		}
	}
	if o.CredsFile != "" {
		if err := checkCredsFile(o.CredsFile); err != nil {
			return fmt.Errorf("NATS credentials file (%s): %w", credsSetting, err)
		}
	}
	if o.CAFile != "" {
		b, err := os.ReadFile(o.CAFile)
		if err != nil {
			return fmt.Errorf("NATS CA file (%s): %w", caSetting, err)
		}
		if !x509.NewCertPool().AppendCertsFromPEM(b) {
			return fmt.Errorf("NATS CA file (%s) %s holds no PEM certificate", caSetting, o.CAFile)
		}
	}
	if o.CertFile != "" {
		if _, err := tls.LoadX509KeyPair(o.CertFile, o.KeyFile); err != nil {
			return fmt.Errorf("NATS client certificate %s and key %s (%s, %s): %w", o.CertFile, o.KeyFile, certSetting, keySetting, err)
		}
	}
	return nil
}

// checkSeedFile checks that file holds a user nkey seed.
func checkSeedFile(file string) error {
	b, err := os.ReadFile(file)
	if err != nil {
		return err
	}
	defer wipe(b)
	kp, err := nkeys.ParseDecoratedNKey(b)
	if err != nil {
		return fmt.Errorf("%s holds no nkey seed: %w", file, err)
	}
	defer kp.Wipe()
	pub, err := kp.PublicKey()
	if err != nil || !nkeys.IsValidPublicUserKey(pub) {
		return fmt.Errorf("%s holds no user nkey seed (SU…)", file)
	}
	return nil
}

// checkCredsFile checks that file holds a user JWT and its seed.
func checkCredsFile(file string) error {
	b, err := os.ReadFile(file)
	if err != nil {
		return err
	}
	defer wipe(b)
	// ParseDecoratedJWT returns undecorated content as it is.
	if tok, err := nkeys.ParseDecoratedJWT(b); err != nil || strings.Count(tok, ".") != 2 {
		return fmt.Errorf("%s holds no user JWT (a credentials file as nsc makes it)", file)
	}
	kp, err := nkeys.ParseDecoratedNKey(b)
	if err != nil {
		return fmt.Errorf("%s holds no nkey seed: %w", file, err)
	}
	kp.Wipe()
	return nil
}

func wipe(b []byte) {
	for i := range b {
		b[i] = 'x'
	}
}

// natsOptions are the nats.go options of o.
func (o Options) natsOptions() ([]nats.Option, error) {
	var opts []nats.Option
	switch {
	case o.User != "":
		opts = append(opts, nats.UserInfo(o.User, o.Password))
	case o.Token != "":
		opts = append(opts, nats.Token(o.Token))
	case o.NKeySeedFile != "":
		opt, err := nats.NkeyOptionFromSeed(o.NKeySeedFile)
		if err != nil {
			return nil, fmt.Errorf("NATS nkey seed file (%s) %s: %w", nkeySetting, o.NKeySeedFile, err)
		}
		opts = append(opts, opt)
	case o.CredsFile != "":
		opts = append(opts, nats.UserCredentials(o.CredsFile))
	}
	if o.HasTLS() {
		opts = append(opts, nats.Secure(&tls.Config{MinVersion: tls.VersionTLS12}))
	}
	if o.CAFile != "" {
		opts = append(opts, nats.RootCAs(o.CAFile))
	}
	if o.CertFile != "" {
		opts = append(opts, nats.ClientCert(o.CertFile, o.KeyFile))
	}
	return opts, nil
}

// Connect dials the NATS server(s) of url (comma-separated for several)
// with o's credentials and TLS, names the connection name and reconnects
// forever; extra options come last (and win). It gives up when ctx ends.
//
// Its errors start with "connect to NATS at URL" (the URL without
// credentials) and say what failed: the credentials the server refused
// and the setting to check, a certificate the CA does not verify, a
// server without TLS, a file that cannot be read.
func Connect(ctx context.Context, url string, o Options, name string, extra ...nats.Option) (*nats.Conn, error) {
	where := "connect to NATS at " + Redact(url)
	if strings.TrimSpace(url) == "" {
		return nil, errors.New("connect to NATS: no server URL")
	}
	if err := o.Validate(); err != nil {
		return nil, fmt.Errorf("%s: %w", where, err)
	}
	if urlHasCredentials(url) && o.HasCredentials() {
		return nil, fmt.Errorf("%s: the URL holds credentials, and so does %s: set one", where, strings.Join(o.methods(), " and "))
	}
	opts, err := o.natsOptions()
	if err != nil {
		return nil, fmt.Errorf("%s: %w", where, err)
	}
	opts = append([]nats.Option{nats.Name(name), nats.MaxReconnects(-1)}, opts...)
	opts = append(opts, extra...)

	type result struct {
		nc  *nats.Conn
		err error
	}
	done := make(chan result, 1)
	go func() {
		nc, err := nats.Connect(url, opts...)
		done <- result{nc, err}
	}()
	select {
	case r := <-done:
		if r.err != nil {
			return nil, fmt.Errorf("%s: %w", where, explain(r.err, o, url))
		}
		return r.nc, nil
	case <-ctx.Done():
		go func() { // close the connection that may still come
			if r := <-done; r.nc != nil {
				r.nc.Close()
			}
		}()
		return nil, fmt.Errorf("%s: %w", where, ctx.Err())
	}
}

// explainedError is a connection error with what to check.
type explainedError struct {
	err  error
	hint string
}

func (e *explainedError) Error() string { return e.err.Error() + ": " + e.hint }
func (e *explainedError) Unwrap() error { return e.err }

// explain adds to err what failed and which setting to check.
func explain(err error, o Options, url string) error {
	hint := ""
	var (
		unknownCA x509.UnknownAuthorityError
		hostname  x509.HostnameError
		invalid   x509.CertificateInvalidError
	)
	switch {
	case errors.Is(err, nats.ErrAuthorization):
		hint = refused(o, url)
	case errors.Is(err, nats.ErrAuthExpired), errors.Is(err, nats.ErrAuthRevoked), errors.Is(err, nats.ErrAccountAuthExpired):
		hint = "the server no longer accepts these credentials (expired or revoked): renew them"
		if m := o.methods(); len(m) > 0 {
			hint += " (" + m[0] + ")"
		}
	case errors.As(err, &unknownCA):
		if o.CAFile != "" {
			hint = fmt.Sprintf("the server's certificate is not signed by a CA of %s (%s)", o.CAFile, caSetting)
		} else {
			hint = fmt.Sprintf("the server's certificate is not signed by a CA this system trusts: give its CA with %s", caSetting)
		}
	case errors.As(err, &hostname):
		hint = fmt.Sprintf("the server's certificate is not valid for %s: use a host name of the certificate in the URL", hostname.Host)
	case errors.As(err, &invalid):
		hint = "the server's certificate is not valid (expired, or not for a server)"
	case errors.Is(err, nats.ErrSecureConnWanted):
		hint = fmt.Sprintf("the server does not offer TLS, which the settings ask for (a tls:// URL, %s or %s)", caSetting, certSetting)
	case errors.Is(err, nats.ErrSecureConnRequired):
		hint = fmt.Sprintf("the server requires TLS: use a tls:// URL and %s", caSetting)
	case o.CertFile != "" && clientCertRefused(err):
		hint = fmt.Sprintf("the server refused the client certificate %s (%s): is it signed by a CA the server trusts, and for client use?", o.CertFile, certSetting)
	case o.CertFile == "" && clientCertRefused(err):
		// TLS 1.3 sends the server's refusal after the handshake: the
		// client sees either the alert ("certificate required") or, when
		// it writes first, the closed connection.
		hint = fmt.Sprintf("the server requires a client certificate: set %s and %s", certSetting, keySetting)
	case errors.Is(err, nats.ErrNoServers):
		hint = "no server answered at that address (is NATS running there, and reachable from here?)"
	default:
		return err
	}
	return &explainedError{err: err, hint: hint}
}

// clientCertRefused reports whether err is a TLS server's refusal of the
// client's certificate: an alert, or the connection closed right after the
// handshake (TLS 1.3 sends the alert after it). A client whose certificate
// is not of a CA the server asks for sends none: "certificate required".
func clientCertRefused(err error) bool {
	msg := err.Error()
	for _, s := range []string{"bad certificate", "unknown certificate authority", "certificate unknown", "certificate required", "closed by remote after TLS handshake"} {
		if strings.Contains(msg, s) {
			return true
		}
	}
	return false
}

// refused says which credentials the server refused and what to check.
func refused(o Options, url string) string {
	switch {
	case o.User != "":
		return fmt.Sprintf("the server refused user %q and its password (check %s and %s)", o.User, userSetting, passwordSetting)
	case o.Token != "":
		return fmt.Sprintf("the server refused the token (check %s)", tokenSetting)
	case o.NKeySeedFile != "":
		return fmt.Sprintf("the server refused the nkey of %s (check %s: the server must list its public key)", o.NKeySeedFile, nkeySetting)
	case o.CredsFile != "":
		return fmt.Sprintf("the server refused the credentials of %s (check %s)", o.CredsFile, credsSetting)
	case urlHasCredentials(url):
		return "the server refused the credentials in the URL"
	}
	return fmt.Sprintf("the server requires credentials: set %s with %s, %s, %s or %s",
		userSetting, passwordSetting, tokenSetting, nkeySetting, credsSetting)
}

// Redact is url (comma-separated URLs) with any credentials replaced by
// "REDACTED", for logs and errors.
func Redact(url string) string {
	parts := strings.Split(url, ",")
	for i, p := range parts {
		at := strings.LastIndex(p, "@")
		if at < 0 {
			continue
		}
		start := 0
		if s := strings.Index(p, "://"); s >= 0 && s < at {
			start = s + len("://")
		}
		parts[i] = p[:start] + "REDACTED" + p[at:]
	}
	return strings.Join(parts, ",")
}

// urlHasCredentials reports whether a URL of url holds credentials.
func urlHasCredentials(url string) bool {
	return strings.Contains(url, "@")
}
