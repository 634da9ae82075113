-- The rebate_orders partitions one pending ordId range ($first_ord_id..$last_ord_id, run once per merged range of
-- lake_pending_ranges) may have changed, into lake_pending_days: every day a row of its orders lies on, for every
-- broker type of those rows, per account. An order's partition is its first day, before the refresh and after: a
-- day one of its rows lies on now, or one a load since replaced (the plan has those days already). The bounds are
-- constants so that DuckDB skips other times' row groups by their min/max ordId (a range join read the whole table).
INSERT INTO lake_pending_days
WITH touched AS (
    SELECT DISTINCT account, broker_type, trade_date
    FROM rebate_details
    WHERE ord_id BETWEEN $first_ord_id AND $last_ord_id
)
SELECT DISTINCT types.account, types.broker_type, days.trade_date
FROM touched AS types
JOIN touched AS days USING (account);
