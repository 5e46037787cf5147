package e2e

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/intakehq/intake/pkg/pgtest"
	intakev1 "github.com/intakehq/intake/proto/gen/intake/v1"
)

// system is Intake running as separate processes.
type system struct {
	db      *pgxpool.Pool
	dbURL   string
	natsURL string
	apiAddr string
	jobs    intakev1.JobServiceClient
	runs    intakev1.RunServiceClient
	model   intakev1.DataModelServiceClient
	procs   map[string]*proc
}

func startSystem(t *testing.T) *system {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	s := &system{procs: map[string]*proc{}}
	s.db, s.dbURL = pgtest.NewPool(t)

	natsPort := freePort(t)
	s.natsURL = fmt.Sprintf("nats://127.0.0.1:%d", natsPort)
	s.procs["nats"] = start(t, "nats-server", "nats-server", "-js", "-a", "127.0.0.1", "-p", fmt.Sprint(natsPort), "-sd", t.TempDir())
	waitTCP(ctx, t, fmt.Sprintf("127.0.0.1:%d", natsPort))

	s.apiAddr = fmt.Sprintf("127.0.0.1:%d", freePort(t))
	s.procs["api"] = start(t, "api", "intake", "api", "--database-url", s.dbURL, "--nats-url", s.natsURL,
		"--grpc-addr", s.apiAddr, "--http-addr", fmt.Sprintf("127.0.0.1:%d", freePort(t)))
	conn, err := grpc.NewClient(s.apiAddr, grpc.WithTransportCredentials(insecure.NewCredentials()), adminCredentials())
	require.NoError(t, err)
	t.Cleanup(func() { conn.Close() })
	health := healthpb.NewHealthClient(conn)
	for {
		r, err := health.Check(ctx, &healthpb.HealthCheckRequest{})
		if err == nil && r.Status == healthpb.HealthCheckResponse_SERVING {
			break
		}
		select {
		case <-ctx.Done():
			t.Fatalf("control API never became healthy: %v", err)
		case <-time.After(100 * time.Millisecond):
		}
	}
	s.jobs = intakev1.NewJobServiceClient(conn)
	s.runs = intakev1.NewRunServiceClient(conn)
	s.model = intakev1.NewDataModelServiceClient(conn)
	for _, w := range []string{"fetcher", "mapper", "scheduler"} {
		s.startWorker(t, w)
	}
	s.startWorker(t, "loader")
	return s
}

func (s *system) startWorker(t *testing.T, name string, extra ...string) *proc {
	args := []string{name, "--nats-url", s.natsURL, "--api-addr", s.apiAddr, "--http-addr", fmt.Sprintf("127.0.0.1:%d", freePort(t))}
	if name == "loader" {
		args = append(args, "--database-url", s.dbURL, "--ack-wait", "2s")
	}
	p := start(t, name, "intake", append(args, extra...)...)
	s.procs[name] = p
	return p
}

// fileServer serves CSV files whose content the test can change.
type fileServer struct {
	mu    sync.Mutex
	files map[string]string
	srv   *httptest.Server
}

// newFileServer serves body as /accounts.csv.
func newFileServer(t *testing.T, body string) *fileServer {
	f := &fileServer{files: map[string]string{"/accounts.csv": body}}
	f.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f.mu.Lock()
		b, ok := f.files[r.URL.Path]
		f.mu.Unlock()
		if !ok {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "text/csv")
		_, _ = io.WriteString(w, b)
	}))
	t.Cleanup(f.srv.Close)
	return f
}

func (f *fileServer) set(body string) { f.setFile("/accounts.csv", body) }
func (f *fileServer) url() string     { return f.srv.URL + "/accounts.csv" }

// setFile serves body at path ("/users.csv") and returns its URL.
func (f *fileServer) setFile(path, body string) string {
	f.mu.Lock()
	f.files[path] = body
	f.mu.Unlock()
	return f.srv.URL + path
}

// createJob validates the job's mapping against its file, as a client must
// before saving an enabled job, and creates it with the validation token.
func (s *system) createJob(ctx context.Context, t *testing.T, job *intakev1.Job) *intakev1.Job {
	t.Helper()
	v, err := s.jobs.ValidateMapping(ctx, &intakev1.ValidateMappingRequest{Job: job})
	require.NoError(t, err)
	require.True(t, v.GetValid(), "the mapping does not validate: %v", v.GetFindings())
	require.NotEmpty(t, v.GetValidationToken())
	created, err := s.jobs.CreateJob(ctx, &intakev1.CreateJobRequest{Job: job, ValidationToken: v.GetValidationToken()})
	require.NoError(t, err)
	require.True(t, created.GetMappingValidated())
	return created
}

func accountsJob(url string) *intakev1.Job {
	col := func(attr, column, format string) *intakev1.MappingEntry {
		return &intakev1.MappingEntry{Attribute: attr, Source: &intakev1.MappingEntry_Column{Column: column}, SourceFormat: format}
	}
	return &intakev1.Job{
		DisplayName:     "Accounts from the CRM export",
		Object:          intakev1.ObjectType_OBJECT_TYPE_ACCOUNTS,
		Connection:      &intakev1.Connection{Kind: &intakev1.Connection_Http{Http: &intakev1.HttpConnection{Url: url}}},
		AllowNewRecords: true,
		Enabled:         true,
		Schedule: &intakev1.Schedule{TimeZone: "Europe/Berlin",
			Cadence: &intakev1.Schedule_Daily{Daily: &intakev1.Daily{Hour: 3, Minute: 30}}},
		Mapping: &intakev1.MappingSpec{Entries: []*intakev1.MappingEntry{
			col("account_id", "Account ID", ""),
			col("name", "Name", ""),
			col("employees", "Employees", ""),
			col("annual_revenue", "Revenue", ""),
			col("created_date", "Created", "MM/dd/yyyy"),
			col("is_active", "Active", ""),
			col("notes", "Notes", ""),
			{Attribute: "status", Source: &intakev1.MappingEntry_Constant{Constant: "customer"}},
		}},
	}
}

// accountsCSV writes rows [from, to) of a deterministic accounts file; edit
// changes the name of the given ids.
func accountsCSV(from, to int, edit map[int]string) string {
	var b strings.Builder
	b.WriteString("Account ID,Name,Employees,Revenue,Created,Active,Notes\r\n")
	for i := from; i < to; i++ {
		name := fmt.Sprintf("Company %d", i)
		if n, ok := edit[i]; ok {
			name = n
		}
		notes := ""
		switch i % 7 {
		case 0:
			notes = `"Renewal due, call ""Ana"""`
		case 3:
			notes = "\"two\nlines\""
		}
		fmt.Fprintf(&b, "A-%06d,%s,%d,\"$%d,%03d.50\",%02d/%02d/20%02d,%s,%s\r\n",
			i, name, i%500, i%97, i%1000, i%12+1, i%28+1, i%25, []string{"yes", "no"}[i%2], notes)
	}
	return b.String()
}

// runAndWait starts a run of job and watches it to its final state.
func (s *system) runAndWait(ctx context.Context, t *testing.T, job string) *intakev1.Run {
	t.Helper()
	run, err := s.jobs.RunJob(ctx, &intakev1.RunJobRequest{Name: job})
	require.NoError(t, err)
	return s.wait(ctx, t, run.Name, nil)
}

// wait follows WatchRun until the run ends; each update goes to seen.
func (s *system) wait(ctx context.Context, t *testing.T, run string, seen func(*intakev1.Run)) *intakev1.Run {
	t.Helper()
	stream, err := s.runs.WatchRun(ctx, &intakev1.WatchRunRequest{Name: run})
	require.NoError(t, err)
	var last *intakev1.Run
	for {
		r, err := stream.Recv()
		if err == io.EOF {
			break
		}
		require.NoError(t, err, "watching %s", run)
		last = r.Run
		if seen != nil {
			seen(last)
		}
	}
	require.NotNil(t, last)
	require.True(t, final(last.State), "WatchRun ended before a final state: %v", last.State)
	return last
}

func final(s intakev1.RunState) bool {
	switch s {
	case intakev1.RunState_RUN_STATE_SUCCEEDED, intakev1.RunState_RUN_STATE_PARTIALLY_SUCCEEDED,
		intakev1.RunState_RUN_STATE_FAILED, intakev1.RunState_RUN_STATE_SKIPPED, intakev1.RunState_RUN_STATE_CANCELLED:
		return true
	}
	return false
}

func count(ctx context.Context, t *testing.T, db *pgxpool.Pool, sql string, args ...any) int64 {
	t.Helper()
	var n int64
	require.NoError(t, db.QueryRow(ctx, sql, args...).Scan(&n))
	return n
}

// TestImportLifecycle is the spine end to end: import, skip an unchanged
// file, import a change, reject a bad row, survive a loader crash.
func TestImportLifecycle(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	s := startSystem(t)
	files := newFileServer(t, accountsCSV(0, 1000, nil))

	job := s.createJob(ctx, t, accountsJob(files.url()))

	// 1. The first run imports every row.
	run := s.runAndWait(ctx, t, job.Name)
	require.Equal(t, intakev1.RunState_RUN_STATE_SUCCEEDED, run.State, run.Message)
	require.EqualValues(t, 1000, run.Counters.RowsRead)
	require.EqualValues(t, 1000, run.Counters.RowsCreated)
	require.Equal(t, int64(1000), count(ctx, t, s.db, `SELECT count(*) FROM objects.accounts`))
	var name, notes, status string
	var employees, revenue float64
	var created time.Time
	var active bool
	require.NoError(t, s.db.QueryRow(ctx, `SELECT name, employees, annual_revenue, created_date, is_active, notes, status
		FROM objects.accounts WHERE account_id = 'A-000003'`).Scan(&name, &employees, &revenue, &created, &active, &notes, &status))
	require.Equal(t, "Company 3", name)
	require.Equal(t, 3.0, employees)
	require.Equal(t, 3003.5, revenue)
	require.Equal(t, "2003-04-04", created.Format(time.DateOnly))
	require.False(t, active)
	require.Equal(t, "two\nlines", notes)
	require.Equal(t, "customer", status)
	require.Len(t, run.Sha256, 64)

	// 2. The same file again: skipped, nothing changes.
	run = s.runAndWait(ctx, t, job.Name)
	require.Equal(t, intakev1.RunState_RUN_STATE_SKIPPED, run.State)
	require.Contains(t, run.Message, "unchanged")

	// 3. A changed file: two names edited, three new accounts.
	files.set(accountsCSV(0, 1003, map[int]string{10: "Renamed Ten", 20: "Renamed Twenty"}))
	run = s.runAndWait(ctx, t, job.Name)
	require.Equal(t, intakev1.RunState_RUN_STATE_SUCCEEDED, run.State, run.Message)
	require.EqualValues(t, 3, run.Counters.RowsCreated)
	require.EqualValues(t, 2, run.Counters.RowsUpdated)
	require.EqualValues(t, 998, run.Counters.RowsUnchanged)
	require.Equal(t, int64(1003), count(ctx, t, s.db, `SELECT count(*) FROM objects.accounts`))
	require.Equal(t, int64(1), count(ctx, t, s.db, `SELECT count(*) FROM objects.accounts WHERE name = 'Renamed Twenty'`))

	// 4. One bad row: the run partially succeeds, names the row, loses no good row.
	body := accountsCSV(0, 1003, map[int]string{5: "Five again", 10: "Renamed Ten", 20: "Renamed Twenty"})
	body = strings.Replace(body, "A-000007,Company 7,7,\"$7,007.50\",08/08/2007", "A-000007,Company 7,7,\"$7,007.50\",13/45/2007", 1)
	files.set(body)
	run = s.runAndWait(ctx, t, job.Name)
	require.Equal(t, intakev1.RunState_RUN_STATE_PARTIALLY_SUCCEEDED, run.State, run.Message)
	require.EqualValues(t, 1, run.Counters.RowsRejected)
	require.NotEmpty(t, run.RowErrors)
	require.EqualValues(t, 9, run.RowErrors[0].Row, "A-000007 is the 8th data row, row 9 counting the header")
	require.Equal(t, "Created", run.RowErrors[0].Column)
	require.Contains(t, run.RowErrors[0].Reason, "13/45/2007")
	require.EqualValues(t, 1, run.Counters.RowsUpdated)
	require.Equal(t, int64(1), count(ctx, t, s.db, `SELECT count(*) FROM objects.accounts WHERE name = 'Five again'`))
}

// TestLoaderCrashMidRun kills the loader while a run is being staged and
// starts it again: every row lands exactly once.
func TestLoaderCrashMidRun(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	s := startSystem(t)
	const rows = 200000
	files := newFileServer(t, accountsCSV(0, rows, nil)+accountsCSV(0, 100, map[int]string{0: "Last wins"})[len("Account ID,Name,Employees,Revenue,Created,Active,Notes\r\n"):])
	job := s.createJob(ctx, t, accountsJob(files.url()))

	started, err := s.jobs.RunJob(ctx, &intakev1.RunJobRequest{Name: job.Name})
	require.NoError(t, err)
	var once sync.Once
	run := s.wait(ctx, t, started.Name, func(r *intakev1.Run) {
		if r.Counters.GetRowsStaged() > 0 && !final(r.State) {
			once.Do(func() {
				s.procs["loader"].kill()
				s.startWorker(t, "loader")
			})
		}
	})
	var crashed bool
	once.Do(func() { crashed = true })
	require.False(t, crashed, "the run ended before the loader could be killed mid-run")
	require.Equal(t, intakev1.RunState_RUN_STATE_SUCCEEDED, run.State, run.Message)
	require.EqualValues(t, rows, run.Counters.RowsCreated)
	require.Equal(t, int64(rows), count(ctx, t, s.db, `SELECT count(*) FROM objects.accounts`))
	require.Equal(t, int64(1), count(ctx, t, s.db, `SELECT count(*) FROM objects.accounts WHERE account_id = 'A-000000' AND name = 'Last wins'`))
}
