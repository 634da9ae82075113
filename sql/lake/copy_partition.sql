-- Write one partition of a lake table (the temp view {view}, its day fixed by lake_batch, its account and broker type
-- by the variables lake_account and lake_broker_type) as one Parquet file at {target}. The partition columns live in
-- the folder names only.
COPY (
    SELECT * EXCLUDE (account, broker_type, {day_column}) FROM {view}
    WHERE account = getvariable('lake_account') AND broker_type = getvariable('lake_broker_type')
) TO {target} (FORMAT parquet);
