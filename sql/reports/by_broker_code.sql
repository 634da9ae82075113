-- by_broker_code: the period's totals per broker code (the code the user's orders were tagged with), every amount,
-- top earner first: what is owed per code.
-- $start, $end: the period's days (trade_date in REBATES_TZ, both included); $broker_code: one code, or NULL for all;
-- $account: one account, or NULL for all.
-- Grain: (broker_code, broker_type). users is NULL where none of the code's rows carries a uid (14-column api
-- files), never 0; accounts lists the accounts it has rows in (OKX gives each account its own codes: one). The
-- effective rate and the share are computed by the report, in Decimal.
-- Reads rebate_details, not the daily views: distinct orders over a period cannot be added up from days.
SELECT
    broker_code,
    broker_type,
    list(DISTINCT account ORDER BY account) AS accounts,
    count(DISTINCT ord_id) AS orders,
    CASE WHEN count(uid) > 0 THEN count(DISTINCT uid) END AS users,
    sum(COLUMNS(lambda c: list_contains(amount_columns(), c)))
FROM details_in_scope($start, $end, $broker_code, $account)
GROUP BY broker_code, broker_type
ORDER BY broker_rebate DESC, broker_code, broker_type;
