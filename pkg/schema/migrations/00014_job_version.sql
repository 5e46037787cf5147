-- +goose Up
-- A job row's version: a number from one sequence, set when the row is
-- inserted and again by every UPDATE of it (whatever the statement
-- changes), so a number names one content of one row for good (a job
-- deleted and created again with its id gets a new one). The API keeps
-- the jobs it decoded by (id, version) (store.JobCache) and reads only the
-- version of a job it already holds.
CREATE SEQUENCE intake.job_versions;
ALTER TABLE intake.jobs ADD COLUMN version bigint NOT NULL DEFAULT nextval('intake.job_versions');

-- +goose StatementBegin
CREATE FUNCTION intake.job_version() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    NEW.version := nextval('intake.job_versions');
    RETURN NEW;
END
$$;
-- +goose StatementEnd
CREATE TRIGGER jobs_version BEFORE UPDATE ON intake.jobs FOR EACH ROW EXECUTE FUNCTION intake.job_version();

-- A run's tenant: an INSERT that names it (the scheduled runs' batch, which
-- read the jobs' tenants in the same call) keeps it; one that does not
-- gets its job's from the trigger, which no longer runs for every row of a
-- batch (it was a sixth of the batch's time in PostgreSQL).
ALTER TABLE intake.runs ALTER COLUMN tenant_id SET DEFAULT '';
-- +goose StatementBegin
CREATE OR REPLACE FUNCTION intake.run_tenant() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    NEW.tenant_id := COALESCE((SELECT j.tenant_id FROM intake.jobs j WHERE j.id = NEW.job_id), 'default');
    RETURN NEW;
END
$$;
-- +goose StatementEnd
DROP TRIGGER runs_tenant ON intake.runs;
CREATE TRIGGER runs_tenant BEFORE INSERT ON intake.runs FOR EACH ROW WHEN (NEW.tenant_id = '') EXECUTE FUNCTION intake.run_tenant();

-- No query filters or joins on a run's JSON columns, but ANALYZE of
-- intake.runs sampled and sorted them (jsonb comparisons of 2 KB
-- documents: half a CPU second at 40,000 runs, taken from whatever else
-- ran, such as a burst of scheduled runs).
ALTER TABLE intake.runs ALTER COLUMN job SET STATISTICS 0, ALTER COLUMN model SET STATISTICS 0,
    ALTER COLUMN counters SET STATISTICS 0, ALTER COLUMN stages SET STATISTICS 0;

-- +goose Down
ALTER TABLE intake.runs ALTER COLUMN job SET STATISTICS -1, ALTER COLUMN model SET STATISTICS -1,
    ALTER COLUMN counters SET STATISTICS -1, ALTER COLUMN stages SET STATISTICS -1;
DROP TRIGGER runs_tenant ON intake.runs;
-- +goose StatementBegin
CREATE OR REPLACE FUNCTION intake.run_tenant() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    NEW.tenant_id := COALESCE((SELECT j.tenant_id FROM intake.jobs j WHERE j.id = NEW.job_id), NEW.tenant_id);
    RETURN NEW;
END
$$;
-- +goose StatementEnd
CREATE TRIGGER runs_tenant BEFORE INSERT ON intake.runs FOR EACH ROW EXECUTE FUNCTION intake.run_tenant();
ALTER TABLE intake.runs ALTER COLUMN tenant_id SET DEFAULT 'default';
DROP TRIGGER jobs_version ON intake.jobs;
DROP FUNCTION intake.job_version();
ALTER TABLE intake.jobs DROP COLUMN version;
DROP SEQUENCE intake.job_versions;
