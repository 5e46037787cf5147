-- +goose Up
-- Stored connections (ConnectionService) with their secrets sealed, jobs
-- that name one, what a fetch learnt about the file, and webhook secrets
-- sealed at rest.

-- A stored connection: the Connection message as protojson without its
-- name, output-only fields and secrets; each secret is in `secrets`, sealed
-- (pkg/secretbox: "v1:<key id>:<base64>", bound to "connections/<id>/<field>"),
-- keyed by its field path, e.g. {"s3.secret_access_key": "v1:k1:…"}.
CREATE TABLE intake.connections (
    id          text PRIMARY KEY,
    spec        jsonb       NOT NULL,
    secrets     jsonb       NOT NULL DEFAULT '{}',
    etag        text        NOT NULL,
    create_time timestamptz NOT NULL DEFAULT now(),
    update_time timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX connections_create ON intake.connections (create_time, id);

-- The jobs that use a connection (Connection.used_by, and DeleteConnection's
-- refusal) are found by the connection name in their spec.
CREATE INDEX jobs_connection ON intake.jobs ((spec->>'connectionName'));

-- What the fetcher reported with FETCHED: the HTTP validators (for the next
-- run's conditional request) and the file's size and modification time as
-- the server gave them. file_run: the run whose archived file this run's
-- file is, when the run did not download it (the server answered 304 Not
-- Modified); '' otherwise.
ALTER TABLE intake.runs
    ADD COLUMN etag               text NOT NULL DEFAULT '',
    ADD COLUMN last_modified      text NOT NULL DEFAULT '',
    ADD COLUMN source_size        bigint,
    ADD COLUMN source_modify_time timestamptz,
    ADD COLUMN file_run           text NOT NULL DEFAULT '';

-- A job's webhook secret sealed like a connection's secrets (bound to
-- "jobs/<id>/webhook.secret"). The plain column webhook_secret of 00010 is
-- still read: an API with a key ring moves its values here when it starts,
-- and writes only this column; one without a key ring keeps writing the
-- plain column (and warns).
ALTER TABLE intake.jobs ADD COLUMN webhook_secret_sealed text;

-- +goose Down
ALTER TABLE intake.jobs DROP COLUMN webhook_secret_sealed;
ALTER TABLE intake.runs
    DROP COLUMN etag,
    DROP COLUMN last_modified,
    DROP COLUMN source_size,
    DROP COLUMN source_modify_time,
    DROP COLUMN file_run;
DROP INDEX intake.jobs_connection;
DROP TABLE intake.connections;
