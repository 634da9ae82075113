-- daily_commission_by_broker_code: rebate and fee totals per day (trade_date in REBATES_TZ), account and broker type, by broker code (the code the user's orders were tagged with).
-- Grain: (trade_date, account, broker_type, broker_code). Amounts in USDT, exact DECIMAL(38,18).
CREATE OR REPLACE VIEW daily_commission_by_broker_code AS
SELECT
    trade_date,
    account,
    broker_type,
    broker_code,
    count(*) AS rows,
    count(DISTINCT ord_id) AS orders,
    count(DISTINCT uid) AS users,
    sum(COLUMNS(lambda c: list_contains(amount_columns(), c)))
FROM rebate_details
GROUP BY ALL;
