-- Remember the orders a window's current rows belong to (their rebate_orders rows must be recomputed).
INSERT INTO touched_orders
SELECT DISTINCT ord_id, broker_code
FROM rebate_details
WHERE window_id = $window_id AND trade_date BETWEEN $min_date AND $max_date;
