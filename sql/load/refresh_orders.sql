-- Recompute rebate_orders for the orders listed in pending_order_refresh, from every row they have in every
-- window, then empty the list and count the orders: run in one transaction, at the end of each pass.
CREATE OR REPLACE TEMP TABLE refresh_keys AS
SELECT DISTINCT ord_id, broker_code FROM pending_order_refresh;

DELETE FROM rebate_orders
WHERE (ord_id, broker_code) IN (SELECT ord_id, broker_code FROM refresh_keys);

INSERT INTO rebate_orders
SELECT
    d.ord_id,
    d.broker_code,
    arg_max(d.broker_type, d.ts),
    arg_max(d.uid, d.ts),
    arg_max(d.level, d.ts),
    arg_max(d.inst_id, d.ts),
    arg_max(d.inst_type, d.ts),
    arg_max(d.cl_ord_id, d.ts),
    sum(d.spot_trade_amt),
    sum(d.derivative_trade_amt),
    sum(d.fee),
    sum(d.net_fee),
    sum(d.settlement_fee),
    sum(d.broker_rebate),
    sum(d.sub_broker_rebate),
    sum(d.user_rebate),
    bool_or(d.affiliated),
    min(d.ts),
    max(d.ts),
    min(d.trade_date),
    max(d.trade_date),
    count(*),
    count(DISTINCT d.window_id)
FROM rebate_details AS d
JOIN refresh_keys AS k USING (ord_id, broker_code)
GROUP BY d.ord_id, d.broker_code;

DELETE FROM pending_order_refresh;

SELECT count(*) FROM refresh_keys;
