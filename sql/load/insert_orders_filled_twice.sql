-- Refresh, step 3 of 3: one summed_orders row per (account, ord_id, broker_code) of the slice with more than one
-- row (orders_filled_twice), from every row the order has in every window of its account (they all share its
-- ordId, so the slice holds them all). The slices are not per account: a slice recomputes every account's orders
-- in it. The ordId filter lets DuckDB skip the row groups of other times by their min/max ordId. The attributes
-- come from the latest day, in one arg_max.
INSERT INTO summed_orders
SELECT
    ord_id,
    broker_code,
    latest.broker_type,
    latest.uid,
    latest.level,
    latest.inst_id,
    latest.inst_type,
    latest.cl_ord_id,
    spot_trade_amt, derivative_trade_amt, fee, net_fee, settlement_fee, broker_rebate, sub_broker_rebate, user_rebate,
    affiliated, first_ts, last_ts, first_trade_date, last_trade_date, fill_days, windows, account
FROM (
    SELECT
        account,
        ord_id,
        broker_code,
        arg_max(
            {'broker_type': broker_type, 'uid': uid, 'level': level, 'inst_id': inst_id, 'inst_type': inst_type,
             'cl_ord_id': cl_ord_id},
            ts
        ) AS latest,
        sum(COLUMNS(lambda c: list_contains(amount_columns(), c))),
        bool_or(affiliated) AS affiliated,
        min(ts) AS first_ts,
        max(ts) AS last_ts,
        min(trade_date) AS first_trade_date,
        max(trade_date) AS last_trade_date,
        count(*) AS fill_days,
        count(DISTINCT window_id) AS windows
    FROM rebate_details
    WHERE ord_id BETWEEN $first_ord_id AND $last_ord_id AND ord_id > $after AND ord_id <= $through
      AND (account, ord_id, broker_code) IN (FROM orders_filled_twice)
    GROUP BY account, ord_id, broker_code
);
