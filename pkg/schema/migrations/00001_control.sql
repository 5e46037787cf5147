-- +goose Up
CREATE SCHEMA IF NOT EXISTS intake;

-- Jobs: the Job message as protojson, plus the columns the API queries on.
CREATE TABLE intake.jobs (
    id          text PRIMARY KEY,
    spec        jsonb       NOT NULL,
    enabled     boolean     NOT NULL DEFAULT false,
    etag        text        NOT NULL,
    create_time timestamptz NOT NULL DEFAULT now(),
    update_time timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE intake.runs (
    id             text PRIMARY KEY,
    job_id         text        NOT NULL,
    state          smallint    NOT NULL,
    trigger        smallint    NOT NULL,
    job            jsonb       NOT NULL,          -- the job as it was when the run was created
    scheduled_time timestamptz,
    create_time    timestamptz NOT NULL DEFAULT now(),
    start_time     timestamptz,
    end_time       timestamptz,
    sha256         text        NOT NULL DEFAULT '',
    source         text        NOT NULL DEFAULT '',
    message        text        NOT NULL DEFAULT '',
    counters       jsonb       NOT NULL DEFAULT '{}',  -- RunCounters as protojson
    stages         jsonb       NOT NULL DEFAULT '[]'   -- []StageStatus as protojson
);
CREATE INDEX runs_job_create ON intake.runs (job_id, create_time DESC, id DESC);
CREATE INDEX runs_create ON intake.runs (create_time DESC, id DESC);
-- A schedule tick creates one run, whichever scheduler replica asks.
CREATE UNIQUE INDEX runs_job_tick ON intake.runs (job_id, scheduled_time) WHERE scheduled_time IS NOT NULL;

-- Per-chunk counters of each stage, so a redelivered chunk counts once.
CREATE TABLE intake.run_chunks (
    run_id   text     NOT NULL,
    stage    smallint NOT NULL,
    chunk    bigint   NOT NULL,
    counters jsonb    NOT NULL,
    PRIMARY KEY (run_id, stage, chunk)
);

CREATE TABLE intake.run_row_errors (
    run_id text   NOT NULL,
    row    bigint NOT NULL,
    col    text   NOT NULL,
    reason text   NOT NULL,
    PRIMARY KEY (run_id, row, col)
);

-- +goose Down
DROP SCHEMA intake CASCADE;
