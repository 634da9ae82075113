-- What one window holds in rebate_details: rows and every amount's total, read back to check a load.
-- The trade_date bounds let DuckDB skip row groups of other windows; window_id decides.
SELECT
    count(*) AS rows,
    coalesce(sum(COLUMNS(lambda c: list_contains(amount_columns(), c))), 0)
FROM rebate_details
WHERE window_id = $window_id AND trade_date BETWEEN $min_date AND $max_date;
