-- reconciliation: per window sharing a day with the period, its latest loaded file and whether the database still
-- holds exactly what was loaded from it (whole window: the file's totals as parsed at load against the rows now).
-- $start, $end: the period's days (both included); $account: one account's windows, or NULL for all. Whole windows,
-- never clipped to the period: this is the check that nothing changed since the load. The period's own figures are
-- reconciled against the archived file re-read (window_code_days.sql gives the database's side). One row per window
-- that has been loaded (its latest load, which its rows come from), whatever its state now. file_totals is JSON of
-- exact decimal strings; the held sums are recomputed from rebate_details now, not copied from
-- rebate_loads.loaded_totals, so a later change shows.
WITH latest AS (
    SELECT window_id, file_id, rows_in_file, file_totals
    FROM rebate_loads
    QUALIFY row_number() OVER (PARTITION BY window_id ORDER BY load_id DESC) = 1
),

in_period AS (
    SELECT window_id, account, broker_type, begin_date, end_date, state
    FROM rebate_windows
    WHERE begin_date <= $end AND end_date >= $start
      AND ($account IS NULL OR account = $account)
),

held AS (
    SELECT
        window_id,
        count(*) AS rows_in_db,
        sum(COLUMNS(lambda c: list_contains(amount_columns(), c)))
    FROM rebate_details
    WHERE window_id IN (SELECT window_id FROM in_period)
    GROUP BY window_id
)

SELECT
    in_period.window_id,
    in_period.account,
    in_period.broker_type,
    in_period.begin_date,
    in_period.end_date,
    in_period.state,
    files.path,
    files.sha256,
    latest.rows_in_file,
    coalesce(held.rows_in_db, 0) AS rows_in_db,
    CAST(latest.file_totals AS VARCHAR) AS file_totals,
    coalesce(COLUMNS(lambda c: list_contains(amount_columns(), c)), 0)  -- held's sums: no other source has them
FROM in_period
JOIN latest ON latest.window_id = in_period.window_id
JOIN rebate_files AS files ON files.file_id = latest.file_id
LEFT JOIN held ON held.window_id = in_period.window_id
ORDER BY in_period.begin_date, in_period.account, in_period.broker_type;
