-- +goose Up
-- Job operations: the failure policy's bookkeeping on jobs, and the commit
-- flag that makes a cancel exact (whole or nothing).

-- consecutive_failures: failed (or skipped) runs in a row since the last
-- successful one; dry and cancelled runs do not count. disabled_reason: why
-- the system disabled the job (the failure policy), '' otherwise. Both are
-- cleared when the job is enabled again.
ALTER TABLE intake.jobs
    ADD COLUMN consecutive_failures integer NOT NULL DEFAULT 0,
    ADD COLUMN disabled_reason      text    NOT NULL DEFAULT '';

-- The API told the loader CONTINUE at the commit gate (LOAD, COMMITTING):
-- the commit may have begun, so the run lands whole and CancelRun refuses it.
ALTER TABLE intake.runs
    ADD COLUMN committing boolean NOT NULL DEFAULT false;

-- +goose Down
ALTER TABLE intake.runs DROP COLUMN committing;
ALTER TABLE intake.jobs
    DROP COLUMN consecutive_failures,
    DROP COLUMN disabled_reason;
