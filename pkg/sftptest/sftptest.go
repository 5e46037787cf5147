// Package sftptest starts a real SFTP server for tests: Debian's OpenSSH
// server (/usr/sbin/sshd, package openssh-server) as a foreground process on
// a free loopback port, with a throwaway ed25519 host key, a generated client
// key and password authentication for a dedicated system user.
//
// sshd must run as root to log a user in, so the tests must run as root.
// The first server on a machine creates (idempotently, under a file lock)
// the system user "intake-sftp-test" (no home, shell /usr/sbin/nologin) and
// gives it a random password kept in /var/lib/intake-sftptest/password
// (root only). Each server confines the user to its own directory
// (ChrootDirectory, ForceCommand internal-sftp: no shell, no forwarding)
// under /var/lib/intake-sftptest, removed at cleanup.
package sftptest

import (
	"bufio"
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	intakev1 "github.com/intakehq/intake/proto/gen/intake/v1"
)

const (
	// User is the system user the servers log in.
	User = "intake-sftp-test"
	// SSHD is the OpenSSH server binary.
	SSHD = "/usr/sbin/sshd"
	// BaseDir holds the test user's password and each server's directory.
	BaseDir = "/var/lib/intake-sftptest"
	// privSepDir is the privilege separation directory Debian's sshd
	// needs; its package creates it when the service starts, which never
	// happens in a container.
	privSepDir = "/run/sshd"
	startWait  = 15 * time.Second
)

// Server is a running sshd serving SFTP to User.
type Server struct {
	// Host and Port are where the server listens (127.0.0.1).
	Host string
	Port int
	// User and Password log in with password authentication.
	User     string
	Password string
	// ClientKeyPEM is an unencrypted OpenSSH private key authorized for User.
	ClientKeyPEM string
	// ClientKey is ClientKeyPEM's private key (for re-encoding it, e.g.
	// with a passphrase).
	ClientKey ed25519.PrivateKey
	// HostKey is the server's ed25519 host key, the one HostKeyLine,
	// HostKeyAuthorized and HostKeyFingerprint describe.
	HostKey ssh.PublicKey
	// HostKeyLine is the host key as a known_hosts line
	// ("[127.0.0.1]:port ssh-ed25519 AAAA...").
	HostKeyLine string
	// HostKeyAuthorized is the host key as an authorized_keys line
	// ("ssh-ed25519 AAAA...").
	HostKeyAuthorized string
	// HostKeyFingerprint is "SHA256:..." of the host key.
	HostKeyFingerprint string
	// ECDSAHostKey is the server's second host key (ecdsa-sha2-nistp256).
	// sshd presents it to clients that prefer ECDSA (Go's x/crypto by
	// default) or ask for it only.
	ECDSAHostKey ssh.PublicKey
	// Root is the local directory the user sees as "/" and logs in to: a
	// file at Root/a/b.csv is "a/b.csv" or "/a/b.csv" over SFTP.
	Root string

	hostKeyPriv ed25519.PrivateKey
	ecdsaPriv   *ecdsa.PrivateKey
	t           testing.TB
	cmd         *exec.Cmd
	log         *syncBuffer
	done        chan struct{}
}

// New starts a server for the duration of t. It fails t, saying what to
// install or change, when the process is not root or sshd is missing.
func New(t testing.TB) *Server {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Fatalf("sftptest: sshd must run as root to log users in; run the tests as root")
	}
	if _, err := os.Stat(SSHD); err != nil {
		t.Fatalf("sftptest: %s not found: install Debian's OpenSSH server (apt-get install openssh-server; make test installs it)", SSHD)
	}
	if err := os.MkdirAll(privSepDir, 0o755); err != nil {
		t.Fatalf("sftptest: create sshd's privilege separation directory: %v", err)
	}
	password, err := ensureUser()
	if err != nil {
		t.Fatalf("sftptest: %v", err)
	}

	s := &Server{Host: "127.0.0.1", User: User, Password: password, t: t}
	s.setupKeys(t)
	dir := s.setupDirs(t)
	conf := t.TempDir()
	hostKeyFile := filepath.Join(conf, "ssh_host_ed25519_key")
	writeKey(t, hostKeyFile, s.hostKeyPriv)
	ecdsaKeyFile := filepath.Join(conf, "ssh_host_ecdsa_key")
	writeKey(t, ecdsaKeyFile, s.ecdsaPriv)
	penalties := supportsPerSourcePenalties()

	var lastErr error
	for attempt := 0; attempt < 5; attempt++ {
		port, err := freePort()
		if err != nil {
			t.Fatalf("sftptest: find a free port: %v", err)
		}
		config := sshdConfig(port, []string{hostKeyFile, ecdsaKeyFile}, filepath.Join(dir, "authorized_keys"), s.Root, penalties)
		configFile := filepath.Join(conf, "sshd_config")
		if err := os.WriteFile(configFile, []byte(config), 0o600); err != nil {
			t.Fatalf("sftptest: write sshd config: %v", err)
		}
		if lastErr = s.start(configFile); lastErr == nil {
			s.Port = port
			break
		}
		if !strings.Contains(lastErr.Error(), "Address already in use") {
			break
		}
	}
	if lastErr != nil {
		t.Fatalf("sftptest: start sshd: %v", lastErr)
	}
	t.Cleanup(func() {
		s.stop()
		if t.Failed() {
			t.Logf("sftptest: sshd log:\n%s", s.log.String())
		}
	})
	s.HostKeyLine = fmt.Sprintf("[%s]:%d %s", s.Host, s.Port, s.HostKeyAuthorized)
	return s
}

// Addr is host:port.
func (s *Server) Addr() string { return net.JoinHostPort(s.Host, strconv.Itoa(s.Port)) }

// Log is what sshd has logged so far.
func (s *Server) Log() string { return s.log.String() }

// Connection is an SFTP connection to the server with password
// authentication and the host key pinned by its known_hosts line.
func (s *Server) Connection() *intakev1.SftpConnection {
	return &intakev1.SftpConnection{
		Host: s.Host, Port: int32(s.Port), User: s.User,
		Password: s.Password, HostKey: s.HostKeyLine,
	}
}

// KeyConnection is an SFTP connection to the server with public key
// authentication (no password) and the host key pinned by its known_hosts
// line.
func (s *Server) KeyConnection() *intakev1.SftpConnection {
	return &intakev1.SftpConnection{
		Host: s.Host, Port: int32(s.Port), User: s.User,
		PrivateKey: s.ClientKeyPEM, HostKey: s.HostKeyLine,
	}
}

// Path is the local path of rel (a path the user sees over SFTP).
func (s *Server) Path(rel string) string {
	return filepath.Join(s.Root, filepath.FromSlash(strings.TrimPrefix(rel, "/")))
}

// PutFile writes a file the user can read (mode 0644, owned by root) with
// modification time mod (now when zero), creating its directories, and
// returns its local path.
func (s *Server) PutFile(rel string, data []byte, mod time.Time) string {
	s.t.Helper()
	p := s.Path(rel)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		s.t.Fatalf("sftptest: put %s: %v", rel, err)
	}
	if err := os.WriteFile(p, data, 0o644); err != nil {
		s.t.Fatalf("sftptest: put %s: %v", rel, err)
	}
	if !mod.IsZero() {
		if err := os.Chtimes(p, mod, mod); err != nil {
			s.t.Fatalf("sftptest: put %s: %v", rel, err)
		}
	}
	return p
}

// Mkdir creates a directory (and its parents) the user can list.
func (s *Server) Mkdir(rel string) string {
	s.t.Helper()
	p := s.Path(rel)
	if err := os.MkdirAll(p, 0o755); err != nil {
		s.t.Fatalf("sftptest: mkdir %s: %v", rel, err)
	}
	return p
}

// Chmod changes the mode of a file or directory, e.g. to 0 so that the
// user may not read it.
func (s *Server) Chmod(rel string, mode os.FileMode) {
	s.t.Helper()
	if err := os.Chmod(s.Path(rel), mode); err != nil {
		s.t.Fatalf("sftptest: chmod %s: %v", rel, err)
	}
}

// Pause stops sshd and its sessions (SIGSTOP): connections stay open but
// nothing answers, as with a stalled server. Resume undoes it; cleanup
// resumes a paused server before killing it.
func (s *Server) Pause() { s.signal(syscall.SIGSTOP) }

// Resume continues a paused server.
func (s *Server) Resume() { s.signal(syscall.SIGCONT) }

func (s *Server) signal(sig syscall.Signal) {
	s.t.Helper()
	// Each connection's processes are descendants of sshd in their own
	// session (sshd calls setsid), so the process group does not reach
	// them.
	if err := syscall.Kill(-s.cmd.Process.Pid, sig); err != nil {
		s.t.Fatalf("sftptest: signal sshd: %v", err)
	}
	for _, pid := range descendants(s.cmd.Process.Pid) {
		_ = syscall.Kill(pid, sig)
	}
}

// descendants are the processes below pid, from /proc.
func descendants(pid int) []int {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	children := map[int][]int{}
	for _, e := range entries {
		p, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		stat, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue
		}
		// "pid (comm) state ppid ...": comm may hold spaces and parentheses.
		i := bytes.LastIndexByte(stat, ')')
		if i < 0 {
			continue
		}
		fields := strings.Fields(string(stat[i+1:]))
		if len(fields) < 2 {
			continue
		}
		if ppid, err := strconv.Atoi(fields[1]); err == nil {
			children[ppid] = append(children[ppid], p)
		}
	}
	var out []int
	queue := []int{pid}
	for len(queue) > 0 {
		p := queue[0]
		queue = queue[1:]
		for _, c := range children[p] {
			out = append(out, c)
			queue = append(queue, c)
		}
	}
	return out
}

func (s *Server) setupKeys(t testing.TB) {
	t.Helper()
	hostPub, hostPriv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatalf("sftptest: generate host key: %v", err)
	}
	s.hostKeyPriv = hostPriv
	s.HostKey, err = ssh.NewPublicKey(hostPub)
	if err != nil {
		t.Fatalf("sftptest: host key: %v", err)
	}
	s.HostKeyAuthorized = strings.TrimSpace(string(ssh.MarshalAuthorizedKey(s.HostKey)))
	s.HostKeyFingerprint = ssh.FingerprintSHA256(s.HostKey)

	s.ecdsaPriv, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatalf("sftptest: generate host key: %v", err)
	}
	s.ECDSAHostKey, err = ssh.NewPublicKey(&s.ecdsaPriv.PublicKey)
	if err != nil {
		t.Fatalf("sftptest: host key: %v", err)
	}

	_, clientPriv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatalf("sftptest: generate client key: %v", err)
	}
	s.ClientKey = clientPriv
	block, err := ssh.MarshalPrivateKey(clientPriv, "intake-sftptest client")
	if err != nil {
		t.Fatalf("sftptest: encode client key: %v", err)
	}
	s.ClientKeyPEM = string(pem.EncodeToMemory(block))
}

// setupDirs makes this server's directory under BaseDir: the user's
// authorized_keys (read by sshd as the user) and the chroot. Every path
// component of a chroot must be owned by root and writable by root only.
func (s *Server) setupDirs(t testing.TB) string {
	t.Helper()
	dir, err := os.MkdirTemp(BaseDir, "srv-")
	if err != nil {
		t.Fatalf("sftptest: create server directory: %v", err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	s.Root = filepath.Join(dir, "root")
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatalf("sftptest: %v", err)
	}
	if err := os.Mkdir(s.Root, 0o755); err != nil {
		t.Fatalf("sftptest: %v", err)
	}
	signer, err := ssh.NewSignerFromKey(s.ClientKey)
	if err != nil {
		t.Fatalf("sftptest: client key: %v", err)
	}
	auth := ssh.MarshalAuthorizedKey(signer.PublicKey())
	if err := os.WriteFile(filepath.Join(dir, "authorized_keys"), auth, 0o644); err != nil {
		t.Fatalf("sftptest: write authorized_keys: %v", err)
	}
	return dir
}

func writeKey(t testing.TB, path string, key crypto.PrivateKey) {
	t.Helper()
	block, err := ssh.MarshalPrivateKey(key, "intake-sftptest host")
	if err != nil {
		t.Fatalf("sftptest: encode host key: %v", err)
	}
	if err := os.WriteFile(path, pem.EncodeToMemory(block), 0o600); err != nil {
		t.Fatalf("sftptest: write host key: %v", err)
	}
}

func sshdConfig(port int, hostKeys []string, authorizedKeys, root string, penalties bool) string {
	var b strings.Builder
	fmt.Fprintf(&b, "Port %d\nListenAddress 127.0.0.1\n", port)
	for _, k := range hostKeys {
		fmt.Fprintf(&b, "HostKey %s\n", k)
	}
	fmt.Fprintf(&b, "AuthorizedKeysFile %s\n", authorizedKeys)
	fmt.Fprintf(&b, "ChrootDirectory %s\n", root)
	b.WriteString(`PidFile none
UsePAM no
StrictModes no
PermitRootLogin no
AllowUsers ` + User + `
PasswordAuthentication yes
PermitEmptyPasswords no
PubkeyAuthentication yes
KbdInteractiveAuthentication no
HostbasedAuthentication no
ForceCommand internal-sftp
Subsystem sftp internal-sftp
AllowTcpForwarding no
AllowAgentForwarding no
AllowStreamLocalForwarding no
X11Forwarding no
PermitTTY no
PermitTunnel no
PrintMotd no
UseDNS no
MaxStartups 100:30:200
MaxAuthTries 10
LoginGraceTime 30
LogLevel VERBOSE
`)
	if penalties {
		// OpenSSH 9.8+ would refuse connections from 127.0.0.1 for a while
		// after the failed logins tests make on purpose.
		b.WriteString("PerSourcePenalties no\n")
	}
	return b.String()
}

var listening = regexp.MustCompile(`Server listening on \S+ port \d+`)

// start runs sshd in its own process group and waits until it listens.
func (s *Server) start(configFile string) error {
	// sshd re-executes itself for each connection, so it needs its
	// absolute path; -D: foreground, -e: log to stderr.
	cmd := exec.Command(SSHD, "-D", "-e", "-f", configFile)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	cmd.Env = []string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin"}
	stderr, err := cmd.StderrPipe()
	if err != nil {
		return err
	}
	cmd.Stdout = io.Discard
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("run %s: %w", SSHD, err)
	}
	log := &syncBuffer{}
	ready := make(chan struct{})
	done := make(chan struct{})
	go func() {
		sc := bufio.NewScanner(stderr)
		signalled := false
		for sc.Scan() {
			log.WriteLine(sc.Text())
			if !signalled && listening.MatchString(sc.Text()) {
				signalled = true
				close(ready)
			}
		}
		_ = cmd.Wait()
		close(done)
	}()
	select {
	case <-ready:
		s.cmd, s.log, s.done = cmd, log, done
		return nil
	case <-done:
		return fmt.Errorf("sshd exited (%v): %s", cmd.ProcessState, strings.TrimSpace(log.String()))
	case <-time.After(startWait):
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		<-done
		return fmt.Errorf("sshd did not listen within %s: %s", startWait, strings.TrimSpace(log.String()))
	}
}

// stop kills sshd and every session process it started.
func (s *Server) stop() {
	pgid := s.cmd.Process.Pid
	_ = syscall.Kill(-pgid, syscall.SIGSTOP) // no new connections meanwhile
	for _, pid := range descendants(pgid) {
		_ = syscall.Kill(pid, syscall.SIGKILL)
		_ = syscall.Kill(pid, syscall.SIGCONT)
	}
	_ = syscall.Kill(-pgid, syscall.SIGKILL)
	_ = syscall.Kill(-pgid, syscall.SIGCONT)
	select {
	case <-s.done:
	case <-time.After(10 * time.Second):
	}
}

// ensureUser creates the test user and its password once per machine and
// returns the password.
func ensureUser() (string, error) {
	if err := os.MkdirAll(BaseDir, 0o755); err != nil {
		return "", fmt.Errorf("create %s: %w", BaseDir, err)
	}
	if err := os.Chmod(BaseDir, 0o755); err != nil {
		return "", fmt.Errorf("chmod %s: %w", BaseDir, err)
	}
	lock, err := os.OpenFile(filepath.Join(BaseDir, ".lock"), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return "", fmt.Errorf("open lock file: %w", err)
	}
	defer lock.Close()
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX); err != nil {
		return "", fmt.Errorf("lock %s: %w", lock.Name(), err)
	}
	defer func() { _ = syscall.Flock(int(lock.Fd()), syscall.LOCK_UN) }()

	removeStale()

	pwFile := filepath.Join(BaseDir, "password")
	pw, err := os.ReadFile(pwFile)
	password := strings.TrimSpace(string(pw))
	fresh := false
	if errors.Is(err, os.ErrNotExist) || password == "" {
		password, err = randomPassword()
		if err != nil {
			return "", err
		}
		fresh = true
	} else if err != nil {
		return "", fmt.Errorf("read the test user's password: %w", err)
	}

	if _, err := user.Lookup(User); err != nil {
		var unknown user.UnknownUserError
		if !errors.As(err, &unknown) {
			return "", fmt.Errorf("look up user %s: %w", User, err)
		}
		// A system user with no home and no shell: inside the chroot
		// its home "/" is the server's root.
		if out, err := exec.Command("/usr/sbin/useradd", "--system", "--no-create-home",
			"--home-dir", "/", "--shell", "/usr/sbin/nologin", User).CombinedOutput(); err != nil {
			return "", fmt.Errorf("create system user %s (useradd): %v: %s", User, err, bytes.TrimSpace(out))
		}
		fresh = true
	}
	if fresh {
		cmd := exec.Command("/usr/sbin/chpasswd")
		cmd.Stdin = strings.NewReader(User + ":" + password + "\n")
		if out, err := cmd.CombinedOutput(); err != nil {
			return "", fmt.Errorf("set the password of %s (chpasswd): %v: %s", User, err, bytes.TrimSpace(out))
		}
		if err := os.WriteFile(pwFile, []byte(password+"\n"), 0o600); err != nil {
			return "", fmt.Errorf("write the test user's password: %w", err)
		}
	}
	return password, nil
}

// removeStale removes server directories left by killed test processes.
func removeStale() {
	entries, err := os.ReadDir(BaseDir)
	if err != nil {
		return
	}
	for _, e := range entries {
		if !strings.HasPrefix(e.Name(), "srv-") {
			continue
		}
		if info, err := e.Info(); err == nil && time.Since(info.ModTime()) > 24*time.Hour {
			_ = os.RemoveAll(filepath.Join(BaseDir, e.Name()))
		}
	}
}

func randomPassword() (string, error) {
	const alphabet = "abcdefghijkmnopqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789"
	b := make([]byte, 24)
	for i := range b {
		n, err := rand.Int(rand.Reader, big.NewInt(int64(len(alphabet))))
		if err != nil {
			return "", fmt.Errorf("generate a password: %w", err)
		}
		b[i] = alphabet[n.Int64()]
	}
	return string(b), nil
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

var versionRE = regexp.MustCompile(`OpenSSH_(\d+)\.(\d+)`)

// supportsPerSourcePenalties reports whether sshd is OpenSSH 9.8 or later.
func supportsPerSourcePenalties() bool {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	out, _ := exec.CommandContext(ctx, SSHD, "-V").CombinedOutput()
	m := versionRE.FindStringSubmatch(string(out))
	if m == nil {
		return false
	}
	major, _ := strconv.Atoi(m[1])
	minor, _ := strconv.Atoi(m[2])
	return major > 9 || major == 9 && minor >= 8
}

// syncBuffer collects sshd's log lines.
type syncBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (b *syncBuffer) WriteLine(s string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.b.WriteString(s)
	b.b.WriteByte('\n')
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}
