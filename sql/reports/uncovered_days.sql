-- uncovered_days: which (account, broker type) lacks a loaded window on which day of the period: what makes a day of
-- by_day not covered, for the report's warning. $start, $end: the period's days; $account: one account, or NULL for
-- all. Only the (account, broker type) pairs the ledger has windows for are expected.
WITH days AS (
    SELECT CAST(series.day AS DATE) AS trade_date
    FROM generate_series(CAST($start AS DATE), CAST($end AS DATE), INTERVAL 1 DAY) AS series(day)
),

scopes AS (
    SELECT DISTINCT account, broker_type FROM rebate_windows WHERE $account IS NULL OR account = $account
)

SELECT scopes.account, scopes.broker_type, days.trade_date
FROM scopes
CROSS JOIN days
WHERE NOT EXISTS (
    SELECT 1 FROM rebate_windows AS windows
    WHERE windows.state = 'loaded' AND windows.account = scopes.account AND windows.broker_type = scopes.broker_type
      AND days.trade_date BETWEEN windows.begin_date AND windows.end_date
)
ORDER BY scopes.account, scopes.broker_type, days.trade_date;
