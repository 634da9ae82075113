-- by_account: the period's totals per OKX broker account, top earner first; in the report of all accounts whenever
-- more than one has rows in the period.
-- $start, $end: the period's days (trade_date in REBATES_TZ, both included); $broker_code: one code, or NULL for all;
-- $account: one account, or NULL for all.
-- Grain: account. The effective rate and the share are computed by the report, in Decimal. An order belongs to one
-- account, so the accounts' orders add up to the period's.
-- Reads rebate_details, not the daily views: distinct orders over a period cannot be added up from days.
SELECT
    account,
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
GROUP BY account
ORDER BY broker_rebate DESC, account;
