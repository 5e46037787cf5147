-- +goose Up
CREATE SCHEMA IF NOT EXISTS intake;
CREATE SCHEMA IF NOT EXISTS objects;
CREATE SCHEMA IF NOT EXISTS intake_staging;

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

-- Object tables: typed columns an analyst can query. Keep in step with pkg/objects.
CREATE TABLE objects.accounts (
    account_id        text PRIMARY KEY,
    name              text,
    status            text,
    industry          text,
    region            text,
    parent_account_id text,
    employees         numeric,
    annual_revenue    numeric,
    mrr               numeric,
    is_active         boolean,
    created_date      date,
    renewal_date      date,
    notes             text,
    _run              text,
    _updated_at       timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE objects.users (
    account_id      text NOT NULL,
    user_id         text NOT NULL,
    name            text,
    email           text,
    title           text,
    role            text,
    logins          numeric,
    is_active       boolean,
    created_date    date,
    last_login_date date,
    _run            text,
    _updated_at     timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (account_id, user_id)
);

-- +goose Down
DROP SCHEMA objects CASCADE;
DROP SCHEMA intake_staging CASCADE;
DROP SCHEMA intake CASCADE;
