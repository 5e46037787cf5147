-- +goose Up
-- Source files of runs: forced runs, replays, and the retention policy that
-- deletes archived files.

ALTER TABLE intake.runs
    -- Started with force (RunJob{force}, every replay): never skipped for an
    -- unchanged file.
    ADD COLUMN force          boolean NOT NULL DEFAULT false,
    -- For a replay: the id of the run (of the same job) whose archived file
    -- it re-imports; '' otherwise.
    ADD COLUMN replay_of      text    NOT NULL DEFAULT '',
    -- The retention janitor is done with the run's file: it deleted it, or
    -- there was none to delete.
    ADD COLUMN source_swept   boolean NOT NULL DEFAULT false,
    -- The run's file was stored once and the retention policy deleted it.
    ADD COLUMN source_expired boolean NOT NULL DEFAULT false;

-- The janitor looks for final runs whose file it has not swept yet.
CREATE INDEX runs_unswept ON intake.runs (job_id) WHERE NOT source_swept;

-- +goose Down
DROP INDEX intake.runs_unswept;
ALTER TABLE intake.runs
    DROP COLUMN force,
    DROP COLUMN replay_of,
    DROP COLUMN source_swept,
    DROP COLUMN source_expired;
