-- The next planned day of one table after $after, as lake_batch (one row per account and broker type with a
-- partition that day); sql/lake/batch_bounds.sql then makes the day the views' constant bounds, so a scan reads only
-- its row groups.
CREATE OR REPLACE TEMP TABLE lake_batch AS
SELECT account, broker_type, day FROM lake_plan
WHERE lake_table = $lake_table AND day = (SELECT min(day) FROM lake_plan WHERE lake_table = $lake_table AND day > $after);
