-- Before rebate_orders is refreshed: remember the orders it will recompute in one pending ordId range
-- ($first_ord_id..$last_ord_id, run once per merged range of pending_order_ranges) and where the lake holds each of
-- them now (its partition is (broker_type, first_trade_date) of its current row, in its account's folder), so the
-- publish rewrites both places. Orders new to rebate_orders have no old partition: the loaded days cover their new
-- one. The bounds are constants so that DuckDB skips other times' row groups by their min/max ordId; read from
-- pending_order_ranges in a join, they made this a scan of the whole table (2.5 s at 10M rows, every pass).
INSERT INTO lake_pending_orders
SELECT o.ord_id, o.broker_code, o.broker_type, o.first_trade_date, o.account
FROM rebate_orders AS o
WHERE o.ord_id BETWEEN $first_ord_id AND $last_ord_id;
