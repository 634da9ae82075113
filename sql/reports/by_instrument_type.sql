-- by_instrument_type: the period's totals per instrument type (SPOT, SWAP, FUTURES, OPTION, OTHER), top earner first.
-- $start, $end: the period's days (trade_date in REBATES_TZ, both included); $broker_code: one code, or NULL for all;
-- $account: one account, or NULL for all. The report runs it for the previous period too, to show the change.
-- Grain: inst_type. The share of the broker rebate is computed by the report, in Decimal. An order has one
-- instrument, so the types' orders add up to the period's.
-- Reads rebate_details, not the daily views: distinct orders over a period cannot be added up from days.
SELECT
    inst_type,
    count(DISTINCT ord_id) AS orders,
    sum(COLUMNS(lambda c: list_contains(amount_columns(), c)))
FROM details_in_scope($start, $end, $broker_code, $account)
GROUP BY inst_type
ORDER BY broker_rebate DESC, inst_type;
