-- +goose Up
-- Access control: the API tokens callers authenticate with
-- ("authorization: Bearer <token>", see api/auth.go and api/access.go).

-- An API token: one tenant, one role. The token a caller holds is
-- "itk_<id>_<secret>"; the API finds the row by id and compares the SHA-256
-- of the whole token with hash in constant time. The token itself is shown
-- once, when it is made, and never stored. A revoked or expired token keeps
-- its row (ListTokens shows it with show_inactive) but is refused.
CREATE TABLE intake.access_tokens (
    id             text PRIMARY KEY,
    -- The tenant's id: "default" for the tenant "tenants/default".
    tenant_id      text        NOT NULL,
    role           text        NOT NULL CHECK (role IN ('admin', 'editor', 'viewer', 'trigger', 'worker')),
    -- For the trigger role: the ids of the jobs it may trigger.
    jobs           text[]      NOT NULL DEFAULT '{}',
    display_name   text        NOT NULL DEFAULT '',
    hash           bytea       NOT NULL UNIQUE,
    -- The token that made this one ("bootstrap" for the server's bootstrap
    -- admin token), for the audit trail.
    created_by     text        NOT NULL DEFAULT '',
    create_time    timestamptz NOT NULL DEFAULT now(),
    expire_time    timestamptz,
    revoke_time    timestamptz,
    last_used_time timestamptz,
    CHECK (role = 'trigger' OR jobs = '{}'),
    CHECK (role <> 'trigger' OR jobs <> '{}')
);
-- ListTokens pages through a tenant's tokens, oldest first.
CREATE INDEX access_tokens_tenant ON intake.access_tokens (tenant_id, create_time, id);

-- +goose Down
DROP TABLE intake.access_tokens;
