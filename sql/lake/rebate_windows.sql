-- The ledger as analysts need it to know what is complete: one row per window, small, rewritten by every publish.
CREATE OR REPLACE TEMP VIEW lake_rebate_windows AS
SELECT window_id, account, broker_type, begin_date, end_date, kind, state, file_id, loaded_at, rows_loaded, last_error
FROM rebate_windows
ORDER BY account, broker_type, begin_date;
