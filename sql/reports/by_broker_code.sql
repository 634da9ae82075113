-- by_broker_code: the period's totals per broker code (the code the user's orders were tagged with), top earner first.
-- $start, $end: the period's days (trade_date in REBATES_TZ, both included); $broker_code: one code, or NULL for all;
-- $account: one account, or NULL for all.
-- Grain: (broker_type, broker_code). The effective rate and the share are computed by the report, in Decimal.
-- Reads rebate_details, not the daily views: distinct orders over a period cannot be added up from days.
SELECT
    broker_type,
    broker_code,
    count(DISTINCT ord_id) AS orders,
    count(DISTINCT uid) AS users,
    sum(spot_trade_amt) AS spot_trade_amt,
    sum(derivative_trade_amt) AS derivative_trade_amt,
    sum(fee) AS fee,
    sum(net_fee) AS net_fee,
    sum(broker_rebate) AS broker_rebate
FROM rebate_details
WHERE trade_date BETWEEN $start AND $end
  AND ($broker_code IS NULL OR broker_code = $broker_code)
  AND ($account IS NULL OR account = $account)
GROUP BY broker_type, broker_code
ORDER BY broker_rebate DESC, broker_type, broker_code;
