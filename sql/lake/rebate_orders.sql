-- The rows of rebate_orders in the planned partitions (by broker_type and first_trade_date), sorted by order id.
CREATE OR REPLACE TEMP VIEW lake_rebate_orders AS
SELECT o.*
FROM rebate_orders AS o
WHERE o.first_trade_date BETWEEN (SELECT min(day) FROM lake_plan WHERE lake_table = 'rebate_orders')
                             AND (SELECT max(day) FROM lake_plan WHERE lake_table = 'rebate_orders')
  AND (o.broker_type, o.first_trade_date) IN (SELECT broker_type, day FROM lake_plan WHERE lake_table = 'rebate_orders')
ORDER BY o.broker_type, o.first_trade_date, o.ord_id, o.broker_code;
