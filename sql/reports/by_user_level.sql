-- by_user_level: the period's totals per user fee level ('(none)' where OKX left it empty), top earner first.
-- $start, $end: the period's days (trade_date in REBATES_TZ, both included); $broker_code: one code, or NULL for all;
-- $account: one account, or NULL for all.
-- Grain: level, per row of rebate_details: an order or user whose level changed during the period counts under each,
-- so orders and users may add up to more than the period's (the amounts add up exactly). users is NULL where none
-- of the level's rows carries a uid.
-- Reads rebate_details, not the daily views: distinct orders over a period cannot be added up from days.
SELECT
    coalesce(level, '(none)') AS level,
    count(DISTINCT ord_id) AS orders,
    CASE WHEN count(uid) > 0 THEN count(DISTINCT uid) END AS users,
    sum(COLUMNS(lambda c: list_contains(amount_columns(), c)))
FROM details_in_scope($start, $end, $broker_code, $account)
GROUP BY coalesce(level, '(none)')
ORDER BY broker_rebate DESC, level;
