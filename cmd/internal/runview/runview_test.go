package runview_test

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/intakehq/intake/cmd/internal/runview"
	intakev1 "github.com/intakehq/intake/proto/gen/intake/v1"
)

var t0 = time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)

func running() *intakev1.Run {
	return &intakev1.Run{
		Name:      "jobs/demo/runs/r1",
		State:     intakev1.RunState_RUN_STATE_LOADING,
		Trigger:   intakev1.Trigger_TRIGGER_SCHEDULE,
		StartTime: timestamppb.New(t0),
		Counters:  &intakev1.RunCounters{Chunks: 10, RowsRead: 40000, RowsRejected: 3},
		Stages: []*intakev1.StageStatus{
			{Stage: intakev1.Stage_STAGE_FETCH, StartTime: timestamppb.New(t0), EndTime: timestamppb.New(t0.Add(time.Second))},
			{Stage: intakev1.Stage_STAGE_MAP, ChunksDone: 8},
			{Stage: intakev1.Stage_STAGE_LOAD, ChunksDone: 4},
		},
	}
}

func TestProgressShowsBarRateAndETA(t *testing.T) {
	t.Parallel()
	line := runview.Progress(running(), t0.Add(20*time.Second), 120)
	require.True(t, strings.HasPrefix(line, "loading ["), line)
	require.Contains(t, line, "[████████████··················]", "4 of 10 chunks loaded, on a bar of 30")
	require.Contains(t, line, "] 4/10  40000 rows")
	require.Contains(t, line, "40000 rows")
	require.Contains(t, line, "3 rejected")
	require.Contains(t, line, "2000 rows/s")
	require.Contains(t, line, "20.0s")
	require.Contains(t, line, "ETA 30.0s", "6 chunks left at 5s a chunk")
	require.NotContains(t, line, "\n")

	narrow := runview.Progress(running(), t0.Add(20*time.Second), 80)
	require.Less(t, len([]rune(narrow)), 80, "fits 80 columns: %q", narrow)
	require.Contains(t, narrow, "ETA 30.0s")
}

func TestProgressBeforeTheChunkCountIsKnown(t *testing.T) {
	t.Parallel()
	r := &intakev1.Run{State: intakev1.RunState_RUN_STATE_FETCHING, StartTime: timestamppb.New(t0)}
	line := runview.Progress(r, t0.Add(time.Second), 80)
	require.Contains(t, line, "] 0/?  0 rows")
	require.Contains(t, line, "ETA --")
}

func TestSummaryAndOutcomeOfAPartialRun(t *testing.T) {
	t.Parallel()
	r := running()
	r.State = intakev1.RunState_RUN_STATE_PARTIALLY_SUCCEEDED
	r.EndTime = timestamppb.New(t0.Add(90 * time.Second))
	r.Counters.RowsCreated, r.Counters.RowsUpdated = 39990, 7
	r.Message = "3 rows rejected"
	r.RowErrors = []*intakev1.RowError{
		{Row: 7, Column: "created_date", Reason: `"31/02/2021" is not a date in MM/dd/yyyy`},
		{Row: 9, Reason: "the row has 3 fields, the header 10"},
	}
	var b bytes.Buffer
	runview.Summary(&b, r, 1, t0.Add(time.Hour))
	out := b.String()
	require.Contains(t, out, "State:    partially succeeded")
	require.Contains(t, out, "took 1m30s")
	require.Contains(t, out, "Rows:     40000 read, 3 rejected, 39990 created, 7 updated, 0 unchanged, 0 ignored")
	require.Contains(t, out, "Message:  3 rows rejected")
	require.Contains(t, out, `row 7, column "created_date": "31/02/2021" is not a date`)
	require.NotContains(t, out, "row 9", "only the first maxErrors")
	require.Contains(t, out, "Stages:\n  fetch  1.0s\n  map    -, 8/10 chunks\n  load   -, 4/10 chunks\n")

	require.Equal(t, `jobs/demo/runs/r1 partially succeeded (schedule) in 1m30s: rows 40000 read, 3 rejected, 39990 created, 7 updated, 0 unchanged, 0 ignored — 3 rows rejected`,
		runview.Outcome(r, t0.Add(time.Hour)))
	require.True(t, runview.Succeeded(r.GetState()))
	require.False(t, runview.Succeeded(intakev1.RunState_RUN_STATE_SKIPPED), "skipped counts as a failure")
	require.True(t, runview.Final(intakev1.RunState_RUN_STATE_CANCELLED))
	require.False(t, runview.Final(intakev1.RunState_RUN_STATE_LOADING))
}

func TestDurationAndBytes(t *testing.T) {
	t.Parallel()
	require.Equal(t, "850ms", runview.Duration(850*time.Millisecond))
	require.Equal(t, "12.3s", runview.Duration(12300*time.Millisecond))
	require.Equal(t, "4m05s", runview.Duration(4*time.Minute+5*time.Second))
	require.Equal(t, "1h02m", runview.Duration(time.Hour+2*time.Minute))
	require.Equal(t, "512 B", runview.Bytes(512))
	require.Equal(t, "1.5 KiB", runview.Bytes(1536))
	require.Equal(t, "3.0 MiB", runview.Bytes(3<<20))
}

func TestSummaryOfADryRunAndOfHeaderDrift(t *testing.T) {
	t.Parallel()
	dry := &intakev1.Run{
		Name: "jobs/demo/runs/d1", State: intakev1.RunState_RUN_STATE_SUCCEEDED, Trigger: intakev1.Trigger_TRIGGER_RUN_NOW,
		DryRun: true, StartTime: timestamppb.New(t0), EndTime: timestamppb.New(t0.Add(2 * time.Second)),
		Counters:   &intakev1.RunCounters{RowsRead: 23, RowsCreated: 3, RowsUpdated: 2, RowsUnchanged: 18},
		NewColumns: []string{"Segment"},
	}
	var b bytes.Buffer
	runview.Summary(&b, dry, 10, t0)
	require.Contains(t, b.String(), "Dry run:  yes, nothing was changed; the rows say what a run would do\n")
	require.Contains(t, b.String(), "Rows:     23 read, 0 rejected, 3 created, 2 updated, 18 unchanged, 0 ignored\n")
	require.Contains(t, b.String(), "New:      columns new in the file, not mapped: \"Segment\"\n")
	require.NotContains(t, b.String(), "Missing:")
	require.Equal(t, "jobs/demo/runs/d1 succeeded (run now, dry run) in 2.0s: rows it would have 23 read, 0 rejected, 3 created, 2 updated, 18 unchanged, 0 ignored",
		runview.Outcome(dry, t0))

	drift := &intakev1.Run{
		Name: "jobs/demo/runs/d2", State: intakev1.RunState_RUN_STATE_FAILED, Trigger: intakev1.Trigger_TRIGGER_SCHEDULE,
		Message:        `mapped columns missing from the file: "Acct", "Region"`,
		MissingColumns: []string{"Acct", "Region"},
	}
	b.Reset()
	runview.Summary(&b, drift, 10, t0)
	require.Contains(t, b.String(), "Missing:  mapped columns not in the file: \"Acct\", \"Region\"\n")
	require.NotContains(t, b.String(), "Dry run")
}

// The details of a run show its completion webhook's deliveries, each
// attempt with its time, HTTP status and outcome.
func TestSummaryShowsWebhookDeliveries(t *testing.T) {
	t.Parallel()
	r := running()
	r.State = intakev1.RunState_RUN_STATE_SUCCEEDED
	r.EndTime = timestamppb.New(t0.Add(time.Minute))
	var b bytes.Buffer
	runview.Summary(&b, r, 10, t0)
	require.NotContains(t, b.String(), "Webhook", "no deliveries, no section")

	r.WebhookDeliveries = []*intakev1.WebhookDelivery{
		{Attempt: 1, Time: timestamppb.New(t0.Add(61 * time.Second)), Error: "dial tcp 127.0.0.1:9: connection refused"},
		{Attempt: 2, Time: timestamppb.New(t0.Add(63 * time.Second)), StatusCode: 503, Error: "HTTP 503:\nService Unavailable"},
		{Attempt: 3, Time: timestamppb.New(t0.Add(67 * time.Second)), StatusCode: 204, Delivered: true},
	}
	b.Reset()
	runview.Summary(&b, r, 10, t0)
	at := func(d time.Duration) string { return runview.Time(t0.Add(d)) }
	require.Contains(t, b.String(), "Webhook deliveries:\n"+
		"  attempt 1  "+at(61*time.Second)+"  no response  failed: dial tcp 127.0.0.1:9: connection refused\n"+
		"  attempt 2  "+at(63*time.Second)+"  HTTP 503     failed: HTTP 503: Service Unavailable\n"+
		"  attempt 3  "+at(67*time.Second)+"  HTTP 204     delivered\n")
}
