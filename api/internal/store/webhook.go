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

// Completion webhooks (see pkg/schema/migrations/00010_webhook.sql). A job's
// webhook URL is in its spec; its secret is in the column webhook_secret,
// which only the deliverer reads. The deliverer polls: QueueWebhooks marks
// the runs that ended and queues a delivery for those whose job has a
// webhook; ClaimWebhooks hands due deliveries to one replica at a time;
// RecordWebhook records each attempt and schedules the next one.

// webhookSecretOf is the secret column's value for a new job: NULL when it
// has no webhook or no secret.
func webhookSecretOf(job *intakev1.Job) *string {
	if s := job.GetWebhook().GetSecret(); s != "" {
		return &s
	}
	return nil
}

// webhookSecretUpdate says how an update changes the secret column (see
// jobspec.ApplyMaskWithWebhook): keep it, or set it to secret (nil: NULL).
func webhookSecretUpdate(job *intakev1.Job) (keep bool, secret *string) {
	w := job.GetWebhook()
	switch {
	case w == nil:
		return false, nil
	case w.GetSecret() != "":
		s := w.GetSecret()
		return false, &s
	case w.GetSecretSet():
		return true, nil
	}
	return false, nil
}

// withSecretSet sets the output-only secret_set of a job read from the
// database.
func withSecretSet(job *intakev1.Job, set bool) {
	if w := job.GetWebhook(); w != nil {
		w.Secret, w.SecretSet = "", set
	}
}

// QueueWebhooks looks at up to limit runs that ended since the last call
// (on any replica) and queues the completion webhook of those whose job has
// a webhook, due at once. Runs locked by another transaction are left to
// the next call. It returns how many runs it looked at and how many
// deliveries it queued.
func (s *Store) QueueWebhooks(ctx context.Context, limit int) (seen, queued int, err error) {
	err = s.pool.QueryRow(ctx, `WITH ended AS (
			SELECT id FROM intake.runs WHERE end_time IS NOT NULL AND NOT webhook_seen
			ORDER BY end_time LIMIT $1 FOR UPDATE SKIP LOCKED
		), seen AS (
			UPDATE intake.runs r SET webhook_seen = true FROM ended WHERE r.id = ended.id
			RETURNING r.id, r.job_id
		), queued AS (
			INSERT INTO intake.webhook_pending (run_id, job_id, next_time)
			SELECT seen.id, seen.job_id, $2 FROM seen JOIN intake.jobs j ON j.id = seen.job_id
			WHERE COALESCE(j.spec->'webhook'->>'url', '') <> ''
			ON CONFLICT (run_id) DO NOTHING
			RETURNING run_id
		)
		SELECT (SELECT count(*) FROM seen), (SELECT count(*) FROM queued)`, limit, s.now()).Scan(&seen, &queued)
	if err != nil {
		return 0, 0, fmt.Errorf("queue completion webhooks: %w", err)
	}
	return seen, queued, nil
}

// WebhookTask is a claimed delivery of a run's completion webhook.
type WebhookTask struct {
	JobID, RunID string
	// Attempt is the attempt to make: 1 for the first.
	Attempt int32
}

// ClaimWebhooks claims up to limit deliveries that are due, each for lease:
// no other caller gets it until lease has passed (then its attempt counts as
// not made, and another caller may make it).
func (s *Store) ClaimWebhooks(ctx context.Context, limit int, lease time.Duration) ([]WebhookTask, error) {
	now := s.now()
	rows, err := s.pool.Query(ctx, `WITH due AS (
			SELECT run_id FROM intake.webhook_pending WHERE next_time <= $1
			ORDER BY next_time LIMIT $2 FOR UPDATE SKIP LOCKED
		)
		UPDATE intake.webhook_pending p SET next_time = $3 FROM due WHERE p.run_id = due.run_id
		RETURNING p.job_id, p.run_id, p.attempts + 1`, now, limit, now.Add(lease))
	if err != nil {
		return nil, fmt.Errorf("claim completion webhooks: %w", err)
	}
	tasks, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (WebhookTask, error) {
		var t WebhookTask
		err := row.Scan(&t.JobID, &t.RunID, &t.Attempt)
		return t, err
	})
	if err != nil {
		return nil, fmt.Errorf("claim completion webhooks: %w", err)
	}
	return tasks, nil
}

// WebhookTarget is where and what a delivery sends.
type WebhookTarget struct {
	// URL is "" when the job was deleted or no longer has a webhook.
	URL string
	// Secret is "" when the job's webhook has none.
	Secret string
	// Run is the run as it is now.
	Run *intakev1.Run
}

// WebhookTarget reads what a task delivers: the job's webhook as it is now
// and the run.
func (s *Store) WebhookTarget(ctx context.Context, t WebhookTask) (*WebhookTarget, error) {
	r, err := readRun(ctx, s.pool, t.JobID, t.RunID, "", false)
	if err != nil {
		return nil, err
	}
	out := &WebhookTarget{Run: r.proto()}
	err = s.pool.QueryRow(ctx, `SELECT COALESCE(spec->'webhook'->>'url', ''), COALESCE(webhook_secret, '')
		FROM intake.jobs WHERE id = $1`, t.JobID).Scan(&out.URL, &out.Secret)
	if err != nil && !errors.Is(err, pgx.ErrNoRows) {
		return nil, fmt.Errorf("read the webhook of job %s: %w", JobName(t.JobID), err)
	}
	return out, nil
}

// RecordWebhook records the attempt of a task (d) and, when retryIn is
// positive, schedules the next attempt that much later; otherwise the
// delivery is done (delivered or given up). An attempt another caller recorded first (its
// claim had lapsed) is not recorded twice; it reports whether this one was
// recorded.
func (s *Store) RecordWebhook(ctx context.Context, t WebhookTask, d *intakev1.WebhookDelivery, retryIn time.Duration) (bool, error) {
	name := RunName(t.JobID, t.RunID)
	tx, err := s.pool.Begin(ctx)
	if err != nil {
		return false, fmt.Errorf("record webhook attempt %d of run %s: %w", t.Attempt, name, err)
	}
	defer tx.Rollback(ctx) //nolint:errcheck // after Commit it is a no-op
	var (
		tag  pgconn.CommandTag
		next *time.Time
	)
	if retryIn <= 0 {
		tag, err = tx.Exec(ctx, `DELETE FROM intake.webhook_pending WHERE run_id = $1 AND attempts = $2`, t.RunID, t.Attempt-1)
	} else {
		retryAt := s.now().Add(retryIn)
		next = &retryAt
		tag, err = tx.Exec(ctx, `UPDATE intake.webhook_pending SET attempts = $2, next_time = $3
			WHERE run_id = $1 AND attempts = $2 - 1`, t.RunID, t.Attempt, retryAt)
	}
	if err != nil {
		return false, fmt.Errorf("record webhook attempt %d of run %s: %w", t.Attempt, name, err)
	}
	if tag.RowsAffected() == 0 {
		return false, nil // another caller recorded this attempt
	}
	if _, err := tx.Exec(ctx, `INSERT INTO intake.webhook_deliveries
			(run_id, attempt, time, status_code, error, delivered, next_time)
		VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (run_id, attempt) DO NOTHING`,
		t.RunID, t.Attempt, d.GetTime().AsTime(), d.GetStatusCode(), d.GetError(), d.GetDelivered(), next); err != nil {
		return false, fmt.Errorf("record webhook attempt %d of run %s: %w", t.Attempt, name, err)
	}
	if err := tx.Commit(ctx); err != nil {
		return false, fmt.Errorf("record webhook attempt %d of run %s: %w", t.Attempt, name, err)
	}
	return true, nil
}

// DropWebhook ends a task's delivery without an attempt (its job was
// deleted or its webhook removed).
func (s *Store) DropWebhook(ctx context.Context, t WebhookTask) error {
	if _, err := s.pool.Exec(ctx, `DELETE FROM intake.webhook_pending WHERE run_id = $1 AND attempts = $2`,
		t.RunID, t.Attempt-1); err != nil {
		return fmt.Errorf("drop the webhook of run %s: %w", RunName(t.JobID, t.RunID), err)
	}
	return nil
}

// withWebhookDeliveries adds the completion webhook attempts of a run that
// ended to run (a run in progress has none).
func withWebhookDeliveries(ctx context.Context, q querier, r *runRow, run *intakev1.Run) error {
	if r.end == nil {
		return nil
	}
	rows, err := q.Query(ctx, `SELECT attempt, time, status_code, error, delivered
		FROM intake.webhook_deliveries WHERE run_id = $1 ORDER BY attempt`, r.id)
	if err != nil {
		return fmt.Errorf("read the webhook deliveries of run %s: %w", run.GetName(), err)
	}
	ds, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (*intakev1.WebhookDelivery, error) {
		d := &intakev1.WebhookDelivery{}
		var at time.Time
		if err := row.Scan(&d.Attempt, &at, &d.StatusCode, &d.Error, &d.Delivered); err != nil {
			return nil, err
		}
		d.Time = timestamppb.New(at)
		return d, nil
	})
	if err != nil {
		return fmt.Errorf("read the webhook deliveries of run %s: %w", run.GetName(), err)
	}
	run.WebhookDeliveries = ds
	return nil
}
