-- The next batch of one table's planned partitions (at most $size days, in day order after $after), as lake_batch,
-- and its first and last day as variables: the views' constant bounds, so a scan reads only those days' row groups.
CREATE OR REPLACE TEMP TABLE lake_batch AS
SELECT account, broker_type, day FROM lake_plan
WHERE lake_table = $lake_table AND day IN (
    SELECT DISTINCT day FROM lake_plan WHERE lake_table = $lake_table AND day > $after ORDER BY day LIMIT $size
);
