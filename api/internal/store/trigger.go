package store

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"google.golang.org/protobuf/types/known/timestamppb"

	intakev1 "github.com/intakehq/intake/proto/gen/intake/v1"
)

// The trigger API: trigger tokens (intake.trigger_tokens, only the SHA-256
// of each secret) and the runs TriggerJob starts, idempotent on the
// caller's key (pkg/schema/migrations/00009_trigger.sql).

// TriggerTokenName is the resource name of a job's trigger token.
func TriggerTokenName(jobID, tokenID string) string {
	return JobName(jobID) + "/triggerTokens/" + tokenID
}

// TokenHash is a live trigger token of a job: its id and the SHA-256 of
// its secret.
type TokenHash struct {
	ID   string
	Hash []byte
}

// lockJob takes a key-share lock on a job, so it is not deleted before tx
// ends; ErrNotFound when there is no such job.
func lockJob(ctx context.Context, tx pgx.Tx, jobID string) error {
	var one int
	err := tx.QueryRow(ctx, `SELECT 1 FROM intake.jobs WHERE id = $1 AND ($2::text = '' OR tenant_id = $2) FOR KEY SHARE`,
		jobID, TenantOf(ctx)).Scan(&one)
	if errors.Is(err, pgx.ErrNoRows) {
		return ErrNotFound
	}
	if err != nil {
		return fmt.Errorf("look up job %s: %w", jobID, err)
	}
	return nil
}

// CreateTriggerToken stores a new trigger token of a job, by the SHA-256 of
// its secret; with revokeOthers, the job's other tokens are revoked in the
// same transaction (a rotation). ErrNotFound when the job does not exist.
// The token returned has no secret: the caller has it.
func (s *Store) CreateTriggerToken(ctx context.Context, jobID, tokenID string, hash []byte, revokeOthers bool) (*intakev1.TriggerToken, error) {
	name := TriggerTokenName(jobID, tokenID)
	tx, err := s.pool.Begin(ctx)
	if err != nil {
		return nil, fmt.Errorf("create trigger token %s: %w", name, err)
	}
	defer tx.Rollback(ctx) //nolint:errcheck // after Commit it is a no-op
	if err := lockJob(ctx, tx, jobID); err != nil {
		return nil, err
	}
	now := s.now()
	if revokeOthers {
		if _, err := tx.Exec(ctx, `UPDATE intake.trigger_tokens SET revoked_time = $2
			WHERE job_id = $1 AND revoked_time IS NULL`, jobID, now); err != nil {
			return nil, fmt.Errorf("revoke the trigger tokens of job %s: %w", jobID, err)
		}
	}
	if _, err := tx.Exec(ctx, `INSERT INTO intake.trigger_tokens (id, job_id, hash, create_time) VALUES ($1, $2, $3, $4)`,
		tokenID, jobID, hash, now); err != nil {
		return nil, fmt.Errorf("create trigger token %s: %w", name, err)
	}
	if err := tx.Commit(ctx); err != nil {
		return nil, fmt.Errorf("create trigger token %s: %w", name, err)
	}
	return &intakev1.TriggerToken{Name: name, CreateTime: timestamppb.New(now)}, nil
}

// RevokeTriggerToken revokes a token of a job; revoking a revoked token
// changes nothing. ErrNotFound when the job has no such token.
func (s *Store) RevokeTriggerToken(ctx context.Context, jobID, tokenID string) error {
	tag, err := s.pool.Exec(ctx, `UPDATE intake.trigger_tokens SET revoked_time = coalesce(revoked_time, $3)
		WHERE id = $1 AND job_id = $2
			AND ($4::text = '' OR job_id IN (SELECT j.id FROM intake.jobs j WHERE j.tenant_id = $4))`, tokenID, jobID, s.now(), TenantOf(ctx))
	if err != nil {
		return fmt.Errorf("revoke trigger token %s: %w", TriggerTokenName(jobID, tokenID), err)
	}
	if tag.RowsAffected() == 0 {
		return ErrNotFound
	}
	return nil
}

// ListTriggerTokens returns the live (unrevoked) tokens of a job, oldest
// first, without secrets. ErrNotFound when the job does not exist.
func (s *Store) ListTriggerTokens(ctx context.Context, jobID string) ([]*intakev1.TriggerToken, error) {
	var exists bool
	if err := s.pool.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM intake.jobs WHERE id = $1 AND ($2::text = '' OR tenant_id = $2))`,
		jobID, TenantOf(ctx)).Scan(&exists); err != nil {
		return nil, fmt.Errorf("look up job %s: %w", jobID, err)
	}
	if !exists {
		return nil, ErrNotFound
	}
	rows, err := s.pool.Query(ctx, `SELECT id, create_time, last_used_time FROM intake.trigger_tokens
		WHERE job_id = $1 AND revoked_time IS NULL ORDER BY create_time, id`, jobID)
	if err != nil {
		return nil, fmt.Errorf("list the trigger tokens of job %s: %w", jobID, err)
	}
	defer rows.Close()
	var out []*intakev1.TriggerToken
	for rows.Next() {
		var (
			id       string
			created  time.Time
			lastUsed *time.Time
		)
		if err := rows.Scan(&id, &created, &lastUsed); err != nil {
			return nil, fmt.Errorf("list the trigger tokens of job %s: %w", jobID, err)
		}
		out = append(out, &intakev1.TriggerToken{Name: TriggerTokenName(jobID, id), CreateTime: timestamppb.New(created), LastUsedTime: ts(lastUsed)})
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list the trigger tokens of job %s: %w", jobID, err)
	}
	return out, nil
}

// LiveTokenHashes returns the hashes of the live tokens of a job that
// exists: none for a deleted or unknown job.
func (s *Store) LiveTokenHashes(ctx context.Context, jobID string) ([]TokenHash, error) {
	rows, err := s.pool.Query(ctx, `SELECT t.id, t.hash FROM intake.trigger_tokens t JOIN intake.jobs j ON j.id = t.job_id
		WHERE t.job_id = $1 AND t.revoked_time IS NULL AND ($2::text = '' OR j.tenant_id = $2)`, jobID, TenantOf(ctx))
	if err != nil {
		return nil, fmt.Errorf("read the trigger tokens of job %s: %w", jobID, err)
	}
	defer rows.Close()
	var out []TokenHash
	for rows.Next() {
		var h TokenHash
		if err := rows.Scan(&h.ID, &h.Hash); err != nil {
			return nil, fmt.Errorf("read the trigger tokens of job %s: %w", jobID, err)
		}
		out = append(out, h)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read the trigger tokens of job %s: %w", jobID, err)
	}
	return out, nil
}

// TokenUsed records that a token authorised a trigger now.
func (s *Store) TokenUsed(ctx context.Context, jobID, tokenID string) error {
	if _, err := s.pool.Exec(ctx, `UPDATE intake.trigger_tokens SET last_used_time = $2 WHERE id = $1`, tokenID, s.now()); err != nil {
		return fmt.Errorf("record the use of trigger token %s: %w", TriggerTokenName(jobID, tokenID), err)
	}
	return nil
}

// TriggeredRun returns the run of a job that TriggerJob started with key,
// nil when there is none.
func (s *Store) TriggeredRun(ctx context.Context, jobID, key string) (*intakev1.Run, error) {
	var id string
	err := s.pool.QueryRow(ctx, `SELECT id FROM intake.runs WHERE job_id = $1 AND idempotency_key = $2 AND ($3::text = '' OR tenant_id = $3)`,
		jobID, key, TenantOf(ctx)).Scan(&id)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("look up the run of job %s with idempotency key %q: %w", jobID, key, err)
	}
	run, err := s.GetRun(ctx, jobID, id)
	if err != nil {
		return nil, err
	}
	run.IdempotencyKey = key
	return run, nil
}

// CreateTriggeredRun creates the QUEUED run of a TriggerJob call (trigger
// TRIGGER_API, force as asked) recording key, the caller's idempotency key.
// With a key, a job gets one run per key whoever asks and however many
// replicas race: a later call returns the first run and created=false.
// An empty key always creates a run. ErrNotFound when the job is gone.
func (s *Store) CreateTriggeredRun(ctx context.Context, job *intakev1.Job, jobID, key string, force bool) (run *intakev1.Run, created bool, err error) {
	if key != "" {
		if run, err := s.TriggeredRun(ctx, jobID, key); err != nil || run != nil {
			return run, false, err
		}
	}
	id := NewRunID()
	err = func() error {
		tx, err := s.pool.Begin(ctx)
		if err != nil {
			return fmt.Errorf("insert run %s: %w", RunName(jobID, id), err)
		}
		defer tx.Rollback(ctx) //nolint:errcheck // after Commit it is a no-op
		if err := lockJob(ctx, tx, jobID); err != nil {
			return err
		}
		if _, err := insertRun(ctx, tx, id, job, jobID, intakev1.Trigger_TRIGGER_TRIGGER_API, nil, s.now(), false); err != nil {
			return err
		}
		// A concurrent call with the same key waits here for the first to
		// commit, then fails on runs_job_idempotency_key.
		if _, err := tx.Exec(ctx, `UPDATE intake.runs SET force = $2, idempotency_key = $3 WHERE id = $1`, id, force, key); err != nil {
			return fmt.Errorf("insert run %s: %w", RunName(jobID, id), err)
		}
		if err := tx.Commit(ctx); err != nil {
			return fmt.Errorf("insert run %s: %w", RunName(jobID, id), err)
		}
		return nil
	}()
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && pgErr.Code == "23505" && pgErr.ConstraintName == "runs_job_idempotency_key" {
		run, err := s.TriggeredRun(ctx, jobID, key)
		if err == nil && run == nil {
			err = fmt.Errorf("the run of job %s with idempotency key %q vanished", jobID, key)
		}
		return run, false, err
	}
	if err != nil {
		return nil, false, err
	}
	run, err = s.GetRun(ctx, jobID, id)
	if err != nil {
		return nil, false, err
	}
	run.IdempotencyKey = key
	return run, true, nil
}

// JobTenant returns the tenant of a job ("default"); ErrNotFound when
// there is no such job (of ctx's tenant, when ctx has one).
func (s *Store) JobTenant(ctx context.Context, jobID string) (string, error) {
	var t string
	err := s.pool.QueryRow(ctx, `SELECT tenant_id FROM intake.jobs WHERE id = $1 AND ($2::text = '' OR tenant_id = $2)`,
		jobID, TenantOf(ctx)).Scan(&t)
	if errors.Is(err, pgx.ErrNoRows) {
		return "", ErrNotFound
	}
	if err != nil {
		return "", fmt.Errorf("look up the tenant of job %s: %w", jobID, err)
	}
	return t, nil
}

// RunTenant returns the tenant of a run ("default"); ErrNotFound when
// there is no such run (of ctx's tenant, when ctx has one).
func (s *Store) RunTenant(ctx context.Context, jobID, runID string) (string, error) {
	var t string
	if err := runField(ctx, s.pool, jobID, runID, "tenant_id", "tenant", &t); err != nil {
		return "", err
	}
	return t, nil
}
