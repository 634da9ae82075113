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

-- lake_pending_ranges: the ordId ranges of pending_order_ranges (orders the refresh recomputes), noted just before the
-- refresh. The publish rewrites the rebate_orders partitions of every day with a row in them (an order's partition is
-- its first day, before and after: one of its rows' days, or a day a load replaced, which the plan has already) and
-- empties it; a pass that dies in between leaves it for the next.
CREATE TABLE IF NOT EXISTS lake_pending_ranges (
    first_ord_id         VARCHAR NOT NULL,
    last_ord_id          VARCHAR NOT NULL
);
