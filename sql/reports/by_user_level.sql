-- by_user_level: the period's totals per user fee level ('(none)' where OKX left it empty), top earner first.
-- $start, $end: the period's days (trade_date in REBATES_TZ, both included); $broker_code: one code, or NULL for all;
-- $account: one account, or NULL for all.
-- Grain: level, per row of rebate_details: an order or user whose level changed during the period counts under each.
-- Reads rebate_details, not the daily views: distinct orders over a period cannot be added up from days.
SELECT
    coalesce(level, '(none)') AS level,
    count(DISTINCT ord_id) AS orders,
    count(DISTINCT uid) AS users,
    sum(net_fee) AS net_fee,
    sum(broker_rebate) AS broker_rebate
FROM rebate_details
WHERE trade_date BETWEEN $start AND $end
  AND ($broker_code IS NULL OR broker_code = $broker_code)
  AND ($account IS NULL OR account = $account)
GROUP BY coalesce(level, '(none)')
ORDER BY broker_rebate DESC, level;
