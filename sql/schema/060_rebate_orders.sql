-- rebate_orders: exactly one row per (account, ord_id, broker_code): an order's rows summed across all the days (and
-- windows) it filled on, within the account that loaded them. OKX gives each broker account its own broker codes, so
-- (ord_id, broker_code), the key analysts join on, is unique as well (docs/schema.md). A load lists the ordId ranges it touches in pending_order_ranges;
-- sql/load/*_orders_in_range.sql recompute them at the end of each pass, before the analysts' snapshot is published.
-- One row per key holds by construction (delete the keys, insert one GROUP BY row each), so no index is kept.
CREATE TABLE IF NOT EXISTS rebate_orders (
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
    fill_days            INTEGER NOT NULL,           -- days it filled on (rows in rebate_details)
    windows              INTEGER NOT NULL,           -- windows its rows came from (2 when it straddles a boundary)
    account              VARCHAR NOT NULL DEFAULT 'default'  -- the OKX broker account its rows were loaded for
);

-- Databases from before accounts: every order was the default account's (sql/schema/065 lists the others for the
-- next refresh).
ALTER TABLE rebate_orders ADD COLUMN IF NOT EXISTS account VARCHAR DEFAULT 'default';
