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
// webhook URL is in its spec; its secret is in a column of its own, which
// only the deliverer reads: webhook_secret_sealed (00011), sealed with the
// key ring and bound to "jobs/<id>/webhook.secret", or — written by an API
// without a key ring, or before 00011 — webhook_secret in plain text.
// SealWebhookSecrets moves plain ones to the sealed column. The deliverer
// polls: QueueWebhooks marks the runs that ended and queues a delivery for
// those whose job has a webhook; ClaimWebhooks hands due deliveries to one
// replica at a time; RecordWebhook records each attempt and schedules the
// next one.

// webhookAD is the additional data a job's webhook secret is sealed with.
func webhookAD(jobID string) string { return JobName(jobID) + "/webhook.secret" }

// sealWebhookSecret is the column values of a webhook secret: sealed when
// the store has a key ring, else plain.
func (s *Store) sealWebhookSecret(jobID, secret string) (plain, sealed *string, err error) {
	if s.ring == nil {
		return &secret, nil, nil
	}
	v, err := s.ring.SealString(secret, webhookAD(jobID))
	if err != nil {
		return nil, nil, fmt.Errorf("encrypt the webhook secret of job %s: %w", JobName(jobID), err)
	}
	return nil, &v, nil
}

// webhookSecretOf is the secret columns' values for a new job: NULL when it
// has no webhook or no secret.
func (s *Store) webhookSecretOf(jobID string, job *intakev1.Job) (plain, sealed *string, err error) {
	if v := job.GetWebhook().GetSecret(); v != "" {
		return s.sealWebhookSecret(jobID, v)
	}
	return nil, nil, nil
}

// webhookSecretUpdate says how an update changes the secret columns (see
// jobspec.ApplyMaskWithWebhook): keep them, or set them (nil: NULL).
func (s *Store) webhookSecretUpdate(jobID string, job *intakev1.Job) (keep bool, plain, sealed *string, err error) {
	w := job.GetWebhook()
	switch {
	case w == nil:
		return false, nil, nil, nil
	case w.GetSecret() != "":
		plain, sealed, err = s.sealWebhookSecret(jobID, w.GetSecret())
		return false, plain, sealed, err
	case w.GetSecretSet():
		return true, nil, nil, nil
	}
	return false, nil, nil, nil
}

// SealWebhookSecrets seals the webhook secrets stored in plain text (by an
// API without a key ring, or before secrets were sealed) with the key ring,
// and clears their plain text. It returns how many it sealed; without a
// key ring it seals none and returns how many are in plain text.
func (s *Store) SealWebhookSecrets(ctx context.Context) (sealed, plain int, err error) {
	rows, err := s.pool.Query(ctx, `SELECT id FROM intake.jobs WHERE webhook_secret IS NOT NULL ORDER BY id`)
	if err != nil {
		return 0, 0, fmt.Errorf("find plain webhook secrets: %w", err)
	}
	ids, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return 0, 0, fmt.Errorf("find plain webhook secrets: %w", err)
	}
	if s.ring == nil {
		return 0, len(ids), nil
	}
	for _, id := range ids {
		n, err := s.sealWebhookSecretOf(ctx, id)
		if err != nil {
			return sealed, len(ids) - sealed, err
		}
		sealed += n
	}
	return sealed, len(ids) - sealed, nil
}

// sealWebhookSecretOf seals the plain webhook secret of one job, under the
// job's row lock; it returns 1 when it did, 0 when there was none (any
// more).
func (s *Store) sealWebhookSecretOf(ctx context.Context, id string) (int, error) {
	tx, err := s.pool.Begin(ctx)
	if err != nil {
		return 0, fmt.Errorf("seal the webhook secret of job %s: %w", JobName(id), err)
	}
	defer tx.Rollback(ctx) //nolint:errcheck // after Commit it is a no-op
	var plain *string
	err = tx.QueryRow(ctx, `SELECT webhook_secret FROM intake.jobs WHERE id = $1 FOR UPDATE`, id).Scan(&plain)
	if errors.Is(err, pgx.ErrNoRows) || err == nil && plain == nil {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("seal the webhook secret of job %s: %w", JobName(id), err)
	}
	_, sealed, err := s.sealWebhookSecret(id, *plain)
	if err != nil {
		return 0, err
	}
	if _, err := tx.Exec(ctx, `UPDATE intake.jobs SET webhook_secret = NULL, webhook_secret_sealed = $2 WHERE id = $1`,
		id, sealed); err != nil {
		return 0, fmt.Errorf("seal the webhook secret of job %s: %w", JobName(id), err)
	}
	if err := tx.Commit(ctx); err != nil {
		return 0, fmt.Errorf("seal the webhook secret of job %s: %w", JobName(id), err)
	}
	return 1, nil
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
	// SecretErr is set when the job's secret is sealed and does not open
	// (no key ring, or its key is not in the ring): the delivery must not
	// go out unsigned.
	SecretErr error
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
	var sealed *string
	err = s.pool.QueryRow(ctx, `SELECT COALESCE(spec->'webhook'->>'url', ''), COALESCE(webhook_secret, ''), webhook_secret_sealed
		FROM intake.jobs WHERE id = $1`, t.JobID).Scan(&out.URL, &out.Secret, &sealed)
	if err != nil && !errors.Is(err, pgx.ErrNoRows) {
		return nil, fmt.Errorf("read the webhook of job %s: %w", JobName(t.JobID), err)
	}
	if sealed != nil {
		v, err := s.ring.OpenString(*sealed, webhookAD(t.JobID))
		if err != nil {
			out.SecretErr = &SecretError{Resource: JobName(t.JobID), Field: "webhook secret", Err: err}
		}
		out.Secret = v
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
