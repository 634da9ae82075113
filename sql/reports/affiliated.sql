-- affiliated: the period's totals split by whether the row had an affiliated rebate (true first).
-- $start, $end: the period's days (trade_date in REBATES_TZ, both included); $broker_code: one code, or NULL for all;
-- $account: one account, or NULL for all.
-- Grain: affiliated, per row of rebate_details: an order affiliated on one day and not on another counts under
-- both, so the orders may add up to more than the period's (the amounts add up exactly). The share of the broker
-- rebate is computed by the report.
-- Reads rebate_details, not the daily views: distinct orders over a period cannot be added up from days.
SELECT
    affiliated,
    count(DISTINCT ord_id) AS orders,
    sum(COLUMNS(lambda c: list_contains(amount_columns(), c)))
FROM details_in_scope($start, $end, $broker_code, $account)
GROUP BY affiliated
ORDER BY affiliated DESC;
