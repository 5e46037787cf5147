package api_test

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/fieldmaskpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	intakev1 "github.com/intakehq/intake/proto/gen/intake/v1"
)

// DuplicateJob saves a disabled "Copy of …" under a new id, with every
// setting, the original's validation (same mapping) and no run history.
func TestDuplicateJob(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := testCtx(t)
	orig := b.accountsJob("Accounts")
	orig.ErrorBudget = &intakev1.ErrorBudget{Limit: &intakev1.ErrorBudget_MaxRejectedRows{MaxRejectedRows: 5}}
	orig.FailurePolicy = &intakev1.FailurePolicy{DisableAfterFailures: 2}
	job, err := b.create(t, "accounts", orig)
	require.NoError(t, err)
	b.completeRun(t, b.runNow(t, job.GetName()).GetName(), shaA, []int64{2}, []int64{0})

	cp, err := b.jobs.DuplicateJob(ctx, &intakev1.DuplicateJobRequest{Name: job.GetName()})
	require.NoError(t, err)
	require.Regexp(t, `^jobs/[0-9a-f]{12}$`, cp.GetName())
	require.Equal(t, "Copy of Accounts", cp.GetDisplayName())
	require.False(t, cp.GetEnabled(), "a copy is saved disabled")
	require.Nil(t, cp.GetNextRunTime())
	require.Empty(t, cp.GetLastRun(), "no run history")
	require.True(t, cp.GetMappingValidated(), "the same mapping: validated as the original's")
	require.NotEqual(t, job.GetEtag(), cp.GetEtag())
	for _, same := range []struct{ a, b proto.Message }{
		{job.GetMapping(), cp.GetMapping()}, {job.GetConnection(), cp.GetConnection()},
		{job.GetSchedule(), cp.GetSchedule()}, {job.GetErrorBudget(), cp.GetErrorBudget()},
		{job.GetFailurePolicy(), cp.GetFailurePolicy()},
	} {
		require.True(t, proto.Equal(same.a, same.b), "copied: %v", same.a)
	}
	require.Equal(t, job.GetDescription(), cp.GetDescription())
	runs, err := b.runs.ListRuns(ctx, &intakev1.ListRunsRequest{Parent: cp.GetName()})
	require.NoError(t, err)
	require.Empty(t, runs.GetRuns())
	got, err := b.jobs.GetJob(ctx, &intakev1.GetJobRequest{Name: cp.GetName()})
	require.NoError(t, err)
	require.True(t, proto.Equal(cp, got), "stored as returned")
	// The original is untouched.
	again, err := b.jobs.GetJob(ctx, &intakev1.GetJobRequest{Name: job.GetName()})
	require.NoError(t, err)
	require.Equal(t, job.GetEtag(), again.GetEtag())
	require.True(t, again.GetEnabled())

	// The copy's validation carries over: it can be enabled without a token.
	on, err := b.jobs.SetJobEnabled(ctx, &intakev1.SetJobEnabledRequest{Name: cp.GetName(), Enabled: true})
	require.NoError(t, err)
	require.True(t, on.GetEnabled())

	named, err := b.jobs.DuplicateJob(ctx, &intakev1.DuplicateJobRequest{Name: "jobs/accounts", NewJobId: "accounts-eu"})
	require.NoError(t, err)
	require.Equal(t, "jobs/accounts-eu", named.GetName())
	_, err = b.jobs.DuplicateJob(ctx, &intakev1.DuplicateJobRequest{Name: "jobs/accounts", NewJobId: "accounts-eu"})
	requireCode(t, err, codes.AlreadyExists, "job jobs/accounts-eu already exists")
	_, err = b.jobs.DuplicateJob(ctx, &intakev1.DuplicateJobRequest{Name: "jobs/accounts", NewJobId: "Accounts_EU"})
	st := requireCode(t, err, codes.InvalidArgument)
	require.Contains(t, fieldViolations(t, st)["new_job_id"], `"Accounts_EU" is not a job id`)
	_, err = b.jobs.DuplicateJob(ctx, &intakev1.DuplicateJobRequest{Name: "jobs/nope"})
	requireCode(t, err, codes.NotFound, "job jobs/nope not found")
	_, err = b.jobs.DuplicateJob(ctx, &intakev1.DuplicateJobRequest{Name: "accounts"})
	requireCode(t, err, codes.InvalidArgument, "name")

	// A copy of a copy of a long name still fits the limit of a name.
	long := b.accountsJob(strings.Repeat("x", 200))
	long.Enabled = false
	_, err = b.jobs.CreateJob(ctx, &intakev1.CreateJobRequest{JobId: "long", Job: long})
	require.NoError(t, err)
	lc, err := b.jobs.DuplicateJob(ctx, &intakev1.DuplicateJobRequest{Name: "jobs/long"})
	require.NoError(t, err)
	require.Equal(t, "Copy of "+strings.Repeat("x", 192), lc.GetDisplayName())
	require.False(t, lc.GetMappingValidated(), "the original's mapping never passed")
}

// SetJobEnabled: enabling needs a validated mapping, as UpdateJob does;
// disabling keeps the job's history.
func TestSetJobEnabled(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := testCtx(t)
	off := b.accountsJob("Accounts")
	off.Enabled = false
	job, err := b.jobs.CreateJob(ctx, &intakev1.CreateJobRequest{JobId: "accounts", Job: off})
	require.NoError(t, err)
	require.False(t, job.GetMappingValidated())
	run := b.runNow(t, job.GetName()).GetName()

	_, err = b.jobs.SetJobEnabled(ctx, &intakev1.SetJobEnabledRequest{Name: job.GetName(), Enabled: true})
	requireCode(t, err, codes.FailedPrecondition, "the mapping has not passed validation")
	_, err = b.jobs.SetJobEnabled(ctx, &intakev1.SetJobEnabledRequest{Name: job.GetName(), Enabled: true, ValidationToken: "v1.nope"})
	requireCode(t, err, codes.InvalidArgument, "validation_token")

	v, err := b.jobs.ValidateMapping(ctx, &intakev1.ValidateMappingRequest{Name: job.GetName()})
	require.NoError(t, err)
	require.True(t, v.GetValid(), "%v", v.GetFindings())
	on, err := b.jobs.SetJobEnabled(ctx, &intakev1.SetJobEnabledRequest{Name: job.GetName(), Enabled: true, ValidationToken: v.GetValidationToken()})
	require.NoError(t, err)
	require.True(t, on.GetEnabled())
	require.True(t, on.GetMappingValidated())
	require.NotNil(t, on.GetNextRunTime(), "an enabled job's schedule fires")
	require.NotEqual(t, job.GetEtag(), on.GetEtag())

	disabled, err := b.jobs.SetJobEnabled(ctx, &intakev1.SetJobEnabledRequest{Name: job.GetName()})
	require.NoError(t, err)
	require.False(t, disabled.GetEnabled())
	require.Nil(t, disabled.GetNextRunTime())
	require.Equal(t, run, disabled.GetLastRun(), "history stays")
	require.True(t, disabled.GetMappingValidated())
	_, err = b.stage.CreateScheduledRun(ctx, &intakev1.CreateScheduledRunRequest{Job: job.GetName(), ScheduledTime: timestamppb.Now()})
	requireCode(t, err, codes.FailedPrecondition, "is disabled")
	// Validated once: enabled again without a token.
	on, err = b.jobs.SetJobEnabled(ctx, &intakev1.SetJobEnabledRequest{Name: job.GetName(), Enabled: true})
	require.NoError(t, err)
	require.True(t, on.GetEnabled())

	// Enabling checks the job as an update does: an enabled job needs a schedule.
	noSchedule := b.accountsJob("No schedule")
	noSchedule.Enabled, noSchedule.Schedule = false, nil
	_, err = b.jobs.CreateJob(ctx, &intakev1.CreateJobRequest{JobId: "manual", Job: noSchedule})
	require.NoError(t, err)
	_, err = b.jobs.SetJobEnabled(ctx, &intakev1.SetJobEnabledRequest{Name: "jobs/manual", Enabled: true})
	st := requireCode(t, err, codes.InvalidArgument)
	require.Contains(t, fieldViolations(t, st)["job.schedule"], "required when the job is enabled")

	_, err = b.jobs.SetJobEnabled(ctx, &intakev1.SetJobEnabledRequest{Name: "jobs/nope", Enabled: false})
	requireCode(t, err, codes.NotFound, "job jobs/nope not found")
}

// The failure policy: failed runs in a row count (skipped, dry and
// cancelled runs do not, a success resets the count); at the policy's
// limit the job is disabled, saying why, until it is enabled again.
func TestFailurePolicyDisablesJob(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := testCtx(t)
	spec := b.accountsJob("Flaky")
	spec.FailurePolicy = &intakev1.FailurePolicy{DisableAfterFailures: -1}
	_, err := b.create(t, "flaky", spec)
	st := requireCode(t, err, codes.InvalidArgument)
	require.Contains(t, fieldViolations(t, st)["job.failure_policy.disable_after_failures"], "-1 is negative")
	spec.FailurePolicy = nil
	_, err = b.create(t, "flaky", spec)
	require.NoError(t, err)
	_, err = b.jobs.UpdateJob(ctx, &intakev1.UpdateJobRequest{
		Job:        &intakev1.Job{Name: "jobs/flaky", FailurePolicy: &intakev1.FailurePolicy{DisableAfterFailures: 3}},
		UpdateMask: &fieldmaskpb.FieldMask{Paths: []string{"failure_policy"}}})
	require.NoError(t, err)

	failures := func() int32 {
		t.Helper()
		j, err := b.jobs.GetJob(ctx, &intakev1.GetJobRequest{Name: "jobs/flaky"})
		require.NoError(t, err)
		return j.GetConsecutiveFailures()
	}
	fail := func(dryRun bool) string {
		t.Helper()
		run, err := b.jobs.RunJob(ctx, &intakev1.RunJobRequest{Name: "jobs/flaky", DryRun: dryRun})
		require.NoError(t, err)
		r := b.report(t, &event{Run: run.GetName(), Stage: fetch, Kind: failed, Message: "connection refused"})
		require.Equal(t, intakev1.RunState_RUN_STATE_FAILED, r.GetRun().GetState())
		return run.GetName()
	}

	fail(false)
	require.EqualValues(t, 1, failures())
	b.completeRun(t, b.runNow(t, "jobs/flaky").GetName(), shaA, []int64{2}, []int64{0})
	require.EqualValues(t, 0, failures(), "a success resets the count")
	fail(false)
	r := b.completeRun(t, b.runNow(t, "jobs/flaky").GetName(), shaA, []int64{2}, []int64{0})
	require.Equal(t, intakev1.RunState_RUN_STATE_SKIPPED, r.GetRun().GetState())
	require.EqualValues(t, 1, failures(), "a skipped run (unchanged file) does not count")
	fail(true)
	require.EqualValues(t, 1, failures(), "a dry run does not count")
	cancelled := b.runNow(t, "jobs/flaky").GetName()
	_, err = b.runs.CancelRun(ctx, &intakev1.CancelRunRequest{Name: cancelled})
	require.NoError(t, err)
	require.EqualValues(t, 1, failures(), "a cancelled run does not count")
	fail(false)
	require.EqualValues(t, 2, failures())
	before, err := b.jobs.GetJob(ctx, &intakev1.GetJobRequest{Name: "jobs/flaky"})
	require.NoError(t, err)
	require.True(t, before.GetEnabled())
	require.Zero(t, metricValue(t, b.reg, "intake_api_jobs_auto_disabled_total", nil))

	last := fail(false)
	job, err := b.jobs.GetJob(ctx, &intakev1.GetJobRequest{Name: "jobs/flaky"})
	require.NoError(t, err)
	require.False(t, job.GetEnabled(), "disabled after 3 failed runs in a row")
	require.Equal(t, "disabled after 3 consecutive failed runs (last: "+last+": fetch: connection refused)", job.GetDisabledReason())
	require.EqualValues(t, 3, job.GetConsecutiveFailures())
	require.Nil(t, job.GetNextRunTime())
	require.NotEqual(t, before.GetEtag(), job.GetEtag(), "the job changed")
	require.Equal(t, 1.0, metricValue(t, b.reg, "intake_api_jobs_auto_disabled_total", nil))
	_, err = b.stage.CreateScheduledRun(ctx, &intakev1.CreateScheduledRunRequest{Job: "jobs/flaky", ScheduledTime: timestamppb.Now()})
	requireCode(t, err, codes.FailedPrecondition, "is disabled")

	// Run now still works on a disabled job; its failures go on counting,
	// but the job is disabled once.
	fail(false)
	job, err = b.jobs.GetJob(ctx, &intakev1.GetJobRequest{Name: "jobs/flaky"})
	require.NoError(t, err)
	require.EqualValues(t, 4, job.GetConsecutiveFailures())
	require.Contains(t, job.GetDisabledReason(), "(last: "+last+":")
	require.Equal(t, 1.0, metricValue(t, b.reg, "intake_api_jobs_auto_disabled_total", nil))

	// Enabling clears the record; the policy counts afresh.
	on, err := b.jobs.SetJobEnabled(ctx, &intakev1.SetJobEnabledRequest{Name: "jobs/flaky", Enabled: true})
	require.NoError(t, err)
	require.True(t, on.GetEnabled())
	require.Empty(t, on.GetDisabledReason())
	require.Zero(t, on.GetConsecutiveFailures())
	require.NotNil(t, on.GetNextRunTime())
	fail(false)
	fail(false)
	require.EqualValues(t, 2, failures())
	job, err = b.jobs.GetJob(ctx, &intakev1.GetJobRequest{Name: "jobs/flaky"})
	require.NoError(t, err)
	require.True(t, job.GetEnabled())

	// Re-enabling through UpdateJob clears it too; without a policy
	// failures are counted, and nothing is disabled.
	_, err = b.jobs.UpdateJob(ctx, &intakev1.UpdateJobRequest{Job: &intakev1.Job{Name: "jobs/flaky"},
		UpdateMask: &fieldmaskpb.FieldMask{Paths: []string{"failure_policy"}}})
	require.NoError(t, err)
	for range 4 {
		fail(false)
	}
	job, err = b.jobs.GetJob(ctx, &intakev1.GetJobRequest{Name: "jobs/flaky"})
	require.NoError(t, err)
	require.True(t, job.GetEnabled())
	require.EqualValues(t, 6, job.GetConsecutiveFailures())
	_, err = b.jobs.SetJobEnabled(ctx, &intakev1.SetJobEnabledRequest{Name: "jobs/flaky", Enabled: false})
	require.NoError(t, err)
	on, err = b.jobs.UpdateJob(ctx, &intakev1.UpdateJobRequest{Job: &intakev1.Job{Name: "jobs/flaky", Enabled: true},
		UpdateMask: &fieldmaskpb.FieldMask{Paths: []string{"enabled"}}})
	require.NoError(t, err)
	require.Zero(t, on.GetConsecutiveFailures())
	// Output-only fields cannot be set.
	_, err = b.jobs.UpdateJob(ctx, &intakev1.UpdateJobRequest{Job: &intakev1.Job{Name: "jobs/flaky"},
		UpdateMask: &fieldmaskpb.FieldMask{Paths: []string{"disabled_reason"}}})
	requireCode(t, err, codes.InvalidArgument, "output only")
}
