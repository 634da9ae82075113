-- daily_commission_by_user_level: rebate and fee totals per day (trade_date in REBATES_TZ), account and broker type, by user level (NULL levels shown as '(none)').
-- Grain: (trade_date, account, broker_type, level). Amounts in USDT, exact DECIMAL(38,18).
CREATE OR REPLACE VIEW daily_commission_by_user_level AS
SELECT
    trade_date,
    account,
    broker_type,
    coalesce(level, '(none)') AS level,
    count(*) AS rows,
    count(DISTINCT ord_id) AS orders,
    count(DISTINCT uid) AS users,
    sum(COLUMNS(lambda c: list_contains(amount_columns(), c)))
FROM rebate_details
GROUP BY ALL;
