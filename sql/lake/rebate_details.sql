-- The rows of rebate_details in the planned partitions, as the lake stores them: every column, `extra` as JSON text
-- (any engine reads text; a Parquet JSON type some read as bytes), sorted by order id within each file.
CREATE OR REPLACE TEMP VIEW lake_rebate_details AS
SELECT d.* REPLACE (CAST(d.extra AS VARCHAR) AS extra)
FROM rebate_details AS d
WHERE d.trade_date BETWEEN (SELECT min(day) FROM lake_plan WHERE lake_table = 'rebate_details')
                       AND (SELECT max(day) FROM lake_plan WHERE lake_table = 'rebate_details')
  AND (d.broker_type, d.trade_date) IN (SELECT broker_type, day FROM lake_plan WHERE lake_table = 'rebate_details')
ORDER BY d.broker_type, d.trade_date, d.ord_id, d.broker_code;
