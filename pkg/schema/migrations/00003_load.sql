-- +goose Up
CREATE SCHEMA IF NOT EXISTS intake_staging;

-- Loader bookkeeping: which chunks of a run are staged, and the run's commit.
CREATE TABLE intake.load_runs (
    run_id     text PRIMARY KEY,
    chunks     bigint,          -- set by the seal; NULL until the fetcher has cut the whole file
    committed  boolean NOT NULL DEFAULT false,
    counters   jsonb,           -- created/updated/unchanged/ignored once committed
    update_time timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE intake.load_chunks (
    run_id text   NOT NULL,
    chunk  bigint NOT NULL,
    rows   bigint NOT NULL,
    PRIMARY KEY (run_id, chunk)
);


-- +goose Down
DROP TABLE intake.load_chunks;
DROP TABLE intake.load_runs;
DROP SCHEMA intake_staging CASCADE;
