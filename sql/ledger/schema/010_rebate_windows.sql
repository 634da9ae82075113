-- rebate_windows: the acquisition ledger, one row per (broker type, window) with where its file is in its lifecycle.
-- Grain: window_id ('api:20240101-20240628'; 'eu:api:…' for account eu). Windows of one account and broker type
-- never overlap (enforced by the ledger).
CREATE TABLE IF NOT EXISTS rebate_windows (
    window_id            VARCHAR PRIMARY KEY,
    broker_type          VARCHAR NOT NULL,      -- 'api' | 'oauth' | 'default' (single-type broker: no brokerType sent)
    begin_date           DATE NOT NULL,         -- first day, in REBATES_TZ
    end_date             DATE NOT NULL,         -- last day, included
    kind                 VARCHAR NOT NULL,      -- history | daily | adopted
    state                VARCHAR NOT NULL,      -- planned → requesting → requested → ongoing → finished → downloaded → loaded; failed; quarantined
    planned_at           TIMESTAMPTZ NOT NULL,
    requested_at         TIMESTAMPTZ,           -- when our create was accepted, or the existing file adopted
    server_requested_at  TIMESTAMPTZ,           -- OKX's cTime (= the create's ts): the first request for this range anywhere
    polled_at            TIMESTAMPTZ,           -- last time OKX told us this window's state
    finished_at          TIMESTAMPTZ,           -- first time OKX said the file was finished
    file_id              VARCHAR,               -- latest archived file (rebate_files.file_id)
    downloaded_at        TIMESTAMPTZ,
    loaded_at            TIMESTAMPTZ,
    rows_loaded          BIGINT,
    attempts             INTEGER NOT NULL DEFAULT 0,  -- consecutive failures of the current step
    next_attempt_at      TIMESTAMPTZ,           -- not before this (after a failure)
    last_error           VARCHAR,               -- why the last step failed, or why the file was quarantined
    updated_at           TIMESTAMPTZ NOT NULL,
    account              VARCHAR NOT NULL DEFAULT 'default',  -- the OKX broker account (REBATES_ACCOUNTS; 'default' without)
    CHECK (end_date >= begin_date),
    CHECK (kind IN ('history', 'daily', 'adopted')),
    CHECK (state IN ('planned', 'requesting', 'requested', 'ongoing', 'finished', 'downloaded', 'loaded', 'failed', 'quarantined'))
);

-- Ledgers from before accounts: every window was the default account's.
ALTER TABLE rebate_windows ADD COLUMN IF NOT EXISTS account VARCHAR DEFAULT 'default';
