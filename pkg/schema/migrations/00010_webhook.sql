-- +goose Up
-- Completion webhooks: a job's webhook secret, and the deliveries of its
-- runs' completion webhooks (queued, retried, recorded).

-- The secret a job's webhook signs its deliveries with (Job.webhook.secret,
-- write only). Kept out of spec, so that no read of a job returns it; NULL
-- when none is set.
ALTER TABLE intake.jobs ADD COLUMN webhook_secret text;

-- The deliverer has looked at the ended run and queued its webhook if its
-- job has one. Runs that ended before this migration count as seen (no job
-- had a webhook then); runs created from now on start unseen.
ALTER TABLE intake.runs ADD COLUMN webhook_seen boolean NOT NULL DEFAULT true;
ALTER TABLE intake.runs ALTER COLUMN webhook_seen SET DEFAULT false;
UPDATE intake.runs SET webhook_seen = false WHERE end_time IS NULL;
-- The deliverer polls for ended runs not seen yet.
CREATE INDEX runs_webhook_unseen ON intake.runs (end_time) WHERE end_time IS NOT NULL AND NOT webhook_seen;

-- A run whose completion webhook is still to deliver: one row per run, from
-- the run's end until it is delivered or given up.
CREATE TABLE intake.webhook_pending (
    run_id    text        PRIMARY KEY,
    job_id    text        NOT NULL,
    -- Attempts made (and recorded in webhook_deliveries).
    attempts  integer     NOT NULL DEFAULT 0,
    -- When the next attempt is due; while a replica makes it, when that
    -- replica's claim lapses (then another one may try).
    next_time timestamptz NOT NULL
);
CREATE INDEX webhook_pending_due ON intake.webhook_pending (next_time);

-- Every delivery attempt of a run's completion webhook (Run.webhook_deliveries).
CREATE TABLE intake.webhook_deliveries (
    run_id      text        NOT NULL,
    attempt     integer     NOT NULL,  -- 1 for the first
    time        timestamptz NOT NULL,
    status_code integer     NOT NULL DEFAULT 0,  -- 0: no response
    error       text        NOT NULL DEFAULT '',
    delivered   boolean     NOT NULL,
    -- When the next attempt is due; NULL after a delivered or last attempt.
    next_time   timestamptz,
    PRIMARY KEY (run_id, attempt)
);

-- +goose Down
DROP TABLE intake.webhook_deliveries;
DROP TABLE intake.webhook_pending;
DROP INDEX intake.runs_webhook_unseen;
ALTER TABLE intake.runs DROP COLUMN webhook_seen;
ALTER TABLE intake.jobs DROP COLUMN webhook_secret;
