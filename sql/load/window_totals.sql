-- What one window holds in rebate_details: rows and every amount's total, read back to check a load.
-- The trade_date bounds let DuckDB skip row groups of other windows; window_id decides.
SELECT
    count(*) AS rows,
    coalesce(sum(spot_trade_amt), 0) AS spot_trade_amt,
    coalesce(sum(derivative_trade_amt), 0) AS derivative_trade_amt,
    coalesce(sum(fee), 0) AS fee,
    coalesce(sum(net_fee), 0) AS net_fee,
    coalesce(sum(settlement_fee), 0) AS settlement_fee,
    coalesce(sum(broker_rebate), 0) AS broker_rebate,
    coalesce(sum(sub_broker_rebate), 0) AS sub_broker_rebate,
    coalesce(sum(user_rebate), 0) AS user_rebate
FROM rebate_details
WHERE window_id = $window_id AND trade_date BETWEEN $min_date AND $max_date;
