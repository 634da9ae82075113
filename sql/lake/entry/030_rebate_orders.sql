-- rebate_orders: exactly one row per (account, ord_id, broker_code), and so per (ord_id, broker_code), read from the
-- lake (rebate_orders/account=*/broker_type=*/first_trade_date=*/). The same columns and types as the pipeline's table.
CREATE OR REPLACE VIEW rebate_orders AS
SELECT
    ord_id, broker_code, broker_type, uid, level, inst_id, inst_type, cl_ord_id,
    spot_trade_amt, derivative_trade_amt, fee, net_fee, settlement_fee, broker_rebate, sub_broker_rebate, user_rebate,
    affiliated, first_ts, last_ts, first_trade_date, last_trade_date, fill_days, windows, account
FROM read_parquet(
    lake_dir() || 'rebate_orders/*/*/*/*.parquet',
    hive_partitioning = true,
    hive_types = {'account': 'VARCHAR', 'broker_type': 'VARCHAR', 'first_trade_date': 'DATE'}
);
