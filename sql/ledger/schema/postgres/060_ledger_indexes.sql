-- Indexes of the shared ledger (PostgreSQL): many workers of many accounts read it by account, window and hour.
-- The embedded ledger (one account's windows in DuckDB) is scanned whole, faster than an index would update.
CREATE INDEX IF NOT EXISTS rebate_windows_by_account ON rebate_windows (account, broker_type, begin_date);
CREATE INDEX IF NOT EXISTS rebate_files_by_window ON rebate_files (window_id);
CREATE INDEX IF NOT EXISTS create_attempts_by_account ON create_attempts (account, budget_until);
CREATE INDEX IF NOT EXISTS window_events_by_window ON window_events (window_id, event_id);
