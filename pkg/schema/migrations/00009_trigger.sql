-- +goose Up
-- The trigger API: per-job trigger tokens, and the idempotency key of the
-- runs TriggerJob starts.

-- A trigger token authorises TriggerJob for one job. Only the SHA-256 of the
-- secret is kept; the secret is shown once, when the token is made. A
-- revoked token keeps its row (revoked_time set) but is neither listed nor
-- accepted; a deleted job takes its tokens with it.
CREATE TABLE intake.trigger_tokens (
    id             text PRIMARY KEY,
    job_id         text        NOT NULL REFERENCES intake.jobs (id) ON DELETE CASCADE,
    hash           bytea       NOT NULL UNIQUE,
    create_time    timestamptz NOT NULL DEFAULT now(),
    last_used_time timestamptz,
    revoked_time   timestamptz
);
-- TriggerJob reads the job's live tokens.
CREATE INDEX trigger_tokens_job ON intake.trigger_tokens (job_id) WHERE revoked_time IS NULL;

-- The caller's idempotency key of a TriggerJob run ('' for every other run):
-- a second trigger of a job with the same key returns the first run.
ALTER TABLE intake.runs
    ADD COLUMN idempotency_key text NOT NULL DEFAULT '';
CREATE UNIQUE INDEX runs_job_idempotency_key ON intake.runs (job_id, idempotency_key) WHERE idempotency_key <> '';

-- +goose Down
DROP INDEX intake.runs_job_idempotency_key;
ALTER TABLE intake.runs DROP COLUMN idempotency_key;
DROP TABLE intake.trigger_tokens;
