-- top_instruments: every instrument (instId) of the period with its totals, the biggest earner of broker rebate
-- first; the report shows the first $top and adds the rest up in one row.
-- $start, $end: the period's days (trade_date in REBATES_TZ, both included); $broker_code: one code, or NULL for all;
-- $account: one account, or NULL for all.
-- Grain: inst_id; ties broken by inst_id so the cut is stable. The share is computed by the report, in Decimal.
-- Reads rebate_details, not the daily views: distinct orders over a period cannot be added up from days.
SELECT
    inst_id,
    any_value(inst_type) AS inst_type,
    count(DISTINCT ord_id) AS orders,
    sum(COLUMNS(lambda c: list_contains(amount_columns(), c)))
FROM details_in_scope($start, $end, $broker_code, $account)
GROUP BY inst_id
ORDER BY broker_rebate DESC, inst_id;
