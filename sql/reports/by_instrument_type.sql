-- by_instrument_type: the period's totals per instrument type (SPOT, SWAP, FUTURES, OPTION, OTHER), top earner first.
-- $start, $end: the period's days (trade_date in REBATES_TZ, both included); $broker_code: one code, or NULL for all;
-- $account: one account, or NULL for all.
-- Grain: inst_type. The share of the broker rebate is computed by the report, in Decimal.
-- Reads rebate_details, not the daily views: distinct orders over a period cannot be added up from days.
SELECT
    inst_type,
    count(DISTINCT ord_id) AS orders,
    sum(spot_trade_amt) AS spot_trade_amt,
    sum(derivative_trade_amt) AS derivative_trade_amt,
    sum(net_fee) AS net_fee,
    sum(broker_rebate) AS broker_rebate
FROM rebate_details
WHERE trade_date BETWEEN $start AND $end
  AND ($broker_code IS NULL OR broker_code = $broker_code)
  AND ($account IS NULL OR account = $account)
GROUP BY inst_type
ORDER BY broker_rebate DESC, inst_type;
