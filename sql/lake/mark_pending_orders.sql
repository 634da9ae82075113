-- Before rebate_orders is refreshed: remember the ordId ranges it will recompute (pending_order_ranges, which the
-- refresh empties) until a publish has rewritten their orders' partitions (sql/lake/pending_days.sql).
INSERT INTO lake_pending_ranges
SELECT first_ord_id, last_ord_id FROM pending_order_ranges;
