-- +goose Up
-- Staging tables of the loader live here, one per run: "run_<run id without dashes>".
CREATE SCHEMA IF NOT EXISTS intake_staging;

-- Loader bookkeeping: one row per run the loader has seen. The batches and the
-- seal of a run arrive in any order; whichever comes first creates the row.
CREATE TABLE intake.load_runs (
    run_id            text PRIMARY KEY,  -- the run id (UUID)
    run               text    NOT NULL,  -- the run's resource name, jobs/{job}/runs/{run}
    -- What the run loads, from its first batch (or its seal): the target
    -- object (intake.v1.ObjectType), whether new keys may be inserted, and the
    -- mapped attributes (the staging table's columns).
    object            integer,
    allow_new_records boolean,
    attributes        text[],
    chunks            bigint,            -- set by the seal; NULL until the fetcher has cut the whole file
    committed         boolean NOT NULL DEFAULT false,
    -- The API told the loader to drop the run (cancelled or failed): its
    -- staging is gone and it is never committed.
    abandoned         boolean NOT NULL DEFAULT false,
    counters          jsonb,             -- rows_created/updated/unchanged/ignored once committed
    create_time       timestamptz NOT NULL DEFAULT now(),
    update_time       timestamptz NOT NULL DEFAULT now(),
    CHECK (NOT (committed AND abandoned))
);
-- The loader's janitor looks for open runs that have been idle too long.
CREATE INDEX load_runs_open ON intake.load_runs (update_time) WHERE NOT committed AND NOT abandoned;

-- The chunks of a run staged so far; deleted when the run is committed. A run
-- commits once every chunk is staged and its CHUNK_DONE report was taken by
-- the control API (reported), so FINISHED comes after every CHUNK_DONE.
CREATE TABLE intake.load_chunks (
    run_id   text    NOT NULL,
    chunk    bigint  NOT NULL,
    rows     bigint  NOT NULL,
    reported boolean NOT NULL DEFAULT false,
    PRIMARY KEY (run_id, chunk)
);

-- +goose Down
DROP TABLE intake.load_chunks;
DROP TABLE intake.load_runs;
DROP SCHEMA intake_staging CASCADE;
