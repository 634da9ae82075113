-- Write one lake table's planned partitions (the temp view {view}) into the staging folder {target}, hive style:
-- {target}/account=default/broker_type=api/{day_column}=2025-01-31/*.parquet. The partition columns live in the folder names only.
COPY (FROM {view}) TO {target} (FORMAT parquet, PARTITION_BY (account, broker_type, {day_column}), OVERWRITE_OR_IGNORE);
