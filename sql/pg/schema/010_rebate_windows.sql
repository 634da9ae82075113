-- rebate_windows (PostgreSQL state): the acquisition ledger of every account; the same columns and rules as
-- sql/schema/010_rebate_windows.sql, which documents them. Grain: window_id.
CREATE TABLE IF NOT EXISTS rebate_windows (
    window_id            TEXT PRIMARY KEY,
    broker_type          TEXT NOT NULL,
    begin_date           DATE NOT NULL,
    end_date             DATE NOT NULL,
    kind                 TEXT NOT NULL,
    state                TEXT NOT NULL,
    planned_at           TIMESTAMPTZ NOT NULL,
    requested_at         TIMESTAMPTZ,
    server_requested_at  TIMESTAMPTZ,
    polled_at            TIMESTAMPTZ,
    finished_at          TIMESTAMPTZ,
    file_id              TEXT,
    downloaded_at        TIMESTAMPTZ,
    loaded_at            TIMESTAMPTZ,
    rows_loaded          BIGINT,
    attempts             INTEGER NOT NULL DEFAULT 0,
    next_attempt_at      TIMESTAMPTZ,
    last_error           TEXT,
    updated_at           TIMESTAMPTZ NOT NULL,
    account              TEXT NOT NULL DEFAULT 'default',
    CHECK (end_date >= begin_date),
    CHECK (kind IN ('history', 'daily', 'adopted')),
    CHECK (state IN ('planned', 'requesting', 'requested', 'ongoing', 'finished', 'downloaded', 'loaded', 'failed', 'quarantined'))
);

CREATE INDEX IF NOT EXISTS rebate_windows_by_account ON rebate_windows (account, broker_type, begin_date);
