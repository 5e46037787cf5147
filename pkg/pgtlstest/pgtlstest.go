// Package pgtlstest starts a throwaway PostgreSQL cluster that accepts only
// TLS connections, with a server certificate of a CA made for the test, so
// that tests can check what the services do with sslmode, sslrootcert and
// friends (the database URL settings pgx reads, or PGSSLMODE and
// PGSSLROOTCERT). The test cluster of pkg/pgtest has TLS off.
//
// It runs the initdb and pg_ctl of the machine's PostgreSQL (as
// scripts/pg.sh does: /usr/lib/postgresql/*/bin or the PATH), as the
// postgres user when the test runs as root, since initdb refuses root.
package pgtlstest

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/intakehq/intake/pkg/tlstest"
)

// Cluster is a running PostgreSQL cluster with TLS on. It accepts the user
// postgres without a password, over TLS only, on 127.0.0.1:Port.
type Cluster struct {
	Host string
	Port int
	// CAFile is the PEM certificate of the CA that signed the server's
	// certificate (valid for 127.0.0.1 and localhost).
	CAFile string
	// Dir is the data directory, whose server.log has the server's logs.
	Dir string
}

// URL is the cluster's database URL with the query params (e.g.
// "sslmode=verify-full&sslrootcert=/…/ca.pem"; "" for none).
func (c *Cluster) URL(params string) string {
	u := fmt.Sprintf("postgres://postgres@%s/postgres", net.JoinHostPort(c.Host, strconv.Itoa(c.Port)))
	if params != "" {
		u += "?" + params
	}
	return u
}

// Start initialises and starts a cluster with ssl=on for the duration of t.
// It fails t when PostgreSQL's binaries are missing (make test-db installs
// them).
func Start(t testing.TB) *Cluster {
	t.Helper()
	bin, err := findBin()
	if err != nil {
		t.Fatalf("pgtlstest: %v", err)
	}
	run, owner, err := runner()
	if err != nil {
		t.Fatalf("pgtlstest: %v", err)
	}
	dir, err := os.MkdirTemp("", "pgtlstest-")
	if err != nil {
		t.Fatalf("pgtlstest: %v", err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	data, certs := filepath.Join(dir, "data"), filepath.Join(dir, "certs")
	if err := os.Mkdir(certs, 0o755); err != nil {
		t.Fatalf("pgtlstest: %v", err)
	}
	if err := owner(dir); err != nil {
		t.Fatalf("pgtlstest: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if out, err := run(ctx, filepath.Join(bin, "initdb"), "-D", data, "-A", "trust", "-U", "postgres", "--no-sync"); err != nil {
		t.Fatalf("pgtlstest: initdb: %v\n%s", err, out)
	}

	c := &Cluster{Host: "127.0.0.1", Dir: data, CAFile: filepath.Join(dir, "ca.pem")}
	if err := writeCerts(c.CAFile, filepath.Join(certs, "server.pem"), filepath.Join(certs, "server-key.pem")); err != nil {
		t.Fatalf("pgtlstest: certificates: %v", err)
	}
	for _, f := range []string{certs, filepath.Join(certs, "server.pem"), filepath.Join(certs, "server-key.pem")} {
		if err := owner(f); err != nil {
			t.Fatalf("pgtlstest: %v", err)
		}
	}
	// TLS only: a connection without it has no pg_hba.conf entry.
	hba := "local all all trust\nhostssl all all 127.0.0.1/32 trust\n"
	if err := os.WriteFile(filepath.Join(data, "pg_hba.conf"), []byte(hba), 0o600); err != nil {
		t.Fatalf("pgtlstest: %v", err)
	}
	if c.Port, err = freePort(); err != nil {
		t.Fatalf("pgtlstest: %v", err)
	}
	opts := strings.Join([]string{
		"-p", strconv.Itoa(c.Port), "-k", dir, "-c", "listen_addresses=127.0.0.1",
		"-c", "ssl=on", "-c", "ssl_cert_file=" + filepath.Join(certs, "server.pem"), "-c", "ssl_key_file=" + filepath.Join(certs, "server-key.pem"),
		"-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off",
	}, " ")
	pgctl := filepath.Join(bin, "pg_ctl")
	if out, err := run(ctx, pgctl, "-D", data, "-l", filepath.Join(data, "server.log"), "-w", "-o", opts, "start"); err != nil {
		log, _ := os.ReadFile(filepath.Join(data, "server.log"))
		t.Fatalf("pgtlstest: pg_ctl start: %v\n%s\n%s", err, out, log)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if out, err := run(ctx, pgctl, "-D", data, "-m", "immediate", "stop"); err != nil {
			t.Errorf("pgtlstest: pg_ctl stop: %v\n%s", err, out)
		}
	})
	return c
}

// findBin is the directory of initdb and pg_ctl: Debian's newest
// /usr/lib/postgresql/*/bin, else the PATH's.
func findBin() (string, error) {
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	sort.Slice(dirs, func(i, j int) bool { return version(dirs[i]) > version(dirs[j]) })
	for _, d := range dirs {
		if _, err := os.Stat(filepath.Join(d, "initdb")); err == nil {
			return d, nil
		}
	}
	if p, err := exec.LookPath("initdb"); err == nil {
		return filepath.Dir(p), nil
	}
	return "", fmt.Errorf("no initdb in /usr/lib/postgresql/*/bin or the PATH: install PostgreSQL (make test-db does)")
}

// version is the major version in /usr/lib/postgresql/N/bin.
func version(bin string) int {
	n, _ := strconv.Atoi(filepath.Base(filepath.Dir(bin)))
	return n
}

// runner returns how to run PostgreSQL's programs (as the postgres user
// when this process is root) and how to hand them a file.
func runner() (run func(ctx context.Context, name string, args ...string) ([]byte, error), owner func(string) error, err error) {
	var cred *syscall.Credential
	owner = func(string) error { return nil }
	if os.Geteuid() == 0 {
		u, err := user.Lookup("postgres")
		if err != nil {
			return nil, nil, fmt.Errorf("running as root, and initdb refuses root: no postgres user to run it as: %w", err)
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		cred = &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}
		owner = func(path string) error { return os.Chown(path, uid, gid) }
	}
	run = func(ctx context.Context, name string, args ...string) ([]byte, error) {
		cmd := exec.CommandContext(ctx, name, args...)
		cmd.Dir = os.TempDir()
		cmd.Env = append(os.Environ(), "LC_ALL=C")
		if cred != nil {
			cmd.SysProcAttr = &syscall.SysProcAttr{Credential: cred}
		}
		return cmd.CombinedOutput()
	}
	return run, owner, nil
}

// freePort is a TCP port of 127.0.0.1 that was free a moment ago.
func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

// writeCerts writes a CA's certificate, a server certificate it signs and
// the server's key (tlstest.WriteCerts).
func writeCerts(caFile, certFile, keyFile string) error {
	return tlstest.WriteCerts(caFile, certFile, keyFile)
}

// WriteOtherCA writes the certificate of a CA that signed nothing of the
// cluster to a file in dir and returns its path: a wrong sslrootcert.
func WriteOtherCA(dir string) (string, error) {
	path := filepath.Join(dir, "other-ca.pem")
	if err := writeCerts(path, filepath.Join(dir, "other-server.pem"), filepath.Join(dir, "other-server-key.pem")); err != nil {
		return "", err
	}
	return path, nil
}
