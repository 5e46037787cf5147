-- +goose Up
-- Mapping validation (ValidateMapping), dry runs, header drift and the
-- rejects download.

-- A passing ValidateMapping: its token lets a job be saved enabled when the
-- job's object + mapping hash to mapping_hash (SHA-256 of the deterministic
-- protobuf encoding of a Job holding only object and mapping). columns is the
-- file's header at validation, for telling columns new in the file later.
CREATE TABLE intake.validations (
    token        text PRIMARY KEY,
    job_id       text,                    -- NULL: the validation of a job not saved yet
    mapping_hash text        NOT NULL,
    columns      jsonb       NOT NULL DEFAULT '[]',
    create_time  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX validations_create ON intake.validations (create_time);

-- The job's validation state. validated_hash is the mapping hash that passed
-- ('' when the current mapping has not passed; '*' for jobs that were enabled
-- before validation existed, valid until their mapping changes).
-- validated_columns is the header at the job's last passing validation (NULL:
-- never validated, so no column counts as new); it outlives mapping changes.
ALTER TABLE intake.jobs
    ADD COLUMN validated_hash    text NOT NULL DEFAULT '',
    ADD COLUMN validate_time     timestamptz,
    ADD COLUMN validated_columns jsonb;
UPDATE intake.jobs SET validated_hash = '*', validate_time = now() WHERE enabled;

ALTER TABLE intake.runs
    ADD COLUMN dry_run            boolean NOT NULL DEFAULT false,
    -- Unmapped columns of the file not in it at the last passing validation.
    ADD COLUMN new_columns        text[]  NOT NULL DEFAULT '{}',
    -- Mapped columns missing from the file (the run then failed).
    ADD COLUMN missing_columns    text[]  NOT NULL DEFAULT '{}',
    -- Rejected values kept in intake.run_row_errors, and those dropped past
    -- the cap per run.
    ADD COLUMN row_errors_kept    bigint  NOT NULL DEFAULT 0,
    ADD COLUMN row_errors_dropped bigint  NOT NULL DEFAULT 0,
    -- The loader reported FINISHED: the run was merged (or, dry, counted).
    -- Its redelivered FINISHED / COMMITTING reports then go on, not abandon.
    ADD COLUMN committed          boolean NOT NULL DEFAULT false;
UPDATE intake.runs r SET committed = true
    WHERE state IN (5, 6) OR (state = 7 AND stages @> '[{"stage": "STAGE_LOAD"}]'
        AND message LIKE 'every row was rejected%');

-- Every rejected value of a run (up to a cap), with its raw record, for the
-- rejects download.
ALTER TABLE intake.run_row_errors ADD COLUMN record text NOT NULL DEFAULT '';

-- +goose Down
ALTER TABLE intake.run_row_errors DROP COLUMN record;
ALTER TABLE intake.runs
    DROP COLUMN dry_run,
    DROP COLUMN new_columns,
    DROP COLUMN missing_columns,
    DROP COLUMN row_errors_kept,
    DROP COLUMN row_errors_dropped,
    DROP COLUMN committed;
ALTER TABLE intake.jobs
    DROP COLUMN validated_hash,
    DROP COLUMN validate_time,
    DROP COLUMN validated_columns;
DROP TABLE intake.validations;
