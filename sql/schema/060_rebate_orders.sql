-- summed_orders: one row per (account, ord_id, broker_code) of the orders with more than one row in rebate_details
-- (filled on several days, or in several windows), those rows summed within the account that loaded them. An order of
-- one row is that row, so it is not copied here: the view rebate_orders (sql/schema/062) reads it from
-- rebate_details. A load lists the ordId ranges it touches in pending_order_ranges; sql/load/*_orders_in_range.sql and
-- insert_orders_filled_twice.sql recompute them at the end of each pass, before the analysts' lake is published. One
-- row per key holds by construction (delete the keys, insert one GROUP BY row each), so no index is kept.
CREATE TABLE IF NOT EXISTS summed_orders (
    ord_id               VARCHAR NOT NULL,
    broker_code          VARCHAR NOT NULL,
    broker_type          VARCHAR NOT NULL,
    uid                  VARCHAR,                    -- from the latest day
    level                VARCHAR,                    -- from the latest day
    inst_id              VARCHAR NOT NULL,
    inst_type            VARCHAR NOT NULL,
    cl_ord_id            VARCHAR,
    spot_trade_amt       DECIMAL(38, 18) NOT NULL,
    derivative_trade_amt DECIMAL(38, 18) NOT NULL,
    fee                  DECIMAL(38, 18) NOT NULL,
    net_fee              DECIMAL(38, 18) NOT NULL,
    settlement_fee       DECIMAL(38, 18) NOT NULL,
    broker_rebate        DECIMAL(38, 18) NOT NULL,
    sub_broker_rebate    DECIMAL(38, 18) NOT NULL,
    user_rebate          DECIMAL(38, 18) NOT NULL,
    affiliated           BOOLEAN NOT NULL,           -- true when any of its days had an affiliated rebate
    first_ts             TIMESTAMPTZ NOT NULL,       -- last fill of its first day
    last_ts              TIMESTAMPTZ NOT NULL,       -- last fill of its last day
    first_trade_date     DATE NOT NULL,
    last_trade_date      DATE NOT NULL,
    fill_days            INTEGER NOT NULL,           -- days it filled on (rows in rebate_details), 2 or more
    windows              INTEGER NOT NULL,           -- windows its rows came from (2 when it straddles a boundary)
    account              VARCHAR NOT NULL DEFAULT 'default'  -- the OKX broker account its rows were loaded for
);
