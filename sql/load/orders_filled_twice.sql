-- Refresh, step 2 of 3: the orders of the slice after $after through $through that have more than one row in their
-- account (filled on several days, or in several windows), as the temp table orders_filled_twice. Grouping the keys
-- alone is cheap; the other orders (most of them) are one row each: the view rebate_orders reads them from
-- rebate_details as they are, so they are neither aggregated nor copied.
CREATE OR REPLACE TEMP TABLE orders_filled_twice AS
SELECT account, ord_id, broker_code
FROM rebate_details
WHERE ord_id BETWEEN $first_ord_id AND $last_ord_id AND ord_id > $after AND ord_id <= $through
GROUP BY account, ord_id, broker_code
HAVING count(*) > 1;
