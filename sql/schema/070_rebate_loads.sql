-- rebate_loads: every load of a window, with what the file held and what landed; the reconciliation trail.
-- Grain: load_id. The latest load of a window is the one its rows in rebate_details come from.
CREATE SEQUENCE IF NOT EXISTS rebate_load_ids;
CREATE TABLE IF NOT EXISTS rebate_loads (
    load_id              BIGINT PRIMARY KEY DEFAULT nextval('rebate_load_ids'),
    window_id            VARCHAR NOT NULL,
    file_id              VARCHAR NOT NULL,
    loaded_at            TIMESTAMPTZ NOT NULL,
    rows_in_file         BIGINT NOT NULL,
    rows_loaded          BIGINT NOT NULL,
    rows_replaced        BIGINT NOT NULL,           -- rows of the window's previous load that this one replaced
    min_trade_date       DATE,                      -- the window's rows span these days (NULL for an empty file)
    max_trade_date       DATE,
    file_totals          JSON NOT NULL,             -- {"fee": "-12.34", ...} summed from the parsed file, exact text
    loaded_totals        JSON NOT NULL,             -- the same sums read back from rebate_details after the insert
    extra_columns        VARCHAR[] NOT NULL,        -- unknown columns kept in rebate_details.extra
    warnings             VARCHAR[] NOT NULL,
    account              VARCHAR NOT NULL DEFAULT 'default'  -- the window's OKX broker account
);

-- Databases from before accounts: every load is its window's account's.
ALTER TABLE rebate_loads ADD COLUMN IF NOT EXISTS account VARCHAR DEFAULT 'default';
UPDATE rebate_loads SET account = w.account
FROM rebate_windows AS w
WHERE w.window_id = rebate_loads.window_id AND w.account <> 'default' AND rebate_loads.account = 'default';
