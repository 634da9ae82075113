-- lake_publishes: every publish of the analysts' Parquet lake (REBATES_DATA_DIR/lake, pipeline/store/lake.py); each
-- pass ends with one.
-- Grain: publish_id. The lake holds every load up to the latest row's last_load_id; loads after it (a pass that died
-- between its load and its publish) are published by the next pass.
CREATE SEQUENCE IF NOT EXISTS lake_publish_ids;
CREATE TABLE IF NOT EXISTS lake_publishes (
    publish_id           BIGINT PRIMARY KEY DEFAULT nextval('lake_publish_ids'),
    published_at         TIMESTAMPTZ NOT NULL,
    last_load_id         BIGINT NOT NULL,      -- every rebate_loads row up to this load_id is in the lake (0: none yet)
    partitions_written   INTEGER NOT NULL,     -- partition files replaced (the three small tables are rewritten too)
    partitions_removed   INTEGER NOT NULL,     -- partition files deleted (their partition has no rows any more)
    bytes_written        BIGINT NOT NULL,      -- every file written, the small tables included
    entry_point          VARCHAR NOT NULL,     -- fingerprint of the analysts' entry point's SQL as last written
    layout               INTEGER NOT NULL DEFAULT 1, -- the lake's folder layout (pipeline/store/lake.py LAKE_LAYOUT)
    ledger_digest        VARCHAR               -- digest of what the small tables' files hold (sql/lake/ledger_digest.sql)
);

-- Publishes from before the layout was recorded wrote layout 1 (no account= folder level); the next publish of a
-- newer layout rewrites the whole lake in it and removes the old folders.
ALTER TABLE lake_publishes ADD COLUMN IF NOT EXISTS layout INTEGER DEFAULT 1;

-- Publishes from before the digest was recorded: the next publish writes the small tables again and records it.
ALTER TABLE lake_publishes ADD COLUMN IF NOT EXISTS ledger_digest VARCHAR;

-- lake_pending_orders: orders whose rebate_orders row is about to be recomputed (those in pending_order_ranges), noted
-- just before the refresh, with the lake partition that held them then (NULL: none). The publish that rewrites their old
-- and new partitions empties it; a pass that dies in between leaves it for the next. A key may be listed more than once.
CREATE TABLE IF NOT EXISTS lake_pending_orders (
    ord_id               VARCHAR NOT NULL,
    broker_code          VARCHAR NOT NULL,
    broker_type          VARCHAR,
    first_trade_date     DATE,
    account              VARCHAR                     -- with broker_type and first_trade_date: the partition
);

ALTER TABLE lake_pending_orders ADD COLUMN IF NOT EXISTS account VARCHAR;
