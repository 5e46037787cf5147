package store

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
	"google.golang.org/protobuf/encoding/protojson"

	intakev1 "github.com/intakehq/intake/proto/gen/intake/v1"
)

// AutoDisabled says that the failure policy disabled a job.
type AutoDisabled struct {
	JobID string
	// Run is the run whose end disabled the job ("jobs/{job}/runs/{run}").
	Run string
	// Failures is the job's consecutive failed runs, Run included.
	Failures int32
	// Reason is the job's disabled_reason.
	Reason string
}

// OnAutoDisable sets fn to be called, after the transaction commits,
// whenever the failure policy disables a job. Set it before the Store is
// used.
func (s *Store) OnAutoDisable(fn func(ctx context.Context, d AutoDisabled)) { s.onAutoDisable = fn }

// autoDisabled tells the OnAutoDisable hook about d, when there is one.
func (s *Store) autoDisabled(ctx context.Context, d *AutoDisabled) {
	if d != nil && s.onAutoDisable != nil {
		s.onAutoDisable(ctx, *d)
	}
}

// countRunOutcome applies the failure policy to the job of run r, which has
// just reached its final state, in the transaction q that ends it.
// SUCCEEDED and PARTIALLY_SUCCEEDED reset the job's consecutive_failures;
// FAILED adds one; SKIPPED (the file is unchanged: nothing went wrong with
// the import, the export simply did not move), CANCELLED and dry runs
// leave it. When the
// job's failure_policy.disable_after_failures is reached, an enabled job is
// disabled, saying why. The job is the job as it is now (a deleted job is
// left alone); it is locked after the run, so it returns nil, nil for a job
// that is gone.
func (s *Store) countRunOutcome(ctx context.Context, q querier, r *runRow) (*AutoDisabled, error) {
	if r.dryRun {
		return nil, nil
	}
	switch r.state {
	case intakev1.RunState_RUN_STATE_SUCCEEDED, intakev1.RunState_RUN_STATE_PARTIALLY_SUCCEEDED:
		if _, err := q.Exec(ctx, `UPDATE intake.jobs SET consecutive_failures = 0
			WHERE id = $1 AND consecutive_failures <> 0`, r.jobID); err != nil {
			return nil, fmt.Errorf("reset the failure count of job %s: %w", r.jobID, err)
		}
		return nil, nil
	case intakev1.RunState_RUN_STATE_FAILED:
	default:
		return nil, nil
	}
	var (
		failures int32
		enabled  bool
		spec     []byte
	)
	err := q.QueryRow(ctx, `UPDATE intake.jobs SET consecutive_failures = consecutive_failures + 1
		WHERE id = $1 RETURNING consecutive_failures, enabled, spec`, r.jobID).Scan(&failures, &enabled, &spec)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("count the failed run %s: %w", RunName(r.jobID, r.id), err)
	}
	job := &intakev1.Job{}
	if err := (protojson.UnmarshalOptions{DiscardUnknown: true}).Unmarshal(spec, job); err != nil {
		return nil, fmt.Errorf("decode job %s: %w", r.jobID, err)
	}
	limit := job.GetFailurePolicy().GetDisableAfterFailures()
	if !enabled || limit <= 0 || failures < limit {
		return nil, nil
	}
	d := &AutoDisabled{
		JobID:    r.jobID,
		Run:      RunName(r.jobID, r.id),
		Failures: failures,
		Reason:   fmt.Sprintf("disabled after %d consecutive failed runs (last: %s: %s)", failures, RunName(r.jobID, r.id), r.message),
	}
	// The spec holds the enabled flag too (false is left out of protojson).
	if _, err := q.Exec(ctx, `UPDATE intake.jobs SET enabled = false, spec = spec - 'enabled', disabled_reason = $2,
			etag = $3, update_time = $4 WHERE id = $1`, r.jobID, d.Reason, newEtag(), s.now()); err != nil {
		return nil, fmt.Errorf("disable job %s: %w", r.jobID, err)
	}
	return d, nil
}
