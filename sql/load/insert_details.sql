-- Insert a parsed file's rows (the batch `incoming`, a local variable of the caller that DuckDB finds by name) as one
-- window's rows in rebate_details.
-- $broker_type, $window_id, $file_id, $loaded_at, $account: the window and lineage every row carries.
INSERT INTO rebate_details
SELECT
    $broker_type, broker_code, level, uid, inst_id, inst_type(inst_id), ord_id, cl_ord_id,
    spot_trade_amt, derivative_trade_amt, fee, net_fee, settlement_fee,
    broker_rebate, sub_broker_rebate, user_rebate,
    affiliated, ts, trade_date, extra::JSON,
    $window_id, $file_id, source_row, $loaded_at, $account
FROM incoming;
