package loader_test

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/intakehq/intake/pkg/natstest"
	"github.com/intakehq/intake/pkg/pgtest"
	"github.com/intakehq/intake/pkg/pipeline"
	pipelinev1 "github.com/intakehq/intake/proto/gen/intake/pipeline/v1"
	intakev1 "github.com/intakehq/intake/proto/gen/intake/v1"
	"github.com/intakehq/intake/services/loader"
)

func TestConfigValidate(t *testing.T) {
	t.Parallel()
	good := loader.Config{NATSURL: "nats://127.0.0.1:4222", APIAddr: "127.0.0.1:8081", DatabaseURL: "postgres://u@db:5432/intake"}
	require.NoError(t, good.Validate())
	for _, tc := range []struct {
		name string
		edit func(c *loader.Config)
		want string
	}{
		{"nats", func(c *loader.Config) { c.NATSURL = "" }, loader.ErrNoNATSURL.Error()},
		{"api", func(c *loader.Config) { c.APIAddr = "" }, loader.ErrNoAPIAddr.Error()},
		{"database", func(c *loader.Config) { c.DatabaseURL = "" }, loader.ErrNoDatabaseURL.Error()},
		{"database url", func(c *loader.Config) { c.DatabaseURL = "postgres://db:port/x" }, "loader: DatabaseURL: "},
		{"concurrency", func(c *loader.Config) { c.Concurrency = -1 }, "loader: Concurrency must be 0 (default 4) or more, got -1"},
		{"ack wait", func(c *loader.Config) { c.AckWait = time.Millisecond }, "loader: AckWait must be 0 (default 30s) or at least 1s, got 1ms"},
		{"grace", func(c *loader.Config) { c.ShutdownGrace = -time.Second }, "loader: ShutdownGrace must be 0 (default 30s) or more, got -1s"},
		{"replicas", func(c *loader.Config) { c.StreamReplicas = 7 }, "loader: StreamReplicas must be between 0 (default 1) and 5, got 7"},
		{"janitor interval", func(c *loader.Config) { c.JanitorInterval = -time.Second }, "loader: JanitorInterval must be 0 (default 1m0s) or more, got -1s"},
		{"stale after", func(c *loader.Config) { c.StaleAfter = -time.Minute }, "loader: StaleAfter must be 0 (default 2m0s) or more, got -1m0s"},
		{"abandoned retention", func(c *loader.Config) { c.AbandonedRetention = -time.Hour },
			"loader: AbandonedRetention must be 0 (default 24h0m0s) or more, got -1h0m0s"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := good
			tc.edit(&c)
			require.ErrorContains(t, c.Validate(), tc.want)
			_, err := loader.New(c)
			require.ErrorContains(t, err, tc.want)
		})
	}
}

// fakeAPI is the control API's StageService as the loader sees it: it
// records every report and answers with a directive.
type fakeAPI struct {
	intakev1.UnimplementedStageServiceServer
	mu      sync.Mutex
	reports []*intakev1.ReportRunEventRequest
	// unavailable fails this many calls with Unavailable first.
	unavailable int
	directive   func(*intakev1.ReportRunEventRequest) intakev1.Directive
	// refuse, when it returns an error, answers the (recorded) report
	// with it.
	refuse func(*intakev1.ReportRunEventRequest) error
}

func (f *fakeAPI) ReportRunEvent(_ context.Context, req *intakev1.ReportRunEventRequest) (*intakev1.ReportRunEventResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.unavailable > 0 {
		f.unavailable--
		return nil, status.Error(codes.Unavailable, "starting up")
	}
	f.reports = append(f.reports, proto.Clone(req).(*intakev1.ReportRunEventRequest))
	if f.refuse != nil {
		if err := f.refuse(req); err != nil {
			return nil, err
		}
	}
	d := intakev1.Directive_DIRECTIVE_CONTINUE
	if f.directive != nil {
		d = f.directive(req)
	}
	return &intakev1.ReportRunEventResponse{Directive: d}, nil
}

// find returns the reports of the given kind.
func (f *fakeAPI) find(kind intakev1.RunEventKind) []*intakev1.ReportRunEventRequest {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []*intakev1.ReportRunEventRequest
	for _, r := range f.reports {
		if r.Kind == kind {
			out = append(out, r)
		}
	}
	return out
}

// index is the position of a report among all reports.
func (f *fakeAPI) index(r *intakev1.ReportRunEventRequest) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.IndexFunc(f.reports, func(x *intakev1.ReportRunEventRequest) bool { return proto.Equal(x, r) })
}

type env struct {
	pool *pgxpool.Pool
	js   jetstream.JetStream
	api  *fakeAPI
	reg  *prometheus.Registry
	svc  *loader.Service
}

// start runs a loader against a fresh database, an embedded JetStream and a
// fake control API, and stops it at the end of the test. edit changes the
// loader's configuration first.
func start(t *testing.T, api *fakeAPI, edit ...func(*loader.Config)) *env {
	t.Helper()
	pool, dsn := pgtest.NewPool(t)
	ns := natstest.Start(t)
	_, js := ns.Connect(t)

	lis, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	srv := grpc.NewServer()
	intakev1.RegisterStageServiceServer(srv, api)
	go func() { _ = srv.Serve(lis) }()
	t.Cleanup(srv.Stop)

	reg := prometheus.NewRegistry()
	cfg := loader.Config{
		NATSURL: ns.URL, APIAddr: lis.Addr().String(), DatabaseURL: dsn,
		Concurrency: 3, ShutdownGrace: 5 * time.Second, Registerer: reg,
		Logger: slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelDebug})),
	}
	for _, f := range edit {
		f(&cfg)
	}
	svc, err := loader.New(cfg)
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- svc.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			require.ErrorIs(t, err, context.Canceled)
			require.False(t, svc.Ready())
		case <-time.After(15 * time.Second):
			t.Error("the loader did not stop")
		}
	})
	require.Eventually(t, svc.Ready, 10*time.Second, 10*time.Millisecond)
	return &env{pool: pool, js: js, api: api, reg: reg, svc: svc}
}

func (e *env) publishBatch(t *testing.T, b *pipelinev1.Batch) {
	t.Helper()
	require.NoError(t, pipeline.Publish(context.Background(), e.js, pipeline.SubjectBatch, pipeline.BatchMsgID(b.Run, b.Chunk), b))
}

// redeliver publishes a message again under a new id: JetStream hands it
// to the loader a second time, as it would after a crash before the ack.
func (e *env) redeliver(t *testing.T, subject string, m proto.Message) {
	t.Helper()
	require.NoError(t, pipeline.Publish(context.Background(), e.js, subject, uuid.NewString(), m))
}

func (e *env) publishSeal(t *testing.T, s *pipelinev1.Seal) {
	t.Helper()
	require.NoError(t, pipeline.Publish(context.Background(), e.js, pipeline.SubjectSeal, pipeline.SealMsgID(s.Run), s))
}

func txt(s string) *pipelinev1.Value { return &pipelinev1.Value{Kind: &pipelinev1.Value_Text{Text: s}} }
func dec(s string) *pipelinev1.Value {
	return &pipelinev1.Value{Kind: &pipelinev1.Value_Decimal{Decimal: s}}
}

var attrs = []string{"account_id", "name", "mrr"}

func batch(run string, chunk int64, rows ...*pipelinev1.Row) *pipelinev1.Batch {
	return &pipelinev1.Batch{Run: run, Object: intakev1.ObjectType_OBJECT_TYPE_ACCOUNTS, AllowNewRecords: true,
		Attributes: attrs, Chunk: chunk, Rows: rows}
}

func seal(run string, chunks int64) *pipelinev1.Seal {
	return &pipelinev1.Seal{Run: run, Chunks: chunks, Object: intakev1.ObjectType_OBJECT_TYPE_ACCOUNTS, AllowNewRecords: true, Attributes: attrs}
}

func row(n int64, id, name, mrr string) *pipelinev1.Row {
	return &pipelinev1.Row{Row: n, Values: []*pipelinev1.Value{txt(id), txt(name), dec(mrr)}}
}

func newRun() (name, id string) {
	id = uuid.NewString()
	return "jobs/nightly-accounts/runs/" + id, id
}

func accounts(t *testing.T, pool *pgxpool.Pool) map[string]string {
	t.Helper()
	rows, err := pool.Query(context.Background(), `SELECT account_id, name || ' ' || mrr::text || ' ' || coalesce(_run, 'old') FROM objects.accounts`)
	require.NoError(t, err)
	out := map[string]string{}
	for rows.Next() {
		var k, v string
		require.NoError(t, rows.Scan(&k, &v))
		out[k] = v
	}
	require.NoError(t, rows.Err())
	return out
}

func stagingTables(t *testing.T, pool *pgxpool.Pool) int64 {
	t.Helper()
	var n int64
	require.NoError(t, pool.QueryRow(context.Background(),
		`SELECT count(*) FROM pg_tables WHERE schemaname = 'intake_staging'`).Scan(&n))
	return n
}

func TestARunLandsThroughJetStream(t *testing.T) {
	t.Parallel()
	e := start(t, &fakeAPI{unavailable: 2})
	_, err := e.pool.Exec(context.Background(), `INSERT INTO objects.accounts (account_id, name, mrr, notes) VALUES
		('a1', 'Acme', 10, 'keep'), ('a2', 'Beta', 20, 'keep')`)
	require.NoError(t, err)

	run, id := newRun()
	// The seal comes first; chunk 2 holds the last row of a1.
	e.publishSeal(t, seal(run, 3))
	b0 := batch(run, 0, row(2, "a1", "Acme Corp", "11"), row(3, "a2", "Beta", "20"), row(4, "a3", "Gamma", "1.5"))
	e.publishBatch(t, b0)
	e.redeliver(t, pipeline.SubjectBatch, b0)
	e.publishBatch(t, batch(run, 2, row(7, "a1", "Acme Inc", "12")))
	e.publishBatch(t, batch(run, 1))

	require.Eventually(t, func() bool { return len(e.api.find(intakev1.RunEventKind_RUN_EVENT_KIND_FINISHED)) > 0 },
		20*time.Second, 20*time.Millisecond)
	fin := e.api.find(intakev1.RunEventKind_RUN_EVENT_KIND_FINISHED)[0]
	require.Equal(t, run, fin.Run)
	require.Equal(t, intakev1.Stage_STAGE_LOAD, fin.Stage)
	require.NotNil(t, fin.EventTime)
	require.True(t, proto.Equal(&intakev1.RunCounters{RowsCreated: 1, RowsUpdated: 1, RowsUnchanged: 1}, fin.Counters), "%v", fin.Counters)
	require.Equal(t, map[string]string{
		"a1": "Acme Inc 12 " + id,
		"a2": "Beta 20 old", // unchanged: not touched
		"a3": "Gamma 1.5 " + id,
	}, accounts(t, e.pool))
	require.Zero(t, stagingTables(t, e.pool))

	staged := map[int64]int64{}
	for _, r := range e.api.find(intakev1.RunEventKind_RUN_EVENT_KIND_CHUNK_DONE) {
		require.Equal(t, intakev1.Stage_STAGE_LOAD, r.Stage)
		staged[r.Chunk] = r.Counters.GetRowsStaged()
	}
	require.Equal(t, map[int64]int64{0: 3, 1: 0, 2: 1}, staged)

	// The commit gate: COMMITTING with every staged row, before FINISHED.
	gate := e.api.find(intakev1.RunEventKind_RUN_EVENT_KIND_COMMITTING)
	require.NotEmpty(t, gate)
	require.Equal(t, intakev1.Stage_STAGE_LOAD, gate[0].Stage)
	require.Equal(t, int64(4), gate[0].Counters.GetRowsStaged())
	require.Less(t, e.api.index(gate[0]), e.api.index(fin))

	require.Equal(t, 4.0, value(t, e.reg, "intake_loader_rows_staged_total"), "the redelivered batch counts once")
	require.Equal(t, 1.0, value(t, e.reg, "intake_loader_rows_committed_total", "created"))
	require.Equal(t, 1.0, value(t, e.reg, "intake_loader_rows_committed_total", "updated"))
	require.Equal(t, 1.0, value(t, e.reg, "intake_loader_rows_committed_total", "unchanged"))
	require.Equal(t, 1, testutil.CollectAndCount(e.reg, "intake_loader_commit_duration_seconds"))
	require.Equal(t, 1, testutil.CollectAndCount(e.reg, "intake_loader_batch_write_duration_seconds"))

	// A batch redelivered after the commit re-reports the same counts and
	// changes nothing.
	before := accounts(t, e.pool)
	e.redeliver(t, pipeline.SubjectBatch, b0)
	require.Eventually(t, func() bool { return len(e.api.find(intakev1.RunEventKind_RUN_EVENT_KIND_FINISHED)) >= 2 },
		10*time.Second, 20*time.Millisecond)
	for _, r := range e.api.find(intakev1.RunEventKind_RUN_EVENT_KIND_FINISHED) {
		require.True(t, proto.Equal(fin.Counters, r.Counters), "%v", r.Counters)
	}
	require.Equal(t, before, accounts(t, e.pool))
	require.Zero(t, stagingTables(t, e.pool))
	require.Equal(t, 1.0, value(t, e.reg, "intake_loader_rows_committed_total", "created"), "committed once")
}

// value returns the value of a counter (with the given label values).
func value(t *testing.T, reg *prometheus.Registry, name string, labels ...string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	require.NoError(t, err)
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			var values []string
			for _, l := range m.GetLabel() {
				values = append(values, l.GetValue())
			}
			if slices.Equal(values, labels) {
				return m.GetCounter().GetValue()
			}
		}
	}
	t.Fatalf("no metric %s%v", name, labels)
	return 0
}

func TestAbandonDropsTheStaging(t *testing.T) {
	t.Parallel()
	api := &fakeAPI{directive: func(r *intakev1.ReportRunEventRequest) intakev1.Directive {
		if r.Kind == intakev1.RunEventKind_RUN_EVENT_KIND_CHUNK_DONE && r.Chunk == 1 {
			return intakev1.Directive_DIRECTIVE_ABANDON // the run was cancelled meanwhile
		}
		return intakev1.Directive_DIRECTIVE_CONTINUE
	}}
	e := start(t, api)
	run, id := newRun()
	e.publishBatch(t, batch(run, 0, row(2, "a1", "Acme", "1")))
	require.Eventually(t, func() bool { return len(api.find(intakev1.RunEventKind_RUN_EVENT_KIND_CHUNK_DONE)) == 1 },
		10*time.Second, 20*time.Millisecond)
	require.Equal(t, int64(1), stagingTables(t, e.pool))

	e.publishBatch(t, batch(run, 1, row(3, "a2", "Beta", "2")))
	require.Eventually(t, func() bool { return stagingTables(t, e.pool) == 0 }, 10*time.Second, 20*time.Millisecond)
	var abandoned bool
	require.NoError(t, e.pool.QueryRow(context.Background(), `SELECT abandoned FROM intake.load_runs WHERE run_id = $1`, id).Scan(&abandoned))
	require.True(t, abandoned)

	// The rest of the run arrives and changes nothing.
	e.publishBatch(t, batch(run, 2, row(4, "a3", "Gamma", "3")))
	e.publishSeal(t, seal(run, 3))
	require.Eventually(t, func() bool { return pending(t, e.js) == 0 }, 10*time.Second, 20*time.Millisecond)
	require.Empty(t, api.find(intakev1.RunEventKind_RUN_EVENT_KIND_FINISHED))
	require.Empty(t, accounts(t, e.pool))
	require.Zero(t, stagingTables(t, e.pool))
}

// pending is the number of messages of the load stream not acked yet.
func pending(t *testing.T, js jetstream.JetStream) uint64 {
	t.Helper()
	s, err := js.Stream(context.Background(), pipeline.StreamLoad)
	require.NoError(t, err)
	info, err := s.Info(context.Background())
	require.NoError(t, err)
	return info.State.Msgs
}

func TestABadBatchFailsTheRun(t *testing.T) {
	t.Parallel()
	api := &fakeAPI{}
	e := start(t, api)
	run, _ := newRun()
	e.publishSeal(t, seal(run, 2))
	e.publishBatch(t, batch(run, 0, row(2, "a1", "Acme", "1")))
	bad := batch(run, 1, row(3, "a2", "Beta", "1,5"))
	e.publishBatch(t, bad)

	require.Eventually(t, func() bool { return len(api.find(intakev1.RunEventKind_RUN_EVENT_KIND_FAILED)) == 1 },
		10*time.Second, 20*time.Millisecond)
	failed := api.find(intakev1.RunEventKind_RUN_EVENT_KIND_FAILED)[0]
	require.Equal(t, intakev1.Stage_STAGE_LOAD, failed.Stage)
	require.Contains(t, failed.Message, `chunk 1, row 3, attribute mrr: "1,5" is not a decimal number`)
	require.Eventually(t, func() bool { return pending(t, e.js) == 0 }, 10*time.Second, 20*time.Millisecond)
	require.Empty(t, accounts(t, e.pool), "nothing of a failed run lands")
	require.Zero(t, stagingTables(t, e.pool))
	require.Empty(t, api.find(intakev1.RunEventKind_RUN_EVENT_KIND_FINISHED))
}

func TestRunStopsWhenTheDatabaseIsUnreachable(t *testing.T) {
	t.Parallel()
	svc, err := loader.New(loader.Config{NATSURL: "nats://127.0.0.1:1", APIAddr: "127.0.0.1:1",
		DatabaseURL: "postgres://nobody@127.0.0.1:1/none?connect_timeout=2"})
	require.NoError(t, err)
	err = svc.Run(context.Background())
	require.Error(t, err)
	require.False(t, errors.Is(err, context.Canceled))
	require.ErrorContains(t, err, "loader: database")
	require.False(t, svc.Ready())
}

func TestAbandonAtTheCommitGateLeavesTheTableUnchanged(t *testing.T) {
	t.Parallel()
	api := &fakeAPI{directive: func(r *intakev1.ReportRunEventRequest) intakev1.Directive {
		if r.Kind == intakev1.RunEventKind_RUN_EVENT_KIND_COMMITTING {
			return intakev1.Directive_DIRECTIVE_ABANDON // over the error budget
		}
		return intakev1.Directive_DIRECTIVE_CONTINUE
	}}
	e := start(t, api)
	_, err := e.pool.Exec(context.Background(), `INSERT INTO objects.accounts (account_id, name, mrr) VALUES ('a1', 'Acme', 10)`)
	require.NoError(t, err)
	before := accounts(t, e.pool)
	run, id := newRun()
	e.publishBatch(t, batch(run, 0, row(2, "a1", "Acme Corp", "11"), row(3, "a2", "Beta", "2")))
	e.publishBatch(t, batch(run, 1, row(4, "a3", "Gamma", "3")))
	e.publishSeal(t, seal(run, 2))

	require.Eventually(t, func() bool { return len(api.find(intakev1.RunEventKind_RUN_EVENT_KIND_COMMITTING)) > 0 },
		10*time.Second, 20*time.Millisecond)
	gate := api.find(intakev1.RunEventKind_RUN_EVENT_KIND_COMMITTING)[0]
	require.Equal(t, run, gate.Run)
	require.Equal(t, int64(3), gate.Counters.GetRowsStaged())
	require.Eventually(t, func() bool { return pending(t, e.js) == 0 && stagingTables(t, e.pool) == 0 }, 10*time.Second, 20*time.Millisecond)
	var abandoned bool
	require.NoError(t, e.pool.QueryRow(context.Background(), `SELECT abandoned FROM intake.load_runs WHERE run_id = $1`, id).Scan(&abandoned))
	require.True(t, abandoned)
	require.Equal(t, before, accounts(t, e.pool), "nothing of the run lands")
	require.Empty(t, api.find(intakev1.RunEventKind_RUN_EVENT_KIND_FINISHED))

	// A redelivered seal changes nothing and asks nothing.
	asked := len(api.find(intakev1.RunEventKind_RUN_EVENT_KIND_COMMITTING))
	e.redeliver(t, pipeline.SubjectSeal, seal(run, 2))
	require.Eventually(t, func() bool { return pending(t, e.js) == 0 }, 10*time.Second, 20*time.Millisecond)
	require.Len(t, api.find(intakev1.RunEventKind_RUN_EVENT_KIND_COMMITTING), asked)
	require.Equal(t, before, accounts(t, e.pool))
}

func TestADryRunReportsWhatItWouldDo(t *testing.T) {
	t.Parallel()
	api := &fakeAPI{}
	e := start(t, api)
	_, err := e.pool.Exec(context.Background(), `INSERT INTO objects.accounts (account_id, name, mrr) VALUES ('a1', 'Acme', 10), ('a2', 'Beta', 20)`)
	require.NoError(t, err)
	before := accounts(t, e.pool)
	run, _ := newRun()
	b := batch(run, 0, row(2, "a1", "Acme Corp", "10"), row(3, "a2", "Beta", "20"), row(4, "a3", "Gamma", "3"))
	b.DryRun = true
	sl := seal(run, 1)
	sl.DryRun = true
	e.publishBatch(t, b)
	e.publishSeal(t, sl)

	require.Eventually(t, func() bool { return len(api.find(intakev1.RunEventKind_RUN_EVENT_KIND_FINISHED)) > 0 },
		10*time.Second, 20*time.Millisecond)
	fin := api.find(intakev1.RunEventKind_RUN_EVENT_KIND_FINISHED)[0]
	require.True(t, proto.Equal(&intakev1.RunCounters{RowsCreated: 1, RowsUpdated: 1, RowsUnchanged: 1}, fin.Counters), "%v", fin.Counters)
	require.NotEmpty(t, api.find(intakev1.RunEventKind_RUN_EVENT_KIND_COMMITTING), "a dry run passes the gate too")
	require.Equal(t, before, accounts(t, e.pool), "a dry run changes nothing")
	require.Zero(t, stagingTables(t, e.pool))
	require.Equal(t, 1.0, value(t, e.reg, "intake_loader_dry_runs_total"))
	require.Equal(t, 0.0, value(t, e.reg, "intake_loader_rows_committed_total", "created"))
}
