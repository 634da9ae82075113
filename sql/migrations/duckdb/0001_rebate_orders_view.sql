-- rebate_orders became a view (sql/schema/062): one-row orders are read from rebate_details, the others from
-- summed_orders. Before, it was a table holding every order, one-row orders copied. apply_schema (pipeline/db.py)
-- renamed that table rebate_orders_retired before the object files made the view; its summed orders carry over here,
-- then it goes.
CREATE TABLE IF NOT EXISTS rebate_orders_retired AS SELECT * FROM summed_orders LIMIT 0;
ALTER TABLE rebate_orders_retired ADD COLUMN IF NOT EXISTS account VARCHAR DEFAULT 'default';
INSERT INTO summed_orders BY NAME
SELECT * REPLACE (coalesce(account, 'default') AS account) FROM rebate_orders_retired WHERE fill_days > 1;
DROP TABLE rebate_orders_retired;

-- Databases from before accounts (all of them had the table) carried their orders over as the default account's,
-- including orders summed with rows of another account's windows (loaded before orders had an account): list them
-- for the next refresh. An order of one row is its row (the view), whose account is always right.
INSERT INTO pending_order_ranges
SELECT min(d.ord_id), max(d.ord_id)
FROM rebate_details AS d
JOIN summed_orders AS o USING (ord_id, broker_code)
WHERE d.account <> 'default' AND o.account = 'default'
HAVING count(*) > 0;
