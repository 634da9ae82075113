-- Macros every table and view shares, declared once.
-- inst_type: SPOT / SWAP / FUTURES / OPTION from an OKX instId (BTC-USDT, BTC-USDT-SWAP, BTC-USD-250328,
-- BTC-USD-250328-100000-C), OTHER for anything else.
CREATE OR REPLACE MACRO inst_type(inst_id) AS CASE
    WHEN inst_id LIKE '%-SWAP' THEN 'SWAP'
    WHEN regexp_full_match(inst_id, '[^-]+-[^-]+-\d{6}-[0-9.]+-[CP]') THEN 'OPTION'
    WHEN regexp_full_match(inst_id, '[^-]+-[^-]+-\d{6}') THEN 'FUTURES'
    WHEN regexp_full_match(inst_id, '[^-]+-[^-]+') THEN 'SPOT'
    ELSE 'OTHER'
END;

-- amount_columns: the eight amounts of a rebate row, in the file's order (pipeline/columns.py agrees). Sum them all
-- at once with sum(COLUMNS(lambda c: list_contains(amount_columns(), c))): each keeps its own name.
CREATE OR REPLACE MACRO amount_columns() AS [
    'spot_trade_amt', 'derivative_trade_amt', 'fee', 'net_fee',
    'settlement_fee', 'broker_rebate', 'sub_broker_rebate', 'user_rebate'
];
