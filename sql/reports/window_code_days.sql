-- window_code_days: what the database holds per window, broker code and day of the period: the side of the
-- reconciliation that the archived files, re-read, are set against.
-- $start, $end: the period's days (trade_date in REBATES_TZ, both included); $broker_code: one code, or NULL for all;
-- $account: one account's windows, or NULL for all.
-- Grain: (window_id, broker_code, trade_date); rows counts rows of rebate_details (one per order and day).
SELECT
    window_id,
    broker_code,
    trade_date,
    count(*) AS rows,
    sum(COLUMNS(lambda c: list_contains(amount_columns(), c)))
FROM rebate_details
WHERE trade_date BETWEEN $start AND $end
  AND ($broker_code IS NULL OR broker_code = $broker_code)
  AND ($account IS NULL OR account = $account)
GROUP BY window_id, broker_code, trade_date
ORDER BY window_id, broker_code, trade_date;
