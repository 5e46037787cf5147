-- +goose Up
CREATE SCHEMA IF NOT EXISTS objects;

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
