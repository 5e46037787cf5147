-- +goose Up
-- Tenants: every job, connection, custom attribute, run, validation and
-- object row belongs to one tenant, and a token of one tenant sees nothing
-- of another (api/tenants.go). Job and connection ids stay unique across
-- tenants, so the workers' names ("jobs/{job}/runs/{run}", the scheduler's
-- keys) need no tenant.

-- A tenant and the PostgreSQL schema that holds its object tables: the
-- existing schema "objects" for the default tenant, "objects_<tenant>" for
-- the others (made with every object table when the tenant is first named,
-- by CreateToken).
CREATE TABLE intake.tenants (
    id            text PRIMARY KEY,
    object_schema text        NOT NULL UNIQUE,
    create_time   timestamptz NOT NULL DEFAULT now()
);
INSERT INTO intake.tenants (id, object_schema) VALUES ('default', 'objects');

ALTER TABLE intake.jobs ADD COLUMN tenant_id text NOT NULL DEFAULT 'default' REFERENCES intake.tenants (id);
CREATE INDEX jobs_tenant ON intake.jobs (tenant_id, create_time, id);

ALTER TABLE intake.connections ADD COLUMN tenant_id text NOT NULL DEFAULT 'default' REFERENCES intake.tenants (id);
CREATE INDEX connections_tenant ON intake.connections (tenant_id, create_time, id);

-- A run's tenant is its job's, set when the run is made (whoever makes it:
-- the API for a tenant, or a worker's CreateScheduledRun), and kept when
-- the job is deleted so that its history stays the tenant's.
ALTER TABLE intake.runs ADD COLUMN tenant_id text NOT NULL DEFAULT 'default';
CREATE INDEX runs_tenant ON intake.runs (tenant_id, job_id);

-- +goose StatementBegin
CREATE FUNCTION intake.run_tenant() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    NEW.tenant_id := COALESCE((SELECT j.tenant_id FROM intake.jobs j WHERE j.id = NEW.job_id), NEW.tenant_id);
    RETURN NEW;
END
$$;
-- +goose StatementEnd
CREATE TRIGGER runs_tenant BEFORE INSERT ON intake.runs FOR EACH ROW EXECUTE FUNCTION intake.run_tenant();

-- A validation belongs to the tenant that asked for it (it may be of a job
-- not saved yet).
ALTER TABLE intake.validations ADD COLUMN tenant_id text NOT NULL DEFAULT 'default';

-- Custom attributes are per tenant: the same id may have another type in
-- another tenant (a column of that tenant's own table).
ALTER TABLE intake.attributes ADD COLUMN tenant_id text NOT NULL DEFAULT 'default' REFERENCES intake.tenants (id);
ALTER TABLE intake.attributes DROP CONSTRAINT attributes_pkey;
ALTER TABLE intake.attributes ADD PRIMARY KEY (tenant_id, object, attribute_id);

-- The loader's record of a run: the tenant whose object tables it merges
-- into.
ALTER TABLE intake.load_runs ADD COLUMN tenant_id text NOT NULL DEFAULT 'default';

-- +goose Down
ALTER TABLE intake.load_runs DROP COLUMN tenant_id;
DELETE FROM intake.attributes WHERE tenant_id <> 'default';
ALTER TABLE intake.attributes DROP CONSTRAINT attributes_pkey;
ALTER TABLE intake.attributes ADD PRIMARY KEY (object, attribute_id);
ALTER TABLE intake.attributes DROP COLUMN tenant_id;
ALTER TABLE intake.validations DROP COLUMN tenant_id;
DROP TRIGGER runs_tenant ON intake.runs;
DROP FUNCTION intake.run_tenant();
ALTER TABLE intake.runs DROP COLUMN tenant_id;
ALTER TABLE intake.connections DROP COLUMN tenant_id;
ALTER TABLE intake.jobs DROP COLUMN tenant_id;
DROP TABLE intake.tenants;
