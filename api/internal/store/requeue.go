package store

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"google.golang.org/protobuf/encoding/protojson"

	intakev1 "github.com/intakehq/intake/proto/gen/intake/v1"
)

// StuckRun is a run whose run request may never have been published: what
// a new RunRequest for it needs.
type StuckRun struct {
	JobID, RunID string
	// Job is the snapshot of the job the run was created with; nil when it
	// cannot be decoded (then SnapshotErr says why).
	Job         *intakev1.Job
	SnapshotErr error
	Trigger     intakev1.Trigger
	CreateTime  time.Time
	DryRun      bool
	// ReplayOf is the run id a replay re-imports (issue 4: files).
	ReplayOf string
}

// Name is the run's resource name (the Nats-Msg-Id of its run request).
func (r StuckRun) Name() string { return RunName(r.JobID, r.RunID) }

// ClaimStuckRuns returns up to limit runs that are still QUEUED, were
// created before cutoff, that no stage has reported on, and that were not
// claimed since cutoff, oldest first; it marks them claimed (update_time =
// now) in the same statement.
//
// Concurrent callers (API replicas) get disjoint runs: a row locked by
// another claim is skipped (FOR UPDATE SKIP LOCKED), and a row claimed and
// committed by another is re-checked and dropped, since its update_time is
// no longer before cutoff. A claimed run can be claimed again only once
// cutoff moves past its claim.
func (s *Store) ClaimStuckRuns(ctx context.Context, cutoff time.Time, limit int) ([]StuckRun, error) {
	rows, err := s.pool.Query(ctx, `UPDATE intake.runs r SET update_time = $1
		FROM (SELECT id FROM intake.runs
			WHERE state = $2 AND start_time IS NULL AND stages = '[]'::jsonb
				AND create_time < $3 AND update_time < $3
			ORDER BY create_time, id LIMIT $4
			FOR UPDATE SKIP LOCKED) stuck
		WHERE r.id = stuck.id AND r.state = $2
		RETURNING r.id, r.job_id, r.trigger, r.job, r.create_time, r.dry_run, r.replay_of`,
		s.now(), int16(intakev1.RunState_RUN_STATE_QUEUED), cutoff, limit)
	if err != nil {
		return nil, fmt.Errorf("claim stuck queued runs: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (StuckRun, error) {
		var (
			r       StuckRun
			trigger int16
			job     []byte
		)
		if err := row.Scan(&r.RunID, &r.JobID, &trigger, &job, &r.CreateTime, &r.DryRun, &r.ReplayOf); err != nil {
			return r, err
		}
		r.Trigger = intakev1.Trigger(trigger)
		r.Job = &intakev1.Job{}
		if err := (protojson.UnmarshalOptions{DiscardUnknown: true}).Unmarshal(job, r.Job); err != nil {
			r.Job, r.SnapshotErr = nil, fmt.Errorf("decode the job snapshot of run %s: %w", r.Name(), err)
		}
		return r, nil
	})
	if err != nil {
		return nil, fmt.Errorf("claim stuck queued runs: %w", err)
	}
	return out, nil
}
