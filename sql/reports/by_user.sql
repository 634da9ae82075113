-- by_user: the period's totals per user (uid), with the broker codes the user's orders were tagged with, top earner
-- first; one last row (uid NULL) holds the rows of files that carry no uid (14-column api files), so the rows add
-- up to the period.
-- $start, $end: the period's days (trade_date in REBATES_TZ, both included); $broker_code: one code, or NULL for all;
-- $account: one account, or NULL for all.
-- Grain: uid. An order has one user, so the users' orders add up to the period's.
-- Reads rebate_details, not the daily views: distinct orders over a period cannot be added up from days.
SELECT
    uid,
    string_agg(DISTINCT broker_code, ', ' ORDER BY broker_code) AS broker_codes,
    count(DISTINCT ord_id) AS orders,
    sum(COLUMNS(lambda c: list_contains(amount_columns(), c)))
FROM details_in_scope($start, $end, $broker_code, $account)
GROUP BY uid
ORDER BY uid IS NULL, broker_rebate DESC, uid;
