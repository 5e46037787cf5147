package api_test

import (
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/codes"

	"github.com/intakehq/intake/pkg/archive"
	"github.com/intakehq/intake/pkg/pipeline"
	intakev1 "github.com/intakehq/intake/proto/gen/intake/v1"
)

// archiveOf is the run archive the API reads (the fetchers' bucket).
func (b *testBundle) archiveOf(t *testing.T) archive.Archive {
	t.Helper()
	a, err := archive.NewJetStream(testCtx(t), b.js, pipeline.ArchiveBucket, 1)
	require.NoError(t, err)
	return a
}

// fetchFile plays the fetcher for run: it archives body under the run id
// and reports the run FETCHED with its hash, returning the response.
func (b *testBundle) fetchFile(t *testing.T, run string, body []byte, src string) *intakev1.ReportRunEventResponse {
	t.Helper()
	id := run[strings.LastIndex(run, "/")+1:]
	info, err := b.archiveOf(t).Put(testCtx(t), id, bytes.NewReader(body))
	require.NoError(t, err)
	b.report(t, &event{Run: run, Stage: fetch, Kind: started})
	return b.report(t, &event{Run: run, Stage: fetch, Kind: fetched, Sha256: info.SHA256, Source: src,
		Counters: &intakev1.RunCounters{Bytes: info.Size}})
}

// finishRun drives a fetched run to SUCCEEDED with one chunk of rows.
func (b *testBundle) finishRun(t *testing.T, run string, rows int64) *intakev1.Run {
	t.Helper()
	b.report(t, &event{Run: run, Stage: fetch, Kind: finished, Counters: &intakev1.RunCounters{Chunks: 1}})
	b.report(t, &event{Run: run, Stage: mapS, Kind: chunkDone, Counters: &intakev1.RunCounters{RowsRead: rows}})
	b.report(t, &event{Run: run, Stage: load, Kind: chunkDone, Counters: &intakev1.RunCounters{RowsStaged: rows}})
	r := b.report(t, &event{Run: run, Stage: load, Kind: finished, Counters: &intakev1.RunCounters{RowsCreated: rows}}).GetRun()
	require.Equal(t, intakev1.RunState_RUN_STATE_SUCCEEDED, r.GetState(), r.GetMessage())
	return r
}

// downloadSource reads a run's source download whole.
func (b *testBundle) downloadSource(t *testing.T, run string) ([]byte, []*intakev1.FileChunk, error) {
	t.Helper()
	stream, err := b.runs.DownloadSource(testCtx(t), &intakev1.DownloadSourceRequest{Name: run})
	require.NoError(t, err)
	var (
		data   []byte
		chunks []*intakev1.FileChunk
	)
	for {
		c, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			return data, chunks, nil
		}
		if err != nil {
			return data, chunks, err
		}
		chunks = append(chunks, c)
		data = append(data, c.GetData()...)
	}
}

func sha256Hex(b []byte) string {
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// bigCSV is an accounts file of about n bytes.
func bigCSV(n int) []byte {
	var buf bytes.Buffer
	buf.WriteString("Account ID,Name,Region\n")
	for i := 0; buf.Len() < n; i++ {
		fmt.Fprintf(&buf, "A-%d,Company %d,EU\n", i, i)
	}
	return buf.Bytes()
}

func TestDownloadSourceIsTheFetchedFile(t *testing.T) {
	t.Parallel()
	b := setup(t)
	job := b.createJob(t, "accounts")
	run := b.runNow(t, job.GetName()).GetName()
	body := bigCSV(600 << 10)
	b.fetchFile(t, run, body, b.files.srv.URL+"/exports/accounts.csv?day=1")
	done := b.finishRun(t, run, 3)

	data, chunks, err := b.downloadSource(t, run)
	require.NoError(t, err)
	require.Equal(t, done.GetSha256(), sha256Hex(data), "byte for byte the fetched file")
	require.Equal(t, body, data)
	require.Len(t, chunks, 3, "256 KiB chunks")
	require.Len(t, chunks[0].GetData(), 256<<10)
	id := run[strings.LastIndex(run, "/")+1:]
	require.Equal(t, "accounts-"+id+"-accounts.csv", chunks[0].GetFilename())
	require.Equal(t, "text/csv", chunks[0].GetContentType())
	require.Empty(t, chunks[1].GetFilename())

	// A gzip file is named by its source and typed as gzip; a source that
	// names no file is source.csv.
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	_, _ = zw.Write(body)
	require.NoError(t, zw.Close())
	run2 := b.runNow(t, job.GetName()).GetName()
	b.fetchFile(t, run2, gz.Bytes(), "https://example.com/export.csv.gz")
	data, chunks, err = b.downloadSource(t, run2)
	require.NoError(t, err)
	require.Equal(t, gz.Bytes(), data)
	require.Equal(t, "application/gzip", chunks[0].GetContentType())
	require.True(t, strings.HasSuffix(chunks[0].GetFilename(), "-export.csv.gz"), chunks[0].GetFilename())

	run3 := b.runNow(t, job.GetName()).GetName()
	b.fetchFile(t, run3, []byte("Account ID\nA-1\n"), "https://example.com/")
	_, chunks, err = b.downloadSource(t, run3)
	require.NoError(t, err)
	require.Equal(t, "accounts-"+run3[strings.LastIndex(run3, "/")+1:]+"-source.csv", chunks[0].GetFilename())
}

func TestDownloadSourceWithoutAFile(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := testCtx(t)
	job := b.createJob(t, "accounts")

	// Still queued: no file yet.
	queued := b.runNow(t, job.GetName()).GetName()
	_, _, err := b.downloadSource(t, queued)
	requireCode(t, err, codes.FailedPrecondition, "run "+queued+" has not stored its file yet (it is QUEUED)")

	// Failed before the download finished.
	b.report(t, &event{Run: queued, Stage: fetch, Kind: started})
	b.report(t, &event{Run: queued, Stage: fetch, Kind: failed, Message: "HTTP 404"})
	_, _, err = b.downloadSource(t, queued)
	requireCode(t, err, codes.FailedPrecondition, "run "+queued+" never stored a file: it failed before the download finished")
	_, err = b.runs.ReplayRun(ctx, &intakev1.ReplayRunRequest{Name: queued})
	requireCode(t, err, codes.FailedPrecondition, "run "+queued+" never stored a file: it failed before the download finished")

	// Bad names and unknown runs.
	_, _, err = b.downloadSource(t, "jobs/accounts")
	requireCode(t, err, codes.InvalidArgument, "name")
	_, _, err = b.downloadSource(t, "jobs/accounts/runs/nope")
	requireCode(t, err, codes.NotFound, "run jobs/accounts/runs/nope not found")
	_, err = b.runs.ReplayRun(ctx, &intakev1.ReplayRunRequest{Name: "jobs/accounts/runs/nope"})
	requireCode(t, err, codes.NotFound)
}

// The janitor keeps the files of a job's last keep_runs runs: an older
// run's file is deleted, the run says so, and its download and replay say
// why there is no file.
func TestRetentionDeletesOldFiles(t *testing.T) {
	t.Parallel()
	b := setup(t, setupOpts{retentionInterval: 100 * time.Millisecond})
	ctx := testCtx(t)
	spec := b.accountsJob("Accounts")
	spec.Retention = &intakev1.RetentionPolicy{KeepRuns: 2}
	job, err := b.create(t, "accounts", spec)
	require.NoError(t, err)
	other := b.createJob(t, "other") // the default policy: 50 runs, 90 days

	var runs []string
	for i := range 3 {
		run := b.runNow(t, job.GetName()).GetName()
		b.fetchFile(t, run, fmt.Appendf(nil, "Account ID,Name\nA-%d,Acme\n", i), "https://example.com/a.csv")
		b.finishRun(t, run, 1)
		runs = append(runs, run)
	}
	keep := b.runNow(t, other.GetName()).GetName()
	b.fetchFile(t, keep, []byte("Account ID,Name\nB-1,Beta\n"), "https://example.com/b.csv")
	b.finishRun(t, keep, 1)

	require.Eventually(t, func() bool {
		r, err := b.runs.GetRun(ctx, &intakev1.GetRunRequest{Name: runs[0]})
		require.NoError(t, err)
		return r.GetSourceExpired()
	}, 20*time.Second, 50*time.Millisecond, "the oldest run's file expires")
	_, err = b.archiveOf(t).Stat(ctx, runs[0][strings.LastIndex(runs[0], "/")+1:])
	require.ErrorIs(t, err, archive.ErrNotFound)

	_, _, err = b.downloadSource(t, runs[0])
	st := requireCode(t, err, codes.FailedPrecondition)
	require.Equal(t, "the source file of run "+runs[0]+" was deleted by the retention policy (keep the last 2 runs' files)", st.Message())
	_, err = b.runs.ReplayRun(ctx, &intakev1.ReplayRunRequest{Name: runs[0]})
	requireCode(t, err, codes.FailedPrecondition, "deleted by the retention policy")

	// The newer runs and the other job's run keep their files.
	time.Sleep(300 * time.Millisecond) // a few more sweeps
	for _, run := range append(runs[1:], keep) {
		r, err := b.runs.GetRun(ctx, &intakev1.GetRunRequest{Name: run})
		require.NoError(t, err)
		require.False(t, r.GetSourceExpired(), run)
		data, _, err := b.downloadSource(t, run)
		require.NoError(t, err, run)
		require.Equal(t, r.GetSha256(), sha256Hex(data))
	}
	require.Equal(t, 1.0, metricValue(t, b.reg, "intake_api_source_files_expired_total", nil))
}

// RunJob{force} runs a job even when its file is unchanged.
func TestForcedRunIsNotSkipped(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := testCtx(t)
	job := b.createJob(t, "accounts")
	first := b.runNow(t, job.GetName()).GetName()
	b.completeRun(t, first, shaA, []int64{2}, []int64{0})

	forced, err := b.jobs.RunJob(ctx, &intakev1.RunJobRequest{Name: job.GetName(), Force: true})
	require.NoError(t, err)
	require.True(t, forced.GetForce())
	r := b.completeRun(t, forced.GetName(), shaA, []int64{2}, []int64{0})
	require.Equal(t, intakev1.RunState_RUN_STATE_SUCCEEDED, r.GetRun().GetState())
	require.True(t, r.GetRun().GetForce())

	plain := b.runNow(t, job.GetName())
	require.False(t, plain.GetForce())
	r = b.completeRun(t, plain.GetName(), shaA, []int64{2}, []int64{0})
	require.Equal(t, intakev1.RunState_RUN_STATE_SKIPPED, r.GetRun().GetState())
}

// ReplayRun starts a new run of the same job that re-imports the old run's
// file with the job's current mapping, never skipped for its hash.
func TestReplayRun(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := testCtx(t)
	job := b.createJob(t, "accounts")
	first := b.runNow(t, job.GetName()).GetName()
	b.fetchFile(t, first, []byte(accountsCSV), b.files.srv.URL+"/accounts.csv")
	old := b.finishRun(t, first, 2)
	_ = b.runRequests(t) // drain

	// The mapping changes after the first run.
	job.Mapping.Entries = job.GetMapping().GetEntries()[:2]
	job.Etag = ""
	tok := b.validate(t, job)
	_, err := b.jobs.UpdateJob(ctx, &intakev1.UpdateJobRequest{Job: job, ValidationToken: tok})
	require.NoError(t, err)

	replay, err := b.runs.ReplayRun(ctx, &intakev1.ReplayRunRequest{Name: first})
	require.NoError(t, err)
	require.Equal(t, intakev1.Trigger_TRIGGER_REPLAY, replay.GetTrigger())
	require.Equal(t, first, replay.GetReplayOf())
	require.True(t, replay.GetForce())
	require.Equal(t, intakev1.RunState_RUN_STATE_QUEUED, replay.GetState())
	require.True(t, strings.HasPrefix(replay.GetName(), job.GetName()+"/runs/"))

	reqs := b.runRequests(t)
	require.Len(t, reqs, 1)
	req := reqs[0]
	require.Equal(t, replay.GetName(), req.GetRun())
	require.Equal(t, first[strings.LastIndex(first, "/")+1:], req.GetReplayOf())
	require.Equal(t, intakev1.Trigger_TRIGGER_REPLAY, req.GetTrigger())
	require.Len(t, req.GetJob().GetMapping().GetEntries(), 2, "the job's current mapping")
	require.NotNil(t, req.GetModel(), "the run's model")

	// The same file again is not skipped.
	resp := b.fetchFile(t, replay.GetName(), []byte(accountsCSV), "replay of "+first+" ("+b.files.srv.URL+"/accounts.csv)")
	require.Equal(t, cont, resp.GetDirective())
	require.Equal(t, old.GetSha256(), resp.GetRun().GetSha256())
	done := b.finishRun(t, replay.GetName(), 2)
	require.Equal(t, intakev1.Trigger_TRIGGER_REPLAY, done.GetTrigger())
	_, chunks, err := b.downloadSource(t, replay.GetName())
	require.NoError(t, err)
	require.True(t, strings.HasSuffix(chunks[0].GetFilename(), "-accounts.csv"), chunks[0].GetFilename())

	// A dry replay.
	dry, err := b.runs.ReplayRun(ctx, &intakev1.ReplayRunRequest{Name: first, DryRun: true})
	require.NoError(t, err)
	require.True(t, dry.GetDryRun())
}
