-- What one window holds in rebate_details: rows, every amount's total and its days, read back to check a load.
-- The trade_date bounds let DuckDB skip row groups of other windows; window_id decides.
SELECT
    count(*) AS rows,
    min(trade_date) AS min_trade_date,
    max(trade_date) AS max_trade_date,
    coalesce(sum(COLUMNS(lambda c: list_contains(amount_columns(), c))), 0)
FROM rebate_details
WHERE window_id = $window_id AND trade_date BETWEEN $min_date AND $max_date;
