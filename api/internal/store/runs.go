package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	intakev1 "github.com/intakehq/intake/proto/gen/intake/v1"
)

// MaxRowErrorsShown is how many row errors a Run carries.
const MaxRowErrorsShown = 100

// MaxRowErrorsKept is how many row errors are kept per run, for the
// rejects download: those with the lowest row numbers. Past it the run
// counts the dropped ones (the download says so in a last line).
const MaxRowErrorsKept = 1_000_000

// IsFinal reports whether a run in state s never changes again.
func IsFinal(s intakev1.RunState) bool {
	switch s {
	case intakev1.RunState_RUN_STATE_SUCCEEDED, intakev1.RunState_RUN_STATE_PARTIALLY_SUCCEEDED,
		intakev1.RunState_RUN_STATE_FAILED, intakev1.RunState_RUN_STATE_SKIPPED, intakev1.RunState_RUN_STATE_CANCELLED:
		return true
	}
	return false
}

// runRow is a row of intake.runs.
type runRow struct {
	id, jobID                string
	state                    intakev1.RunState
	trigger                  intakev1.Trigger
	scheduled, start, end    *time.Time
	created                  time.Time
	sha256, source, message  string
	counters                 *intakev1.RunCounters
	stages                   []*intakev1.StageStatus
	version                  int64
	rowErrors                []*intakev1.RowError
	stagesJSON, countersJSON []byte
	stateValue, triggerValue int16
	dryRun, committed        bool
	newColumns, missing      []string
	// issue 4 (files): force, replay and retention.
	force, sourceExpired bool
	replayOf             string // run id
	// issue 5 (connections): the file's size and modification time as the
	// fetcher reported them (report.go).
	sourceSize   *int64
	sourceModify *time.Time
}

const runColumns = `id, job_id, state, trigger, scheduled_time, create_time, start_time, end_time,
	sha256, source, message, counters, stages, version, dry_run, new_columns, missing_columns, committed,
	force, replay_of, source_expired,
	source_size, source_modify_time` // issue 5 (connections)

func scanRun(row pgx.Row) (*runRow, error) {
	r := &runRow{}
	if err := row.Scan(&r.id, &r.jobID, &r.stateValue, &r.triggerValue, &r.scheduled, &r.created, &r.start, &r.end,
		&r.sha256, &r.source, &r.message, &r.countersJSON, &r.stagesJSON, &r.version,
		&r.dryRun, &r.newColumns, &r.missing, &r.committed,
		&r.force, &r.replayOf, &r.sourceExpired, // issue 4 (files)
		&r.sourceSize, &r.sourceModify); err != nil { // issue 5 (connections)
		return nil, err
	}
	r.state = intakev1.RunState(r.stateValue)
	r.trigger = intakev1.Trigger(r.triggerValue)
	r.counters = &intakev1.RunCounters{}
	unmarshal := protojson.UnmarshalOptions{DiscardUnknown: true}
	if err := unmarshal.Unmarshal(r.countersJSON, r.counters); err != nil {
		return nil, fmt.Errorf("decode counters of run %s: %w", r.id, err)
	}
	var raw []json.RawMessage
	if err := json.Unmarshal(r.stagesJSON, &raw); err != nil {
		return nil, fmt.Errorf("decode stages of run %s: %w", r.id, err)
	}
	for _, m := range raw {
		st := &intakev1.StageStatus{}
		if err := unmarshal.Unmarshal(m, st); err != nil {
			return nil, fmt.Errorf("decode stages of run %s: %w", r.id, err)
		}
		r.stages = append(r.stages, st)
	}
	return r, nil
}

func encodeStages(stages []*intakev1.StageStatus) (string, error) {
	raw := make([]json.RawMessage, 0, len(stages))
	for _, st := range stages {
		b, err := jsonOpts.Marshal(st)
		if err != nil {
			return "", fmt.Errorf("encode stage: %w", err)
		}
		raw = append(raw, b)
	}
	b, err := json.Marshal(raw)
	if err != nil {
		return "", fmt.Errorf("encode stages: %w", err)
	}
	return string(b), nil
}

func ts(t *time.Time) *timestamppb.Timestamp {
	if t == nil {
		return nil
	}
	return timestamppb.New(*t)
}

func (r *runRow) proto() *intakev1.Run {
	return &intakev1.Run{
		Name:           RunName(r.jobID, r.id),
		State:          r.state,
		Trigger:        r.trigger,
		CreateTime:     timestamppb.New(r.created),
		StartTime:      ts(r.start),
		EndTime:        ts(r.end),
		ScheduledTime:  ts(r.scheduled),
		Counters:       r.counters,
		Stages:         r.stages,
		Sha256:         r.sha256,
		Message:        r.message,
		RowErrors:      r.rowErrors,
		Source:         r.source,
		DryRun:         r.dryRun,
		NewColumns:     r.newColumns,
		MissingColumns: r.missing,
		// issue 4 (files)
		ReplayOf:      replayName(r.jobID, r.replayOf),
		Force:         r.force,
		SourceExpired: r.sourceExpired,
		// issue 5 (connections)
		SourceSize:       derefInt64(r.sourceSize),
		SourceModifyTime: ts(r.sourceModify),
	}
}

// stage returns the status of stage st, adding it when absent.
func (r *runRow) stage(st intakev1.Stage) *intakev1.StageStatus {
	for _, s := range r.stages {
		if s.GetStage() == st {
			return s
		}
	}
	s := &intakev1.StageStatus{Stage: st}
	r.stages = append(r.stages, s)
	return s
}

func readRun(ctx context.Context, q querier, jobID, runID, lock string, withErrors bool) (*runRow, error) {
	r, err := scanRun(q.QueryRow(ctx, `SELECT `+runColumns+` FROM intake.runs
		WHERE id = $1 AND job_id = $2 AND ($3::text = '' OR tenant_id = $3) `+lock, runID, jobID, TenantOf(ctx)))
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("read run %s: %w", RunName(jobID, runID), err)
	}
	if withErrors {
		if r.rowErrors, err = readRowErrors(ctx, q, runID); err != nil {
			return nil, err
		}
	}
	return r, nil
}

func readRowErrors(ctx context.Context, q querier, runID string) ([]*intakev1.RowError, error) {
	rows, err := q.Query(ctx, `SELECT row, col, reason FROM intake.run_row_errors WHERE run_id = $1
		ORDER BY row, col LIMIT $2`, runID, MaxRowErrorsShown)
	if err != nil {
		return nil, fmt.Errorf("read row errors of run %s: %w", runID, err)
	}
	defer rows.Close()
	var out []*intakev1.RowError
	for rows.Next() {
		e := &intakev1.RowError{}
		if err := rows.Scan(&e.Row, &e.Column, &e.Reason); err != nil {
			return nil, fmt.Errorf("read row errors of run %s: %w", runID, err)
		}
		out = append(out, e)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read row errors of run %s: %w", runID, err)
	}
	return out, nil
}

// GetRun returns a run with its first row errors.
func (s *Store) GetRun(ctx context.Context, jobID, runID string) (*intakev1.Run, error) {
	r, err := readRun(ctx, s.pool, jobID, runID, "", true)
	if err != nil {
		return nil, err
	}
	run := r.proto()
	if err := withWebhookDeliveries(ctx, s.pool, r, run); err != nil { // webhook.go
		return nil, err
	}
	return run, nil
}

// runField reads one column of a run (of ctx's tenant, when ctx has one)
// into dest, through q; ErrNotFound when there is no such run. what names
// the column in errors.
func runField(ctx context.Context, q querier, jobID, runID, column, what string, dest any) error {
	err := q.QueryRow(ctx, `SELECT `+column+` FROM intake.runs WHERE id = $1 AND job_id = $2 AND ($3::text = '' OR tenant_id = $3)`,
		runID, jobID, TenantOf(ctx)).Scan(dest)
	if errors.Is(err, pgx.ErrNoRows) {
		return ErrNotFound
	}
	if err != nil {
		return fmt.Errorf("read the %s of run %s: %w", what, RunName(jobID, runID), err)
	}
	return nil
}

// RunVersion returns the change counter of a run, which every change bumps.
func (s *Store) RunVersion(ctx context.Context, jobID, runID string) (int64, error) {
	var v int64
	if err := runField(ctx, s.pool, jobID, runID, "version", "version", &v); err != nil {
		return 0, err
	}
	return v, nil
}

// GetRunVersioned is GetRun plus the run's change counter.
func (s *Store) GetRunVersioned(ctx context.Context, jobID, runID string) (*intakev1.Run, int64, error) {
	r, err := readRun(ctx, s.pool, jobID, runID, "", true)
	if err != nil {
		return nil, 0, err
	}
	run := r.proto()
	if err := withWebhookDeliveries(ctx, s.pool, r, run); err != nil { // webhook.go
		return nil, 0, err
	}
	return run, r.version, nil
}

// NewRunID returns a fresh run id: a UUID, time-ordered.
func NewRunID() string {
	id, err := uuid.NewV7()
	if err != nil {
		return uuid.NewString()
	}
	return id.String()
}

func insertRun(ctx context.Context, q querier, id string, job *intakev1.Job, jobID string, trigger intakev1.Trigger, scheduled *time.Time, now time.Time, dryRun bool) (bool, error) {
	if job.GetLastRun() != "" { // a run keeps the job as configured, not its history
		job = proto.Clone(job).(*intakev1.Job)
		job.LastRun = ""
	}
	snapshot, err := jsonOpts.Marshal(job)
	if err != nil {
		return false, fmt.Errorf("encode job snapshot: %w", err)
	}
	tag, err := q.Exec(ctx, `INSERT INTO intake.runs (id, job_id, state, trigger, job, scheduled_time, create_time, update_time, dry_run)
		VALUES ($1, $2, $3, $4, $5::jsonb, $6, $7, $7, $8)
		ON CONFLICT (job_id, scheduled_time) WHERE scheduled_time IS NOT NULL DO NOTHING`,
		id, jobID, int16(intakev1.RunState_RUN_STATE_QUEUED), int16(trigger), string(snapshot), scheduled, now, dryRun)
	if err != nil {
		return false, fmt.Errorf("insert run %s: %w", RunName(jobID, id), err)
	}
	return tag.RowsAffected() == 1, nil
}

// CreateRun creates a QUEUED run of job (the snapshot the run keeps); a dry
// run when dryRun.
func (s *Store) CreateRun(ctx context.Context, job *intakev1.Job, jobID string, trigger intakev1.Trigger, dryRun bool) (*intakev1.Run, error) {
	id := NewRunID()
	if _, err := insertRun(ctx, s.pool, id, job, jobID, trigger, nil, s.now(), dryRun); err != nil {
		return nil, err
	}
	return s.GetRun(ctx, jobID, id)
}

// CreateScheduledRun creates the run of a schedule tick once: a second call
// for the same (job, tick) returns the first run and created=false. It
// returns the job as it is now; ErrNotFound for an unknown job, ErrDisabled
// for a disabled one that has no run for this tick yet.
func (s *Store) CreateScheduledRun(ctx context.Context, jobID string, tick time.Time) (run *intakev1.Run, job *intakev1.Job, created bool, err error) {
	tick = tick.UTC().Truncate(time.Microsecond)
	job, err = s.GetJob(ctx, jobID)
	if err != nil {
		return nil, nil, false, err
	}
	existing := func() (*intakev1.Run, error) {
		var id string
		err := s.pool.QueryRow(ctx, `SELECT id FROM intake.runs WHERE job_id = $1 AND scheduled_time = $2`, jobID, tick).Scan(&id)
		if errors.Is(err, pgx.ErrNoRows) {
			return nil, nil
		}
		if err != nil {
			return nil, fmt.Errorf("look up the run of job %s at %s: %w", jobID, tick.Format(time.RFC3339), err)
		}
		return s.GetRun(ctx, jobID, id)
	}
	if run, err = existing(); err != nil || run != nil {
		return run, job, false, err
	}
	if !job.GetEnabled() {
		return nil, job, false, ErrDisabled
	}
	id := NewRunID()
	created, err = insertRun(ctx, s.pool, id, job, jobID, intakev1.Trigger_TRIGGER_SCHEDULE, &tick, s.now(), false)
	if err != nil {
		return nil, nil, false, err
	}
	if !created { // another replica won the race
		run, err = existing()
		if err == nil && run == nil {
			err = fmt.Errorf("run of job %s at %s vanished", jobID, tick.Format(time.RFC3339))
		}
		return run, job, false, err
	}
	run, err = s.GetRun(ctx, jobID, id)
	return run, job, true, err
}

// FailQueued marks a run that is still QUEUED as FAILED with message (for
// example when its run request could not be published). It reports whether
// the run changed. The failed run counts for the job's failure policy.
func (s *Store) FailQueued(ctx context.Context, jobID, runID, message string) (bool, error) {
	name := RunName(jobID, runID)
	tx, err := s.pool.Begin(ctx)
	if err != nil {
		return false, fmt.Errorf("fail run %s: %w", name, err)
	}
	defer tx.Rollback(ctx) //nolint:errcheck // after Commit it is a no-op
	now := s.now()
	r := &runRow{id: runID, jobID: jobID, state: intakev1.RunState_RUN_STATE_FAILED, message: message}
	err = tx.QueryRow(ctx, `UPDATE intake.runs SET state = $3, message = $4, end_time = $5,
		version = version + 1, update_time = $5 WHERE id = $1 AND job_id = $2 AND state = $6 RETURNING dry_run`,
		runID, jobID, int16(intakev1.RunState_RUN_STATE_FAILED), message, now, int16(intakev1.RunState_RUN_STATE_QUEUED)).Scan(&r.dryRun)
	if errors.Is(err, pgx.ErrNoRows) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("fail run %s: %w", name, err)
	}
	disabled, err := s.countRunOutcome(ctx, tx, r)
	if err != nil {
		return false, err
	}
	if err := tx.Commit(ctx); err != nil {
		return false, fmt.Errorf("fail run %s: %w", name, err)
	}
	s.autoDisabled(ctx, disabled)
	return true, nil
}

// Rejects calls fn with every kept row error of a run, with its record, in
// row order, as it reads them. It returns how many row errors were dropped
// past MaxRowErrorsKept; ErrNotFound for an unknown run.
func (s *Store) Rejects(ctx context.Context, jobID, runID string, fn func(e *intakev1.RowError) error) (int64, error) {
	name := RunName(jobID, runID)
	tx, err := s.pool.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly})
	if err != nil {
		return 0, fmt.Errorf("read the rejects of run %s: %w", name, err)
	}
	defer tx.Rollback(ctx) //nolint:errcheck // read only
	var dropped int64
	if err := runField(ctx, tx, jobID, runID, "row_errors_dropped", "rejects count", &dropped); err != nil {
		return 0, err
	}
	rows, err := tx.Query(ctx, `SELECT row, col, reason, record FROM intake.run_row_errors WHERE run_id = $1 ORDER BY row, col`, runID)
	if err != nil {
		return 0, fmt.Errorf("read the rejects of run %s: %w", name, err)
	}
	defer rows.Close()
	for rows.Next() {
		e := &intakev1.RowError{}
		if err := rows.Scan(&e.Row, &e.Column, &e.Reason, &e.Record); err != nil {
			return 0, fmt.Errorf("read the rejects of run %s: %w", name, err)
		}
		if err := fn(e); err != nil {
			return 0, err
		}
	}
	if err := rows.Err(); err != nil {
		return 0, fmt.Errorf("read the rejects of run %s: %w", name, err)
	}
	return dropped, nil
}
