package store

import (
	"context"
	"errors"
	"fmt"

	intakev1 "github.com/intakehq/intake/proto/gen/intake/v1"
)

// CancelMessage is the message of a run cancelled through CancelRun.
const CancelMessage = "cancelled by request"

// ErrCommitting: the run cannot be cancelled, its commit has begun (the
// loader was told CONTINUE at the commit gate), so it lands whole.
var ErrCommitting = errors.New("run is committing")

// EndedError: the run cannot be cancelled, it is in a final state already.
type EndedError struct {
	State intakev1.RunState
}

func (e *EndedError) Error() string { return "run already ended: " + stateName(e.State) }

// stateName is the lowercase name of a run state: "partially succeeded".
func stateName(s intakev1.RunState) string {
	n, ok := intakev1.RunState_name[int32(s)]
	if !ok {
		return fmt.Sprintf("state %d", int32(s))
	}
	out := []byte(n[len("RUN_STATE_"):])
	for i, c := range out {
		switch {
		case c == '_':
			out[i] = ' '
		case c >= 'A' && c <= 'Z':
			out[i] = c + 'a' - 'A'
		}
	}
	return string(out)
}

// isCommitting reports whether the run was told CONTINUE at the commit gate.
func isCommitting(ctx context.Context, q querier, runID string) (bool, error) {
	var c bool
	if err := q.QueryRow(ctx, `SELECT committing FROM intake.runs WHERE id = $1`, runID).Scan(&c); err != nil {
		return false, fmt.Errorf("read the commit flag of run %s: %w", runID, err)
	}
	return c, nil
}

// markCommitting records that the run was told CONTINUE at the commit gate.
func markCommitting(ctx context.Context, q querier, runID string) error {
	if _, err := q.Exec(ctx, `UPDATE intake.runs SET committing = true WHERE id = $1`, runID); err != nil {
		return fmt.Errorf("mark run %s committing: %w", runID, err)
	}
	return nil
}

// CancelRun moves a run that is QUEUED or running to CANCELLED, with
// CancelMessage. The workers get ABANDON on their next report, and the
// loader's commit gate refuses it, so nothing of it lands. It holds the
// run's row lock, as a report does, so it takes turns with the commit gate:
// a run told CONTINUE there is refused with ErrCommitting, a run in a final
// state with an *EndedError; ErrNotFound for an unknown run.
func (s *Store) CancelRun(ctx context.Context, jobID, runID string) (*intakev1.Run, error) {
	name := RunName(jobID, runID)
	tx, err := s.pool.Begin(ctx)
	if err != nil {
		return nil, fmt.Errorf("cancel run %s: %w", name, err)
	}
	defer tx.Rollback(ctx) //nolint:errcheck // after Commit it is a no-op
	r, err := readRun(ctx, tx, jobID, runID, "FOR UPDATE", false)
	if err != nil {
		return nil, err
	}
	if IsFinal(r.state) {
		return nil, &EndedError{State: r.state}
	}
	committing, err := isCommitting(ctx, tx, runID)
	if err != nil {
		return nil, err
	}
	if committing {
		return nil, ErrCommitting
	}
	now := s.now()
	r.state, r.message, r.end = intakev1.RunState_RUN_STATE_CANCELLED, CancelMessage, &now
	for _, st := range r.stages {
		if st.StartTime != nil && st.EndTime == nil {
			st.EndTime = ts(&now)
		}
	}
	if err := saveRun(ctx, tx, r, now); err != nil {
		return nil, err
	}
	if r.rowErrors, err = readRowErrors(ctx, tx, runID); err != nil {
		return nil, err
	}
	if err := tx.Commit(ctx); err != nil {
		return nil, fmt.Errorf("cancel run %s: %w", name, err)
	}
	r.version++
	return r.proto(), nil
}
