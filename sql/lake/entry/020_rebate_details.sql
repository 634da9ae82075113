-- rebate_details: one row per row of a rebate file, read from the lake
-- (rebate_details/account=*/broker_type=*/trade_date=*/).
-- The same columns, types and grain as the pipeline's table (docs/schema.md); `extra` is the JSON object as text.
CREATE OR REPLACE VIEW rebate_details AS
SELECT
    broker_type, broker_code, level, uid, inst_id, inst_type, ord_id, cl_ord_id,
    spot_trade_amt, derivative_trade_amt, fee, net_fee, settlement_fee, broker_rebate, sub_broker_rebate, user_rebate,
    affiliated, ts, trade_date, extra, window_id, file_id, source_row, loaded_at, account
FROM read_parquet(
    lake_dir() || 'rebate_details/*/*/*/*.parquet',
    hive_partitioning = true,
    hive_types = {'account': 'VARCHAR', 'broker_type': 'VARCHAR', 'trade_date': 'DATE'}
);
