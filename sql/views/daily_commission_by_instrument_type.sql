-- daily_commission_by_instrument_type: rebate and fee totals per day (trade_date in REBATES_TZ), account and broker type, by instrument type (SPOT / SWAP / FUTURES / OPTION, from instId).
-- Grain: (trade_date, account, broker_type, inst_type). Amounts in USDT, exact DECIMAL(38,18).
CREATE OR REPLACE VIEW daily_commission_by_instrument_type AS
SELECT
    trade_date,
    account,
    broker_type,
    inst_type,
    count(*) AS rows,
    count(DISTINCT ord_id) AS orders,
    count(DISTINCT uid) AS users,
    sum(COLUMNS(lambda c: list_contains(amount_columns(), c)))
FROM rebate_details
GROUP BY ALL;
