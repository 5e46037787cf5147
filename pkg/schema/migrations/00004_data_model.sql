-- +goose Up
-- The eight objects beyond accounts and users, custom attributes, the model
-- a run carries, and what the loader needs for custom attributes and dry
-- runs. Keep the object tables in step with pkg/objects (a test checks it).

CREATE TABLE objects.usage (
    account_id  text NOT NULL,
    user_id     text NOT NULL,
    activity    text NOT NULL,
    module      text NOT NULL,
    "timestamp" text NOT NULL,
    _run        text,
    _updated_at timestamptz NOT NULL DEFAULT now(),
    -- Append-only events: importing the same event again adds nothing.
    PRIMARY KEY (account_id, user_id, activity, module, "timestamp")
);

CREATE TABLE objects.collections (
    account_id    text NOT NULL,
    collection_id text NOT NULL,
    name          text,
    type          text,
    status        text,
    created_date  date,
    _run          text,
    _updated_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (account_id, collection_id)
);

CREATE TABLE objects.usage_aggregations (
    account_id  text NOT NULL,
    user_id     text NOT NULL,
    aggregation text NOT NULL,  -- "module##activity"
    date        date NOT NULL,
    value       numeric,
    _run        text,
    _updated_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (account_id, user_id, aggregation, date)
);

CREATE TABLE objects.team_users (
    email       text PRIMARY KEY,
    first_name  text,
    last_name   text,
    license     text,
    teams       text,
    active      boolean,
    title       text,
    _run        text,
    _updated_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE objects.account_assignments (
    account_id      text NOT NULL,
    role_id         text NOT NULL,
    team_user_email text NOT NULL,
    _run            text,
    _updated_at     timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (account_id, role_id, team_user_email)
);

CREATE TABLE objects.tasks (
    account_id     text NOT NULL,
    task_id        text NOT NULL,
    subject        text,
    description    text,
    status         text,
    type           text,
    priority       text,
    due_date       date,
    completed_date date,
    assignee_email text,  -- foreign key: objects.team_users
    _run           text,
    _updated_at    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (account_id, task_id)
);

CREATE TABLE objects.touchpoints (
    account_id    text NOT NULL,
    touchpoint_id text NOT NULL,
    subject       text,
    content       text,
    type          text,
    date          date,
    reason        text,
    owner_email   text,  -- foreign key: objects.team_users
    _run          text,
    _updated_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (account_id, touchpoint_id)
);

CREATE TABLE objects.account_foreign_keys (
    account_id     text NOT NULL,
    foreign_key_id text NOT NULL,
    system         text,
    _run           text,
    _updated_at    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (account_id, foreign_key_id)
);

-- Custom attributes (DataModelService). Each is also a column of its
-- object's table, added in the same transaction.
CREATE TABLE intake.attributes (
    object            text        NOT NULL,  -- object id, e.g. "accounts"
    attribute_id      text        NOT NULL,  -- also the column name
    display_name      text        NOT NULL,
    type              smallint    NOT NULL,  -- intake.v1.AttributeType
    references_object text        NOT NULL DEFAULT '',  -- FOREIGN_KEY: "objects/{object}"
    description       text        NOT NULL DEFAULT '',
    create_time       timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (object, attribute_id)
);

-- The data model a run loads into (intake.v1.DataObject as protojson),
-- resolved when its run request is first published and reused by every
-- later publish. NULL for runs of earlier versions.
ALTER TABLE intake.runs ADD COLUMN model jsonb;

-- The loader: the type of each staged attribute (intake.v1.AttributeType,
-- in the order of attributes; NULL until a batch brought them) and whether
-- the run is a dry run.
ALTER TABLE intake.load_runs ADD COLUMN types integer[];
ALTER TABLE intake.load_runs ADD COLUMN dry_run boolean NOT NULL DEFAULT false;

-- +goose Down
ALTER TABLE intake.load_runs DROP COLUMN dry_run;
ALTER TABLE intake.load_runs DROP COLUMN types;
ALTER TABLE intake.runs DROP COLUMN model;
DROP TABLE intake.attributes;
DROP TABLE objects.account_foreign_keys;
DROP TABLE objects.touchpoints;
DROP TABLE objects.tasks;
DROP TABLE objects.account_assignments;
DROP TABLE objects.team_users;
DROP TABLE objects.usage_aggregations;
DROP TABLE objects.collections;
DROP TABLE objects.usage;
