-- period_totals: the summary of one period, one row: every amount's total, the distinct orders, codes and users,
-- and how many rows carry a uid.
-- $start, $end: the period's days (trade_date in REBATES_TZ, both included); $broker_code: one code, or NULL for all;
-- $account: one account, or NULL for all.
-- Reads rebate_details rather than the daily views: distinct orders and users over a period cannot be added up
-- from days (an order filling on two days is one order). uid is NULL in 14-column (api) files: `rows` against
-- `rows_with_uid` says whether users can be counted at all, or only for some of the rows.
SELECT
    coalesce(sum(COLUMNS(lambda c: list_contains(amount_columns(), c))), 0),
    count(DISTINCT ord_id) AS orders,
    count(DISTINCT broker_code) AS broker_codes,
    count(DISTINCT uid) AS users,
    count(*) AS rows,
    count(uid) AS rows_with_uid
FROM details_in_scope($start, $end, $broker_code, $account);
