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
