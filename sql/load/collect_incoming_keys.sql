-- Mark the orders of a file being loaded (the registered frame `incoming`) stale in rebate_orders.
INSERT INTO pending_order_refresh
SELECT ord_id, broker_code
FROM incoming;
