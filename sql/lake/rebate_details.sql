-- The rows of rebate_details in this batch of planned partitions (lake_batch), as the lake stores them: every column, `extra` as JSON text
-- (any engine reads text; a Parquet JSON type some read as bytes). Rows keep their load order: sorting them cost
-- the publish 40% and no reader needs it.
CREATE OR REPLACE TEMP VIEW lake_rebate_details AS
SELECT d.* REPLACE (CAST(d.extra AS VARCHAR) AS extra)
FROM rebate_details AS d
WHERE d.trade_date BETWEEN getvariable('lake_low') AND getvariable('lake_high')  -- constants: prune row groups
  AND (d.account, d.broker_type, d.trade_date) IN (SELECT account, broker_type, day FROM lake_batch);
