-- lake_publishes: every publish of the analysts' Parquet lake (REBATES_DATA_DIR/lake, pipeline/store/lake.py); each
-- pass that changed what the lake shows ends with one (an idle pass publishes nothing).
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

-- lake_pending_ranges: the ordId ranges of pending_order_ranges (orders the refresh recomputes), noted just before the
-- refresh. The publish rewrites the rebate_orders partitions of every day with a row in them (an order's partition is
-- its first day, before and after: one of its rows' days, or a day a load replaced, which the plan has already) and
-- empties it; a pass that dies in between leaves it for the next.
CREATE TABLE IF NOT EXISTS lake_pending_ranges (
    first_ord_id         VARCHAR NOT NULL,
    last_ord_id          VARCHAR NOT NULL
);

-- Databases from before the ranges listed each pending order with its partition; carry a leftover list over as one
-- range (its orders' rows still name their days), then drop it.
CREATE TABLE IF NOT EXISTS lake_pending_orders (ord_id VARCHAR NOT NULL, broker_code VARCHAR NOT NULL);
INSERT INTO lake_pending_ranges
SELECT min(ord_id), max(ord_id) FROM lake_pending_orders HAVING count(*) > 0;
DROP TABLE lake_pending_orders;
