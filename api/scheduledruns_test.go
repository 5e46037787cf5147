package api_test

import (
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/fieldmaskpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/intakehq/intake/api"
	"github.com/intakehq/intake/pkg/pipeline"
	intakev1 "github.com/intakehq/intake/proto/gen/intake/v1"
)

// One CreateScheduledRuns call creates the runs of many ticks, each as
// CreateScheduledRun would, and publishes their run requests; the ticks it
// cannot create get an error of their own, not the call.
func TestCreateScheduledRunsBatch(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := testCtx(t)
	a, c := b.createJob(t, "a"), b.createJob(t, "c")
	off := b.accountsJob("off")
	off.Enabled = false
	_, err := b.jobs.CreateJob(ctx, &intakev1.CreateJobRequest{JobId: "off", Job: off})
	require.NoError(t, err)

	at := time.Date(2026, 3, 29, 6, 30, 0, 0, time.UTC)
	tick := timestamppb.New(at)
	// A replica already created a's run of this tick, one at a time.
	before, err := b.stage.CreateScheduledRun(ctx, &intakev1.CreateScheduledRunRequest{Job: a.GetName(), ScheduledTime: tick})
	require.NoError(t, err)
	require.Len(t, publishedRunRequests(t, b), 1)

	req := &intakev1.CreateScheduledRunsRequest{Ticks: []*intakev1.CreateScheduledRunRequest{
		{Job: a.GetName(), ScheduledTime: tick},                                    // 0: exists
		{Job: c.GetName(), ScheduledTime: tick},                                    // 1: new
		{Job: a.GetName(), ScheduledTime: timestamppb.New(at.Add(time.Minute))},    // 2: new
		{Job: "jobs/off", ScheduledTime: tick},                                     // 3: disabled
		{Job: "jobs/nope", ScheduledTime: tick},                                    // 4: unknown
		{Job: "nope", ScheduledTime: tick},                                         // 5: not a job name
		{Job: c.GetName()},                                                         // 6: no time
		{Job: c.GetName(), ScheduledTime: tick},                                    // 7: same as 1
		{Job: c.GetName(), ScheduledTime: timestamppb.New(at.Add(24 * time.Hour))}, // 8: new
	}}
	var header metadata.MD
	resp, err := b.stage.CreateScheduledRuns(ctx, req, grpc.Header(&header))
	require.NoError(t, err)
	require.Equal(t, []string{"true"}, header.Get(api.RunRequestPublishedHeader))
	res := resp.GetResults()
	require.Len(t, res, len(req.GetTicks()))

	requireRun := func(i int, created bool) *intakev1.Run {
		t.Helper()
		r := res[i]
		require.Empty(t, r.GetError(), "tick %d", i)
		require.Zero(t, r.GetCode(), "tick %d", i)
		require.Equal(t, created, r.GetResponse().GetCreated(), "tick %d created", i)
		run := r.GetResponse().GetRun()
		require.Equal(t, req.GetTicks()[i].GetJob(), r.GetResponse().GetJob().GetName(), "tick %d", i)
		require.Equal(t, req.GetTicks()[i].GetJob()+"/runs/", run.GetName()[:len(req.GetTicks()[i].GetJob())+6], "tick %d", i)
		require.True(t, proto.Equal(req.GetTicks()[i].GetScheduledTime(), run.GetScheduledTime()), "tick %d", i)
		require.Equal(t, intakev1.Trigger_TRIGGER_SCHEDULE, run.GetTrigger())
		require.Equal(t, intakev1.RunState_RUN_STATE_QUEUED, run.GetState())
		require.NotNil(t, run.GetCreateTime())
		// The run is the one GetRun shows.
		got, err := b.runs.GetRun(ctx, &intakev1.GetRunRequest{Name: run.GetName()})
		require.NoError(t, err)
		require.True(t, proto.Equal(got, run), "tick %d: got %v, GetRun %v", i, run, got)
		return run
	}
	require.Equal(t, before.GetRun().GetName(), requireRun(0, false).GetName())
	newRuns := []*intakev1.Run{requireRun(1, true), requireRun(2, true), requireRun(8, true)}
	require.Equal(t, newRuns[0].GetName(), requireRun(7, false).GetName(), "a repeated tick gets the same run")
	require.True(t, proto.Equal(c.GetMapping(), res[1].GetResponse().GetJob().GetMapping()))

	requireTickError := func(i int, code codes.Code, msg string) {
		t.Helper()
		require.Nil(t, res[i].GetResponse(), "tick %d", i)
		require.Equal(t, int32(code), res[i].GetCode(), "tick %d: %s", i, res[i].GetError())
		require.Contains(t, res[i].GetError(), msg, "tick %d", i)
	}
	requireTickError(3, codes.FailedPrecondition, "job jobs/off is disabled")
	requireTickError(4, codes.NotFound, "job jobs/nope not found")
	requireTickError(5, codes.InvalidArgument, `ticks[5].job: "nope" is not a job name`)
	requireTickError(6, codes.InvalidArgument, "ticks[6].scheduled_time: required")

	// One request per new run, with the job and the object's model. The
	// existing run's request was published before: the stream drops the
	// copy by its Nats-Msg-Id.
	reqs := publishedRunRequests(t, b)
	got := map[string]bool{}
	for _, r := range reqs {
		got[r.GetRun()] = true
		require.Equal(t, intakev1.Trigger_TRIGGER_SCHEDULE, r.GetTrigger())
		require.Equal(t, "objects/accounts", r.GetModel().GetName())
		require.NotEmpty(t, r.GetJob().GetName())
		require.NotNil(t, r.GetCreateTime())
	}
	require.Equal(t, map[string]bool{newRuns[0].GetName(): true, newRuns[1].GetName(): true, newRuns[2].GetName(): true}, got)

	// The same batch again creates nothing and publishes nothing new.
	again, err := b.stage.CreateScheduledRuns(ctx, req)
	require.NoError(t, err)
	for i, r := range again.GetResults() {
		require.False(t, r.GetResponse().GetCreated(), "tick %d", i)
		require.Equal(t, res[i].GetResponse().GetRun().GetName(), r.GetResponse().GetRun().GetName(), "tick %d", i)
		require.Equal(t, res[i].GetCode(), r.GetCode(), "tick %d", i)
	}
	require.Empty(t, publishedRunRequests(t, b))

	// Each new run stores the model its request carries; a model changed
	// since the job's last run is the new one.
	storedModel := func(run string) string {
		t.Helper()
		var m string
		require.NoError(t, pgPool(t, b.dsn).QueryRow(ctx, `SELECT model::text FROM intake.runs WHERE id = $1`,
			run[strings.LastIndex(run, "/")+1:]).Scan(&m))
		return m
	}
	for _, r := range newRuns {
		require.Contains(t, storedModel(r.GetName()), `"objects/accounts"`)
		require.NotContains(t, storedModel(r.GetName()), "tier")
	}
	_, err = b.dataModel().CreateAttribute(ctx, &intakev1.CreateAttributeRequest{Parent: "objects/accounts",
		Attribute: &intakev1.Attribute{AttributeId: "tier", Type: aText}})
	require.NoError(t, err)
	later, err := b.stage.CreateScheduledRuns(ctx, &intakev1.CreateScheduledRunsRequest{Ticks: []*intakev1.CreateScheduledRunRequest{
		{Job: a.GetName(), ScheduledTime: timestamppb.New(at.Add(2 * time.Minute))},
	}})
	require.NoError(t, err)
	require.True(t, later.GetResults()[0].GetResponse().GetCreated())
	require.Contains(t, storedModel(later.GetResults()[0].GetResponse().GetRun().GetName()), `"tier"`)
	reqs = publishedRunRequests(t, b)
	require.Len(t, reqs, 1)
	require.Equal(t, "tier", reqs[0].GetModel().GetAttributes()[len(reqs[0].GetModel().GetAttributes())-1].GetAttributeId())

	// Too many ticks in one call.
	big := &intakev1.CreateScheduledRunsRequest{}
	for range api.MaxScheduledRunsBatch + 1 {
		big.Ticks = append(big.Ticks, req.GetTicks()[1])
	}
	_, err = b.stage.CreateScheduledRuns(ctx, big)
	requireCode(t, err, codes.InvalidArgument)
}

// Replicas asking for the same ticks at once, in batches and one at a time,
// get one run per tick.
func TestCreateScheduledRunsConcurrentReplicas(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := testCtx(t)
	jobs := []*intakev1.Job{b.createJob(t, "j0"), b.createJob(t, "j1"), b.createJob(t, "j2")}
	at := time.Date(2026, 3, 29, 7, 0, 0, 0, time.UTC)
	req := &intakev1.CreateScheduledRunsRequest{}
	for m := range 4 {
		for _, j := range jobs {
			req.Ticks = append(req.Ticks, &intakev1.CreateScheduledRunRequest{Job: j.GetName(), ScheduledTime: timestamppb.New(at.Add(time.Duration(m) * time.Minute))})
		}
	}
	var (
		mu      sync.Mutex
		runs    = map[string]map[string]bool{} // tick → run names
		created = map[string]int{}
		wg      sync.WaitGroup
	)
	record := func(tick *intakev1.CreateScheduledRunRequest, resp *intakev1.CreateScheduledRunResponse) {
		mu.Lock()
		defer mu.Unlock()
		k := tick.GetJob() + "@" + tick.GetScheduledTime().AsTime().Format(time.RFC3339)
		if runs[k] == nil {
			runs[k] = map[string]bool{}
		}
		runs[k][resp.GetRun().GetName()] = true
		if resp.GetCreated() {
			created[k]++
		}
	}
	for range 4 {
		wg.Go(func() {
			resp, err := b.stage.CreateScheduledRuns(ctx, req)
			if err != nil {
				t.Errorf("CreateScheduledRuns: %v", err)
				return
			}
			for i, r := range resp.GetResults() {
				if r.GetError() != "" {
					t.Errorf("tick %d: %s", i, r.GetError())
					continue
				}
				record(req.GetTicks()[i], r.GetResponse())
			}
		})
	}
	for _, tick := range req.GetTicks() {
		wg.Go(func() {
			resp, err := b.stage.CreateScheduledRun(ctx, tick)
			if err != nil {
				t.Errorf("CreateScheduledRun: %v", err)
				return
			}
			record(tick, resp)
		})
	}
	wg.Wait()
	require.Len(t, runs, len(req.GetTicks()))
	for k, names := range runs {
		require.Len(t, names, 1, "%s: one run", k)
		require.Equal(t, 1, created[k], "%s: created once", k)
	}
	require.Len(t, publishedRunRequests(t, b), len(req.GetTicks()), "one run request per run")
}

// The job cache's metrics: the first tick of a job reads and decodes it (a
// miss), the next finds it (a hit); a change of the job is a miss again.
func TestJobCacheMetrics(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := testCtx(t)
	job := b.createJob(t, "cached")
	lookups := func() (hit, miss float64) {
		return metricValue(t, b.reg, "intake_api_job_cache_lookups_total", map[string]string{"result": "hit"}),
			metricValue(t, b.reg, "intake_api_job_cache_lookups_total", map[string]string{"result": "miss"})
	}
	at := time.Date(2026, 3, 29, 11, 0, 0, 0, time.UTC)
	tick := func(m int) {
		t.Helper()
		resp, err := b.stage.CreateScheduledRuns(ctx, &intakev1.CreateScheduledRunsRequest{OmitJobs: true, Ticks: []*intakev1.CreateScheduledRunRequest{
			{Job: job.GetName(), ScheduledTime: timestamppb.New(at.Add(time.Duration(m) * time.Minute))},
		}})
		require.NoError(t, err)
		require.Empty(t, resp.GetResults()[0].GetError())
	}
	hit0, miss0 := lookups()
	tick(0)
	hit, miss := lookups()
	require.Equal(t, [2]float64{hit0, miss0 + 1}, [2]float64{hit, miss}, "the first tick decodes the job")
	require.GreaterOrEqual(t, metricValue(t, b.reg, "intake_api_job_cache_entries", nil), 1.0)
	require.Greater(t, metricValue(t, b.reg, "intake_api_job_cache_bytes", nil), 0.0)
	tick(1)
	hit, miss = lookups()
	require.Equal(t, [2]float64{hit0 + 1, miss0 + 1}, [2]float64{hit, miss}, "the next one finds it")

	_, err := b.jobs.UpdateJob(ctx, &intakev1.UpdateJobRequest{Job: &intakev1.Job{Name: job.GetName(), Description: "changed"},
		UpdateMask: &fieldmaskpb.FieldMask{Paths: []string{"description"}}})
	require.NoError(t, err)
	tick(2)
	hit, miss = lookups()
	require.Equal(t, [2]float64{hit0 + 1, miss0 + 2}, [2]float64{hit, miss}, "a changed job is decoded again")
}

// The scheduler asks for results without the jobs (omit_jobs): the runs
// are created and their requests published, each with the whole job, as
// without it.
func TestCreateScheduledRunsOmitJobs(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := testCtx(t)
	job := b.createJob(t, "lean")
	at := time.Date(2026, 3, 29, 9, 0, 0, 0, time.UTC)
	var header metadata.MD
	resp, err := b.stage.CreateScheduledRuns(ctx, &intakev1.CreateScheduledRunsRequest{OmitJobs: true, Ticks: []*intakev1.CreateScheduledRunRequest{
		{Job: job.GetName(), ScheduledTime: timestamppb.New(at)},
	}}, grpc.Header(&header))
	require.NoError(t, err)
	require.Equal(t, []string{"true"}, header.Get(api.RunRequestPublishedHeader))
	r := resp.GetResults()[0]
	require.Empty(t, r.GetError())
	require.True(t, r.GetResponse().GetCreated())
	require.Nil(t, r.GetResponse().GetJob())
	run := r.GetResponse().GetRun().GetName()
	require.True(t, strings.HasPrefix(run, job.GetName()+"/runs/"), run)

	reqs := publishedRunRequests(t, b)
	require.Len(t, reqs, 1)
	require.Equal(t, run, reqs[0].GetRun())
	got, err := b.jobs.GetJob(ctx, &intakev1.GetJobRequest{Name: job.GetName()})
	require.NoError(t, err)
	want := proto.Clone(got).(*intakev1.Job)
	want.LastRun, want.NextRunTime, want.NextRunTimes = "", nil, nil // history and output of GetJob
	require.True(t, proto.Equal(want, reqs[0].GetJob()), "request's job %v, want %v", reqs[0].GetJob(), want)
	require.Equal(t, "objects/accounts", reqs[0].GetModel().GetName())
}

// With no stream to take the run requests, a tick's run is still created
// (QUEUED) and the tick answers Unavailable, saying so; the same call once
// the stream is back publishes the request of that run, not a new run.
func TestCreateScheduledRunsWithoutTheStream(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := testCtx(t)
	job := b.createJob(t, "nostream")
	require.NoError(t, b.js.DeleteStream(ctx, "INTAKE_RUNS"))
	req := &intakev1.CreateScheduledRunsRequest{OmitJobs: true, Ticks: []*intakev1.CreateScheduledRunRequest{
		{Job: job.GetName(), ScheduledTime: timestamppb.New(time.Date(2026, 3, 29, 10, 0, 0, 0, time.UTC))},
	}}
	resp, err := b.stage.CreateScheduledRuns(ctx, req)
	require.NoError(t, err)
	r := resp.GetResults()[0]
	require.Equal(t, int32(codes.Unavailable), r.GetCode(), r.GetError())
	require.Contains(t, r.GetError(), "is created but its run request could not be published")
	runs, err := b.runs.ListRuns(ctx, &intakev1.ListRunsRequest{Parent: job.GetName()})
	require.NoError(t, err)
	require.Len(t, runs.GetRuns(), 1)
	require.Equal(t, intakev1.RunState_RUN_STATE_QUEUED, runs.GetRuns()[0].GetState())

	require.NoError(t, pipeline.EnsureStreams(ctx, b.js, 1))
	resp, err = b.stage.CreateScheduledRuns(ctx, req)
	require.NoError(t, err)
	r = resp.GetResults()[0]
	require.Empty(t, r.GetError())
	require.False(t, r.GetResponse().GetCreated())
	require.Equal(t, runs.GetRuns()[0].GetName(), r.GetResponse().GetRun().GetName())
	reqs := publishedRunRequests(t, b)
	require.Len(t, reqs, 1)
	require.Equal(t, runs.GetRuns()[0].GetName(), reqs[0].GetRun())
	require.Equal(t, job.GetName(), reqs[0].GetJob().GetName())
}

// Tick after tick, each run keeps the job as it is at its tick, any change
// made meanwhile included (the API remembers decoded jobs, but only at the
// version of their rows it decoded), and without its last run (history, not
// configuration: every run's snapshot is so).
func TestCreateScheduledRunsJobSnapshots(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := testCtx(t)
	job := b.createJob(t, "snap")
	at := time.Date(2026, 3, 29, 8, 0, 0, 0, time.UTC)
	tick := func(m int) *intakev1.CreateScheduledRunResponse {
		t.Helper()
		resp, err := b.stage.CreateScheduledRuns(ctx, &intakev1.CreateScheduledRunsRequest{Ticks: []*intakev1.CreateScheduledRunRequest{
			{Job: job.GetName(), ScheduledTime: timestamppb.New(at.Add(time.Duration(m) * time.Minute))},
		}})
		require.NoError(t, err)
		require.Empty(t, resp.GetResults()[0].GetError())
		r := resp.GetResults()[0].GetResponse()
		require.True(t, r.GetCreated())
		// The run's stored snapshot is the job the call returned.
		var raw string
		name := r.GetRun().GetName()
		require.NoError(t, pgPool(t, b.dsn).QueryRow(ctx, `SELECT job::text FROM intake.runs WHERE id = $1`,
			name[strings.LastIndex(name, "/")+1:]).Scan(&raw))
		stored := &intakev1.Job{}
		require.NoError(t, protojson.Unmarshal([]byte(raw), stored))
		require.True(t, proto.Equal(r.GetJob(), stored), "stored %v, returned %v", stored, r.GetJob())
		return r
	}
	first := tick(0)
	require.Empty(t, first.GetJob().GetLastRun())
	second := tick(1)
	require.Empty(t, second.GetJob().GetLastRun())
	require.True(t, proto.Equal(first.GetJob(), second.GetJob()), "the same job: %v", second.GetJob())
	listed, err := b.jobs.GetJob(ctx, &intakev1.GetJobRequest{Name: job.GetName()})
	require.NoError(t, err)
	require.Equal(t, second.GetRun().GetName(), listed.GetLastRun(), "GetJob still shows the last run")

	_, err = b.jobs.UpdateJob(ctx, &intakev1.UpdateJobRequest{Job: &intakev1.Job{Name: job.GetName(), Description: "changed"},
		UpdateMask: &fieldmaskpb.FieldMask{Paths: []string{"description"}}})
	require.NoError(t, err)
	third := tick(2)
	require.Equal(t, "changed", third.GetJob().GetDescription())
	require.Empty(t, third.GetJob().GetLastRun())
	got, err := b.jobs.GetJob(ctx, &intakev1.GetJobRequest{Name: job.GetName()})
	require.NoError(t, err)
	require.Equal(t, got.GetEtag(), third.GetJob().GetEtag())
}
