package api_test

import (
	"bytes"
	"encoding/csv"
	"errors"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/fieldmaskpb"

	pipelinev1 "github.com/intakehq/intake/proto/gen/intake/pipeline/v1"
	intakev1 "github.com/intakehq/intake/proto/gen/intake/v1"
)

const committing = intakev1.RunEventKind_RUN_EVENT_KIND_COMMITTING

// downloadRejects reads a run's rejects download whole; first is its first chunk.
func (b *testBundle) downloadRejects(t *testing.T, run string) ([]byte, *intakev1.FileChunk) {
	t.Helper()
	data, chunks := b.downloadChunks(t, run)
	return data, chunks[0]
}

func (b *testBundle) downloadChunks(t *testing.T, run string) ([]byte, []*intakev1.FileChunk) {
	t.Helper()
	stream, err := b.runs.DownloadRejects(testCtx(t), &intakev1.DownloadRejectsRequest{Name: run})
	require.NoError(t, err)
	var (
		data   []byte
		chunks []*intakev1.FileChunk
	)
	for {
		c, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			break
		}
		require.NoError(t, err)
		chunks = append(chunks, c)
		data = append(data, c.GetData()...)
	}
	require.NotEmpty(t, chunks, "an empty download")
	return data, chunks
}

// readCSV parses a download.
func readCSV(t *testing.T, data []byte) [][]string {
	t.Helper()
	r := csv.NewReader(bytes.NewReader(data))
	records, err := r.ReadAll()
	require.NoError(t, err, "the download is CSV:\n%s", data)
	return records
}

// runRequests returns the run requests published so far (once: a work
// queue hands each to one consumer).
func (b *testBundle) runRequests(t *testing.T) []*pipelinev1.RunRequest {
	t.Helper()
	ctx := testCtx(t)
	cons, err := b.js.CreateOrUpdateConsumer(ctx, "INTAKE_RUNS", jetstream.ConsumerConfig{Durable: "test", AckPolicy: jetstream.AckExplicitPolicy})
	require.NoError(t, err)
	batch, err := cons.Fetch(100, jetstream.FetchMaxWait(500*time.Millisecond))
	require.NoError(t, err)
	var out []*pipelinev1.RunRequest
	for m := range batch.Messages() {
		req := &pipelinev1.RunRequest{}
		require.NoError(t, proto.Unmarshal(m.Data(), req))
		out = append(out, req)
	}
	return out
}

// A mapped column missing from the file fails the run before anything is
// mapped, naming the columns; columns new in the file are listed.
func TestHeaderDrift(t *testing.T) {
	t.Parallel()
	b := setup(t)
	job := b.createJob(t, "accounts") // mapped: "Account ID", "Name"; file: also "Region"

	// New columns: unmapped and not in the file at validation.
	run := b.runNow(t, job.GetName()).GetName()
	r := b.report(t, &event{Run: run, Stage: fetch, Kind: fetched, Sha256: shaA, Header: []string{"Account ID", "Segment", "Name", "Region", "Owner"}})
	require.Equal(t, cont, r.GetDirective())
	require.Equal(t, []string{"Segment", "Owner"}, r.GetRun().GetNewColumns())
	require.Empty(t, r.GetRun().GetMissingColumns())
	got, err := b.runs.GetRun(testCtx(t), &intakev1.GetRunRequest{Name: run})
	require.NoError(t, err)
	require.Equal(t, []string{"Segment", "Owner"}, got.GetNewColumns())

	// Missing mapped columns: the run fails, and its work is abandoned.
	run = b.runNow(t, job.GetName()).GetName()
	b.report(t, &event{Run: run, Stage: fetch, Kind: started})
	r = b.report(t, &event{Run: run, Stage: fetch, Kind: fetched, Sha256: shaB, Header: []string{"Acct", "Region"}})
	require.Equal(t, abandon, r.GetDirective())
	require.Equal(t, intakev1.RunState_RUN_STATE_FAILED, r.GetRun().GetState())
	require.Equal(t, `mapped columns missing from the file: "Account ID", "Name"`, r.GetRun().GetMessage())
	require.Equal(t, []string{"Account ID", "Name"}, r.GetRun().GetMissingColumns())
	require.NotNil(t, r.GetRun().GetEndTime())
	r = b.report(t, &event{Run: run, Stage: fetch, Kind: finished, Counters: &intakev1.RunCounters{Chunks: 1}})
	require.Equal(t, abandon, r.GetDirective())

	// Columns used by a function count as mapped.
	fnJob := b.accountsJob("fn")
	fnJob.Mapping.Entries[1] = fn("name", `col["Name"] + " (" + Region + ")"`)
	created, err := b.create(t, "fn", fnJob)
	require.NoError(t, err)
	run = b.runNow(t, created.GetName()).GetName()
	r = b.report(t, &event{Run: run, Stage: fetch, Kind: fetched, Sha256: shaA, Header: []string{"Account ID", "Name"}})
	require.Equal(t, abandon, r.GetDirective())
	require.Equal(t, []string{"Region"}, r.GetRun().GetMissingColumns())

	// A job never validated (disabled) has no "new" columns.
	off := b.accountsJob("off")
	off.Enabled = false
	_, err = b.jobs.CreateJob(testCtx(t), &intakev1.CreateJobRequest{JobId: "off", Job: off})
	require.NoError(t, err)
	run = b.runNow(t, "jobs/off").GetName()
	r = b.report(t, &event{Run: run, Stage: fetch, Kind: fetched, Sha256: shaA, Header: []string{"Account ID", "Name", "Other"}})
	require.Equal(t, cont, r.GetDirective())
	require.Empty(t, r.GetRun().GetNewColumns())
}

// Before the loader commits it asks: over the job's error budget (a count
// or a share of the rows read) the run fails and nothing lands.
func TestErrorBudget(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := testCtx(t)

	// drive runs a job to the commit gate with rejected of read rows.
	drive := func(job string, read, rejected int64) (string, *intakev1.ReportRunEventResponse) {
		t.Helper()
		run := b.runNow(t, job).GetName()
		b.report(t, &event{Run: run, Stage: fetch, Kind: started})
		b.report(t, &event{Run: run, Stage: fetch, Kind: fetched, Sha256: shaA})
		b.report(t, &event{Run: run, Stage: fetch, Kind: finished, Counters: &intakev1.RunCounters{Chunks: 1}})
		var errs []*intakev1.RowError
		for i := range rejected {
			errs = append(errs, &intakev1.RowError{Row: 2 + i, Column: "Name", Reason: "bad", Record: "x,y"})
		}
		b.report(t, &event{Run: run, Stage: mapS, Kind: chunkDone, Chunk: 0, Counters: &intakev1.RunCounters{RowsRead: read, RowsRejected: rejected}, RowErrors: errs})
		b.report(t, &event{Run: run, Stage: load, Kind: chunkDone, Chunk: 0, Counters: &intakev1.RunCounters{RowsStaged: read - rejected}})
		return run, b.report(t, &event{Run: run, Stage: load, Kind: committing, Counters: &intakev1.RunCounters{RowsStaged: read - rejected}})
	}

	rowsJob := b.accountsJob("rows")
	rowsJob.ErrorBudget = &intakev1.ErrorBudget{Limit: &intakev1.ErrorBudget_MaxRejectedRows{MaxRejectedRows: 10}}
	_, err := b.create(t, "rows", rowsJob)
	require.NoError(t, err)

	run, r := drive("jobs/rows", 100, 12)
	require.Equal(t, abandon, r.GetDirective())
	require.Equal(t, intakev1.RunState_RUN_STATE_FAILED, r.GetRun().GetState())
	require.Equal(t, "12 rows rejected, more than the error budget of 10 rows", r.GetRun().GetMessage())
	// The loader's later reports are abandoned too; the rejects stay downloadable.
	r = b.report(t, &event{Run: run, Stage: load, Kind: finished})
	require.Equal(t, abandon, r.GetDirective())
	data, _ := b.downloadRejects(t, run)
	require.Len(t, readCSV(t, data), 1+12)

	// At the budget is within it.
	_, r = drive("jobs/rows", 100, 10)
	require.Equal(t, cont, r.GetDirective())
	require.Equal(t, intakev1.RunState_RUN_STATE_LOADING, r.GetRun().GetState())

	// A percentage of the rows read: the run's snapshot of the job counts,
	// not a later edit.
	pctJob := b.accountsJob("pct")
	pctJob.ErrorBudget = &intakev1.ErrorBudget{Limit: &intakev1.ErrorBudget_MaxRejectedPercent{MaxRejectedPercent: 1}}
	pct, err := b.create(t, "pct", pctJob)
	require.NoError(t, err)
	require.EqualValues(t, 1, pct.GetErrorBudget().GetMaxRejectedPercent())
	run = b.runNow(t, "jobs/pct").GetName()
	upd, err := b.jobs.UpdateJob(ctx, &intakev1.UpdateJobRequest{Job: &intakev1.Job{Name: "jobs/pct"},
		UpdateMask: &fieldmaskpb.FieldMask{Paths: []string{"error_budget"}}})
	require.NoError(t, err, "the budget is not part of the mapping: no validation needed")
	require.Nil(t, upd.GetErrorBudget())
	b.report(t, &event{Run: run, Stage: fetch, Kind: fetched, Sha256: shaA})
	b.report(t, &event{Run: run, Stage: mapS, Kind: chunkDone, Chunk: 0, Counters: &intakev1.RunCounters{RowsRead: 1000, RowsRejected: 12}})
	r = b.report(t, &event{Run: run, Stage: load, Kind: committing, Counters: &intakev1.RunCounters{RowsStaged: 988}})
	require.Equal(t, abandon, r.GetDirective())
	require.Equal(t, "12 rows rejected, more than the error budget of 1% of 1000 rows read", r.GetRun().GetMessage())

	_, err = b.jobs.UpdateJob(ctx, &intakev1.UpdateJobRequest{Job: &intakev1.Job{Name: "jobs/pct",
		ErrorBudget: &intakev1.ErrorBudget{Limit: &intakev1.ErrorBudget_MaxRejectedPercent{MaxRejectedPercent: 2.5}}},
		UpdateMask: &fieldmaskpb.FieldMask{Paths: []string{"error_budget"}}})
	require.NoError(t, err)
	_, r = drive("jobs/pct", 1000, 25)
	require.Equal(t, cont, r.GetDirective())
	run, r = drive("jobs/pct", 1000, 26)
	require.Equal(t, abandon, r.GetDirective())
	require.Contains(t, r.GetRun().GetMessage(), "26 rows rejected, more than the error budget of 2.5% of 1000 rows read")

	// Without a budget any number of rejects commits; a cancelled or failed
	// run does not.
	run, r = drive(b.createJob(t, "free").GetName(), 10, 9)
	require.Equal(t, cont, r.GetDirective())
	r = b.report(t, &event{Run: run, Stage: load, Kind: finished, Counters: &intakev1.RunCounters{RowsCreated: 1}})
	require.Equal(t, intakev1.RunState_RUN_STATE_PARTIALLY_SUCCEEDED, r.GetRun().GetState())
	// A redelivered commit question after the commit: go on (the loader re-reports).
	r = b.report(t, &event{Run: run, Stage: load, Kind: committing, Counters: &intakev1.RunCounters{RowsStaged: 1}})
	require.Equal(t, cont, r.GetDirective())
	run = b.runNow(t, "jobs/free").GetName()
	b.report(t, &event{Run: run, Stage: fetch, Kind: fetched, Sha256: shaB})
	b.report(t, &event{Run: run, Stage: mapS, Kind: failed, Message: "boom"})
	r = b.report(t, &event{Run: run, Stage: load, Kind: committing})
	require.Equal(t, abandon, r.GetDirective())
	run = b.runNow(t, "jobs/free").GetName()
	_, err = b.jobs.DeleteJob(ctx, &intakev1.DeleteJobRequest{Name: "jobs/free"})
	require.NoError(t, err)
	r = b.report(t, &event{Run: run, Stage: load, Kind: committing})
	require.Equal(t, abandon, r.GetDirective())
	require.Equal(t, intakev1.RunState_RUN_STATE_CANCELLED, r.GetRun().GetState())

	// COMMITTING comes from the loader only.
	_, err = b.stage.ReportRunEvent(ctx, &event{Run: run, Stage: mapS, Kind: committing})
	requireCode(t, err, codes.InvalidArgument, "COMMITTING is reported by the LOAD stage")
}

// A dry run is stored and travels with its run request; it is never
// skipped for an unchanged file and is never "the last successful run".
func TestDryRun(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := testCtx(t)
	job := b.createJob(t, "accounts")

	dry, err := b.jobs.RunJob(ctx, &intakev1.RunJobRequest{Name: job.GetName(), DryRun: true})
	require.NoError(t, err)
	require.True(t, dry.GetDryRun())
	got, err := b.runs.GetRun(ctx, &intakev1.GetRunRequest{Name: dry.GetName()})
	require.NoError(t, err)
	require.True(t, got.GetDryRun())
	reqs := b.runRequests(t)
	require.Len(t, reqs, 1)
	require.True(t, reqs[0].GetDryRun())

	r := b.completeRun(t, dry.GetName(), shaA, []int64{10}, []int64{0})
	require.Equal(t, intakev1.RunState_RUN_STATE_SUCCEEDED, r.GetRun().GetState())
	require.True(t, r.GetRun().GetDryRun())

	// The same file again, for real: not skipped, since the dry run changed nothing.
	real := b.runNow(t, job.GetName())
	require.False(t, real.GetDryRun())
	r = b.completeRun(t, real.GetName(), shaA, []int64{10}, []int64{0})
	require.Equal(t, intakev1.RunState_RUN_STATE_SUCCEEDED, r.GetRun().GetState())

	// A dry run of the file a real run loaded: not skipped either.
	dry, err = b.jobs.RunJob(ctx, &intakev1.RunJobRequest{Name: job.GetName(), DryRun: true})
	require.NoError(t, err)
	r = b.completeRun(t, dry.GetName(), shaA, []int64{10}, []int64{0})
	require.Equal(t, intakev1.RunState_RUN_STATE_SUCCEEDED, r.GetRun().GetState())

	// A real run of it is.
	r = b.completeRun(t, b.runNow(t, job.GetName()).GetName(), shaA, []int64{10}, []int64{0})
	require.Equal(t, skip, r.GetDirective())
	require.Contains(t, r.GetRun().GetMessage(), real.GetName(), "the real run is the last successful one")
}

// The rejects download: CSV with the row, column, reason and raw record of
// every rejected value, formula cells neutralised, in ~64 KiB chunks.
func TestDownloadRejects(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := testCtx(t)
	job := b.createJob(t, "accounts")
	run := b.runNow(t, job.GetName()).GetName()
	_, runID, _ := strings.Cut(strings.TrimPrefix(run, "jobs/accounts/"), "runs/")

	// Nothing rejected yet: only the header.
	data, first := b.downloadRejects(t, run)
	require.Equal(t, "row,column,reason,record\n", string(data))
	require.Equal(t, "accounts-"+runID+"-rejects.csv", first.GetFilename())
	require.Contains(t, first.GetContentType(), "text/csv")

	b.report(t, &event{Run: run, Stage: mapS, Kind: chunkDone, Chunk: 0, Counters: &intakev1.RunCounters{RowsRead: 10, RowsRejected: 4}, RowErrors: []*intakev1.RowError{
		{Row: 7, Column: "Employees", Reason: `not a number: "=1+2"`, Record: `A-6,Acme,=1+2`},
		{Row: 3, Column: "Name", Reason: "-bad start", Record: "@SUM(A1:A2),\"Quote, \"\"inc\"\"\",+49 30 1234"},
		{Row: 4, Column: "", Reason: "the row has 2 fields, the header 3", Record: "\tA-3,x"},
		{Row: 5, Column: "Created", Reason: "not a date", Record: "A-5,\"multi\nline\",\r"},
	}})
	data, _ = b.downloadRejects(t, run)
	records := readCSV(t, data)
	require.Equal(t, [][]string{
		{"row", "column", "reason", "record"},
		{"3", "Name", "'-bad start", "'@SUM(A1:A2),\"Quote, \"\"inc\"\"\",+49 30 1234"},
		{"4", "", "the row has 2 fields, the header 3", "'\tA-3,x"},
		{"5", "Created", "not a date", "A-5,\"multi\nline\","},
		{"7", "Employees", `not a number: "=1+2"`, "A-6,Acme,=1+2"},
	}, records)
	for _, rec := range records {
		for _, cell := range rec {
			if cell != "" {
				require.NotContains(t, "=+-@\t\r", cell[:1], "a cell a spreadsheet would run: %q", cell)
			}
		}
	}

	// A large download comes in chunks of about 64 KiB.
	var errs []*intakev1.RowError
	for i := range int64(3000) {
		errs = append(errs, &intakev1.RowError{Row: 100 + i, Column: "Notes", Reason: "too long", Record: strings.Repeat("x", 60)})
	}
	b.report(t, &event{Run: run, Stage: mapS, Kind: chunkDone, Chunk: 1, Counters: &intakev1.RunCounters{RowsRead: 3000, RowsRejected: 3000}, RowErrors: errs})
	data, chunks := b.downloadChunks(t, run)
	require.Greater(t, len(chunks), 2)
	for _, c := range chunks[:len(chunks)-1] {
		require.InDelta(t, 64<<10, len(c.GetData()), 1024)
	}
	require.Empty(t, chunks[1].GetFilename(), "only the first chunk names the file")
	require.Len(t, readCSV(t, data), 1+4+3000)

	_, err := b.runs.DownloadRejects(ctx, &intakev1.DownloadRejectsRequest{Name: "jobs/accounts/runs/nope"})
	if err == nil {
		stream, _ := b.runs.DownloadRejects(ctx, &intakev1.DownloadRejectsRequest{Name: "jobs/accounts/runs/nope"})
		_, err = stream.Recv()
	}
	requireCode(t, err, codes.NotFound, "run jobs/accounts/runs/nope not found")
	stream, err := b.runs.DownloadRejects(ctx, &intakev1.DownloadRejectsRequest{Name: "jobs/accounts"})
	if err == nil {
		_, err = stream.Recv()
	}
	requireCode(t, err, codes.InvalidArgument, "jobs/{job}/runs/{run}")
}
