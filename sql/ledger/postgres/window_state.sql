-- window_state (PostgreSQL): the state a window is in now, its row locked until the transaction ends, so two
-- workers cannot both move it from the state they read (DuckDB's single writer does this for the embedded ledger).
SELECT state
FROM rebate_windows
WHERE window_id = $window_id
FOR UPDATE;
