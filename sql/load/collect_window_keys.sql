-- Mark the orders of a window's current rows stale in rebate_orders (they are about to be replaced).
INSERT INTO pending_order_refresh
SELECT ord_id, broker_code
FROM rebate_details
WHERE window_id = $window_id AND trade_date BETWEEN $min_date AND $max_date;
