-- Before rebate_orders is refreshed: remember which orders will change, and where the lake holds each of them now
-- (its partition is (broker_type, first_trade_date) of its current row), so the publish rewrites both places.
INSERT INTO lake_pending_orders
SELECT p.ord_id, p.broker_code, o.broker_type, o.first_trade_date
FROM (SELECT DISTINCT ord_id, broker_code FROM pending_order_refresh) AS p
LEFT JOIN rebate_orders AS o USING (ord_id, broker_code);
