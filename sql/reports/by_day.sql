-- by_day: every day of the period, with its totals (zeros on a day without rows) and whether its data is complete.
-- $start, $end: the period's days (trade_date in REBATES_TZ, both included); $broker_code: one code, or NULL for all;
-- $account: one account, or NULL for all.
-- covered: every (account, broker type) the ledger has windows for (of $account, if given) has a loaded window
-- holding the day; false for every day while the ledger is empty. loaded_types: how many (account, broker type)
-- have a loaded window holding the day; 0 means no file holds it at all, so its figures are unknown, not zero. orders
-- counts distinct orders that filled on the day, so an order filling on two days counts on both and the days add up
-- to more than the period's orders; the amounts add up exactly. A day's record does not depend on $start and $end:
-- a report asks once for every day it needs and slices it.
WITH days AS (
    SELECT CAST(series.day AS DATE) AS trade_date
    FROM generate_series(CAST($start AS DATE), CAST($end AS DATE), INTERVAL 1 DAY) AS series(day)
),

-- Built on the daily view: an order has one account, one broker type and one broker code, so its distinct orders per
-- (day, account, type, code) add up to the day's distinct orders.
totals AS (
    SELECT
        trade_date,
        sum(orders) AS orders,
        sum(COLUMNS(lambda c: list_contains(amount_columns(), c)))
    FROM daily_commission_by_broker_code
    WHERE trade_date BETWEEN $start AND $end
      AND ($broker_code IS NULL OR broker_code = $broker_code)
      AND ($account IS NULL OR account = $account)
    GROUP BY trade_date
),

broker_types AS (
    SELECT count(DISTINCT (account, broker_type)) AS known
    FROM rebate_windows
    WHERE $account IS NULL OR account = $account
),

coverage AS (
    SELECT days.trade_date, count(DISTINCT (windows.account, windows.broker_type)) AS covering
    FROM days
    JOIN rebate_windows AS windows
      ON windows.state = 'loaded' AND days.trade_date BETWEEN windows.begin_date AND windows.end_date
     AND ($account IS NULL OR windows.account = $account)
    GROUP BY days.trade_date
)

SELECT
    days.trade_date,
    CAST(coalesce(totals.orders, 0) AS BIGINT) AS orders,
    coalesce(COLUMNS(lambda c: list_contains(amount_columns(), c)), 0),  -- totals' sums: no other source has them
    broker_types.known > 0 AND coalesce(coverage.covering, 0) = broker_types.known AS covered,
    coalesce(coverage.covering, 0) AS loaded_types
FROM days
CROSS JOIN broker_types
LEFT JOIN totals ON totals.trade_date = days.trade_date
LEFT JOIN coverage ON coverage.trade_date = days.trade_date
ORDER BY days.trade_date;
