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
FROM details_in_scope($start, $end, $broker_code, $account)
GROUP BY window_id, broker_code, trade_date
ORDER BY window_id, broker_code, trade_date;
