-- The rows of rebate_orders in this batch of planned partitions (lake_batch) (by account, broker_type and
-- first_trade_date): the view rebate_orders, with its orders of one row read through the batch's ordId bounds
-- (lake_low_ord..lake_high_ord, sql/lake/batch_bounds.sql), so only that part of summed_orders is read.
CREATE OR REPLACE TEMP VIEW lake_rebate_orders AS
SELECT o.*
FROM (
    SELECT * FROM single_row_orders(getvariable('lake_low_ord'), getvariable('lake_high_ord'))
    UNION ALL BY NAME
    SELECT * FROM summed_orders
) AS o
WHERE o.first_trade_date BETWEEN getvariable('lake_low') AND getvariable('lake_high')  -- constants: prune row groups
  AND (o.account, o.broker_type, o.first_trade_date) IN (SELECT account, broker_type, day FROM lake_batch);
