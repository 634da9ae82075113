-- Write one partition of a lake table (the temp view {view}, its day fixed by lake_batch, its broker type by the
-- variable lake_broker_type) as one Parquet file at {target}. The partition columns live in the folder names only.
COPY (
    SELECT * EXCLUDE (broker_type, {day_column}) FROM {view} WHERE broker_type = getvariable('lake_broker_type')
) TO {target} (FORMAT parquet);
