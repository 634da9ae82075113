-- by_account: the period's totals per OKX broker account, top earner first; in the report of all accounts whenever
-- more than one has rows in the period.
-- $start, $end: the period's days (trade_date in REBATES_TZ, both included); $broker_code: one code, or NULL for all;
-- $account: one account, or NULL for all.
-- Grain: account. users is NULL where none of the account's rows carries a uid. The effective rate and the share
-- are computed by the report, in Decimal. An order belongs to one account, so the accounts' orders add up to the
-- period's.
-- Reads rebate_details, not the daily views: distinct orders over a period cannot be added up from days.
SELECT
    account,
    count(DISTINCT ord_id) AS orders,
    CASE WHEN count(uid) > 0 THEN count(DISTINCT uid) END AS users,
    sum(COLUMNS(lambda c: list_contains(amount_columns(), c)))
FROM details_in_scope($start, $end, $broker_code, $account)
GROUP BY account
ORDER BY broker_rebate DESC, account;
