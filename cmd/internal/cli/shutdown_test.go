package cli_test

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/intakehq/intake/pkg/testutil"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/intakehq/intake/pkg/natstest"
	"github.com/intakehq/intake/pkg/pgtest"
	intakev1 "github.com/intakehq/intake/proto/gen/intake/v1"
)

// binDir holds the intake binary, built once for the tests that run it as
// a real process (intakeBinary).
var binDir string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "intake-cli-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binDir = dir
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

var (
	buildOnce sync.Once
	buildErr  error
)

// intakeBinary builds cmd/intake, once, and returns its path.
func intakeBinary(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(binDir, "intake")
	buildOnce.Do(func() {
		cmd := exec.Command("go", "build", "-o", bin, "./intake")
		cmd.Dir = "../.." // the cmd module
		if out, err := cmd.CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("go build ./intake: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return bin
}

// The tokens of the processes: the bootstrap admin token, with which the
// test calls the API, and the workers' token.
const (
	shutdownBootstrapToken = "shutdown-test-bootstrap-token-0123456789"
	shutdownWorkerToken    = "shutdown-test-worker-token-0123456789abc"
)

// shutdownBearer sends the bootstrap token with every call.
type shutdownBearer struct{}

func (shutdownBearer) GetRequestMetadata(context.Context, ...string) (map[string]string, error) {
	return map[string]string{"authorization": "Bearer " + shutdownBootstrapToken}, nil
}

func (shutdownBearer) RequireTransportSecurity() bool { return false }

// dialAPIAsAdmin is a client of the control API at addr, as the admin.
func dialAPIAsAdmin(t *testing.T, addr string) *grpc.ClientConn {
	t.Helper()
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()), grpc.WithPerRPCCredentials(shutdownBearer{}))
	require.NoError(t, err)
	t.Cleanup(func() { conn.Close() })
	return conn
}

// process is the intake binary running as a child process.
type process struct {
	name string
	cmd  *exec.Cmd
	out  *testutil.SyncBuffer
	done chan struct{}
	http string // base URL of its metrics and health endpoints
}

// startProcess runs `intake args…` with its metrics and health endpoints
// on a free port; the test's end kills it if it still runs.
func startProcess(t *testing.T, name string, args ...string) *process {
	t.Helper()
	httpAddr := testutil.FreeAddr(t)
	p := &process{
		name: name,
		cmd:  exec.Command(intakeBinary(t), append(args, "--http-addr", httpAddr, "--log-format", "text")...),
		out:  &testutil.SyncBuffer{},
		done: make(chan struct{}),
		http: "http://" + httpAddr,
	}
	p.cmd.Stdout, p.cmd.Stderr = p.out, p.out
	p.cmd.Env = append(os.Environ(), "INTAKE_BOOTSTRAP_TOKEN="+shutdownBootstrapToken, "INTAKE_WORKER_TOKEN="+shutdownWorkerToken)
	require.NoError(t, p.cmd.Start(), "start intake %s", name)
	go func() { _ = p.cmd.Wait(); close(p.done) }()
	t.Cleanup(func() {
		select {
		case <-p.done:
		default:
			_ = p.cmd.Process.Kill()
			<-p.done
		}
		if t.Failed() {
			t.Logf("---- output of intake %s ----\n%s", name, p.out)
		}
	})
	return p
}

// probe is the status of one of p's endpoints; 0 when it does not answer.
func (p *process) probe(path string) int {
	c := http.Client{Timeout: time.Second}
	resp, err := c.Get(p.http + path)
	if err != nil {
		return 0
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	return resp.StatusCode
}

func (p *process) waitReady(t *testing.T) {
	t.Helper()
	require.Eventually(t, func() bool {
		select {
		case <-p.done:
			return true // fails below
		default:
		}
		return p.probe("/readyz") == http.StatusOK
	}, 60*time.Second, 50*time.Millisecond, "intake %s never ready; output:\n%s", p.name, p.out)
	select {
	case <-p.done:
		t.Fatalf("intake %s exited (%v) instead of getting ready; output:\n%s", p.name, p.cmd.ProcessState, p.out)
	default:
	}
}

// waitExit waits up to within for p to exit and returns its exit code.
func (p *process) waitExit(t *testing.T, within time.Duration) int {
	t.Helper()
	select {
	case <-p.done:
	case <-time.After(within):
		t.Fatalf("intake %s still running %v after SIGTERM; output:\n%s", p.name, within, p.out)
	}
	return p.cmd.ProcessState.ExitCode()
}

func (p *process) signal(t *testing.T, sig os.Signal) {
	t.Helper()
	require.NoError(t, p.cmd.Process.Signal(sig))
}

// The shutdown settings of the tests: a delay long enough to see /readyz
// answer 503 while the process still works.
const (
	testDelay = 2 * time.Second
	testGrace = 5 * time.Second
)

// sigtermAndCheck sends SIGTERM to a ready p and checks its graceful stop:
// /readyz turns 503 at once, while /healthz still answers and while
// duringDelay (if any) finds the service still working; /readyz never
// answers 200 again; the process exits 0 within the delay and the grace.
func sigtermAndCheck(t *testing.T, p *process, duringDelay func() error) {
	t.Helper()
	p.waitReady(t)
	p.signal(t, syscall.SIGTERM)
	sent := time.Now()
	require.Eventually(t, func() bool { return p.probe("/readyz") == http.StatusServiceUnavailable },
		testDelay/2, 5*time.Millisecond, "intake %s: /readyz not 503 right after SIGTERM", p.name)
	require.Equal(t, http.StatusOK, p.probe("/healthz"), "intake %s: not alive while it stops", p.name)
	if duringDelay != nil {
		require.NoError(t, duringDelay(), "intake %s stopped working before the shutdown delay was over", p.name)
	}
	require.Less(t, time.Since(sent), testDelay, "the checks took longer than the shutdown delay: they prove nothing")
	for {
		select {
		case <-p.done:
		default:
			if code := p.probe("/readyz"); code == http.StatusOK {
				t.Fatalf("intake %s: /readyz answered 200 again while stopping", p.name)
			}
			time.Sleep(20 * time.Millisecond)
			continue
		}
		break
	}
	took := time.Since(sent)
	require.Equal(t, 0, p.cmd.ProcessState.ExitCode(), "intake %s: exit code after SIGTERM; output:\n%s", p.name, p.out)
	require.GreaterOrEqual(t, took, testDelay, "intake %s stopped before its shutdown delay", p.name)
	require.Less(t, took, testDelay+testGrace, "intake %s: stop slower than delay and grace", p.name)
	out := p.out.String()
	require.Contains(t, out, "stopping gracefully")
	require.Contains(t, out, "stopping: readiness is off")
	require.Less(t, strings.Index(out, "stopping: readiness is off"), strings.LastIndex(out, "stopped"),
		"intake %s: readiness went off after the service stopped", p.name)
}

// Every service, each as its own process, stops gracefully on SIGTERM:
// readiness first (the API still answers calls meanwhile), then the work,
// and exits 0.
func TestEveryServiceStopsGracefullyOnSIGTERM(t *testing.T) {
	t.Parallel()
	ns := natstest.Start(t)
	dsn := pgtest.NewDatabase(t)
	stop := []string{"--shutdown-delay", testDelay.String(), "--shutdown-grace", testGrace.String()}

	apiAddr := testutil.FreeAddr(t)
	api := startProcess(t, "api", append([]string{"api", "--database-url", dsn, "--nats-url", ns.URL, "--grpc-addr", apiAddr}, stop...)...)
	api.waitReady(t)

	worker := func(name string, extra ...string) *process {
		args := append([]string{name, "--nats-url", ns.URL, "--api-addr", apiAddr}, extra...)
		return startProcess(t, name, append(args, stop...)...)
	}
	workers := []*process{
		worker("scheduler", "--poll-interval", "200ms"),
		worker("fetcher"),
		worker("mapper"),
		worker("loader", "--database-url", dsn),
	}
	var wg sync.WaitGroup
	for _, w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			// require's FailNow must run on the test's goroutine: a
			// subtest each.
			t.Run(w.name, func(t *testing.T) { sigtermAndCheck(t, w, nil) })
		}()
	}
	wg.Wait()

	// The API: its readiness goes off while it still serves calls.
	jobs := intakev1.NewJobServiceClient(dialAPIAsAdmin(t, apiAddr))
	sigtermAndCheck(t, api, func() error {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		_, err := jobs.ListJobs(ctx, &intakev1.ListJobsRequest{})
		return err
	})
}

// `intake all`: the same, every service in one process.
func TestAllStopsGracefullyOnSIGTERM(t *testing.T) {
	t.Parallel()
	p := startProcess(t, "all", "all", "--database-url", pgtest.NewDatabase(t),
		"--nats-port", "0", "--nats-store", t.TempDir(), "--grpc-addr", testutil.FreeAddr(t),
		"--shutdown-delay", testDelay.String(), "--shutdown-grace", testGrace.String())
	sigtermAndCheck(t, p, nil)
	require.Contains(t, p.out.String(), "intake stopped")
}

// A second signal does not wait for the graceful stop: the process exits
// at once, with a code that says it did not stop cleanly.
func TestSecondSignalExitsAtOnce(t *testing.T) {
	t.Parallel()
	ns := natstest.Start(t)
	p := startProcess(t, "mapper", "mapper", "--nats-url", ns.URL, "--api-addr", testutil.FreeAddr(t),
		"--shutdown-delay", "1m")
	p.waitReady(t)
	p.signal(t, syscall.SIGTERM)
	require.Eventually(t, func() bool { return p.probe("/readyz") == http.StatusServiceUnavailable },
		10*time.Second, 5*time.Millisecond, "/readyz not 503 after SIGTERM")
	p.signal(t, syscall.SIGTERM)
	code := p.waitExit(t, 5*time.Second)
	require.Equal(t, 130, code)
	require.Contains(t, p.out.String(), "again: exiting now")
}

// slowCSV serves an accounts file over HTTP; the first GET sends the
// header and a few rows at once, then the rest in pieces over slowFor (as
// a slow server does), later GETs send it all at once.
type slowCSV struct {
	body     string
	slowFor  time.Duration
	gets     atomic.Int32
	started  chan struct{} // closed once the first GET has sent its first bytes
	finished chan struct{} // closed once the first GET has sent everything
}

func newSlowCSV(t *testing.T, rows int, slowFor time.Duration) (*slowCSV, string) {
	t.Helper()
	var b strings.Builder
	b.WriteString("Account ID,Name\n")
	for i := range rows {
		fmt.Fprintf(&b, "A-%05d,Company %d\n", i, i)
	}
	s := &slowCSV{body: b.String(), slowFor: slowFor, started: make(chan struct{}), finished: make(chan struct{})}
	srv := &http.Server{Handler: s, ReadHeaderTimeout: 10 * time.Second}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
	return s, "http://" + ln.Addr().String() + "/accounts.csv"
}

func (s *slowCSV) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet {
		w.WriteHeader(http.StatusMethodNotAllowed)
		return
	}
	w.Header().Set("Content-Type", "text/csv")
	if s.gets.Add(1) > 1 {
		_, _ = io.WriteString(w, s.body)
		return
	}
	const pieces = 10
	size := len(s.body)/pieces + 1
	flusher := w.(http.Flusher)
	for i := 0; i < len(s.body); i += size {
		if i > 0 {
			select {
			case <-r.Context().Done():
				return
			case <-time.After(s.slowFor / pieces):
			}
		}
		if _, err := io.WriteString(w, s.body[i:min(i+size, len(s.body))]); err != nil {
			return
		}
		flusher.Flush()
		if i == 0 {
			close(s.started)
		}
	}
	close(s.finished)
}

// inFlightRun starts `intake all` with the given shutdown grace, runs a
// job whose file comes from a slow server, and sends SIGTERM while the
// file is being downloaded. It checks the exit (0) and returns what the
// test needs to restart the process.
type inFlightRun struct {
	dsn, store, run string
	src             *slowCSV
	rows            int
	args            []string
}

func startRunAndSIGTERM(t *testing.T, grace, slowFor time.Duration) *inFlightRun {
	t.Helper()
	f := &inFlightRun{dsn: pgtest.NewDatabase(t), store: t.TempDir(), rows: 3000}
	var url string
	f.src, url = newSlowCSV(t, f.rows, slowFor)
	grpcAddr := testutil.FreeAddr(t)
	f.args = []string{"all", "--database-url", f.dsn, "--nats-port", "0", "--nats-store", f.store,
		"--grpc-addr", grpcAddr, "--shutdown-delay", "0s", "--shutdown-grace", grace.String(), "--ack-wait", "5s"}
	p := startProcess(t, "all", f.args...)
	p.waitReady(t)

	jobs := intakev1.NewJobServiceClient(dialAPIAsAdmin(t, grpcAddr))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	// A disabled job needs no validated mapping, and job run still runs it.
	_, err := jobs.CreateJob(ctx, &intakev1.CreateJobRequest{JobId: "slow", Job: &intakev1.Job{
		DisplayName:     "Accounts from a slow server",
		Object:          intakev1.ObjectType_OBJECT_TYPE_ACCOUNTS,
		Connection:      &intakev1.Connection{Kind: &intakev1.Connection_Http{Http: &intakev1.HttpConnection{Url: url}}},
		AllowNewRecords: true,
		Mapping: &intakev1.MappingSpec{Entries: []*intakev1.MappingEntry{
			{Attribute: "account_id", Source: &intakev1.MappingEntry_Column{Column: "Account ID"}},
			{Attribute: "name", Source: &intakev1.MappingEntry_Column{Column: "Name"}},
		}},
	}})
	require.NoError(t, err)
	run, err := jobs.RunJob(ctx, &intakev1.RunJobRequest{Name: "jobs/slow"})
	require.NoError(t, err)
	f.run = run.GetName()

	select {
	case <-f.src.started:
	case <-time.After(30 * time.Second):
		t.Fatalf("the fetcher never asked for the file; output:\n%s", p.out)
	}
	p.signal(t, syscall.SIGTERM)
	sent := time.Now()
	require.Equal(t, 0, p.waitExit(t, grace+15*time.Second), "exit code after SIGTERM; output:\n%s", p.out)
	t.Logf("intake all stopped %v after SIGTERM", time.Since(sent).Round(time.Millisecond))
	require.Contains(t, p.out.String(), "intake stopped")
	return f
}

// restartAndWait starts `intake all` again on the same database and
// JetStream store and waits for the run to end; it checks that the run
// succeeded with every row and that every row is in objects.accounts.
func (f *inFlightRun) restartAndWait(t *testing.T) {
	t.Helper()
	grpcAddr := testutil.FreeAddr(t)
	args := append([]string{}, f.args...)
	for i := range args {
		if args[i] == "--grpc-addr" {
			args[i+1] = grpcAddr
		}
	}
	p := startProcess(t, "all (restarted)", args...)
	p.waitReady(t)
	runs := intakev1.NewRunServiceClient(dialAPIAsAdmin(t, grpcAddr))
	var (
		run *intakev1.Run
		err error
	)
	require.Eventually(t, func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		run, err = runs.GetRun(ctx, &intakev1.GetRunRequest{Name: f.run})
		return err == nil && run.GetEndTime() != nil
	}, 90*time.Second, 200*time.Millisecond, "run %s never ended after the restart (%v, %v); output:\n%s", f.run, run, err, p.out)
	require.Equal(t, intakev1.RunState_RUN_STATE_SUCCEEDED, run.GetState(), "run %s: %s", f.run, run.GetMessage())
	require.EqualValues(t, f.rows, run.GetCounters().GetRowsCreated())

	ctx := context.Background()
	db, err := pgx.Connect(ctx, f.dsn)
	require.NoError(t, err)
	defer db.Close(ctx)
	var n int
	require.NoError(t, db.QueryRow(ctx, `SELECT count(*) FROM objects.accounts`).Scan(&n))
	require.Equal(t, f.rows, n, "rows in objects.accounts")

	p.signal(t, syscall.SIGTERM)
	require.Equal(t, 0, p.waitExit(t, 30*time.Second))
}

// A run whose download outlasts the shutdown grace is handed back: the
// fetch is cancelled, the run request goes back to JetStream, the process
// exits 0, and after a restart the run is fetched again and lands whole.
func TestSIGTERMHandsBackARunThatOutlastsTheGrace(t *testing.T) {
	t.Parallel()
	f := startRunAndSIGTERM(t, 2*time.Second, 30*time.Second)
	select {
	case <-f.src.finished:
		t.Fatal("the slow download finished: the test proves nothing")
	default:
	}
	require.EqualValues(t, 1, f.src.gets.Load())
	f.restartAndWait(t)
	require.EqualValues(t, 2, f.src.gets.Load(), "GETs of the file: the handed back run fetches it again")
}

// A run whose download ends within the shutdown grace is not cut short:
// the fetch finishes and its chunks wait in JetStream; after a restart
// the mapper and the loader finish the run, without a second download.
func TestSIGTERMLetsARunFinishItsFetchWithinTheGrace(t *testing.T) {
	t.Parallel()
	f := startRunAndSIGTERM(t, 20*time.Second, 3*time.Second)
	select {
	case <-f.src.finished:
	default:
		t.Fatal("intake all exited before the download it had in flight finished")
	}
	f.restartAndWait(t)
	require.EqualValues(t, 1, f.src.gets.Load(), "GETs of the file")
}
