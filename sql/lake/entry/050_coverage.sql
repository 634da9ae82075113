-- coverage: one row per (account, broker_type, trade_date) the ledger has a window for, with that window and whether its rows
-- are in the lake (complete). A day with no row is not collected yet for that account and broker type; a day that is
-- not complete is not final.
CREATE OR REPLACE VIEW coverage AS
SELECT
    account,
    broker_type,
    CAST(unnest(generate_series(CAST(begin_date AS TIMESTAMP), CAST(end_date AS TIMESTAMP), INTERVAL 1 DAY)) AS DATE)
        AS trade_date,
    window_id,
    state,
    state = 'loaded' AS complete
FROM rebate_windows;
