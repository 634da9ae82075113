-- Refresh, step 1 of 3: drop the summed rows of every order whose ordId lies in a pending range.
DELETE FROM summed_orders
WHERE ord_id BETWEEN $first_ord_id AND $last_ord_id;
