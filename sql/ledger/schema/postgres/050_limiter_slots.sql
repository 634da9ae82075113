-- limiter_slots (PostgreSQL state): the OKX request slots granted per account and limiter ('okx-get-slots',
-- 'okx-if-rebate-slots') within the limiter's rolling window; older rows are deleted as slots are taken.
-- Grain: one row per slot granted. Guarded by a per-(limiter, account) advisory transaction lock.
CREATE TABLE IF NOT EXISTS limiter_slots (
    account      TEXT NOT NULL,
    limiter      TEXT NOT NULL,
    granted_at   TIMESTAMPTZ NOT NULL
);

CREATE INDEX IF NOT EXISTS limiter_slots_by_limiter ON limiter_slots (limiter, account, granted_at);
