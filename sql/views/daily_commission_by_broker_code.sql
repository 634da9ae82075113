-- daily_commission_by_broker_code: rebate and fee totals per day (trade_date in REBATES_TZ) and broker type, by broker code (the code the user's orders were tagged with).
-- Grain: (trade_date, broker_type, broker_code). Amounts in USDT, exact DECIMAL(38,18).
CREATE OR REPLACE VIEW daily_commission_by_broker_code AS
SELECT
    trade_date,
    broker_type,
    broker_code,
    count(*) AS rows,
    count(DISTINCT ord_id) AS orders,
    count(DISTINCT uid) AS users,
    sum(spot_trade_amt) AS spot_trade_amt,
    sum(derivative_trade_amt) AS derivative_trade_amt,
    sum(fee) AS fee,
    sum(net_fee) AS net_fee,
    sum(settlement_fee) AS settlement_fee,
    sum(broker_rebate) AS broker_rebate,
    sum(sub_broker_rebate) AS sub_broker_rebate,
    sum(user_rebate) AS user_rebate
FROM rebate_details
GROUP BY ALL;
