-- Refresh, step 1 of 4: drop the rebate_orders rows of every order whose ordId lies in a pending range.
DELETE FROM rebate_orders
WHERE ord_id BETWEEN $first_ord_id AND $last_ord_id;
