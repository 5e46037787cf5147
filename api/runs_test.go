package api_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	pipelinev1 "github.com/intakehq/intake/proto/gen/intake/pipeline/v1"
	intakev1 "github.com/intakehq/intake/proto/gen/intake/v1"
)

const (
	shaA = "aaaaaaaaaaaa1111111111111111111111111111111111111111111111111111"
	shaB = "bbbbbbbbbbbb2222222222222222222222222222222222222222222222222222"
)

type event = intakev1.ReportRunEventRequest

const (
	fetch = intakev1.Stage_STAGE_FETCH
	mapS  = intakev1.Stage_STAGE_MAP
	load  = intakev1.Stage_STAGE_LOAD

	started   = intakev1.RunEventKind_RUN_EVENT_KIND_STARTED
	chunkDone = intakev1.RunEventKind_RUN_EVENT_KIND_CHUNK_DONE
	finished  = intakev1.RunEventKind_RUN_EVENT_KIND_FINISHED
	failed    = intakev1.RunEventKind_RUN_EVENT_KIND_FAILED
	fetched   = intakev1.RunEventKind_RUN_EVENT_KIND_FETCHED

	cont    = intakev1.Directive_DIRECTIVE_CONTINUE
	skip    = intakev1.Directive_DIRECTIVE_SKIP
	abandon = intakev1.Directive_DIRECTIVE_ABANDON
)

func (b *testBundle) report(t *testing.T, e *event) *intakev1.ReportRunEventResponse {
	t.Helper()
	resp, err := b.stage.ReportRunEvent(testCtx(t), e)
	require.NoError(t, err, "report %v %v", e.GetStage(), e.GetKind())
	require.Equal(t, e.GetRun(), resp.GetRun().GetName())
	return resp
}

func (b *testBundle) runNow(t *testing.T, job string) *intakev1.Run {
	t.Helper()
	run, err := b.jobs.RunJob(testCtx(t), &intakev1.RunJobRequest{Name: job})
	require.NoError(t, err)
	return run
}

// completeRun drives a run through every stage as the workers would: one
// chunk per rows entry, each with its rejected rows.
func (b *testBundle) completeRun(t *testing.T, run, sha string, rows, rejected []int64) *intakev1.ReportRunEventResponse {
	t.Helper()
	b.report(t, &event{Run: run, Stage: fetch, Kind: started})
	if r := b.report(t, &event{Run: run, Stage: fetch, Kind: fetched, Sha256: sha, Source: "https://x/a.csv", Counters: &intakev1.RunCounters{Bytes: 100}}); r.GetDirective() != cont {
		return r
	}
	n := int64(len(rows))
	b.report(t, &event{Run: run, Stage: fetch, Kind: finished, Counters: &intakev1.RunCounters{Bytes: 100, Chunks: n}})
	var staged int64
	for i := range rows {
		b.report(t, &event{Run: run, Stage: mapS, Kind: chunkDone, Chunk: int64(i), Counters: &intakev1.RunCounters{RowsRead: rows[i], RowsRejected: rejected[i]}})
		b.report(t, &event{Run: run, Stage: load, Kind: chunkDone, Chunk: int64(i), Counters: &intakev1.RunCounters{RowsStaged: rows[i] - rejected[i]}})
		staged += rows[i] - rejected[i]
	}
	return b.report(t, &event{Run: run, Stage: load, Kind: finished, Counters: &intakev1.RunCounters{RowsCreated: staged}})
}

func TestRunJobPublishesOneRunRequest(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := testCtx(t)
	job := b.createJob(t, "accounts")

	run := b.runNow(t, job.GetName())
	require.Regexp(t, `^jobs/accounts/runs/[0-9a-f-]{36}$`, run.GetName())
	require.Equal(t, intakev1.RunState_RUN_STATE_QUEUED, run.GetState())
	require.Equal(t, intakev1.Trigger_TRIGGER_RUN_NOW, run.GetTrigger())
	require.NotNil(t, run.GetCreateTime())
	require.Nil(t, run.GetScheduledTime())

	cons, err := b.js.CreateOrUpdateConsumer(ctx, "INTAKE_RUNS", jetstream.ConsumerConfig{Durable: "test", AckPolicy: jetstream.AckExplicitPolicy})
	require.NoError(t, err)
	batch, err := cons.Fetch(10, jetstream.FetchMaxWait(time.Second))
	require.NoError(t, err)
	var msgs []jetstream.Msg
	for m := range batch.Messages() {
		msgs = append(msgs, m)
	}
	require.Len(t, msgs, 1, "exactly one run request")
	require.Equal(t, "intake.run.request", msgs[0].Subject())
	require.Equal(t, run.GetName(), msgs[0].Headers().Get(jetstream.MsgIDHeader))
	var req pipelinev1.RunRequest
	require.NoError(t, proto.Unmarshal(msgs[0].Data(), &req))
	require.Equal(t, run.GetName(), req.GetRun())
	require.Equal(t, intakev1.Trigger_TRIGGER_RUN_NOW, req.GetTrigger())
	require.Equal(t, job.GetDisplayName(), req.GetJob().GetDisplayName())
	require.True(t, proto.Equal(job.GetMapping(), req.GetJob().GetMapping()))
	require.True(t, proto.Equal(run.GetCreateTime(), req.GetCreateTime()))

	got, err := b.jobs.GetJob(ctx, &intakev1.GetJobRequest{Name: job.GetName()})
	require.NoError(t, err)
	require.Equal(t, run.GetName(), got.GetLastRun())
	require.Equal(t, job.GetEtag(), got.GetEtag(), "running a job does not change it")
	stored, err := b.runs.GetRun(ctx, &intakev1.GetRunRequest{Name: run.GetName()})
	require.NoError(t, err)
	require.Equal(t, intakev1.RunState_RUN_STATE_QUEUED, stored.GetState())

	_, err = b.jobs.RunJob(ctx, &intakev1.RunJobRequest{Name: "jobs/nope"})
	requireCode(t, err, codes.NotFound, "job jobs/nope not found")
	_, err = b.runs.GetRun(ctx, &intakev1.GetRunRequest{Name: "jobs/accounts/runs/0000"})
	requireCode(t, err, codes.NotFound, "run jobs/accounts/runs/0000 not found")
	_, err = b.runs.GetRun(ctx, &intakev1.GetRunRequest{Name: "jobs/accounts"})
	requireCode(t, err, codes.InvalidArgument, "name", "jobs/{job}/runs/{run}")
}

func TestRunOnSaveStartsARun(t *testing.T) {
	t.Parallel()
	b := setup(t)
	j := b.accountsJob("now")
	j.RunOnSave = true
	job, err := b.create(t, "now", j)
	require.NoError(t, err)
	require.NotEmpty(t, job.GetLastRun())
	run, err := b.runs.GetRun(testCtx(t), &intakev1.GetRunRequest{Name: job.GetLastRun()})
	require.NoError(t, err)
	require.Equal(t, intakev1.RunState_RUN_STATE_QUEUED, run.GetState())
	require.Equal(t, intakev1.Trigger_TRIGGER_RUN_NOW, run.GetTrigger())
}

// When the run request cannot be published the run is FAILED, with the
// reason, and the caller gets Unavailable.
func TestRunJobWithoutStreamFails(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := testCtx(t)
	job := b.createJob(t, "accounts")
	require.NoError(t, b.js.DeleteStream(ctx, "INTAKE_RUNS"))
	_, err := b.jobs.RunJob(ctx, &intakev1.RunJobRequest{Name: job.GetName()})
	st := requireCode(t, err, codes.Unavailable, "could not be queued")
	runs, err := b.runs.ListRuns(ctx, &intakev1.ListRunsRequest{Parent: job.GetName()})
	require.NoError(t, err)
	require.Len(t, runs.GetRuns(), 1)
	run := runs.GetRuns()[0]
	require.Contains(t, st.Message(), run.GetName())
	require.Equal(t, intakev1.RunState_RUN_STATE_FAILED, run.GetState())
	require.Contains(t, run.GetMessage(), "could not queue the run")
	require.NotNil(t, run.GetEndTime())
	require.Equal(t, 1.0, metricValue(t, b.reg, "intake_api_runs_finished_total", map[string]string{"state": "failed", "trigger": "run_now"}))
}

func TestReportRunEventStateMachine(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := testCtx(t)
	job := b.createJob(t, "accounts")
	run := b.runNow(t, job.GetName()).GetName()
	state := func(r *intakev1.ReportRunEventResponse) intakev1.RunState { return r.GetRun().GetState() }

	r := b.report(t, &event{Run: run, Stage: fetch, Kind: started})
	require.Equal(t, cont, r.GetDirective())
	require.Equal(t, intakev1.RunState_RUN_STATE_FETCHING, state(r))
	require.NotNil(t, r.GetRun().GetStartTime())

	r = b.report(t, &event{Run: run, Stage: fetch, Kind: fetched, Sha256: shaA, Source: "https://exports.example.com/accounts.csv", Counters: &intakev1.RunCounters{Bytes: 4096}})
	require.Equal(t, cont, r.GetDirective(), "no earlier successful run to compare with")
	require.Equal(t, shaA, r.GetRun().GetSha256())
	require.Equal(t, "https://exports.example.com/accounts.csv", r.GetRun().GetSource())
	require.EqualValues(t, 4096, r.GetRun().GetCounters().GetBytes())

	// A mapper's chunk report overtakes the fetcher's FINISHED.
	r = b.report(t, &event{Run: run, Stage: mapS, Kind: chunkDone, Chunk: 1, Counters: &intakev1.RunCounters{RowsRead: 50, RowsRejected: 2},
		RowErrors: []*intakev1.RowError{{Row: 60, Column: "Employees", Reason: `"many" is not a number`}, {Row: 55, Column: "Created", Reason: "not a date"}}})
	require.Equal(t, cont, r.GetDirective())
	require.Equal(t, intakev1.RunState_RUN_STATE_MAPPING, state(r))

	// Late reports never move the run back.
	r = b.report(t, &event{Run: run, Stage: fetch, Kind: started})
	require.Equal(t, intakev1.RunState_RUN_STATE_MAPPING, state(r))
	r = b.report(t, &event{Run: run, Stage: fetch, Kind: finished, Counters: &intakev1.RunCounters{Bytes: 4096, Chunks: 2}})
	require.Equal(t, intakev1.RunState_RUN_STATE_MAPPING, state(r))
	require.EqualValues(t, 2, r.GetRun().GetCounters().GetChunks())

	// The same chunk reported twice counts once.
	for range 2 {
		r = b.report(t, &event{Run: run, Stage: mapS, Kind: chunkDone, Chunk: 0, Counters: &intakev1.RunCounters{RowsRead: 50},
			RowErrors: []*intakev1.RowError{{Row: 3, Column: "Name", Reason: "empty"}}})
	}
	require.EqualValues(t, 100, r.GetRun().GetCounters().GetRowsRead())
	require.EqualValues(t, 2, r.GetRun().GetCounters().GetRowsRejected())

	r = b.report(t, &event{Run: run, Stage: load, Kind: chunkDone, Chunk: 1, Counters: &intakev1.RunCounters{RowsStaged: 48}})
	require.Equal(t, intakev1.RunState_RUN_STATE_LOADING, state(r))
	r = b.report(t, &event{Run: run, Stage: mapS, Kind: chunkDone, Chunk: 1, Counters: &intakev1.RunCounters{RowsRead: 50, RowsRejected: 2}})
	require.Equal(t, intakev1.RunState_RUN_STATE_LOADING, state(r), "a redelivered mapper report after loading began")
	for range 2 {
		r = b.report(t, &event{Run: run, Stage: load, Kind: chunkDone, Chunk: 0, Counters: &intakev1.RunCounters{RowsStaged: 50}})
	}
	require.EqualValues(t, 98, r.GetRun().GetCounters().GetRowsStaged())

	r = b.report(t, &event{Run: run, Stage: load, Kind: finished, Counters: &intakev1.RunCounters{RowsCreated: 90, RowsUpdated: 5, RowsUnchanged: 2, RowsIgnored: 1}})
	require.Equal(t, cont, r.GetDirective())
	require.Equal(t, intakev1.RunState_RUN_STATE_PARTIALLY_SUCCEEDED, state(r))
	require.Empty(t, r.GetRun().GetMessage())

	got, err := b.runs.GetRun(ctx, &intakev1.GetRunRequest{Name: run})
	require.NoError(t, err)
	require.Equal(t, intakev1.RunState_RUN_STATE_PARTIALLY_SUCCEEDED, got.GetState())
	require.NotNil(t, got.GetEndTime())
	require.True(t, proto.Equal(&intakev1.RunCounters{
		Bytes: 4096, Chunks: 2, RowsRead: 100, RowsRejected: 2, RowsStaged: 98,
		RowsCreated: 90, RowsUpdated: 5, RowsUnchanged: 2, RowsIgnored: 1,
	}, got.GetCounters()), "counters: %v", got.GetCounters())
	require.Len(t, got.GetStages(), 3)
	for i, st := range got.GetStages() {
		require.Equal(t, intakev1.Stage(i+1), st.GetStage())
		require.NotNil(t, st.GetStartTime(), "%v start", st.GetStage())
		require.NotNil(t, st.GetEndTime(), "%v end", st.GetStage())
		require.False(t, st.GetEndTime().AsTime().Before(st.GetStartTime().AsTime()))
	}
	require.EqualValues(t, 2, got.GetStages()[1].GetChunksDone())
	require.EqualValues(t, 2, got.GetStages()[2].GetChunksDone())
	// Row errors come ordered by row, each once.
	require.Len(t, got.GetRowErrors(), 3)
	require.EqualValues(t, []int64{3, 55, 60}, []int64{got.GetRowErrors()[0].GetRow(), got.GetRowErrors()[1].GetRow(), got.GetRowErrors()[2].GetRow()})
	require.Equal(t, "Employees", got.GetRowErrors()[2].GetColumn())
	require.Equal(t, `"many" is not a number`, got.GetRowErrors()[2].GetReason())

	// A final state never changes: late work is abandoned ...
	r = b.report(t, &event{Run: run, Stage: mapS, Kind: chunkDone, Chunk: 5, Counters: &intakev1.RunCounters{RowsRead: 1000}})
	require.Equal(t, abandon, r.GetDirective())
	require.Equal(t, intakev1.RunState_RUN_STATE_PARTIALLY_SUCCEEDED, state(r))
	require.EqualValues(t, 100, r.GetRun().GetCounters().GetRowsRead())
	r = b.report(t, &event{Run: run, Stage: fetch, Kind: failed, Message: "late"})
	require.Equal(t, abandon, r.GetDirective())
	require.Equal(t, intakev1.RunState_RUN_STATE_PARTIALLY_SUCCEEDED, state(r))
	// ... but the loader's re-report of its FINISHED is no news.
	r = b.report(t, &event{Run: run, Stage: load, Kind: finished, Counters: &intakev1.RunCounters{RowsCreated: 90, RowsUpdated: 5, RowsUnchanged: 2, RowsIgnored: 1}})
	require.Equal(t, cont, r.GetDirective())
	require.Equal(t, intakev1.RunState_RUN_STATE_PARTIALLY_SUCCEEDED, state(r))

	labels := map[string]string{"state": "partially_succeeded", "trigger": "run_now"}
	require.Equal(t, 1.0, metricValue(t, b.reg, "intake_api_runs_finished_total", labels))
	require.Equal(t, 1.0, metricValue(t, b.reg, "intake_api_run_duration_seconds", map[string]string{"state": "partially_succeeded"}))
	require.Equal(t, 100.0, metricValue(t, b.reg, "intake_api_rows_total", map[string]string{"stage": "map", "outcome": "read"}))
	require.Equal(t, 2.0, metricValue(t, b.reg, "intake_api_rows_total", map[string]string{"stage": "map", "outcome": "rejected"}))
	require.Equal(t, 90.0, metricValue(t, b.reg, "intake_api_rows_total", map[string]string{"stage": "load", "outcome": "created"}))
}

func TestReportRunEventBadInput(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := testCtx(t)
	job := b.createJob(t, "accounts")
	run := b.runNow(t, job.GetName()).GetName()
	for _, tc := range []struct {
		e    *event
		code codes.Code
		want string
	}{
		{&event{Run: "runs/1", Stage: fetch, Kind: started}, codes.InvalidArgument, "run: \"runs/1\" is not a run name"},
		{&event{Run: run, Kind: started}, codes.InvalidArgument, "stage:"},
		{&event{Run: run, Stage: fetch}, codes.InvalidArgument, "kind:"},
		{&event{Run: run, Stage: mapS, Kind: chunkDone, Chunk: -1}, codes.InvalidArgument, "chunk: -1 is not a chunk index"},
		{&event{Run: run, Stage: fetch, Kind: fetched, Sha256: "abc"}, codes.InvalidArgument, `sha256: "abc" is not a lowercase hex SHA-256`},
		{&event{Run: run, Stage: mapS, Kind: fetched, Sha256: shaA}, codes.InvalidArgument, "stage: FETCHED is reported by the FETCH stage"},
		{&event{Run: run, Stage: mapS, Kind: chunkDone, RowErrors: []*intakev1.RowError{{Row: 0}}}, codes.InvalidArgument, "row_errors[0].row"},
		{&event{Run: "jobs/accounts/runs/nope", Stage: fetch, Kind: started}, codes.NotFound, "run jobs/accounts/runs/nope not found"},
	} {
		_, err := b.stage.ReportRunEvent(ctx, tc.e)
		requireCode(t, err, tc.code, tc.want)
	}
	got, err := b.runs.GetRun(ctx, &intakev1.GetRunRequest{Name: run})
	require.NoError(t, err)
	require.Equal(t, intakev1.RunState_RUN_STATE_QUEUED, got.GetState(), "bad reports change nothing")
}

func TestFailedStageFailsRun(t *testing.T) {
	t.Parallel()
	b := setup(t)
	job := b.createJob(t, "accounts")
	run := b.runNow(t, job.GetName()).GetName()
	b.report(t, &event{Run: run, Stage: fetch, Kind: started})
	r := b.report(t, &event{Run: run, Stage: fetch, Kind: failed, Message: "GET https://exports.example.com/accounts.csv: 404 Not Found"})
	require.Equal(t, intakev1.RunState_RUN_STATE_FAILED, r.GetRun().GetState())
	require.Equal(t, "fetch: GET https://exports.example.com/accounts.csv: 404 Not Found", r.GetRun().GetMessage())
	require.NotNil(t, r.GetRun().GetEndTime())
	for _, e := range []*event{
		{Run: run, Stage: fetch, Kind: started},
		{Run: run, Stage: fetch, Kind: failed, Message: "again"},
		{Run: run, Stage: load, Kind: finished},
	} {
		r = b.report(t, e)
		require.Equal(t, abandon, r.GetDirective(), "%v %v", e.GetStage(), e.GetKind())
		require.Equal(t, intakev1.RunState_RUN_STATE_FAILED, r.GetRun().GetState())
		require.Equal(t, "fetch: GET https://exports.example.com/accounts.csv: 404 Not Found", r.GetRun().GetMessage())
	}
}

func TestAllRowsRejectedFailsRun(t *testing.T) {
	t.Parallel()
	b := setup(t)
	job := b.createJob(t, "accounts")
	run := b.runNow(t, job.GetName()).GetName()
	r := b.completeRun(t, run, shaA, []int64{2, 1}, []int64{2, 1})
	require.Equal(t, intakev1.RunState_RUN_STATE_FAILED, r.GetRun().GetState())
	require.Equal(t, "every row was rejected: 3 rows", r.GetRun().GetMessage())
	// The loader's re-report after the commit is still no news.
	r = b.report(t, &event{Run: run, Stage: load, Kind: finished})
	require.Equal(t, cont, r.GetDirective())

	// A failed run is not a successful one: the same file runs again.
	run2 := b.runNow(t, job.GetName()).GetName()
	r = b.completeRun(t, run2, shaA, []int64{3}, []int64{0})
	require.Equal(t, intakev1.RunState_RUN_STATE_SUCCEEDED, r.GetRun().GetState())
}

func TestUnchangedFileSkipsRun(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := testCtx(t)
	job := b.createJob(t, "accounts")
	first := b.runNow(t, job.GetName()).GetName()
	r := b.completeRun(t, first, shaA, []int64{10}, []int64{1})
	require.Equal(t, intakev1.RunState_RUN_STATE_PARTIALLY_SUCCEEDED, r.GetRun().GetState())

	second := b.runNow(t, job.GetName()).GetName()
	b.report(t, &event{Run: second, Stage: fetch, Kind: started})
	r = b.report(t, &event{Run: second, Stage: fetch, Kind: fetched, Sha256: shaA, Source: "https://x/a.csv", Counters: &intakev1.RunCounters{Bytes: 100}})
	require.Equal(t, skip, r.GetDirective())
	require.Equal(t, intakev1.RunState_RUN_STATE_SKIPPED, r.GetRun().GetState())
	require.Equal(t, fmt.Sprintf("file unchanged since run %s (sha256 %s)", first, shaA[:12]), r.GetRun().GetMessage())
	require.NotNil(t, r.GetRun().GetEndTime())
	r = b.report(t, &event{Run: second, Stage: fetch, Kind: finished})
	require.Equal(t, abandon, r.GetDirective())

	// A changed file runs; a skipped run is not "successful".
	third := b.runNow(t, job.GetName()).GetName()
	r = b.completeRun(t, third, shaB, []int64{10}, []int64{0})
	require.Equal(t, intakev1.RunState_RUN_STATE_SUCCEEDED, r.GetRun().GetState())
	fourth := b.runNow(t, job.GetName()).GetName()
	r = b.completeRun(t, fourth, shaA, []int64{10}, []int64{0})
	require.Equal(t, intakev1.RunState_RUN_STATE_SUCCEEDED, r.GetRun().GetState(), "compared with the latest success (B), A is new")

	// History, newest first, in pages; across jobs too.
	var names []string
	token := ""
	for {
		resp, err := b.runs.ListRuns(ctx, &intakev1.ListRunsRequest{Parent: job.GetName(), PageSize: 3, PageToken: token})
		require.NoError(t, err)
		for _, run := range resp.GetRuns() {
			names = append(names, run.GetName())
		}
		if token = resp.GetNextPageToken(); token == "" {
			break
		}
	}
	require.Equal(t, []string{fourth, third, second, first}, names)
	all, err := b.runs.ListRuns(ctx, &intakev1.ListRunsRequest{Parent: "jobs/-"})
	require.NoError(t, err)
	require.Len(t, all.GetRuns(), 4)
	require.Equal(t, intakev1.RunState_RUN_STATE_SKIPPED, all.GetRuns()[2].GetState())
	_, err = b.runs.ListRuns(ctx, &intakev1.ListRunsRequest{Parent: "jobs/-", PageToken: func() string {
		resp, err := b.runs.ListRuns(ctx, &intakev1.ListRunsRequest{Parent: job.GetName(), PageSize: 1})
		require.NoError(t, err)
		return resp.GetNextPageToken()
	}()})
	requireCode(t, err, codes.InvalidArgument, "page_token")
	_, err = b.runs.ListRuns(ctx, &intakev1.ListRunsRequest{Parent: "jobs/nope"})
	requireCode(t, err, codes.NotFound, "job jobs/nope not found")
	_, err = b.runs.ListRuns(ctx, &intakev1.ListRunsRequest{Parent: "accounts"})
	requireCode(t, err, codes.InvalidArgument, "parent")

	// Deleting the job keeps its history.
	_, err = b.jobs.DeleteJob(ctx, &intakev1.DeleteJobRequest{Name: job.GetName()})
	require.NoError(t, err)
	kept, err := b.runs.ListRuns(ctx, &intakev1.ListRunsRequest{Parent: job.GetName()})
	require.NoError(t, err)
	require.Len(t, kept.GetRuns(), 4)
	require.Equal(t, 1.0, metricValue(t, b.reg, "intake_api_runs_finished_total", map[string]string{"state": "skipped", "trigger": "run_now"}))
}

// Concurrent reports of every chunk from many workers add up exactly.
func TestConcurrentChunkReports(t *testing.T) {
	t.Parallel()
	b := setup(t)
	job := b.createJob(t, "accounts")
	run := b.runNow(t, job.GetName()).GetName()
	const chunks = 40
	var wg sync.WaitGroup
	errs := make(chan error, 2*chunks)
	for i := range chunks {
		for range 2 { // every chunk delivered twice
			wg.Go(func() {
				_, err := b.stage.ReportRunEvent(testCtx(t), &event{Run: run, Stage: mapS, Kind: chunkDone, Chunk: int64(i),
					Counters:  &intakev1.RunCounters{RowsRead: 10, RowsRejected: 1},
					RowErrors: []*intakev1.RowError{{Row: int64(i*10 + 2), Column: "Name", Reason: "empty"}}})
				errs <- err
			})
		}
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
	got, err := b.runs.GetRun(testCtx(t), &intakev1.GetRunRequest{Name: run})
	require.NoError(t, err)
	require.EqualValues(t, 400, got.GetCounters().GetRowsRead())
	require.EqualValues(t, 40, got.GetCounters().GetRowsRejected())
	require.EqualValues(t, chunks, got.GetStages()[0].GetChunksDone())
	require.Len(t, got.GetRowErrors(), chunks)
}

// Every row error is kept (for the rejects download), up to a cap per run
// (1,000,000; 1000 here), the ones of the lowest rows; a run shows the
// first 100.
func TestRowErrorsAreCapped(t *testing.T) {
	t.Parallel()
	b := setup(t, setupOpts{rowErrorCap: 1000})
	job := b.createJob(t, "accounts")
	run := b.runNow(t, job.GetName()).GetName()
	for chunk := int64(1); chunk >= 0; chunk-- { // the later chunk first
		var errs []*intakev1.RowError
		for i := range int64(800) {
			errs = append(errs, &intakev1.RowError{Row: 2 + chunk*800 + i, Reason: "bad row", Record: fmt.Sprintf("A-%d,,x", i)})
		}
		b.report(t, &event{Run: run, Stage: mapS, Kind: chunkDone, Chunk: chunk, Counters: &intakev1.RunCounters{RowsRead: 800, RowsRejected: 800}, RowErrors: errs})
	}
	got, err := b.runs.GetRun(testCtx(t), &intakev1.GetRunRequest{Name: run})
	require.NoError(t, err)
	require.Len(t, got.GetRowErrors(), 100)
	require.EqualValues(t, 2, got.GetRowErrors()[0].GetRow())
	require.EqualValues(t, 101, got.GetRowErrors()[99].GetRow())
	require.Empty(t, got.GetRowErrors()[0].GetRecord(), "GetRun leaves the records out")
	var kept, maxRow int64
	require.NoError(t, pgPool(t, b.dsn).QueryRow(testCtx(t), `SELECT count(*), max(row) FROM intake.run_row_errors`).Scan(&kept, &maxRow))
	require.EqualValues(t, 1000, kept)
	require.EqualValues(t, 1001, maxRow)

	// The download has the kept ones and says that the others were not kept.
	data, _ := b.downloadRejects(t, run)
	records := readCSV(t, data)
	require.Len(t, records, 1+1000+1)
	require.Equal(t, []string{"row", "column", "reason", "record"}, records[0])
	require.Equal(t, []string{"2", "", "bad row", "A-0,,x"}, records[1])
	require.Equal(t, "1001", records[1000][0])
	require.Contains(t, records[1001][2], "only the first 1000 rejected values of the run are kept; 600 more were not")
}

func TestCreateScheduledRunOncePerTick(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := testCtx(t)
	job := b.createJob(t, "accounts")
	tick := timestamppb.New(time.Date(2026, 3, 29, 6, 30, 0, 0, time.UTC))

	var (
		mu      sync.Mutex
		names   = map[string]int{}
		created int
		wg      sync.WaitGroup
	)
	for range 5 { // several scheduler replicas ask at once
		wg.Go(func() {
			resp, err := b.stage.CreateScheduledRun(ctx, &intakev1.CreateScheduledRunRequest{Job: job.GetName(), ScheduledTime: tick})
			if err != nil {
				t.Errorf("CreateScheduledRun: %v", err)
				return
			}
			mu.Lock()
			defer mu.Unlock()
			names[resp.GetRun().GetName()]++
			if resp.GetCreated() {
				created++
			}
			if resp.GetJob().GetName() != job.GetName() {
				t.Errorf("CreateScheduledRun returned job %q, want %q", resp.GetJob().GetName(), job.GetName())
			}
		})
	}
	wg.Wait()
	require.Len(t, names, 1, "one run for the tick")
	require.Equal(t, 1, created)

	again, err := b.stage.CreateScheduledRun(ctx, &intakev1.CreateScheduledRunRequest{Job: job.GetName(), ScheduledTime: tick})
	require.NoError(t, err)
	require.False(t, again.GetCreated())
	run := again.GetRun()
	require.Contains(t, names, run.GetName())
	require.Equal(t, intakev1.Trigger_TRIGGER_SCHEDULE, run.GetTrigger())
	require.Equal(t, intakev1.RunState_RUN_STATE_QUEUED, run.GetState())
	require.True(t, proto.Equal(tick, run.GetScheduledTime()))
	require.True(t, proto.Equal(job.GetMapping(), again.GetJob().GetMapping()))

	next, err := b.stage.CreateScheduledRun(ctx, &intakev1.CreateScheduledRunRequest{Job: job.GetName(),
		ScheduledTime: timestamppb.New(tick.AsTime().Add(24 * time.Hour))})
	require.NoError(t, err)
	require.True(t, next.GetCreated())
	require.NotEqual(t, run.GetName(), next.GetRun().GetName())

	_, err = b.stage.CreateScheduledRun(ctx, &intakev1.CreateScheduledRunRequest{Job: "jobs/nope", ScheduledTime: tick})
	requireCode(t, err, codes.NotFound, "job jobs/nope not found")
	_, err = b.stage.CreateScheduledRun(ctx, &intakev1.CreateScheduledRunRequest{Job: job.GetName()})
	requireCode(t, err, codes.InvalidArgument, "scheduled_time")

	disabled := b.accountsJob("off")
	disabled.Enabled = false
	_, err = b.jobs.CreateJob(ctx, &intakev1.CreateJobRequest{JobId: "off", Job: disabled})
	require.NoError(t, err)
	_, err = b.stage.CreateScheduledRun(ctx, &intakev1.CreateScheduledRunRequest{Job: "jobs/off", ScheduledTime: tick})
	requireCode(t, err, codes.FailedPrecondition, "job jobs/off is disabled")
}

// watchAll reads a WatchRun stream to its end.
func watchAll(ctx context.Context, c intakev1.RunServiceClient, name string, first chan<- struct{}) ([]*intakev1.Run, error) {
	stream, err := c.WatchRun(ctx, &intakev1.WatchRunRequest{Name: name})
	if err != nil {
		return nil, err
	}
	var runs []*intakev1.Run
	for {
		resp, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			return runs, nil
		}
		if err != nil {
			return runs, err
		}
		runs = append(runs, resp.GetRun())
		if len(runs) == 1 && first != nil {
			close(first)
		}
	}
}

func TestWatchRunStreamsUntilFinal(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := testCtx(t)
	job := b.createJob(t, "accounts")
	run := b.runNow(t, job.GetName()).GetName()

	type result struct {
		runs []*intakev1.Run
		err  error
	}
	done := make(chan result, 1)
	first := make(chan struct{})
	go func() {
		runs, err := watchAll(ctx, b.runs, run, first)
		done <- result{runs, err}
	}()
	<-first
	// Pause between reports so each change shows up on its own.
	step := func(e *event) {
		b.report(t, e)
		time.Sleep(50 * time.Millisecond)
	}
	step(&event{Run: run, Stage: fetch, Kind: started})
	step(&event{Run: run, Stage: fetch, Kind: fetched, Sha256: shaA, Counters: &intakev1.RunCounters{Bytes: 10}})
	step(&event{Run: run, Stage: fetch, Kind: finished, Counters: &intakev1.RunCounters{Bytes: 10, Chunks: 1}})
	step(&event{Run: run, Stage: mapS, Kind: chunkDone, Counters: &intakev1.RunCounters{RowsRead: 3}})
	step(&event{Run: run, Stage: load, Kind: chunkDone, Counters: &intakev1.RunCounters{RowsStaged: 3}})
	step(&event{Run: run, Stage: load, Kind: finished, Counters: &intakev1.RunCounters{RowsCreated: 3}})

	var res result
	select {
	case res = <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("WatchRun did not end after the run succeeded")
	}
	require.NoError(t, res.err)
	var states []intakev1.RunState
	for _, r := range res.runs {
		if len(states) == 0 || states[len(states)-1] != r.GetState() {
			states = append(states, r.GetState())
		}
	}
	require.Equal(t, []intakev1.RunState{
		intakev1.RunState_RUN_STATE_QUEUED, intakev1.RunState_RUN_STATE_FETCHING, intakev1.RunState_RUN_STATE_MAPPING,
		intakev1.RunState_RUN_STATE_LOADING, intakev1.RunState_RUN_STATE_SUCCEEDED,
	}, states)
	last := res.runs[len(res.runs)-1]
	require.EqualValues(t, 3, last.GetCounters().GetRowsCreated())

	// Watching a finished run sends it once and ends.
	runs, err := watchAll(ctx, b.runs, run, nil)
	require.NoError(t, err)
	require.Len(t, runs, 1)
	require.Equal(t, intakev1.RunState_RUN_STATE_SUCCEEDED, runs[0].GetState())

	_, err = watchAll(ctx, b.runs, "jobs/accounts/runs/nope", nil)
	requireCode(t, err, codes.NotFound, "run jobs/accounts/runs/nope not found")
}

// A watcher on one replica sees reports that another replica handled.
func TestWatchRunAcrossReplicas(t *testing.T) {
	t.Parallel()
	a := setup(t)
	b := setup(t, setupOpts{dsn: a.dsn, nats: a.nats})
	ctx := testCtx(t)
	job := a.createJob(t, "accounts")
	run := a.runNow(t, job.GetName()).GetName()
	done := make(chan []*intakev1.Run, 1)
	first := make(chan struct{})
	go func() {
		runs, err := watchAll(ctx, b.runs, run, first)
		if err != nil {
			t.Errorf("watch on replica b: %v", err)
		}
		done <- runs
	}()
	<-first
	start := time.Now()
	a.report(t, &event{Run: run, Stage: fetch, Kind: started})
	a.report(t, &event{Run: run, Stage: fetch, Kind: failed, Message: "connection refused"})
	select {
	case runs := <-done:
		require.Less(t, time.Since(start), 5*time.Second)
		last := runs[len(runs)-1]
		require.Equal(t, intakev1.RunState_RUN_STATE_FAILED, last.GetState())
		require.True(t, strings.HasPrefix(last.GetMessage(), "fetch: connection refused"))
	case <-time.After(10 * time.Second):
		t.Fatal("the watcher on the other replica did not see the run fail")
	}
}

// Deleting a job cancels its runs in progress, so the workers drop them;
// its finished runs stay as history.
func TestDeleteJobCancelsRunsInProgress(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := testCtx(t)
	job := b.createJob(t, "accounts")
	done := b.runNow(t, job.GetName()).GetName()
	b.completeRun(t, done, shaA, []int64{5}, []int64{0})
	busy := b.runNow(t, job.GetName()).GetName()
	b.report(t, &event{Run: busy, Stage: fetch, Kind: started})

	_, err := b.jobs.DeleteJob(ctx, &intakev1.DeleteJobRequest{Name: job.GetName()})
	require.NoError(t, err)
	r := b.report(t, &event{Run: busy, Stage: fetch, Kind: fetched, Sha256: shaB})
	require.Equal(t, abandon, r.GetDirective())
	require.Equal(t, intakev1.RunState_RUN_STATE_CANCELLED, r.GetRun().GetState())
	require.Equal(t, "cancelled: job jobs/accounts was deleted", r.GetRun().GetMessage())
	got, err := b.runs.GetRun(ctx, &intakev1.GetRunRequest{Name: done})
	require.NoError(t, err)
	require.Equal(t, intakev1.RunState_RUN_STATE_SUCCEEDED, got.GetState())
	require.Equal(t, 1.0, metricValue(t, b.reg, "intake_api_runs_finished_total", map[string]string{"state": "cancelled", "trigger": "run_now"}))
}

// A deleted job's id is not handed to a new job while its run history is
// kept: the new job would inherit that history, and its first run would be
// skipped as "unchanged" against a run of the deleted job.
func TestDeletedJobIDIsNotReused(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := testCtx(t)
	job := b.createJob(t, "accounts")
	b.completeRun(t, b.runNow(t, job.GetName()).GetName(), shaA, []int64{5}, []int64{0})
	_, err := b.jobs.DeleteJob(ctx, &intakev1.DeleteJobRequest{Name: job.GetName()})
	require.NoError(t, err)

	_, err = b.create(t, "accounts", b.accountsJob("Accounts again"))
	requireCode(t, err, codes.AlreadyExists, "job jobs/accounts was deleted", "choose another id")

	// A job that never ran leaves nothing behind: its id is free again.
	b.createJob(t, "short-lived")
	_, err = b.jobs.DeleteJob(ctx, &intakev1.DeleteJobRequest{Name: "jobs/short-lived"})
	require.NoError(t, err)
	b.createJob(t, "short-lived")
}
