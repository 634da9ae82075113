-- The lake partitions a publish rewrites: lake_plan(lake_table, account, broker_type, day), one row per Parquet file
-- to write again (or delete, when its partition has no rows any more).
--   rebate_details, partitioned by (account, broker_type, trade_date): the days of every load since the last publish
--   and of the load each one replaced (the window's old rows), in the load's account.
--   rebate_orders, partitioned by (account, broker_type, first_trade_date): an order sums rows across days and
--   windows, so a load can move it to another partition or change it in one that is not a loaded day's. Rewritten:
--   the loaded and replaced days, and every day with a row of the orders the refreshes since recomputed
--   (lake_pending_days: where each of them was, and is).
-- $full rewrites every partition the tables have (the first publish, a lake that was deleted, or a new layout).
CREATE OR REPLACE TEMP TABLE lake_plan AS
WITH published AS (
    SELECT coalesce(max(last_load_id), 0) AS last_load_id FROM lake_publishes
),
loads AS (
    SELECT
        load_id,
        window_id,
        account,
        min_trade_date,
        max_trade_date,
        lag(min_trade_date) OVER (PARTITION BY window_id ORDER BY load_id) AS replaced_min,
        lag(max_trade_date) OVER (PARTITION BY window_id ORDER BY load_id) AS replaced_max
    FROM rebate_loads
),
spans AS (
    SELECT window_id, account, min_trade_date AS low, max_trade_date AS high FROM loads
    WHERE load_id > (SELECT last_load_id FROM published)
    UNION ALL
    SELECT window_id, account, replaced_min, replaced_max FROM loads
    WHERE load_id > (SELECT last_load_id FROM published)
),
changed_days AS (
    SELECT DISTINCT s.account, w.broker_type, CAST(unnest(generate_series(CAST(s.low AS TIMESTAMP), CAST(s.high AS TIMESTAMP), INTERVAL 1 DAY)) AS DATE) AS day
    FROM spans AS s
    JOIN rebate_windows AS w USING (window_id)
    WHERE s.low IS NOT NULL
)
SELECT 'rebate_details' AS lake_table, account, broker_type, day FROM changed_days
UNION
SELECT 'rebate_orders', account, broker_type, day FROM changed_days
UNION
SELECT 'rebate_orders', account, broker_type, day FROM lake_pending_days
UNION
SELECT DISTINCT 'rebate_details', account, broker_type, trade_date FROM rebate_details WHERE $full
UNION
SELECT DISTINCT 'rebate_orders', account, broker_type, first_trade_date FROM rebate_orders WHERE $full;
