package scheduler_test

import (
	"context"
	"log/slog"
	"net"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jonboulle/clockwork"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/intakehq/intake/pkg/metricstest"
	"github.com/intakehq/intake/pkg/natstest"
	"github.com/intakehq/intake/pkg/pipeline"
	pipelinev1 "github.com/intakehq/intake/proto/gen/intake/pipeline/v1"
	intakev1 "github.com/intakehq/intake/proto/gen/intake/v1"
	"github.com/intakehq/intake/services/scheduler"
)

// fakeAPI is a small in-test control API: the job list and
// CreateScheduledRun, idempotent on (job, scheduled time) like the real one.
type fakeAPI struct {
	intakev1.UnimplementedJobServiceServer
	intakev1.UnimplementedStageServiceServer

	mu          sync.Mutex
	jobs        []*intakev1.Job
	runs        map[string]*intakev1.Run // by job and scheduled time
	calls       []time.Time              // scheduled_time of every tick asked for
	callKeys    []string                 // "job@scheduled_time" of every tick asked for
	unavailable int                      // answer the next calls Unavailable
	noBatch     bool                     // answer CreateScheduledRuns Unimplemented (an older API)
	batchCalls  int                      // CreateScheduledRuns calls answered
	singleCalls int                      // CreateScheduledRun calls answered
	pageSize    int                      // of ListJobs
}

// defaultPageSize is the fake's page size: small, so the scheduler must
// read every page.
const defaultPageSize = 2

func (f *fakeAPI) setJobs(jobs ...*intakev1.Job) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.jobs = nil
	for _, j := range jobs {
		f.jobs = append(f.jobs, proto.Clone(j).(*intakev1.Job))
	}
}

// update changes the stored job named name.
func (f *fakeAPI) update(name string, change func(*intakev1.Job)) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, j := range f.jobs {
		if j.GetName() == name {
			change(j)
			return
		}
	}
	panic("no job " + name)
}

func (f *fakeAPI) ListJobs(_ context.Context, req *intakev1.ListJobsRequest) (*intakev1.ListJobsResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	from := 0
	if req.GetPageToken() != "" {
		var err error
		if from, err = strconv.Atoi(req.GetPageToken()); err != nil {
			return nil, status.Errorf(codes.InvalidArgument, "bad page token %q", req.GetPageToken())
		}
	}
	from = min(from, len(f.jobs)) // the list shrank between two pages
	to := min(from+f.pageSize, len(f.jobs))
	resp := &intakev1.ListJobsResponse{}
	for _, j := range f.jobs[from:to] {
		resp.Jobs = append(resp.Jobs, proto.Clone(j).(*intakev1.Job))
	}
	if to < len(f.jobs) {
		resp.NextPageToken = strconv.Itoa(to)
	}
	return resp, nil
}

func (f *fakeAPI) CreateScheduledRun(_ context.Context, req *intakev1.CreateScheduledRunRequest) (*intakev1.CreateScheduledRunResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.singleCalls++
	return f.createScheduledRunLocked(req)
}

// CreateScheduledRuns answers each tick as CreateScheduledRun would, in one
// call; Unavailable answers the whole call.
func (f *fakeAPI) CreateScheduledRuns(_ context.Context, req *intakev1.CreateScheduledRunsRequest) (*intakev1.CreateScheduledRunsResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.noBatch {
		return nil, status.Error(codes.Unimplemented, "unknown method CreateScheduledRuns")
	}
	f.batchCalls++
	if f.unavailable > 0 {
		for _, t := range req.GetTicks() {
			at := t.GetScheduledTime().AsTime()
			f.calls = append(f.calls, at)
			f.callKeys = append(f.callKeys, t.GetJob()+"@"+at.UTC().Format(time.RFC3339))
		}
		f.unavailable--
		return nil, status.Error(codes.Unavailable, "control API restarting")
	}
	resp := &intakev1.CreateScheduledRunsResponse{}
	for _, t := range req.GetTicks() {
		r, err := f.createScheduledRunLocked(t)
		if err != nil {
			st := status.Convert(err)
			resp.Results = append(resp.Results, &intakev1.CreateScheduledRunResult{Error: st.Message(), Code: int32(st.Code())})
			continue
		}
		resp.Results = append(resp.Results, &intakev1.CreateScheduledRunResult{Response: r})
	}
	return resp, nil
}

func (f *fakeAPI) createScheduledRunLocked(req *intakev1.CreateScheduledRunRequest) (*intakev1.CreateScheduledRunResponse, error) {
	at := req.GetScheduledTime().AsTime()
	f.calls = append(f.calls, at)
	f.callKeys = append(f.callKeys, req.GetJob()+"@"+at.UTC().Format(time.RFC3339))
	if f.unavailable > 0 {
		f.unavailable--
		return nil, status.Error(codes.Unavailable, "control API restarting")
	}
	var job *intakev1.Job
	for _, j := range f.jobs {
		if j.GetName() == req.GetJob() {
			job = j
		}
	}
	switch {
	case job == nil:
		return nil, status.Errorf(codes.NotFound, "%s not found", req.GetJob())
	case !job.GetEnabled():
		return nil, status.Errorf(codes.FailedPrecondition, "%s is disabled", req.GetJob())
	}
	run, created := f.createLocked(job.GetName(), at)
	return &intakev1.CreateScheduledRunResponse{Run: run, Job: proto.Clone(job).(*intakev1.Job), Created: created}, nil
}

func (f *fakeAPI) createLocked(job string, at time.Time) (*intakev1.Run, bool) {
	key := job + "@" + at.Format(time.RFC3339Nano)
	if r, ok := f.runs[key]; ok {
		return r, false
	}
	r := &intakev1.Run{
		Name:          job + "/runs/" + uuid.NewString(),
		State:         intakev1.RunState_RUN_STATE_QUEUED,
		Trigger:       intakev1.Trigger_TRIGGER_SCHEDULE,
		CreateTime:    timestamppb.New(at.Add(time.Second)),
		ScheduledTime: timestamppb.New(at),
	}
	f.runs[key] = r
	return r, true
}

// preCreate creates the run of a tick as another scheduler replica would.
func (f *fakeAPI) preCreate(job string, at time.Time) *intakev1.Run {
	f.mu.Lock()
	defer f.mu.Unlock()
	r, _ := f.createLocked(job, at)
	return r
}

// scheduledTimes are the scheduled_time of every CreateScheduledRun call so far.
func (f *fakeAPI) scheduledTimes() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := make([]string, len(f.calls))
	for i, c := range f.calls {
		out[i] = c.UTC().Format(time.RFC3339)
	}
	return out
}

// env is what scheduler replicas share: an embedded JetStream, the fake
// control API and a fake clock.
type env struct {
	api     *fakeAPI
	clock   *clockwork.FakeClock
	js      jetstream.JetStream
	natsURL string
	apiAddr string
}

// newEnv starts a fake API holding jobs and a real embedded JetStream, with a
// fake clock at start.
func newEnv(t *testing.T, start time.Time, jobs ...*intakev1.Job) *env {
	t.Helper()
	ns := natstest.Start(t)
	_, js := ns.Connect(t)
	require.NoError(t, pipeline.EnsureStreams(t.Context(), js, 1))

	api := &fakeAPI{runs: map[string]*intakev1.Run{}, pageSize: defaultPageSize}
	api.setJobs(jobs...)
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	gs := grpc.NewServer()
	intakev1.RegisterJobServiceServer(gs, api)
	intakev1.RegisterStageServiceServer(gs, api)
	go func() { _ = gs.Serve(lis) }()
	t.Cleanup(gs.Stop)
	return &env{api: api, clock: clockwork.NewFakeClockAt(start), js: js, natsURL: ns.URL, apiAddr: lis.Addr().String()}
}

// bundle is one scheduler replica in an env.
type bundle struct {
	*env
	reg  *prometheus.Registry
	svc  *scheduler.Service
	stop func() // cancels Run and waits for it to return
}

// setup runs a scheduler on a fake clock at start against a fake API holding
// jobs and a real embedded JetStream, and waits until it has read the jobs.
func setup(t *testing.T, start time.Time, poll time.Duration, jobs ...*intakev1.Job) *bundle {
	t.Helper()
	return newEnv(t, start, jobs...).replica(t, poll)
}

// replica starts a scheduler in e and waits until it has read the jobs.
func (e *env) replica(t *testing.T, poll time.Duration) *bundle {
	t.Helper()
	b := &bundle{env: e, reg: prometheus.NewRegistry()}
	var err error
	b.svc, err = scheduler.New(scheduler.Config{
		NATSURL:      e.natsURL,
		APIAddr:      e.apiAddr,
		PollInterval: poll,
		Clock:        e.clock,
		Registerer:   b.reg,
		Logger:       slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelDebug})),
	})
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- b.svc.Run(ctx) }()
	var once sync.Once
	b.stop = func() {
		once.Do(func() {
			cancel()
			select {
			case err := <-done:
				require.ErrorIs(t, err, context.Canceled)
				require.False(t, b.svc.Ready())
			case <-time.After(10 * time.Second):
				t.Error("Run did not return after cancel")
			}
		})
	}
	t.Cleanup(b.stop)
	require.Eventually(t, b.svc.Ready, 5*time.Second, 5*time.Millisecond, "scheduler never became ready")
	return b
}

// nextRun is the job's next fire time as the scheduler holds it, in RFC 3339
// UTC, or "" when it does not hold the job.
func (b *bundle) nextRun(job string) string {
	t, ok := b.svc.NextRun(job)
	if !ok {
		return ""
	}
	return t.UTC().Format(time.RFC3339)
}

// requireNextRun waits until the scheduler holds job's next fire time as want.
func (b *bundle) requireNextRun(t *testing.T, job, want string) {
	t.Helper()
	require.Eventually(t, func() bool { return b.nextRun(job) == want }, 5*time.Second, 5*time.Millisecond,
		"next run of %s: got %q, want %q", job, b.nextRun(job), want)
}

// callsPerTick counts the CreateScheduledRun calls by "job@scheduled_time".
func (f *fakeAPI) callsPerTick() map[string]int {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := map[string]int{}
	for _, k := range f.callKeys {
		out[k]++
	}
	return out
}

type published struct {
	msgID string
	req   *pipelinev1.RunRequest
}

// runRequests reads every run request in the RUNS stream.
func (b *bundle) runRequests(t *testing.T) []published {
	t.Helper()
	ctx := t.Context()
	stream, err := b.js.Stream(ctx, pipeline.StreamRuns)
	require.NoError(t, err)
	info, err := stream.Info(ctx)
	require.NoError(t, err)
	var out []published
	for seq := info.State.FirstSeq; info.State.Msgs > 0 && seq <= info.State.LastSeq; seq++ {
		msg, err := stream.GetMsg(ctx, seq)
		require.NoError(t, err)
		require.Equal(t, pipeline.SubjectRunRequest, msg.Subject)
		req := &pipelinev1.RunRequest{}
		require.NoError(t, proto.Unmarshal(msg.Data, req))
		out = append(out, published{msgID: msg.Header.Get(jetstream.MsgIDHeader), req: req})
	}
	return out
}

func (b *bundle) requireRunRequests(t *testing.T, n int) []published {
	t.Helper()
	require.Eventually(t, func() bool { return len(b.runRequests(t)) >= n }, 5*time.Second, 5*time.Millisecond)
	got := b.runRequests(t)
	require.Len(t, got, n)
	return got
}

// metric is the value of a gauge or counter (with labels, in pairs), or
// the sample count of a histogram (metricstest.Gathered).
func (b *bundle) metric(t *testing.T, name string, labels ...string) float64 {
	t.Helper()
	want := map[string]string{}
	for i := 0; i+1 < len(labels); i += 2 {
		want[labels[i]] = labels[i+1]
	}
	v, ok := metricstest.Gathered(t, b.reg, name, want)
	if !ok {
		t.Fatalf("no metric %s %v", name, labels)
	}
	return v
}

func (b *bundle) requireTicks(t *testing.T, outcome string, n float64) {
	t.Helper()
	require.Eventually(t, func() bool { return b.metric(t, "intake_scheduler_ticks_total", "outcome", outcome) == n },
		5*time.Second, 5*time.Millisecond, "ticks %s: got %v, want %v", outcome,
		b.metric(t, "intake_scheduler_ticks_total", "outcome", outcome), n)
}

func job(name string, enabled bool, s *intakev1.Schedule) *intakev1.Job {
	return &intakev1.Job{
		Name:        name,
		DisplayName: "Job " + name,
		Object:      intakev1.ObjectType_OBJECT_TYPE_ACCOUNTS,
		Connection:  &intakev1.Connection{Kind: &intakev1.Connection_Http{Http: &intakev1.HttpConnection{Url: "https://exports.example.com/accounts.csv"}}},
		Schedule:    s,
		Enabled:     enabled,
	}
}

// quiet gives asynchronous work a moment, for asserting that nothing happens.
func quiet() { time.Sleep(150 * time.Millisecond) }

func TestTickCreatesRunAndPublishesRequest(t *testing.T) {
	t.Parallel()
	start := mustTime(t, "2026-01-05T12:00:30Z")
	accounts := job("jobs/accounts", true, everyMinutes("Europe/Berlin", 1))
	b := setup(t, start, time.Second, accounts)
	b.requireNextRun(t, "jobs/accounts", "2026-01-05T12:01:00Z")
	require.Equal(t, 1.0, b.metric(t, "intake_scheduler_jobs"))

	// A minute later the tick of 12:01:00 fires once.
	b.clock.Advance(time.Minute)
	got := b.requireRunRequests(t, 1)
	require.Equal(t, []string{"2026-01-05T12:01:00Z"}, b.api.scheduledTimes())
	req := got[0].req
	require.Regexp(t, `^jobs/accounts/runs/[0-9a-f-]{36}$`, req.GetRun())
	require.Equal(t, req.GetRun(), got[0].msgID, "Nats-Msg-Id is the run name")
	require.Equal(t, intakev1.Trigger_TRIGGER_SCHEDULE, req.GetTrigger())
	require.True(t, proto.Equal(accounts, req.GetJob()), "the request carries the job: %v", req.GetJob())
	require.Equal(t, "2026-01-05T12:01:01Z", req.GetCreateTime().AsTime().Format(time.RFC3339), "create_time is the run's")
	b.requireTicks(t, "created", 1)
	require.Equal(t, 1.0, b.metric(t, "intake_scheduler_tick_lateness_seconds"))
	b.requireNextRun(t, "jobs/accounts", "2026-01-05T12:02:00Z")

	// Nothing more fires while the clock stands still.
	quiet()
	require.Len(t, b.runRequests(t), 1)
	require.Len(t, b.api.scheduledTimes(), 1)

	// Another replica already created and requested the run of 12:02:00:
	// this one's request is the same message, stored once.
	other := b.api.preCreate("jobs/accounts", mustTime(t, "2026-01-05T12:02:00Z"))
	require.NoError(t, pipeline.Publish(t.Context(), b.js, pipeline.SubjectRunRequest, other.GetName(),
		&pipelinev1.RunRequest{Run: other.GetName(), Job: accounts, Trigger: intakev1.Trigger_TRIGGER_SCHEDULE}))
	b.clock.Advance(time.Minute)
	b.requireTicks(t, "duplicate", 1)
	got = b.requireRunRequests(t, 2)
	require.Equal(t, other.GetName(), got[1].msgID)

	// The API is unavailable for a moment: the tick retries and creates its run.
	b.api.mu.Lock()
	b.api.unavailable = 2
	b.api.mu.Unlock()
	b.clock.Advance(time.Minute)
	b.requireTicks(t, "created", 2)
	got = b.requireRunRequests(t, 3)
	require.Equal(t, got[2].req.GetRun(), got[2].msgID)
	require.Equal(t, []string{
		"2026-01-05T12:01:00Z", "2026-01-05T12:02:00Z",
		"2026-01-05T12:03:00Z", "2026-01-05T12:03:00Z", "2026-01-05T12:03:00Z",
	}, b.api.scheduledTimes())
	require.Equal(t, 0.0, b.metric(t, "intake_scheduler_ticks_total", "outcome", "failed"))
}

func TestReconcilePicksUpJobChanges(t *testing.T) {
	t.Parallel()
	start := mustTime(t, "2026-01-05T12:00:30Z")
	poll := time.Second
	b := setup(t, start, poll,
		job("jobs/a", true, everyMinutes("", 1)),
		job("jobs/b", true, daily("Europe/Berlin", 9, 0)),
		job("jobs/c-disabled", false, everyMinutes("", 1)),
		job("jobs/d-no-schedule", true, nil),
		job("jobs/e-invalid", true, everyMinutes("", 0)),
	)
	b.requireNextRun(t, "jobs/a", "2026-01-05T12:01:00Z")
	b.requireNextRun(t, "jobs/b", "2026-01-06T08:00:00Z") // 09:00 CET
	for _, name := range []string{"jobs/c-disabled", "jobs/d-no-schedule", "jobs/e-invalid"} {
		require.Empty(t, b.nextRun(name), name)
	}
	require.Equal(t, 2.0, b.metric(t, "intake_scheduler_jobs"))
	require.Equal(t, 2, b.svc.GocronJobs())

	// A changed schedule is picked up on the next poll.
	b.api.update("jobs/a", func(j *intakev1.Job) { j.Schedule = everyMinutes("", 5) })
	b.clock.Advance(poll)
	b.requireNextRun(t, "jobs/a", "2026-01-05T12:05:00Z")
	require.Equal(t, 2, b.svc.GocronJobs(), "the gocron job is replaced, not added")

	// ... and fires on the new schedule only: not at 12:01–12:04.
	for range 4 {
		b.clock.Advance(time.Minute)
	}
	quiet()
	require.Empty(t, b.api.scheduledTimes())
	b.clock.Advance(time.Minute)
	b.requireRunRequests(t, 1)
	require.Equal(t, []string{"2026-01-05T12:05:00Z"}, b.api.scheduledTimes())
	b.requireNextRun(t, "jobs/a", "2026-01-05T12:10:00Z")

	// Disabling, fixing and re-enabling.
	b.api.update("jobs/b", func(j *intakev1.Job) { j.Enabled = false })
	b.api.update("jobs/e-invalid", func(j *intakev1.Job) { j.Schedule = everyMinutes("", 2) })
	b.api.update("jobs/c-disabled", func(j *intakev1.Job) { j.Enabled = true })
	b.clock.Advance(poll)
	b.requireNextRun(t, "jobs/b", "")
	b.requireNextRun(t, "jobs/e-invalid", "2026-01-05T12:06:00Z")
	b.requireNextRun(t, "jobs/c-disabled", "2026-01-05T12:06:00Z")
	require.Equal(t, 3.0, b.metric(t, "intake_scheduler_jobs"))
	require.Equal(t, 3, b.svc.GocronJobs())

	// Deleted jobs lose their gocron job and never fire again.
	b.api.setJobs(job("jobs/b", false, daily("Europe/Berlin", 9, 0)))
	b.clock.Advance(poll)
	require.Eventually(t, func() bool { return b.svc.GocronJobs() == 0 }, 5*time.Second, 5*time.Millisecond)
	require.Equal(t, 0.0, b.metric(t, "intake_scheduler_jobs"))
	for _, name := range []string{"jobs/a", "jobs/c-disabled", "jobs/e-invalid"} {
		require.Empty(t, b.nextRun(name), name)
	}
	b.clock.Advance(time.Hour)
	quiet()
	require.Equal(t, []string{"2026-01-05T12:05:00Z"}, b.api.scheduledTimes())
	require.Len(t, b.runRequests(t), 1)
}

// A daily job across real daylight-saving transitions, through gocron on a
// fake clock: the skipped 02:30 fires at 03:00, the repeated 01:30 once.
func TestDailyTicksAcrossDaylightSaving(t *testing.T) {
	t.Parallel()
	t.Run("spring-forward", func(t *testing.T) {
		t.Parallel()
		b := setup(t, mustTime(t, "2026-03-08T01:59:00-05:00"), time.Hour,
			job("jobs/nightly", true, daily("America/New_York", 2, 30)))
		b.requireNextRun(t, "jobs/nightly", "2026-03-08T07:00:00Z") // 03:00 EDT
		b.clock.Advance(2 * time.Minute)                            // 03:01 EDT
		b.requireRunRequests(t, 1)
		require.Equal(t, []string{"2026-03-08T07:00:00Z"}, b.api.scheduledTimes())
		b.requireNextRun(t, "jobs/nightly", "2026-03-09T06:30:00Z") // 02:30 EDT
	})
	t.Run("fall-back", func(t *testing.T) {
		t.Parallel()
		b := setup(t, mustTime(t, "2026-11-01T01:29:00-04:00"), time.Hour,
			job("jobs/nightly", true, daily("America/New_York", 1, 30)))
		b.requireNextRun(t, "jobs/nightly", "2026-11-01T05:30:00Z") // 01:30 EDT
		b.clock.Advance(2 * time.Minute)
		b.requireRunRequests(t, 1)
		b.requireNextRun(t, "jobs/nightly", "2026-11-02T06:30:00Z") // 01:30 EST, the next day
		b.clock.Advance(time.Hour)                                  // past 01:30 EST on Nov 1
		quiet()
		require.Equal(t, []string{"2026-11-01T05:30:00Z"}, b.api.scheduledTimes())
		require.Len(t, b.runRequests(t), 1)
	})
}

func TestTickOfJobChangedSinceLastPoll(t *testing.T) {
	t.Parallel()
	// Polls are an hour apart: the ticks below see the API's answer, not
	// a reconciled schedule.
	b := setup(t, mustTime(t, "2026-01-05T12:00:30Z"), time.Hour,
		job("jobs/disabled-meanwhile", true, everyMinutes("", 1)),
		job("jobs/deleted-meanwhile", true, everyMinutes("", 1)),
	)
	b.requireNextRun(t, "jobs/deleted-meanwhile", "2026-01-05T12:01:00Z")
	b.api.setJobs(job("jobs/disabled-meanwhile", false, everyMinutes("", 1)))
	b.clock.Advance(time.Minute)
	b.requireTicks(t, "skipped", 2)
	require.Empty(t, b.runRequests(t))

	// The API keeps answering Unavailable: the tick fails after its retries.
	b.api.setJobs(job("jobs/disabled-meanwhile", true, everyMinutes("", 1)))
	b.api.mu.Lock()
	b.api.unavailable = 100
	b.api.mu.Unlock()
	b.clock.Advance(time.Minute)
	b.requireTicks(t, "failed", 2)
	require.Empty(t, b.runRequests(t))
	require.Equal(t, 0.0, b.metric(t, "intake_scheduler_ticks_total", "outcome", "created"))
}

func TestConfigValidate(t *testing.T) {
	t.Parallel()
	ok := scheduler.Config{NATSURL: "nats://127.0.0.1:4222", APIAddr: "127.0.0.1:9090"}
	require.NoError(t, ok.Validate())
	for _, tc := range []struct {
		name   string
		change func(*scheduler.Config)
		want   error
	}{
		{"no NATS URL", func(c *scheduler.Config) { c.NATSURL = "" }, scheduler.ErrNoNATSURL},
		{"no API address", func(c *scheduler.Config) { c.APIAddr = "" }, scheduler.ErrNoAPIAddr},
		{"negative poll interval", func(c *scheduler.Config) { c.PollInterval = -time.Second }, scheduler.ErrNegativePollInterval},
		{"tiny poll interval", func(c *scheduler.Config) { c.PollInterval = time.Microsecond }, scheduler.ErrShortPollInterval},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			c := ok
			tc.change(&c)
			require.ErrorIs(t, c.Validate(), tc.want)
			_, err := scheduler.New(c)
			require.ErrorIs(t, err, tc.want)
		})
	}
}

func TestNewRegistersMetricsOnce(t *testing.T) {
	t.Parallel()
	reg := prometheus.NewRegistry()
	cfg := scheduler.Config{NATSURL: "nats://127.0.0.1:4222", APIAddr: "127.0.0.1:9090", Registerer: reg}
	_, err := scheduler.New(cfg)
	require.NoError(t, err)
	_, err = scheduler.New(cfg)
	require.ErrorContains(t, err, "scheduler: register metrics")
	_, err = scheduler.New(scheduler.Config{NATSURL: "nats://127.0.0.1:4222", APIAddr: "127.0.0.1:9090"})
	require.NoError(t, err, "nil Registerer uses a private registry")
}
