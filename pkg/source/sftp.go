package source

import (
	"bufio"
	"bytes"
	"context"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/pkg/sftp"
	"golang.org/x/crypto/ssh"

	intakev1 "github.com/intakehq/intake/proto/gen/intake/v1"
)

// sftpReadBuffer is how much Read asks the server for at once: pkg/sftp
// splits a large read into concurrent requests, so a reader that is read in
// small pieces (not through WriteTo) still streams at full speed.
const sftpReadBuffer = 256 << 10

// sftpClient is the Client of an SFTP connection. It connects on first use
// (Dial does not touch the network) and again after the connection drops;
// it is safe for concurrent use.
//
// Paths are relative to the login directory unless absolute.
//
// No call blocks forever: connecting (TCP, SSH handshake, login, SFTP
// start) is bounded by Options.Timeout, each request (Stat, List, opening a
// file) must be answered within it, and a file being read fails when no data
// arrives for that long. A request that times out, or whose context ends,
// closes the connection (pending requests cannot be abandoned otherwise);
// the next call connects again.
type sftpClient struct {
	addr    string // host:port, as shown in messages
	user    string
	auth    []ssh.AuthMethod
	tried   string // the credentials offered, for messages: "password, publickey"
	pins    *hostKeyPins
	timeout time.Duration

	mu     sync.Mutex
	sess   *sftpSession
	closed bool
}

// sftpSession is one SSH connection with its SFTP channel.
type sftpSession struct {
	ssh  *ssh.Client
	sftp *sftp.Client
	dead chan struct{} // closed when the SSH connection has ended
	// killed is set as soon as kill is called, before dead is closed.
	killed atomic.Bool
}

func (s *sftpSession) kill() {
	s.killed.Store(true)
	_ = s.ssh.Close()
}

func (s *sftpSession) alive() bool {
	if s.killed.Load() {
		return false
	}
	select {
	case <-s.dead:
		return false
	default:
		return true
	}
}

func dialSFTP(_ context.Context, conn *intakev1.SftpConnection, opts Options) (Client, error) {
	host := strings.TrimSuffix(strings.TrimPrefix(strings.TrimSpace(conn.GetHost()), "["), "]")
	if host == "" {
		return nil, Errorf(intakev1.ConnectionErrorKind_CONNECTION_ERROR_KIND_INVALID_CONFIG, false, nil,
			"sftp connection has no host")
	}
	port := int(conn.GetPort())
	switch {
	case port == 0:
		port = 22
	case port < 0 || port > 65535:
		return nil, Errorf(intakev1.ConnectionErrorKind_CONNECTION_ERROR_KIND_INVALID_CONFIG, false, nil,
			"sftp connection to %s: port %d is out of range (1-65535)", host, port)
	}
	c := &sftpClient{
		addr:    net.JoinHostPort(host, strconv.Itoa(port)),
		user:    conn.GetUser(),
		timeout: opts.Timeout,
	}
	if c.timeout <= 0 {
		c.timeout = DefaultTimeout
	}
	if c.user == "" {
		return nil, c.errorf(intakev1.ConnectionErrorKind_CONNECTION_ERROR_KIND_INVALID_CONFIG, false, nil, "no user to log in as")
	}

	var tried []string
	if conn.GetPrivateKey() != "" {
		signer, err := c.parsePrivateKey(conn.GetPrivateKey(), conn.GetPrivateKeyPassphrase())
		if err != nil {
			return nil, err
		}
		c.auth = append(c.auth, ssh.PublicKeys(signer))
		tried = append(tried, "publickey")
	}
	if pw := conn.GetPassword(); pw != "" {
		c.auth = append(c.auth, ssh.Password(pw), ssh.KeyboardInteractive(passwordChallenge(pw)))
		tried = append([]string{"password"}, tried...)
	}
	if len(c.auth) == 0 {
		return nil, c.errorf(intakev1.ConnectionErrorKind_CONNECTION_ERROR_KIND_INVALID_CONFIG, false, nil,
			"no password or private key for user %q", c.user)
	}
	c.tried = strings.Join(tried, ", ")

	if strings.TrimSpace(conn.GetHostKey()) == "" {
		return nil, Errorf(intakev1.ConnectionErrorKind_CONNECTION_ERROR_KIND_INVALID_CONFIG, false, nil,
			"sftp connection to %s has no pinned host key; add the server's key (ssh-keyscan -p %d %s) or its SHA256 fingerprint",
			c.addr, port, host)
	}
	pins, err := parseHostKeyPins(conn.GetHostKey())
	if err != nil {
		return nil, c.errorf(intakev1.ConnectionErrorKind_CONNECTION_ERROR_KIND_INVALID_CONFIG, false, nil,
			"host key: %v", err)
	}
	c.pins = pins
	return c, nil
}

// errorf makes an *Error whose message starts with "sftp host:port: ".
func (c *sftpClient) errorf(kind intakev1.ConnectionErrorKind, transient bool, err error, format string, args ...any) *Error {
	return Errorf(kind, transient, err, "sftp %s: %s", c.addr, fmt.Sprintf(format, args...))
}

// parsePrivateKey reads a PEM or OpenSSH private key, decrypting it with
// passphrase when it is encrypted. Messages never quote the key.
func (c *sftpClient) parsePrivateKey(key, passphrase string) (ssh.Signer, error) {
	pemBytes := []byte(strings.TrimSpace(key))
	if !bytes.Contains(pemBytes, []byte("\n")) && bytes.Contains(pemBytes, []byte(`\n`)) {
		// Pasted from a JSON string or an environment variable.
		pemBytes = bytes.ReplaceAll(pemBytes, []byte(`\n`), []byte("\n"))
	}
	pemBytes = append(bytes.ReplaceAll(pemBytes, []byte("\r\n"), []byte("\n")), '\n')
	signer, err := ssh.ParsePrivateKey(pemBytes)
	var missing *ssh.PassphraseMissingError
	switch {
	case err == nil:
		return signer, nil
	case errors.As(err, &missing) && passphrase == "":
		return nil, c.errorf(intakev1.ConnectionErrorKind_CONNECTION_ERROR_KIND_INVALID_CONFIG, false, nil,
			"the private key is encrypted; set its passphrase")
	case errors.As(err, &missing):
		signer, err = ssh.ParsePrivateKeyWithPassphrase(pemBytes, []byte(passphrase))
		if errors.Is(err, x509.IncorrectPasswordError) {
			return nil, c.errorf(intakev1.ConnectionErrorKind_CONNECTION_ERROR_KIND_INVALID_CONFIG, false, nil,
				"the private key's passphrase is wrong")
		}
		if err == nil {
			return signer, nil
		}
	}
	return nil, c.errorf(intakev1.ConnectionErrorKind_CONNECTION_ERROR_KIND_INVALID_CONFIG, false, nil,
		"the private key cannot be read (%s); give a PEM or OpenSSH private key", keyParseReason(err))
}

// keyParseReason describes a key parse error without quoting the key.
func keyParseReason(err error) string {
	msg := strings.TrimPrefix(err.Error(), "ssh: ")
	if len(msg) > 80 {
		msg = "invalid key data"
	}
	return msg
}

// passwordChallenge answers keyboard-interactive prompts (servers that
// take passwords only through PAM) with the password.
func passwordChallenge(password string) ssh.KeyboardInteractiveChallenge {
	return func(_, _ string, questions []string, echos []bool) ([]string, error) {
		answers := make([]string, len(questions))
		for i := range questions {
			if !echos[i] {
				answers[i] = password
			}
		}
		return answers, nil
	}
}

// Check implements Client: connect, log in and stat the login directory.
func (c *sftpClient) Check(ctx context.Context) error {
	_, err := c.Stat(ctx, ".")
	return err
}

// Stat implements Client (symbolic links are followed).
func (c *sftpClient) Stat(ctx context.Context, p string) (FileInfo, error) {
	if p == "" {
		p = "."
	}
	var st os.FileInfo
	err := c.do(ctx, "stat "+p, func(s *sftp.Client) (err error) {
		st, err = s.Stat(p)
		return err
	})
	if err != nil {
		return FileInfo{}, err
	}
	return FileInfo{Path: p, Size: st.Size(), ModTime: st.ModTime(), Dir: st.IsDir()}, nil
}

// List implements Client: the entries of one directory, sorted by name,
// directories flagged; pageToken is the last name of the previous page.
// limit <= 0 means no limit. Symbolic links are shown as what they point
// to.
func (c *sftpClient) List(ctx context.Context, dir, pageToken string, limit int) ([]FileInfo, string, error) {
	clean := dir
	if clean == "" {
		clean = "."
	}
	var entries []os.FileInfo
	err := c.do(ctx, "list "+clean, func(s *sftp.Client) (err error) {
		entries, err = s.ReadDirContext(ctx, clean)
		return err
	})
	if err != nil {
		if KindOf(err) == intakev1.ConnectionErrorKind_CONNECTION_ERROR_KIND_FILE_NOT_FOUND {
			// OpenSSH answers "no such file" for a file too.
			if fi, serr := c.Stat(ctx, clean); serr == nil && !fi.Dir {
				return nil, "", c.errorf(intakev1.ConnectionErrorKind_CONNECTION_ERROR_KIND_FILE_NOT_FOUND, false, err,
					"list %s: it is a file, not a directory", clean)
			}
		}
		return nil, "", err
	}
	sort.Slice(entries, func(i, j int) bool { return entries[i].Name() < entries[j].Name() })
	start := sort.Search(len(entries), func(i int) bool { return entries[i].Name() > pageToken })
	entries = entries[start:]
	next := ""
	if limit > 0 && len(entries) > limit {
		entries = entries[:limit]
		next = entries[limit-1].Name()
	}
	out := make([]FileInfo, 0, len(entries))
	for _, e := range entries {
		p := e.Name()
		if clean != "." {
			p = path.Join(dir, e.Name())
		}
		fi := FileInfo{Path: p, Size: e.Size(), ModTime: e.ModTime(), Dir: e.IsDir()}
		if e.Mode()&os.ModeSymlink != 0 {
			// A dangling or unreadable link stays listed as a file.
			if target, err := c.Stat(ctx, p); err == nil {
				fi.Size, fi.ModTime, fi.Dir = target.Size, target.ModTime, target.Dir
			}
		}
		out = append(out, fi)
	}
	return out, next, nil
}

// Open implements Client. SFTP has no validators: cond is ignored and the
// file is always read.
func (c *sftpClient) Open(ctx context.Context, p string, _ Conditional) (io.ReadCloser, Meta, error) {
	if p == "" {
		return nil, Meta{}, c.errorf(intakev1.ConnectionErrorKind_CONNECTION_ERROR_KIND_INVALID_CONFIG, false, nil, "no file path to open")
	}
	var (
		f    *sftp.File
		st   os.FileInfo
		sess *sftpSession
	)
	err := c.doSession(ctx, "open "+p, func(s *sftpSession) (err error) {
		sess = s
		if f, err = s.sftp.Open(p); err != nil {
			return err
		}
		if st, err = f.Stat(); err != nil {
			_ = f.Close()
		}
		return err
	})
	if err != nil {
		return nil, Meta{}, err
	}
	if st.IsDir() {
		_ = c.closeFile(f, sess)
		return nil, Meta{}, c.errorf(intakev1.ConnectionErrorKind_CONNECTION_ERROR_KIND_FILE_NOT_FOUND, false, nil,
			"%s is a directory, not a file", p)
	}
	r := &sftpFileReader{c: c, sess: sess, f: f, path: p, ctx: ctx}
	r.timer = time.AfterFunc(c.timeout, func() {
		r.idle.Store(true)
		sess.kill()
	})
	r.timer.Stop()
	r.stopCtx = context.AfterFunc(ctx, sess.kill)
	meta := Meta{FileInfo: FileInfo{Path: p, Size: st.Size(), ModTime: st.ModTime()}}
	return &sftpReader{Reader: bufio.NewReaderSize(r, sftpReadBuffer), file: r}, meta, nil
}

// Close implements Client.
func (c *sftpClient) Close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.closed = true
	if c.sess != nil {
		c.sess.kill() // first: closing the SFTP channel of a stalled server could block
		_ = c.sess.sftp.Close()
		c.sess = nil
	}
	return nil
}

// do runs one request with the SFTP client of a live session.
func (c *sftpClient) do(ctx context.Context, what string, fn func(*sftp.Client) error) error {
	return c.doSession(ctx, what, func(s *sftpSession) error { return fn(s.sftp) })
}

// doSession runs one request on a live session (connecting when needed),
// closing the session when the server does not answer within the timeout
// or ctx ends, and turns its error into an *Error.
func (c *sftpClient) doSession(ctx context.Context, what string, fn func(*sftpSession) error) error {
	sess, err := c.session(ctx)
	if err != nil {
		return err
	}
	var timedOut atomic.Bool
	timer := time.AfterFunc(c.timeout, func() {
		timedOut.Store(true)
		sess.kill()
	})
	stop := context.AfterFunc(ctx, sess.kill)
	err = fn(sess)
	timer.Stop()
	stop()
	if err == nil {
		return nil
	}
	switch {
	case ctx.Err() != nil:
		return c.ctxError(ctx, what)
	case timedOut.Load():
		return c.errorf(intakev1.ConnectionErrorKind_CONNECTION_ERROR_KIND_TIMEOUT, true, err,
			"%s: no answer from the server within %s", what, c.timeout)
	}
	return c.opError(sess, what, err)
}

// opError classifies the error of an SFTP request.
func (c *sftpClient) opError(sess *sftpSession, what string, err error) *Error {
	var status *sftp.StatusError
	switch {
	case errors.Is(err, os.ErrNotExist):
		return c.errorf(intakev1.ConnectionErrorKind_CONNECTION_ERROR_KIND_FILE_NOT_FOUND, false, err,
			"%s: no such file or directory", what)
	case errors.Is(err, os.ErrPermission):
		return c.errorf(intakev1.ConnectionErrorKind_CONNECTION_ERROR_KIND_PERMISSION_DENIED, false, err,
			"%s: permission denied for user %q", what, c.user)
	case errors.As(err, &status):
		return c.errorf(intakev1.ConnectionErrorKind_CONNECTION_ERROR_KIND_OTHER, false, err,
			"%s: the server refused: %s", what, sftpStatusText(status))
	case !sess.alive(), errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF),
		errors.Is(err, net.ErrClosed), errors.Is(err, sftp.ErrSSHFxConnectionLost):
		return c.errorf(intakev1.ConnectionErrorKind_CONNECTION_ERROR_KIND_OTHER, true, err,
			"%s: the connection was lost", what)
	}
	return c.errorf(intakev1.ConnectionErrorKind_CONNECTION_ERROR_KIND_OTHER, false, err, "%s: %v", what, err)
}

// sftpStatusText is an SFTP status error's message from the server, or
// its code when it sent none.
func sftpStatusText(s *sftp.StatusError) string {
	msg := strings.TrimPrefix(s.Error(), "sftp: ")
	if i := strings.Index(msg, " (SSH_FX_"); i > 0 {
		msg = msg[:i]
	}
	return strings.Trim(msg, `" `)
}

func (c *sftpClient) ctxError(ctx context.Context, what string) *Error {
	kind := intakev1.ConnectionErrorKind_CONNECTION_ERROR_KIND_OTHER
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		kind = intakev1.ConnectionErrorKind_CONNECTION_ERROR_KIND_TIMEOUT
	}
	return c.errorf(kind, false, ctx.Err(), "%s: %v", what, ctx.Err())
}

// session returns the live session, connecting when there is none.
func (c *sftpClient) session(ctx context.Context) (*sftpSession, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return nil, c.errorf(intakev1.ConnectionErrorKind_CONNECTION_ERROR_KIND_OTHER, false, net.ErrClosed, "the client is closed")
	}
	if c.sess != nil && c.sess.alive() {
		return c.sess, nil
	}
	if c.sess != nil {
		_ = c.sess.sftp.Close()
		c.sess = nil
	}
	sess, err := c.connect(ctx)
	if err != nil {
		return nil, err
	}
	c.sess = sess
	return sess, nil
}

// connect dials, checks the host key, logs in and starts SFTP. With
// fingerprint pins and a server that has several host keys, it asks for
// each kind of key in turn until one matches.
func (c *sftpClient) connect(ctx context.Context) (*sftpSession, error) {
	algos := c.pins.algorithms()
	var presented []ssh.PublicKey
	for {
		sess, key, err := c.connectWith(ctx, algos)
		if key == nil {
			var algErr *ssh.AlgorithmNegotiationError
			if len(presented) > 0 && errors.As(err, &algErr) && algErr.What == "host key" {
				// No other kind of key left on the server.
				return nil, c.mismatchError(presented)
			}
			return sess, err
		}
		// The server presented a key that is not pinned.
		presented = append(presented, key)
		rest := c.pins.retryAlgorithms(algos, key)
		if rest == nil {
			return nil, c.mismatchError(presented)
		}
		algos = rest
	}
}

// connectWith makes one connection offering the host key algorithms algos
// (nil: the defaults). A server key that is not pinned is returned (with a
// nil session and error) so that connect may try another algorithm.
func (c *sftpClient) connectWith(ctx context.Context, algos []string) (*sftpSession, ssh.PublicKey, error) {
	if ctx.Err() != nil {
		return nil, nil, c.ctxError(ctx, "connect")
	}
	dialer := net.Dialer{Timeout: c.timeout, KeepAlive: 30 * time.Second}
	nc, err := dialer.DialContext(ctx, "tcp", c.addr)
	if err != nil {
		return nil, nil, c.dialError(ctx, err)
	}
	var unpinned ssh.PublicKey
	config := &ssh.ClientConfig{
		User: c.user,
		Auth: c.auth,
		HostKeyCallback: func(_ string, _ net.Addr, key ssh.PublicKey) error {
			if c.pins.match(key) {
				return nil
			}
			unpinned = key
			return errHostKeyMismatch
		},
		HostKeyAlgorithms: algos,
		ClientVersion:     "SSH-2.0-intake",
	}
	// The deadline bounds the handshake, the login and starting SFTP; ctx
	// ending interrupts them.
	_ = nc.SetDeadline(time.Now().Add(c.timeout))
	stop := context.AfterFunc(ctx, func() { _ = nc.SetDeadline(time.Unix(1, 0)) })
	cc, chans, reqs, err := ssh.NewClientConn(nc, c.addr, config)
	if err != nil {
		stop()
		_ = nc.Close()
		if unpinned != nil {
			return nil, unpinned, nil
		}
		if ctx.Err() != nil {
			return nil, nil, c.ctxError(ctx, "connect")
		}
		return nil, nil, c.handshakeError(err)
	}
	client := ssh.NewClient(cc, chans, reqs)
	sc, err := sftp.NewClient(client, sftp.UseConcurrentReads(true), sftp.UseFstat(true))
	if !stop() || ctx.Err() != nil {
		if sc != nil {
			_ = sc.Close()
		}
		_ = client.Close()
		return nil, nil, c.ctxError(ctx, "connect")
	}
	if err != nil {
		_ = client.Close()
		var netErr net.Error
		if errors.As(err, &netErr) && netErr.Timeout() {
			return nil, nil, c.errorf(intakev1.ConnectionErrorKind_CONNECTION_ERROR_KIND_TIMEOUT, true, err,
				"logged in as %q, but the SFTP service did not start within %s", c.user, c.timeout)
		}
		return nil, nil, c.errorf(intakev1.ConnectionErrorKind_CONNECTION_ERROR_KIND_OTHER, false, err,
			"logged in as %q, but the server offers no SFTP service: %v", c.user, err)
	}
	_ = nc.SetDeadline(time.Time{})
	sess := &sftpSession{ssh: client, sftp: sc, dead: make(chan struct{})}
	go func() {
		_ = client.Wait()
		close(sess.dead)
	}()
	return sess, nil, nil
}

var errHostKeyMismatch = errors.New("host key mismatch")

// dialError classifies a TCP connect error.
func (c *sftpClient) dialError(ctx context.Context, err error) *Error {
	var dnsErr *net.DNSError
	var netErr net.Error
	host, _, _ := net.SplitHostPort(c.addr)
	switch {
	case ctx.Err() != nil:
		return c.ctxError(ctx, "connect")
	case errors.As(err, &dnsErr):
		if dnsErr.IsNotFound {
			return c.errorf(intakev1.ConnectionErrorKind_CONNECTION_ERROR_KIND_UNKNOWN_HOST, false, err,
				"cannot resolve host %s: no such host", host)
		}
		return c.errorf(intakev1.ConnectionErrorKind_CONNECTION_ERROR_KIND_UNKNOWN_HOST, dnsErr.IsTemporary || dnsErr.IsTimeout, err,
			"cannot resolve host %s: %v", host, dnsErr.Err)
	case errors.Is(err, syscall.ECONNREFUSED):
		return c.errorf(intakev1.ConnectionErrorKind_CONNECTION_ERROR_KIND_CONNECTION_REFUSED, true, err,
			"connection refused (no SSH server listens on this port)")
	case errors.Is(err, syscall.EHOSTUNREACH), errors.Is(err, syscall.ENETUNREACH):
		return c.errorf(intakev1.ConnectionErrorKind_CONNECTION_ERROR_KIND_OTHER, true, err, "host unreachable")
	case errors.As(err, &netErr) && netErr.Timeout():
		return c.errorf(intakev1.ConnectionErrorKind_CONNECTION_ERROR_KIND_TIMEOUT, true, err,
			"cannot connect within %s", c.timeout)
	}
	return c.errorf(intakev1.ConnectionErrorKind_CONNECTION_ERROR_KIND_OTHER, true, err, "cannot connect: %v", unwrapOpError(err))
}

// unwrapOpError drops the net.OpError prefix ("dial tcp 1.2.3.4:22: ").
func unwrapOpError(err error) error {
	var opErr *net.OpError
	if errors.As(err, &opErr) && opErr.Err != nil {
		return opErr.Err
	}
	return err
}

// handshakeError classifies an SSH handshake or login error.
func (c *sftpClient) handshakeError(err error) *Error {
	var netErr net.Error
	var algErr *ssh.AlgorithmNegotiationError
	msg := err.Error()
	switch {
	case strings.Contains(msg, "unable to authenticate"):
		return c.errorf(intakev1.ConnectionErrorKind_CONNECTION_ERROR_KIND_AUTHENTICATION_FAILED, false, err,
			"authentication failed for user %q (tried %s)", c.user, c.tried)
	case errors.As(err, &algErr) && algErr.What == "host key":
		return c.errorf(intakev1.ConnectionErrorKind_CONNECTION_ERROR_KIND_HOST_KEY_MISMATCH, false, err,
			"host key mismatch: the server has no host key of the pinned type (it offers %s); expected %s",
			strings.Join(algErr.RequestedAlgorithms, ", "), c.pins.describe())
	case errors.As(err, &algErr):
		return c.errorf(intakev1.ConnectionErrorKind_CONNECTION_ERROR_KIND_OTHER, false, err,
			"SSH handshake failed: no common algorithm for %s (the server offers %s)", algErr.What,
			strings.Join(algErr.RequestedAlgorithms, ", "))
	case errors.As(err, &netErr) && netErr.Timeout():
		return c.errorf(intakev1.ConnectionErrorKind_CONNECTION_ERROR_KIND_TIMEOUT, true, err,
			"no SSH handshake within %s (is it an SSH server?)", c.timeout)
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, syscall.ECONNRESET):
		return c.errorf(intakev1.ConnectionErrorKind_CONNECTION_ERROR_KIND_OTHER, true, err,
			"the server closed the connection during the SSH handshake")
	case strings.Contains(msg, "version string"), strings.Contains(msg, "packet length"):
		return c.errorf(intakev1.ConnectionErrorKind_CONNECTION_ERROR_KIND_OTHER, false, err,
			"the server does not speak SSH")
	}
	return c.errorf(intakev1.ConnectionErrorKind_CONNECTION_ERROR_KIND_OTHER, false, err,
		"SSH handshake failed: %s", strings.TrimPrefix(strings.TrimPrefix(msg, "ssh: handshake failed: "), "ssh: "))
}

// mismatchError says which keys the server presented and which were
// expected.
func (c *sftpClient) mismatchError(presented []ssh.PublicKey) *Error {
	got := make([]string, len(presented))
	for i, k := range presented {
		got[i] = k.Type() + " " + ssh.FingerprintSHA256(k)
	}
	host, port, _ := net.SplitHostPort(c.addr)
	return c.errorf(intakev1.ConnectionErrorKind_CONNECTION_ERROR_KIND_HOST_KEY_MISMATCH, false, errHostKeyMismatch,
		"host key mismatch: expected %s, the server presented %s; if the server's key was changed on purpose, pin the new one (ssh-keyscan -p %s %s)",
		c.pins.describe(), strings.Join(got, " and "), port, host)
}

// closeFile closes a file, closing the session when the server does not
// answer in time.
func (c *sftpClient) closeFile(f *sftp.File, sess *sftpSession) error {
	timer := time.AfterFunc(c.timeout, sess.kill)
	defer timer.Stop()
	return f.Close()
}

// hostKeyPins are the host keys a connection accepts: keys (from known_hosts
// or authorized_keys lines) and SHA256 fingerprints.
type hostKeyPins struct {
	keys         []ssh.PublicKey
	fingerprints []string // "SHA256:..." without base64 padding
}

// parseHostKeyPins reads one pin per line: a known_hosts line (host part
// ignored, hashed or not), an authorized_keys style key, or a SHA256
// fingerprint. Blank lines and # comments (ssh-keyscan's) are skipped.
func parseHostKeyPins(s string) (*hostKeyPins, error) {
	pins := &hostKeyPins{}
	for n, line := range strings.Split(s, "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		where := ""
		if strings.Count(strings.TrimSpace(s), "\n") > 0 {
			where = fmt.Sprintf("line %d: ", n+1)
		}
		if fp, ok := strings.CutPrefix(line, "SHA256:"); ok {
			fp = strings.TrimRight(fp, "=")
			raw, err := base64.RawStdEncoding.DecodeString(fp)
			if err != nil || len(raw) != 32 {
				return nil, fmt.Errorf("%s%q is not a SHA256 fingerprint (43 base64 characters after \"SHA256:\")", where, line)
			}
			pins.fingerprints = append(pins.fingerprints, "SHA256:"+fp)
			continue
		}
		if strings.HasPrefix(strings.ToUpper(line), "MD5:") || isHexFingerprint(line) {
			return nil, fmt.Errorf("%sMD5 fingerprints are not accepted; give the SHA256 fingerprint (ssh-keygen -l -E sha256) or the key itself", where)
		}
		marker, _, key, _, _, err := ssh.ParseKnownHosts([]byte(line))
		if err == nil {
			if marker != "" {
				return nil, fmt.Errorf("%sa @%s line is not a host key; pin the server's own key (ssh-keyscan)", where, marker)
			}
			pins.keys = append(pins.keys, key)
			continue
		}
		key, _, _, _, err = ssh.ParseAuthorizedKey([]byte(line))
		if err != nil {
			return nil, fmt.Errorf("%snot a known_hosts line (\"host ssh-ed25519 AAAA...\"), a public key (\"ssh-ed25519 AAAA...\") or a fingerprint (\"SHA256:...\")", where)
		}
		if _, isCert := key.(*ssh.Certificate); isCert {
			return nil, fmt.Errorf("%sa certificate is not a host key; pin the server's own key (ssh-keyscan)", where)
		}
		pins.keys = append(pins.keys, key)
	}
	if len(pins.keys) == 0 && len(pins.fingerprints) == 0 {
		return nil, errors.New("no key or fingerprint in it")
	}
	return pins, nil
}

// isHexFingerprint reports an MD5 fingerprint in the old "aa:bb:..." form.
func isHexFingerprint(s string) bool {
	parts := strings.Split(s, ":")
	if len(parts) != 16 {
		return false
	}
	for _, p := range parts {
		if len(p) != 2 || strings.Trim(p, "0123456789abcdefABCDEF") != "" {
			return false
		}
	}
	return true
}

func (p *hostKeyPins) match(key ssh.PublicKey) bool {
	raw := key.Marshal()
	for _, k := range p.keys {
		if bytes.Equal(k.Marshal(), raw) {
			return true
		}
	}
	return slices.Contains(p.fingerprints, ssh.FingerprintSHA256(key))
}

// describe lists the pinned keys' fingerprints.
func (p *hostKeyPins) describe() string {
	var all []string
	for _, k := range p.keys {
		all = append(all, k.Type()+" "+ssh.FingerprintSHA256(k))
	}
	all = append(all, p.fingerprints...)
	return strings.Join(all, " or ")
}

// fingerprintAlgorithms are the host key algorithms offered for fingerprint
// pins, in OpenSSH's order of preference (so the first key tried is the one
// whose fingerprint ssh shows).
var fingerprintAlgorithms = []string{
	ssh.KeyAlgoED25519,
	ssh.KeyAlgoECDSA256, ssh.KeyAlgoECDSA384, ssh.KeyAlgoECDSA521,
	ssh.KeyAlgoRSASHA512, ssh.KeyAlgoRSASHA256, ssh.KeyAlgoRSA,
}

// algorithms are the host key algorithms to offer: only those of the
// pinned keys, so that a server with several keys presents a pinned one.
func (p *hostKeyPins) algorithms() []string {
	if len(p.fingerprints) > 0 {
		algos := slices.Clone(fingerprintAlgorithms)
		for _, k := range p.keys {
			for _, a := range keyAlgorithms(k.Type()) {
				if !slices.Contains(algos, a) {
					algos = append(algos, a)
				}
			}
		}
		return algos
	}
	var algos []string
	for _, k := range p.keys {
		for _, a := range keyAlgorithms(k.Type()) {
			if !slices.Contains(algos, a) {
				algos = append(algos, a)
			}
		}
	}
	return algos
}

// retryAlgorithms are the algorithms to offer after the server presented
// an unpinned key with algos: those of the other key types, when a
// fingerprint could still match one of them; nil when there is nothing left
// to try.
func (p *hostKeyPins) retryAlgorithms(algos []string, presented ssh.PublicKey) []string {
	if len(p.fingerprints) == 0 {
		return nil
	}
	drop := keyAlgorithms(presented.Type())
	rest := slices.DeleteFunc(slices.Clone(algos), func(a string) bool { return slices.Contains(drop, a) })
	if len(rest) == 0 || len(rest) == len(algos) {
		return nil
	}
	return rest
}

// keyAlgorithms are the host key algorithms that present a key of type t.
func keyAlgorithms(t string) []string {
	if t == ssh.KeyAlgoRSA {
		return []string{ssh.KeyAlgoRSASHA512, ssh.KeyAlgoRSASHA256, ssh.KeyAlgoRSA}
	}
	return []string{t}
}

// sftpReader is what Open returns: a buffered reader over the remote file
// (Read asks for sftpReadBuffer bytes at once, WriteTo streams with
// concurrent requests).
type sftpReader struct {
	*bufio.Reader
	file *sftpFileReader
}

func (r *sftpReader) Close() error { return r.file.Close() }

// sftpFileReader reads a remote file, failing when the server sends
// nothing for the timeout or ctx ends (both close the session, which
// unblocks the pending requests).
type sftpFileReader struct {
	c       *sftpClient
	sess    *sftpSession
	f       *sftp.File
	path    string
	ctx     context.Context
	timer   *time.Timer
	idle    atomic.Bool
	stopCtx func() bool
	once    sync.Once
}

func (r *sftpFileReader) Read(p []byte) (int, error) {
	if err := r.stalled(); err != nil {
		return 0, err
	}
	r.timer.Reset(r.c.timeout)
	n, err := r.f.Read(p)
	r.timer.Stop() // only time spent waiting for the server counts
	if err != nil && err != io.EOF {
		return n, r.readError(err)
	}
	return n, err
}

// WriteTo streams the rest of the file to w with concurrent requests (what
// io.Copy uses).
func (r *sftpFileReader) WriteTo(w io.Writer) (int64, error) {
	if err := r.stalled(); err != nil {
		return 0, err
	}
	tw := &timedWriter{w: w, timer: r.timer, timeout: r.c.timeout}
	r.timer.Reset(r.c.timeout)
	n, err := r.f.WriteTo(tw)
	r.timer.Stop()
	switch {
	case err == nil:
		return n, nil
	case tw.err != nil && errors.Is(err, tw.err):
		return n, err // the writer's own error
	}
	return n, r.readError(err)
}

func (r *sftpFileReader) stalled() error {
	switch {
	case r.ctx.Err() != nil:
		return r.c.ctxError(r.ctx, "read "+r.path)
	case r.idle.Load():
		return r.idleError(nil)
	}
	return nil
}

func (r *sftpFileReader) idleError(err error) *Error {
	return r.c.errorf(intakev1.ConnectionErrorKind_CONNECTION_ERROR_KIND_TIMEOUT, true, err,
		"read %s: no data received for %s", r.path, r.c.timeout)
}

func (r *sftpFileReader) readError(err error) error {
	switch {
	case r.ctx.Err() != nil:
		return r.c.ctxError(r.ctx, "read "+r.path)
	case r.idle.Load():
		return r.idleError(err)
	}
	return r.c.opError(r.sess, "read "+r.path, err)
}

// Close closes the remote file. A read-only file has nothing to flush, so
// a failure to close it is not reported.
func (r *sftpFileReader) Close() error {
	r.once.Do(func() {
		r.timer.Stop()
		r.stopCtx()
		if r.sess.alive() {
			_ = r.c.closeFile(r.f, r.sess)
		}
	})
	return nil
}

// timedWriter pauses the idle timer while the consumer writes: only time
// spent waiting for the server counts.
type timedWriter struct {
	w       io.Writer
	timer   *time.Timer
	timeout time.Duration
	err     error
}

func (t *timedWriter) Write(p []byte) (int, error) {
	t.timer.Stop()
	n, err := t.w.Write(p)
	if err != nil {
		t.err = err
		return n, err
	}
	t.timer.Reset(t.timeout)
	return n, nil
}
