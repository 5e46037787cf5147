package store

import (
	"context"
	"fmt"

	intakev1 "github.com/intakehq/intake/proto/gen/intake/v1"
)

// RunOptions are how a run is started, beyond its trigger.
type RunOptions struct {
	// DryRun stages and counts without merging.
	DryRun bool
	// Force: the run is not skipped when the file is unchanged since the
	// job's last successful run.
	Force bool
	// ReplayOf is the id of the run of the same job whose archived file a
	// replay re-imports instead of fetching; "" for any other run.
	ReplayOf string
}

// CreateRunWith is CreateRun with options: it creates a QUEUED run of job
// (the snapshot the run keeps) recording force and replay_of with it.
func (s *Store) CreateRunWith(ctx context.Context, job *intakev1.Job, jobID string, trigger intakev1.Trigger, o RunOptions) (*intakev1.Run, error) {
	id := NewRunID()
	tx, err := s.pool.Begin(ctx)
	if err != nil {
		return nil, fmt.Errorf("insert run %s: %w", RunName(jobID, id), err)
	}
	defer tx.Rollback(ctx) //nolint:errcheck // after Commit it is a no-op
	if _, err := insertRun(ctx, tx, id, job, jobID, trigger, nil, s.now(), o.DryRun); err != nil {
		return nil, err
	}
	if o.Force || o.ReplayOf != "" {
		if _, err := tx.Exec(ctx, `UPDATE intake.runs SET force = $2, replay_of = $3 WHERE id = $1`,
			id, o.Force, o.ReplayOf); err != nil {
			return nil, fmt.Errorf("insert run %s: %w", RunName(jobID, id), err)
		}
	}
	if err := tx.Commit(ctx); err != nil {
		return nil, fmt.Errorf("insert run %s: %w", RunName(jobID, id), err)
	}
	return s.GetRun(ctx, jobID, id)
}

// replayName is the resource name of the run a replay re-imports, "" when
// runID is "" (not a replay).
func replayName(jobID, runID string) string {
	if runID == "" {
		return ""
	}
	return RunName(jobID, runID)
}
