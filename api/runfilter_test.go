package api_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/types/known/timestamppb"

	intakev1 "github.com/intakehq/intake/proto/gen/intake/v1"
)

// runNames are the names of runs, in order.
func runNames(runs []*intakev1.Run) []string {
	out := make([]string, len(runs))
	for i, r := range runs {
		out[i] = r.GetName()
	}
	return out
}

// History filters: state, trigger and creation time, for one job or every
// job, page by page; a page token only fits the request it came from.
func TestListRunsFilters(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := testCtx(t)
	b.createJob(t, "a")
	b.createJob(t, "bb")

	a1 := b.runNow(t, "jobs/a").GetName()
	b.completeRun(t, a1, shaA, []int64{2}, []int64{0}) // succeeded
	a2 := b.runNow(t, "jobs/a").GetName()
	b.report(t, &event{Run: a2, Stage: fetch, Kind: failed, Message: "404"}) // failed
	tick, err := b.stage.CreateScheduledRun(ctx, &intakev1.CreateScheduledRunRequest{Job: "jobs/a",
		ScheduledTime: timestamppb.New(time.Date(2026, 1, 5, 6, 30, 0, 0, time.UTC))})
	require.NoError(t, err)
	a3 := tick.GetRun().GetName() // queued, schedule
	b1 := b.runNow(t, "jobs/bb").GetName()
	b.completeRun(t, b1, shaA, []int64{2}, []int64{0}) // succeeded
	b2 := b.runNow(t, "jobs/bb").GetName()
	b.completeRun(t, b2, shaA, []int64{2}, []int64{0}) // skipped
	a4 := b.runNow(t, "jobs/a").GetName()
	_, err = b.runs.CancelRun(ctx, &intakev1.CancelRunRequest{Name: a4}) // cancelled
	require.NoError(t, err)

	list := func(req *intakev1.ListRunsRequest) []string {
		t.Helper()
		resp, err := b.runs.ListRuns(ctx, req)
		require.NoError(t, err)
		return runNames(resp.GetRuns())
	}
	const (
		succeeded = intakev1.RunState_RUN_STATE_SUCCEEDED
		failedS   = intakev1.RunState_RUN_STATE_FAILED
		skipped   = intakev1.RunState_RUN_STATE_SKIPPED
		cancelled = intakev1.RunState_RUN_STATE_CANCELLED
		queued    = intakev1.RunState_RUN_STATE_QUEUED
	)
	require.Equal(t, []string{a4, b2, b1, a3, a2, a1}, list(&intakev1.ListRunsRequest{Parent: "jobs/-"}))
	require.Equal(t, []string{b2, a2}, list(&intakev1.ListRunsRequest{Parent: "jobs/-",
		States: []intakev1.RunState{failedS, skipped}}))
	require.Equal(t, []string{a1}, list(&intakev1.ListRunsRequest{Parent: "jobs/a", States: []intakev1.RunState{succeeded}}))
	require.Equal(t, []string{a3}, list(&intakev1.ListRunsRequest{Parent: "jobs/-",
		Triggers: []intakev1.Trigger{intakev1.Trigger_TRIGGER_SCHEDULE}}))
	require.Equal(t, []string{a4, a2, a1}, list(&intakev1.ListRunsRequest{Parent: "jobs/a",
		Triggers: []intakev1.Trigger{intakev1.Trigger_TRIGGER_RUN_NOW}}))
	require.Empty(t, list(&intakev1.ListRunsRequest{Parent: "jobs/a",
		Triggers: []intakev1.Trigger{intakev1.Trigger_TRIGGER_SCHEDULE}, States: []intakev1.RunState{succeeded}}),
		"no match is an empty page, not an error")

	// Time range: from is inclusive, to exclusive.
	created := func(name string) *timestamppb.Timestamp {
		r, err := b.runs.GetRun(ctx, &intakev1.GetRunRequest{Name: name})
		require.NoError(t, err)
		return r.GetCreateTime()
	}
	require.Equal(t, []string{a4, b2, b1, a3}, list(&intakev1.ListRunsRequest{Parent: "jobs/-", CreateTimeFrom: created(a3)}))
	require.Equal(t, []string{b1, a3}, list(&intakev1.ListRunsRequest{Parent: "jobs/-",
		CreateTimeFrom: created(a3), CreateTimeTo: created(b2)}))
	require.Equal(t, []string{a2, a1}, list(&intakev1.ListRunsRequest{Parent: "jobs/a", CreateTimeTo: created(a3)}))
	require.Equal(t, []string{a3}, list(&intakev1.ListRunsRequest{Parent: "jobs/a",
		States: []intakev1.RunState{queued, cancelled}, CreateTimeTo: created(a4)}))

	// Pages of a filtered list are the filtered list.
	filtered := &intakev1.ListRunsRequest{Parent: "jobs/-", PageSize: 2,
		States: []intakev1.RunState{succeeded, skipped, cancelled, failedS}}
	var (
		pages [][]string
		all   []string
		token string
	)
	for {
		filtered.PageToken = token
		resp, err := b.runs.ListRuns(ctx, filtered)
		require.NoError(t, err)
		pages = append(pages, runNames(resp.GetRuns()))
		all = append(all, runNames(resp.GetRuns())...)
		if token = resp.GetNextPageToken(); token == "" {
			break
		}
		if len(pages) == 1 {
			// The same filters in another order fit the token.
			resp, err := b.runs.ListRuns(ctx, &intakev1.ListRunsRequest{Parent: "jobs/-", PageSize: 2, PageToken: token,
				States: []intakev1.RunState{failedS, cancelled, skipped, succeeded, failedS}})
			require.NoError(t, err)
			require.Equal(t, []string{b1, a2}, runNames(resp.GetRuns()))
			// Other filters or another parent do not.
			for _, other := range []*intakev1.ListRunsRequest{
				{Parent: "jobs/-", PageToken: token, States: []intakev1.RunState{succeeded}},
				{Parent: "jobs/-", PageToken: token},
				{Parent: "jobs/-", PageToken: token, States: filtered.States, Triggers: []intakev1.Trigger{intakev1.Trigger_TRIGGER_RUN_NOW}},
				{Parent: "jobs/-", PageToken: token, States: filtered.States, CreateTimeFrom: created(a1)},
				{Parent: "jobs/a", PageToken: token, States: filtered.States},
			} {
				_, err := b.runs.ListRuns(ctx, other)
				st := requireCode(t, err, codes.InvalidArgument, "page_token does not match the request")
				require.Contains(t, fieldViolations(t, st), "page_token")
			}
		}
	}
	require.Equal(t, [][]string{{a4, b2}, {b1, a2}, {a1}}, pages)
	require.Equal(t, []string{a4, b2, b1, a2, a1}, all)

	// An unfiltered token does not fit a filtered request either.
	resp, err := b.runs.ListRuns(ctx, &intakev1.ListRunsRequest{Parent: "jobs/-", PageSize: 1})
	require.NoError(t, err)
	_, err = b.runs.ListRuns(ctx, &intakev1.ListRunsRequest{Parent: "jobs/-", PageToken: resp.GetNextPageToken(),
		States: []intakev1.RunState{succeeded}})
	requireCode(t, err, codes.InvalidArgument, "page_token does not match the request")
	_, err = b.runs.ListRuns(ctx, &intakev1.ListRunsRequest{Parent: "jobs/-", PageToken: "garbage"})
	requireCode(t, err, codes.InvalidArgument, "not a page token of this list")

	// Bad filters name their field.
	_, err = b.runs.ListRuns(ctx, &intakev1.ListRunsRequest{Parent: "jobs/-",
		States: []intakev1.RunState{succeeded, intakev1.RunState_RUN_STATE_UNSPECIFIED, 42}})
	st := requireCode(t, err, codes.InvalidArgument)
	vs := fieldViolations(t, st)
	require.Contains(t, vs["states[1]"], "0 is not a run state")
	require.Contains(t, vs["states[2]"], "42 is not a run state")
	_, err = b.runs.ListRuns(ctx, &intakev1.ListRunsRequest{Parent: "jobs/-", Triggers: []intakev1.Trigger{9}})
	st = requireCode(t, err, codes.InvalidArgument)
	require.Contains(t, fieldViolations(t, st)["triggers[0]"], "9 is not a trigger")
	_, err = b.runs.ListRuns(ctx, &intakev1.ListRunsRequest{Parent: "jobs/-", CreateTimeFrom: created(b2), CreateTimeTo: created(a1)})
	st = requireCode(t, err, codes.InvalidArgument)
	require.Contains(t, fieldViolations(t, st)["create_time_to"], "is before create_time_from")
	_, err = b.runs.ListRuns(ctx, &intakev1.ListRunsRequest{Parent: "jobs/-", CreateTimeFrom: &timestamppb.Timestamp{Nanos: -1}})
	st = requireCode(t, err, codes.InvalidArgument)
	require.Contains(t, fieldViolations(t, st), "create_time_from")
	_, err = b.runs.ListRuns(ctx, &intakev1.ListRunsRequest{Parent: "jobs/nope", States: []intakev1.RunState{succeeded}})
	requireCode(t, err, codes.NotFound, "job jobs/nope not found")
}
