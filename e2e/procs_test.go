package e2e

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/intakehq/intake/pkg/testutil"

	"google.golang.org/grpc"
)

// binDir holds the binaries TestMain builds once for every test.
var binDir string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "intake-e2e-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binDir = dir
	code := func() int {
		defer os.RemoveAll(dir)
		_, file, _, _ := runtime.Caller(0)
		root := filepath.Dir(filepath.Dir(file))
		builds := [][]string{
			{filepath.Join(root, "cmd"), "build", "-o", dir + "/", "./intake"},
			{filepath.Join(root, "e2e"), "build", "-o", filepath.Join(dir, "nats-server"), "github.com/nats-io/nats-server/v2"},
		}
		for _, b := range builds {
			cmd := exec.Command("go", b[1:]...)
			cmd.Dir = b[0]
			if out, err := cmd.CombinedOutput(); err != nil {
				fmt.Fprintf(os.Stderr, "e2e: go %s: %v\n%s", strings.Join(b[1:], " "), err, out)
				return 1
			}
		}
		return m.Run()
	}()
	os.Exit(code)
}

// The credentials of the processes: the bootstrap admin token of every
// control API, which the tests call the API with, and the worker token.
const (
	e2eAdminToken  = "e2e-bootstrap-admin-token-0123456789abcdef"
	e2eWorkerToken = "e2e-worker-token-0123456789abcdefghijklmnop"
)

// bearer sends a token with every gRPC call ("authorization: Bearer …").
type bearer string

func (b bearer) GetRequestMetadata(context.Context, ...string) (map[string]string, error) {
	return map[string]string{"authorization": "Bearer " + string(b)}, nil
}

// RequireTransportSecurity is false: the test API serves plaintext.
func (bearer) RequireTransportSecurity() bool { return false }

// adminCredentials is the dial option of a test's API client.
func adminCredentials() grpc.DialOption { return grpc.WithPerRPCCredentials(bearer(e2eAdminToken)) }

// freePort returns a loopback port that was free a moment ago.
func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// proc is a child process whose output is kept for the failure report.
type proc struct {
	name string
	cmd  *exec.Cmd
	out  *testutil.SyncBuffer
	done chan struct{}
}

// start runs bin with args until the test ends (SIGTERM, then SIGKILL).
func start(t *testing.T, name, bin string, args ...string) *proc {
	t.Helper()
	p := &proc{name: name, cmd: exec.Command(filepath.Join(binDir, bin), args...), out: &testutil.SyncBuffer{}, done: make(chan struct{})}
	p.cmd.Stdout, p.cmd.Stderr = p.out, p.out
	p.cmd.Env = append(os.Environ(), "INTAKE_LOG_FORMAT=text",
		// Every API takes the bootstrap admin token and accepts the worker
		// token; every worker sends the worker token.
		"INTAKE_BOOTSTRAP_TOKEN="+e2eAdminToken, "INTAKE_WORKER_TOKEN="+e2eWorkerToken,
		// Stop at once: no load balancer needs time to notice readiness.
		"INTAKE_SHUTDOWN_DELAY=0s")
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	go func() { _ = p.cmd.Wait(); close(p.done) }()
	t.Cleanup(func() {
		p.stop(10 * time.Second)
		if t.Failed() {
			t.Logf("---- output of %s ----\n%s", name, tail(p.out.String(), 60))
		}
	})
	return p
}

// stop sends SIGTERM and waits up to grace before killing.
func (p *proc) stop(grace time.Duration) {
	select {
	case <-p.done:
		return
	default:
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(grace):
		_ = p.cmd.Process.Kill()
		<-p.done
	}
}

// kill ends the process at once, as a crash or an OOM kill would.
func (p *proc) kill() {
	_ = p.cmd.Process.Kill()
	<-p.done
}

func tail(s string, lines int) string {
	parts := strings.Split(s, "\n")
	if len(parts) > lines {
		parts = parts[len(parts)-lines:]
	}
	return strings.Join(parts, "\n")
}

// waitTCP waits until addr accepts connections.
func waitTCP(ctx context.Context, t *testing.T, addr string) {
	t.Helper()
	for {
		c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond)
		if err == nil {
			c.Close()
			return
		}
		select {
		case <-ctx.Done():
			t.Fatalf("%s never accepted connections: %v", addr, err)
		case <-time.After(100 * time.Millisecond):
		}
	}
}
