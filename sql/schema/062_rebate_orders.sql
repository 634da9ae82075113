-- rebate_orders: exactly one row per (account, ord_id, broker_code): an order's rows summed across all the days (and
-- windows) it filled on, within the account that loaded them. OKX gives each broker account its own broker codes, so
-- (ord_id, broker_code), the key analysts join on, is unique as well (docs/schema.md). An order of one row (95% of
-- a new window's) is that row, read from rebate_details as it is; the others are summed_orders' rows. So one-row
-- orders are never copied: the load writes them once, the lake publish reads them from rebate_details.
-- single_row_orders(low, high): the orders of one row; low..high bounds the ordIds summed_orders is read for, so a
-- caller that knows its ordIds (the lake's publish of one day) reads only that part of summed_orders.
CREATE OR REPLACE MACRO single_row_orders(low, high) AS TABLE
SELECT
    d.ord_id, d.broker_code, d.broker_type, d.uid, d.level, d.inst_id, d.inst_type, d.cl_ord_id,
    d.spot_trade_amt, d.derivative_trade_amt, d.fee, d.net_fee, d.settlement_fee, d.broker_rebate,
    d.sub_broker_rebate, d.user_rebate, d.affiliated, d.ts AS first_ts, d.ts AS last_ts,
    d.trade_date AS first_trade_date, d.trade_date AS last_trade_date, 1 AS fill_days, 1 AS windows, d.account
FROM rebate_details AS d
WHERE NOT EXISTS (
    SELECT 1 FROM summed_orders AS s
    WHERE s.ord_id BETWEEN low AND high
      AND s.account = d.account AND s.ord_id = d.ord_id AND s.broker_code = d.broker_code
);

CREATE OR REPLACE VIEW rebate_orders AS
SELECT * FROM single_row_orders('', chr(127))  -- every ordId (they are digits)
UNION ALL BY NAME
SELECT * FROM summed_orders;
