-- +goose Up
CREATE SCHEMA IF NOT EXISTS intake;

-- Jobs: the Job message as protojson (without its output-only fields), plus
-- the columns the API and the scheduler query on.
CREATE TABLE intake.jobs (
    id          text PRIMARY KEY,
    spec        jsonb       NOT NULL,
    enabled     boolean     NOT NULL DEFAULT false,
    etag        text        NOT NULL,
    create_time timestamptz NOT NULL DEFAULT now(),
    update_time timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX jobs_create ON intake.jobs (create_time, id);

CREATE TABLE intake.runs (
    id             text PRIMARY KEY,
    job_id         text        NOT NULL,
    state          smallint    NOT NULL,          -- intake.v1.RunState
    trigger        smallint    NOT NULL,          -- intake.v1.Trigger
    job            jsonb       NOT NULL,          -- the job as it was when the run was created
    scheduled_time timestamptz,
    create_time    timestamptz NOT NULL DEFAULT now(),
    start_time     timestamptz,
    end_time       timestamptz,
    sha256         text        NOT NULL DEFAULT '',
    source         text        NOT NULL DEFAULT '',
    message        text        NOT NULL DEFAULT '',
    counters       jsonb       NOT NULL DEFAULT '{}',  -- RunCounters as protojson: the sums, kept current by every report
    stages         jsonb       NOT NULL DEFAULT '[]',  -- []StageStatus as protojson
    -- Bumped by every change, so watchers on any API replica see it by polling.
    version        bigint      NOT NULL DEFAULT 1,
    update_time    timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX runs_job_create ON intake.runs (job_id, create_time DESC, id DESC);
CREATE INDEX runs_create ON intake.runs (create_time DESC, id DESC);
-- A schedule tick creates one run, whichever scheduler replica asks.
CREATE UNIQUE INDEX runs_job_tick ON intake.runs (job_id, scheduled_time) WHERE scheduled_time IS NOT NULL;
-- The requeue sweeper looks for runs still queued.
CREATE INDEX runs_queued ON intake.runs (create_time) WHERE state = 1;

-- Counters of each stage, per chunk, so a redelivered chunk counts once: a
-- report replaces the row of its (run, stage, chunk). chunk = -1 holds the
-- stage's run totals (reported with FETCHED / FINISHED).
CREATE TABLE intake.run_chunks (
    run_id         text     NOT NULL,
    stage          smallint NOT NULL,              -- intake.v1.Stage
    chunk          bigint   NOT NULL,
    bytes          bigint   NOT NULL DEFAULT 0,
    chunks         bigint   NOT NULL DEFAULT 0,
    rows_read      bigint   NOT NULL DEFAULT 0,
    rows_rejected  bigint   NOT NULL DEFAULT 0,
    rows_staged    bigint   NOT NULL DEFAULT 0,
    rows_created   bigint   NOT NULL DEFAULT 0,
    rows_updated   bigint   NOT NULL DEFAULT 0,
    rows_unchanged bigint   NOT NULL DEFAULT 0,
    rows_ignored   bigint   NOT NULL DEFAULT 0,
    PRIMARY KEY (run_id, stage, chunk)
);

-- The first rejected rows of each run (the API keeps at most 1000 per run).
CREATE TABLE intake.run_row_errors (
    run_id text   NOT NULL,
    row    bigint NOT NULL,
    col    text   NOT NULL,
    reason text   NOT NULL,
    PRIMARY KEY (run_id, row, col)
);

-- +goose Down
DROP SCHEMA intake CASCADE;
