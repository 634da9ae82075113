-- The rows of rebate_orders in this batch of planned partitions (lake_batch) (by account, broker_type and first_trade_date), in table order.
CREATE OR REPLACE TEMP VIEW lake_rebate_orders AS
SELECT o.*
FROM rebate_orders AS o
WHERE o.first_trade_date BETWEEN getvariable('lake_low') AND getvariable('lake_high')  -- constants: prune row groups
  AND (o.account, o.broker_type, o.first_trade_date) IN (SELECT account, broker_type, day FROM lake_batch);
