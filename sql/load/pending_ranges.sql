-- The ordId ranges whose orders of more than one row loads marked stale (one row per range, maybe overlapping):
-- what refresh_orders recomputes.
SELECT first_ord_id, last_ord_id
FROM pending_order_ranges
ORDER BY first_ord_id, last_ord_id;
