-- create_attempts: every create (POST) the pipeline made or reserved; each account's hourly budget is read from here.
-- Grain: attempt_id. A row is written ('reserved') before the POST goes out and updated with its outcome, so a
-- process killed mid-call still counts the hour as spent.
CREATE SEQUENCE IF NOT EXISTS create_attempt_ids;
CREATE TABLE IF NOT EXISTS create_attempts (
    attempt_id     BIGINT PRIMARY KEY DEFAULT nextval('create_attempt_ids'),
    window_id      VARCHAR NOT NULL,
    attempted_at   TIMESTAMPTZ NOT NULL,
    outcome        VARCHAR NOT NULL,            -- reserved | created | existed | rate_limited | failed
    server_ts      TIMESTAMPTZ,                 -- OKX's ts: first request for the range
    budget_until   TIMESTAMPTZ NOT NULL,        -- no create for the account before this
    detail         VARCHAR,
    account        VARCHAR NOT NULL DEFAULT 'default',  -- whose hour it spent: each account has its own
    CHECK (outcome IN ('reserved', 'created', 'existed', 'rate_limited', 'failed'))
);

-- Ledgers from before accounts: every create was the default account's.
ALTER TABLE create_attempts ADD COLUMN IF NOT EXISTS account VARCHAR DEFAULT 'default';
