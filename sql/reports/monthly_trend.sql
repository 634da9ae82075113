-- monthly_trend: every calendar month from $start to $end (both the first day of a month and a month's last day),
-- with its totals, active broker codes and users, and whether any loaded window holds a day of it.
-- $broker_code: one code, or NULL for all; $account: one account, or NULL for all.
-- Grain: month. users is NULL where none of the month's rows carries a uid (`rows` says whether it has any);
-- has_data is false for a month no loaded window touches: its figures are unknown, not zero.
-- Reads rebate_details, not the daily views: distinct orders, codes and users over a month cannot be added up.
WITH months AS (
    SELECT CAST(series.month AS DATE) AS month
    FROM generate_series(CAST($start AS DATE), CAST($end AS DATE), INTERVAL 1 MONTH) AS series(month)
),

totals AS (
    SELECT
        CAST(date_trunc('month', trade_date) AS DATE) AS month,
        count(*) AS rows,
        count(DISTINCT ord_id) AS orders,
        count(DISTINCT broker_code) AS broker_codes,
        CASE WHEN count(uid) > 0 THEN count(DISTINCT uid) END AS users,
        sum(COLUMNS(lambda c: list_contains(amount_columns(), c)))
    FROM details_in_scope($start, $end, $broker_code, $account)
    GROUP BY 1
),

loaded AS (
    SELECT months.month, count(windows.window_id) AS windows
    FROM months
    JOIN rebate_windows AS windows
      ON windows.state = 'loaded' AND windows.begin_date <= last_day(months.month) AND windows.end_date >= months.month
     AND ($account IS NULL OR windows.account = $account)
    GROUP BY months.month
)

SELECT
    months.month,
    coalesce(loaded.windows, 0) > 0 AS has_data,
    coalesce(totals.rows, 0) AS rows,
    coalesce(totals.orders, 0) AS orders,
    coalesce(totals.broker_codes, 0) AS broker_codes,
    totals.users,
    coalesce(COLUMNS(lambda c: list_contains(amount_columns(), c)), 0)  -- totals' sums: no other source has them
FROM months
LEFT JOIN totals ON totals.month = months.month
LEFT JOIN loaded ON loaded.month = months.month
ORDER BY months.month;
