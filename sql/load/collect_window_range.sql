-- Mark the orders of a window's rows on the given days stale in rebate_orders, as one range of ordIds: run before
-- the window's old rows are deleted and again once its new rows are in (same transaction). OKX ordIds grow with
-- time, so a file's range is narrow, and refresh recomputes every order in it, from all of its rows.
INSERT INTO pending_order_ranges
SELECT min(ord_id), max(ord_id)
FROM rebate_details
WHERE window_id = $window_id AND trade_date BETWEEN $min_date AND $max_date
HAVING count(*) > 0;
