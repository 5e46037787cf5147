package api_test

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	reflectionpb "google.golang.org/grpc/reflection/grpc_reflection_v1"
	"google.golang.org/grpc/status"

	"github.com/intakehq/intake/api"
	"github.com/intakehq/intake/pkg/metricstest"
	"github.com/intakehq/intake/pkg/natstest"
	"github.com/intakehq/intake/pkg/pgtest"
	intakev1 "github.com/intakehq/intake/proto/gen/intake/v1"
)

// testBundle is a running control API and clients of it.
type testBundle struct {
	srv   *api.Server
	reg   *prometheus.Registry
	jobs  intakev1.JobServiceClient
	runs  intakev1.RunServiceClient
	stage intakev1.StageServiceClient
	conn  *grpc.ClientConn
	js    jetstream.JetStream
	dsn   string
	nats  *natstest.Server
	// files serves the jobs' files (accountsCSV at /accounts.csv).
	files *fileServer
}

// fileServer serves files over HTTP for the jobs of a test; setFile
// changes them while it runs.
type fileServer struct {
	srv   *httptest.Server
	mu    sync.Mutex
	files map[string]string
}

func newFileServer(t *testing.T) *fileServer {
	f := &fileServer{files: map[string]string{"/accounts.csv": accountsCSV}}
	f.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f.mu.Lock()
		body, ok := f.files[r.URL.Path]
		f.mu.Unlock()
		if !ok {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "text/csv")
		_, _ = io.WriteString(w, body)
	}))
	t.Cleanup(f.srv.Close)
	return f
}

// setFile serves body at path ("/users.csv") and returns its URL.
func (f *fileServer) setFile(path, body string) string {
	f.mu.Lock()
	f.files[path] = body
	f.mu.Unlock()
	return f.srv.URL + path
}

// accountsCSV is the file of accountsJob.
const accountsCSV = "Account ID,Name,Region\nA-1,Acme,EU\nA-2,Globex,US\n"

type setupOpts struct {
	devMode bool
	// dsn and nats share a database and NATS server with another bundle
	// (a second API replica).
	dsn  string
	nats *natstest.Server
	// requeueAfter is Config.RequeueAfter.
	requeueAfter time.Duration
	// rowErrorCap bounds the row errors kept per run (0: the default).
	rowErrorCap int64
	// sampleTimeout is Config.SampleTimeout.
	sampleTimeout time.Duration
	// retention and retentionInterval are Config.DefaultRetention and
	// Config.RetentionInterval (issue 4: files).
	retention         *intakev1.RetentionPolicy
	retentionInterval time.Duration
}

func setup(t *testing.T, opts ...setupOpts) *testBundle {
	t.Helper()
	var o setupOpts
	if len(opts) > 0 {
		o = opts[0]
	}
	if o.dsn == "" {
		o.dsn = pgtest.NewDatabase(t)
	}
	if o.nats == nil {
		o.nats = natstest.Start(t)
	}
	_, js := o.nats.Connect(t)
	reg := prometheus.NewRegistry()
	srv, err := api.New(api.Config{
		DatabaseURL:   o.dsn,
		NATSURL:       o.nats.URL,
		GRPCAddr:      "127.0.0.1:0",
		Registerer:    reg,
		Logger:        slog.New(slog.NewTextHandler(io.Discard, nil)),
		DevMode:       o.devMode,
		RequeueAfter:  o.requeueAfter,
		SampleTimeout: o.sampleTimeout,
		// issue 4 (files)
		DefaultRetention:  o.retention,
		RetentionInterval: o.retentionInterval,
	})
	require.NoError(t, err)
	if o.rowErrorCap > 0 {
		api.SetRowErrorCap(srv, o.rowErrorCap)
	}
	startServer(t, srv)
	require.True(t, srv.Ready())
	conn, err := grpc.NewClient(srv.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	require.NoError(t, err)
	t.Cleanup(func() { _ = conn.Close() })
	return &testBundle{
		srv: srv, reg: reg, conn: conn, js: js, dsn: o.dsn, nats: o.nats, files: newFileServer(t),
		jobs:  intakev1.NewJobServiceClient(conn),
		runs:  intakev1.NewRunServiceClient(conn),
		stage: intakev1.NewStageServiceClient(conn),
	}
}

// startServer runs srv until the test ends, waiting for it to start, and
// checks that it then stops cleanly.
func startServer(t *testing.T, srv *api.Server) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { errc <- srv.Run(ctx) }()
	select {
	case <-srv.Started():
	case err := <-errc:
		cancel()
		t.Fatalf("server did not start: %v", err)
	case <-time.After(60 * time.Second):
		cancel()
		t.Fatal("server did not start within 60s")
	}
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-errc:
			require.NoError(t, err)
		case <-time.After(30 * time.Second):
			t.Error("server did not stop within 30s")
		}
	})
}

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// accountsJob is a valid job importing accounts over HTTP, daily at 06:30,
// from the bundle's accounts.csv.
func (b *testBundle) accountsJob(name string) *intakev1.Job {
	return accountsJobAt(name, b.files.srv.URL+"/accounts.csv")
}

// accountsJobAt is accountsJob reading url.
func accountsJobAt(name, url string) *intakev1.Job {
	return &intakev1.Job{
		DisplayName: name,
		Description: "accounts from the CRM export",
		Object:      intakev1.ObjectType_OBJECT_TYPE_ACCOUNTS,
		Connection: &intakev1.Connection{Kind: &intakev1.Connection_Http{Http: &intakev1.HttpConnection{
			Url: url,
		}}},
		Mapping: &intakev1.MappingSpec{Entries: []*intakev1.MappingEntry{
			{Attribute: "account_id", Source: &intakev1.MappingEntry_Column{Column: "Account ID"}},
			{Attribute: "name", Source: &intakev1.MappingEntry_Column{Column: "Name"}},
			{Attribute: "status", Source: &intakev1.MappingEntry_Constant{Constant: "active"}},
		}},
		AllowNewRecords: true,
		Schedule: &intakev1.Schedule{TimeZone: "Europe/Berlin", Cadence: &intakev1.Schedule_Daily{
			Daily: &intakev1.Daily{Hour: 6, Minute: 30},
		}},
		Enabled: true,
	}
}

// createJob creates an enabled accounts job (validated first).
func (b *testBundle) createJob(t *testing.T, id string) *intakev1.Job {
	t.Helper()
	job, err := b.create(t, id, b.accountsJob("Accounts "+id))
	require.NoError(t, err)
	return job
}

// validate validates job's mapping against its file, requires it to pass,
// and returns the validation token.
func (b *testBundle) validate(t *testing.T, job *intakev1.Job) string {
	t.Helper()
	v, err := b.jobs.ValidateMapping(testCtx(t), &intakev1.ValidateMappingRequest{Job: job})
	require.NoError(t, err)
	require.True(t, v.GetValid(), "the mapping does not validate: %v", v.GetFindings())
	require.NotEmpty(t, v.GetValidationToken())
	return v.GetValidationToken()
}

// create creates a job as a client must: an enabled job's mapping is
// validated first, and the token passed.
func (b *testBundle) create(t *testing.T, id string, job *intakev1.Job) (*intakev1.Job, error) {
	t.Helper()
	req := &intakev1.CreateJobRequest{JobId: id, Job: job}
	if job.GetEnabled() {
		req.ValidationToken = b.validate(t, job)
	}
	return b.jobs.CreateJob(testCtx(t), req)
}

// requireCode checks a gRPC error's code and that its message says each of want.
func requireCode(t *testing.T, err error, code codes.Code, want ...string) *status.Status {
	t.Helper()
	require.Error(t, err)
	st, ok := status.FromError(err)
	require.True(t, ok, "not a gRPC status: %v", err)
	require.Equal(t, code, st.Code(), "code of %v", err)
	for _, w := range want {
		require.Contains(t, st.Message(), w)
	}
	return st
}

// fieldViolations returns the BadRequest field violations of an error, by field.
func fieldViolations(t *testing.T, st *status.Status) map[string]string {
	t.Helper()
	out := map[string]string{}
	for _, d := range st.Details() {
		if br, ok := d.(*errdetails.BadRequest); ok {
			for _, v := range br.GetFieldViolations() {
				out[v.GetField()] = v.GetDescription()
			}
		}
	}
	require.NotEmpty(t, out, "no field violations in %v", st.Message())
	return out
}

// metricValue is the value of a counter or gauge (or a histogram's sample
// count) with the given labels, 0 when absent (metricstest.Gathered).
func metricValue(t *testing.T, reg *prometheus.Registry, name string, labels map[string]string) float64 {
	t.Helper()
	v, _ := metricstest.Gathered(t, reg, name, labels)
	return v
}

func TestConfigValidate(t *testing.T) {
	t.Parallel()
	ok := api.Config{DatabaseURL: "postgres://x@localhost/db", NATSURL: "nats://localhost:4222", GRPCAddr: ":7070"}
	require.NoError(t, ok.Validate())
	for name, tc := range map[string]struct {
		change func(*api.Config)
		want   string
	}{
		"no database":   {func(c *api.Config) { c.DatabaseURL = "" }, "DatabaseURL is required"},
		"bad database":  {func(c *api.Config) { c.DatabaseURL = "postgres://x@localhost:notaport/db" }, "DatabaseURL"},
		"no nats":       {func(c *api.Config) { c.NATSURL = "" }, "NATSURL is required"},
		"no addr":       {func(c *api.Config) { c.GRPCAddr = "" }, "GRPCAddr is required"},
		"bad addr":      {func(c *api.Config) { c.GRPCAddr = "7070" }, `GRPCAddr "7070"`},
		"neg timeout":   {func(c *api.Config) { c.ShutdownTimeout = -time.Second }, "ShutdownTimeout"},
		"neg requeue":   {func(c *api.Config) { c.RequeueAfter = -time.Minute }, "RequeueAfter -1m0s is negative"},
		"short requeue": {func(c *api.Config) { c.RequeueAfter = time.Millisecond }, "RequeueAfter 1ms is shorter than 100ms"},
		"neg sample":    {func(c *api.Config) { c.SampleTimeout = -time.Second }, "SampleTimeout -1s is negative"},
		"neg replicas":  {func(c *api.Config) { c.StreamReplicas = -1 }, "StreamReplicas -1: must be between 1 and 5"},
		"many replicas": {func(c *api.Config) { c.StreamReplicas = 6 }, "StreamReplicas 6: must be between 1 and 5"},
	} {
		c := ok
		tc.change(&c)
		err := c.Validate()
		require.Error(t, err, name)
		require.Contains(t, err.Error(), tc.want, name)
		_, err = api.New(c)
		require.Error(t, err, name)
	}
}

func TestHealthAndReadiness(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := testCtx(t)
	hc := healthpb.NewHealthClient(b.conn)
	for _, svc := range []string{"", "intake.v1.JobService", "intake.v1.RunService", "intake.v1.StageService"} {
		resp, err := hc.Check(ctx, &healthpb.HealthCheckRequest{Service: svc})
		require.NoError(t, err, svc)
		require.Equal(t, healthpb.HealthCheckResponse_SERVING, resp.GetStatus(), svc)
	}
	require.True(t, b.srv.Ready())
	require.True(t, strings.HasPrefix(b.srv.Addr().String(), "127.0.0.1:"))
	// Reflection lists the services, for grpcurl and friends.
	refl, err := reflectionpb.NewServerReflectionClient(b.conn).ServerReflectionInfo(ctx)
	require.NoError(t, err)
	require.NoError(t, refl.Send(&reflectionpb.ServerReflectionRequest{MessageRequest: &reflectionpb.ServerReflectionRequest_ListServices{}}))
	listed, err := refl.Recv()
	require.NoError(t, err)
	var services []string
	for _, svc := range listed.GetListServicesResponse().GetService() {
		services = append(services, svc.GetName())
	}
	require.Subset(t, services, []string{"intake.v1.JobService", "intake.v1.RunService", "intake.v1.StageService", "grpc.health.v1.Health"})
	require.NoError(t, refl.CloseSend())

	// The streams exist once the API is up.
	_, err = b.js.Stream(ctx, "INTAKE_RUNS")
	require.NoError(t, err)

	// Every call is counted.
	_, err = b.jobs.GetJob(ctx, &intakev1.GetJobRequest{Name: "jobs/missing"})
	requireCode(t, err, codes.NotFound, "job jobs/missing not found")
	require.Equal(t, 1.0, metricValue(t, b.reg, "grpc_server_handled_total",
		map[string]string{"grpc_service": "intake.v1.JobService", "grpc_method": "GetJob", "grpc_code": "NotFound"}))
}

// Drain (called as a stop begins) turns the gRPC health checks to
// NOT_SERVING at once, while calls are still served until the stop.
func TestDrainTurnsHealthBeforeTheStop(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := testCtx(t)
	health := healthpb.NewHealthClient(b.conn)
	for _, name := range []string{"", "intake.v1.JobService"} {
		st, err := health.Check(ctx, &healthpb.HealthCheckRequest{Service: name})
		require.NoError(t, err)
		require.Equal(t, healthpb.HealthCheckResponse_SERVING, st.GetStatus(), "service %q", name)
	}
	b.srv.Drain()
	for _, name := range []string{"", "intake.v1.JobService"} {
		st, err := health.Check(ctx, &healthpb.HealthCheckRequest{Service: name})
		require.NoError(t, err)
		require.Equal(t, healthpb.HealthCheckResponse_NOT_SERVING, st.GetStatus(), "service %q", name)
	}
	_, err := b.jobs.ListJobs(ctx, &intakev1.ListJobsRequest{})
	require.NoError(t, err, "a draining API still serves calls")
}

// A second API replica on the same database starts (migrations are
// already applied) and sees the first one's jobs.
func TestSecondReplicaSharesState(t *testing.T) {
	t.Parallel()
	a := setup(t)
	b := setup(t, setupOpts{dsn: a.dsn, nats: a.nats})
	job := a.createJob(t, "shared")
	got, err := b.jobs.GetJob(testCtx(t), &intakev1.GetJobRequest{Name: job.GetName()})
	require.NoError(t, err)
	require.Equal(t, job.GetEtag(), got.GetEtag())
}

// pgPool is a pool on a bundle's database, for checks a client cannot make.
func pgPool(t *testing.T, dsn string) *pgxpool.Pool {
	t.Helper()
	pool, err := pgxpool.New(context.Background(), dsn)
	require.NoError(t, err)
	t.Cleanup(pool.Close)
	return pool
}

// Cancelling Run's context stops the server gracefully: open watches end
// with Unavailable (so clients reconnect elsewhere) and Run returns nil.
func TestShutdownEndsWatches(t *testing.T) {
	t.Parallel()
	ns := natstest.Start(t)
	srv, err := api.New(api.Config{
		DatabaseURL: pgtest.NewDatabase(t), NATSURL: ns.URL, GRPCAddr: "127.0.0.1:0",
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	errc := make(chan error, 1)
	go func() { errc <- srv.Run(ctx) }()
	select {
	case <-srv.Started():
	case err := <-errc:
		t.Fatalf("server did not start: %v", err)
	}
	conn, err := grpc.NewClient(srv.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	require.NoError(t, err)
	defer conn.Close()
	jobs, runs := intakev1.NewJobServiceClient(conn), intakev1.NewRunServiceClient(conn)
	tctx := testCtx(t)
	a := accountsJobAt("a", "https://exports.example.com/accounts.csv")
	a.Enabled = false
	_, err = jobs.CreateJob(tctx, &intakev1.CreateJobRequest{JobId: "a", Job: a})
	require.NoError(t, err)
	run, err := jobs.RunJob(tctx, &intakev1.RunJobRequest{Name: "jobs/a"})
	require.NoError(t, err)
	stream, err := runs.WatchRun(tctx, &intakev1.WatchRunRequest{Name: run.GetName()})
	require.NoError(t, err)
	_, err = stream.Recv()
	require.NoError(t, err)

	cancel()
	_, err = stream.Recv()
	requireCode(t, err, codes.Unavailable, "shutting down")
	select {
	case err := <-errc:
		require.NoError(t, err)
	case <-time.After(5 * time.Second):
		t.Fatal("Run did not return after its context was cancelled")
	}
	require.False(t, srv.Ready())
	require.Error(t, srv.Run(context.Background()), "a Server runs once")
}
