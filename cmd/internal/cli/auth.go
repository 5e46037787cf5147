package cli

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"

	"google.golang.org/grpc/credentials"

	"github.com/intakehq/intake/api"
	"github.com/intakehq/intake/cmd/internal/ctl"
)

// Authentication (api/auth.go): the control API always requires a bearer
// token. It takes a bootstrap admin token and the workers' token from its
// configuration; the workers send their token with every call.
//
//   - intake api needs a bootstrap token (--bootstrap-token-file or
//     INTAKE_BOOTSTRAP_TOKEN) and accepts the worker tokens of
//     --worker-token-file or INTAKE_WORKER_TOKEN (a file may hold several,
//     one a line, for a rotation);
//   - intake fetcher, mapper, loader and scheduler need a worker token (the
//     first line of the file). Without TLS to the API (tls.go) they send
//     it only to a loopback --api-addr unless --api-insecure says the
//     network between is trusted;
//   - intake all needs a bootstrap token too; its workers get a token made
//     up in memory unless one is configured;
//   - intake dev and intake all --dev generate both tokens in their data
//     directory (.dev, .intake) and reuse them on the next start; intake
//     dev also writes the admin token to intakectl's default token file
//     (ctl.DefaultTokenFile) when that holds no other token.

// Files of the generated development tokens, in the data directory.
const (
	devBootstrapTokenFile = "bootstrap-token"
	devWorkerTokenFile    = "worker-token"
)

// devTokenMarker starts the default token file that intake dev writes, so
// that it may replace a token it wrote itself, never one of the user's.
const devTokenMarker = "# intake dev:"

// authOptions are the credential settings.
type authOptions struct {
	bootstrapFile string
	bootstrap     string
	workerFile    string
	worker        string
	apiInsecure   bool
	// bootstrapDevFile is the file of a bootstrap token generated (or
	// reused) in development mode; "" when it was configured.
	bootstrapDevFile string
}

// apiAuthFlags are the credential flags of the API (api, all, dev).
func (o *options) apiAuthFlags(fs *flag.FlagSet) {
	fs.StringVar(&o.auth.bootstrapFile, "bootstrap-token-file", "",
		"file holding the bootstrap admin token (tenant default; at least 32 characters, e.g. openssl rand -base64 32), to make the other tokens with: intakectl token create")
	fs.StringVar(&o.auth.bootstrap, "bootstrap-token", "",
		"the bootstrap admin token itself: prefer the environment variable to the flag, which shows in ps")
	o.workerTokenFlags(fs, "the workers' token(s) the API accepts: one a line, several during a rotation")
}

// workerAuthFlags are the credential flags of a worker.
func (o *options) workerAuthFlags(fs *flag.FlagSet) {
	o.workerTokenFlags(fs, "the token the worker sends to the control API (the first line)")
	fs.BoolVar(&o.auth.apiInsecure, "api-insecure", false,
		"send the worker token to an --api-addr that is not a loopback address in plain text, without TLS (--api-ca-file, --api-tls): on a cluster network you trust")
}

func (o *options) workerTokenFlags(fs *flag.FlagSet, what string) {
	fs.StringVar(&o.auth.workerFile, "worker-token-file", "", "file holding "+what+"; at least 32 characters each")
	fs.StringVar(&o.auth.worker, "worker-token", "",
		"the worker token itself: prefer the environment variable to the flag, which shows in ps")
}

// readTokens returns the tokens of a setting: its value, or the non-empty
// lines of its file; none when neither is set. Errors name the settings
// and files, never a token.
func readTokens(value, file, valueName, fileName string) ([]string, error) {
	switch {
	case value != "" && file != "":
		return nil, fmt.Errorf("set %s or %s, not both", fileName, valueName)
	case value != "":
		return []string{strings.TrimSpace(value)}, nil
	case file == "":
		return nil, nil
	}
	b, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", fileName, err)
	}
	var out []string
	for _, line := range strings.Split(string(b), "\n") {
		if line = strings.TrimSpace(line); line != "" && !strings.HasPrefix(line, "#") {
			out = append(out, line)
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%s: %s holds no token", fileName, file)
	}
	return out, nil
}

func (o *options) bootstrapTokens() ([]string, error) {
	return readTokens(o.auth.bootstrap, o.auth.bootstrapFile, "INTAKE_BOOTSTRAP_TOKEN", "--bootstrap-token-file")
}

func (o *options) workerTokens() ([]string, error) {
	return readTokens(o.auth.worker, o.auth.workerFile, "INTAKE_WORKER_TOKEN", "--worker-token-file")
}

// errNoBootstrapToken: the API cannot start without a bootstrap token.
var errNoBootstrapToken = errors.New("the control API requires a bootstrap admin token: set --bootstrap-token-file FILE or INTAKE_BOOTSTRAP_TOKEN " +
	"(at least 32 characters, e.g. from openssl rand -base64 32; it makes the other tokens: intakectl token create); " +
	"intake dev and intake all --dev generate one")

// apiAuth is the API's AuthConfig from the settings.
func (o *options) apiAuth(log *slog.Logger) (*api.AuthConfig, error) {
	boot, err := o.bootstrapTokens()
	if err != nil {
		return nil, err
	}
	switch {
	case len(boot) == 0:
		return nil, errNoBootstrapToken
	case len(boot) > 1:
		return nil, fmt.Errorf("--bootstrap-token-file %s holds %d tokens: give it one", o.auth.bootstrapFile, len(boot))
	}
	workers, err := o.workerTokens()
	if err != nil {
		return nil, err
	}
	if len(workers) == 0 {
		log.Warn("no worker token configured: the workers cannot report to this API (set --worker-token-file or INTAKE_WORKER_TOKEN, and the same on the workers)")
	}
	return &api.AuthConfig{BootstrapToken: boot[0], WorkerTokens: workers}, nil
}

// workerCredentials are what a worker sends to the API with every call:
// the first worker token.
func (o *options) workerCredentials() (credentials.PerRPCCredentials, error) {
	toks, err := o.workerTokens()
	if err != nil {
		return nil, err
	}
	if len(toks) == 0 {
		return nil, errors.New("a worker token is required to call the control API: set --worker-token-file FILE or INTAKE_WORKER_TOKEN " +
			"(the API must accept it: its --worker-token-file or INTAKE_WORKER_TOKEN)")
	}
	// Over TLS (tls.go) the token is safe on any network.
	if err := ctl.CheckTokenDestination(o.apiAddr, o.auth.apiInsecure || o.apiTLSOn(), "--api-ca-file or --api-tls (TLS), or --api-insecure (or INTAKE_API_INSECURE=true)"); err != nil {
		return nil, fmt.Errorf("--api-addr %w", err)
	}
	return ctl.BearerCredentials(toks[0]), nil
}

// stackAuth settles the tokens of every service in one process: the
// configured ones; in development mode, the ones kept in the data
// directory (generated on the first start); otherwise a bootstrap token
// is required and the workers get one made up for this process.
func (o *options) stackAuth(log *slog.Logger) error {
	boot, err := o.bootstrapTokens()
	if err != nil {
		return err
	}
	workers, err := o.workerTokens()
	if err != nil {
		return err
	}
	dir := filepath.Dir(o.natsStore) // the data directory, as devkeys.go
	if len(boot) == 0 {
		if !o.dev {
			return errNoBootstrapToken
		}
		tok, path, err := devToken(dir, devBootstrapTokenFile)
		if err != nil {
			return err
		}
		o.auth.bootstrap, o.auth.bootstrapDevFile = tok, path
		log.Info("development mode: the bootstrap admin token is kept in the data directory (set INTAKE_BOOTSTRAP_TOKEN to use your own); "+
			"use it with intakectl --token-file "+path+" (or export INTAKE_TOKEN_FILE="+path+")", "file", path)
	}
	if len(workers) == 0 {
		if o.dev {
			tok, path, err := devToken(dir, devWorkerTokenFile)
			if err != nil {
				return err
			}
			o.auth.worker = tok
			log.Info("development mode: the worker token is kept in the data directory, for workers started apart: intake fetcher --worker-token-file "+path, "file", path)
		} else {
			o.auth.worker = newSecret() // only the workers of this process use it
		}
	}
	return nil
}

// newSecret is a random token of 43 characters.
func newSecret() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b) // never fails (crypto/rand)
	return base64.RawURLEncoding.EncodeToString(b)
}

// devToken returns the token kept in dir/name, generating it (mode 0600)
// when there is none, and the file's absolute path.
func devToken(dir, name string) (string, string, error) {
	path, err := filepath.Abs(filepath.Join(dir, name))
	if err != nil {
		return "", "", fmt.Errorf("development token %s: %w", name, err)
	}
	b, err := os.ReadFile(path)
	switch {
	case err == nil:
		if tok := strings.TrimSpace(string(b)); len(tok) >= api.MinConfiguredTokenLength {
			return tok, path, nil
		}
		return "", "", fmt.Errorf("development token %s holds no token of %d characters or more: delete it to generate a new one", path, api.MinConfiguredTokenLength)
	case !errors.Is(err, fs.ErrNotExist):
		return "", "", fmt.Errorf("development token: %w", err)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", "", fmt.Errorf("development token: %w", err)
	}
	tok := newSecret()
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, fs.ErrExist) { // another process made it meanwhile
		return devToken(dir, name)
	}
	if err != nil {
		return "", "", fmt.Errorf("development token: %w", err)
	}
	if _, err := f.WriteString(tok + "\n"); err != nil {
		f.Close()
		return "", "", fmt.Errorf("development token %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return "", "", fmt.Errorf("development token %s: %w", path, err)
	}
	return tok, path, nil
}

// AdminToken is the bootstrap admin token of the stack, once Started.
func (s *stack) AdminToken() string { return s.o.auth.bootstrap }

// installDevToken writes the development admin token (kept in file) to
// intakectl's default token file, unless that holds a token intake dev
// did not write, and returns a line for the banner saying how intakectl
// finds the token.
func installDevToken(lookupEnv func(string) (string, bool), token, file string) string {
	if file == "" {
		return "the configured bootstrap token (--bootstrap-token-file or INTAKE_BOOTSTRAP_TOKEN)"
	}
	def := ctl.DefaultTokenFile(lookupEnv)
	useFile := fmt.Sprintf("%s (for intakectl: export INTAKE_TOKEN_FILE=%s)", file, file)
	if def == "" {
		return useFile
	}
	content := fmt.Sprintf("%s the admin token of %s (kept in %s); intake dev replaces it when it changes\n%s\n",
		devTokenMarker, filepath.Dir(file), file, token)
	old, err := os.ReadFile(def)
	switch {
	case err == nil && bytes.Equal(old, []byte(content)):
		return fmt.Sprintf("%s (intakectl reads it from %s)", file, def)
	case err == nil && !bytes.HasPrefix(old, []byte(devTokenMarker)):
		return fmt.Sprintf("%s; %s holds another token, so for intakectl: export INTAKE_TOKEN_FILE=%s", file, def, file)
	case err != nil && !errors.Is(err, fs.ErrNotExist):
		return fmt.Sprintf("%s (%s: %v; for intakectl: export INTAKE_TOKEN_FILE=%s)", file, def, err, file)
	}
	if err := os.MkdirAll(filepath.Dir(def), 0o700); err != nil {
		return fmt.Sprintf("%s (could not write %s: %v; for intakectl: export INTAKE_TOKEN_FILE=%s)", file, def, err, file)
	}
	if err := os.WriteFile(def, []byte(content), 0o600); err != nil {
		return fmt.Sprintf("%s (could not write %s: %v; for intakectl: export INTAKE_TOKEN_FILE=%s)", file, def, err, file)
	}
	return fmt.Sprintf("%s, written to %s for intakectl", file, def)
}
