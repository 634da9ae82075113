-- Before rebate_orders is refreshed: remember the orders it will recompute (every order in the ordId ranges loads
-- marked stale, pending_order_ranges) and where the lake holds each of them now (its partition is (broker_type,
-- first_trade_date) of its current row, in its account's folder), so the publish rewrites both places. Orders new to rebate_orders have no old
-- partition: the loaded days cover their new one.
INSERT INTO lake_pending_orders
SELECT o.ord_id, o.broker_code, o.broker_type, o.first_trade_date, o.account
FROM rebate_orders AS o
WHERE EXISTS (
    SELECT 1 FROM pending_order_ranges AS r WHERE o.ord_id BETWEEN r.first_ord_id AND r.last_ord_id
);
