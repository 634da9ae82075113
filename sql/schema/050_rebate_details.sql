-- rebate_details: one row per row of an OKX rebate file, at its natural grain: one order, one broker code, one day.
-- Key: (ord_id, broker_code, trade_date). OKX writes an order once per day it filled (`ts` is the last fill that
-- day), so an order that fills on two days has two rows, possibly in two windows; see docs/schema.md.
-- The key is enforced by every load (sql/load/duplicate_keys.sql over the new file's days, inside the load's
-- transaction) rather than by a PRIMARY KEY, whose index cost more than the rest of the insert. The key holds across
-- accounts too: OKX gives each broker account its own broker codes, so one (ord_id, broker_code) is one account's.
CREATE TABLE IF NOT EXISTS rebate_details (
    broker_type          VARCHAR NOT NULL,           -- 'api' | 'oauth' | 'default' (the window's)
    broker_code          VARCHAR NOT NULL,           -- brokerCode the user's orders were tagged with
    level                VARCHAR,                    -- the user's fee level (Lv1, VIP2, ...); NULL when OKX left it empty
    uid                  VARCHAR,                    -- the user's id (16-column files only)
    inst_id              VARCHAR NOT NULL,           -- instrument, e.g. BTC-USDT, SOL-USDT-SWAP
    inst_type            VARCHAR NOT NULL,           -- SPOT | SWAP | FUTURES | OPTION | OTHER, from inst_id (macro inst_type)
    ord_id               VARCHAR NOT NULL,           -- OKX order id: 19 digits, kept as text
    cl_ord_id            VARCHAR,                    -- client order id, NULL when the order had none
    spot_trade_amt       DECIMAL(38, 18) NOT NULL,   -- spot volume, USDT
    derivative_trade_amt DECIMAL(38, 18) NOT NULL,   -- derivative volume, USDT
    fee                  DECIMAL(38, 18) NOT NULL,   -- fee, USDT, negative as OKX stores fees
    net_fee              DECIMAL(38, 18) NOT NULL,   -- fee base for commission after commission cards etc., USDT
    settlement_fee       DECIMAL(38, 18) NOT NULL,   -- fee base before settlement deductions, USDT
    broker_rebate        DECIMAL(38, 18) NOT NULL,   -- rebate to the broker, USDT
    sub_broker_rebate    DECIMAL(38, 18) NOT NULL,   -- rebate to the sub-broker, USDT (suBrokerRebate)
    user_rebate          DECIMAL(38, 18) NOT NULL,   -- rebate to the user, USDT
    affiliated           BOOLEAN NOT NULL,           -- whether there is an affiliated rebate
    ts                   TIMESTAMPTZ NOT NULL,       -- the order's last fill that day
    trade_date           DATE NOT NULL,              -- ts's day in REBATES_TZ
    extra                JSON,                       -- columns OKX added that this schema does not know, by header
    window_id            VARCHAR NOT NULL,           -- lineage: rebate_windows.window_id
    file_id              VARCHAR NOT NULL,           -- lineage: rebate_files.file_id (the archived file)
    source_row           BIGINT NOT NULL,            -- lineage: the data row in that file, from 1
    loaded_at            TIMESTAMPTZ NOT NULL,
    account              VARCHAR NOT NULL DEFAULT 'default'  -- the window's OKX broker account ('default' without REBATES_ACCOUNTS)
);

-- Databases from before accounts: every row is its window's account's (only 'default' unless a window of another
-- account was loaded before this column existed).
ALTER TABLE rebate_details ADD COLUMN IF NOT EXISTS account VARCHAR DEFAULT 'default';
UPDATE rebate_details SET account = w.account
FROM rebate_windows AS w
WHERE w.window_id = rebate_details.window_id AND w.account <> 'default' AND rebate_details.account = 'default';
