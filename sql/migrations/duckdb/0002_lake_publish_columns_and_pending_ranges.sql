-- lake_publishes gained its layout (publishes before it wrote layout 1, no account= folder level: the next publish of a
-- newer layout rewrites the whole lake in it and removes the old folders) and its ledger_digest (publishes before it:
-- the next publish writes the small tables again and records it).
ALTER TABLE lake_publishes ADD COLUMN IF NOT EXISTS layout INTEGER DEFAULT 1;
ALTER TABLE lake_publishes ADD COLUMN IF NOT EXISTS ledger_digest VARCHAR;

-- lake_pending_orders listed each pending order with its partition before lake_pending_ranges (sql/schema/080) took
-- its place: a leftover list carries over as one range (its orders' rows still name their days), then it goes.
CREATE TABLE IF NOT EXISTS lake_pending_orders (ord_id VARCHAR NOT NULL, broker_code VARCHAR NOT NULL);
INSERT INTO lake_pending_ranges
SELECT min(ord_id), max(ord_id) FROM lake_pending_orders HAVING count(*) > 0;
DROP TABLE lake_pending_orders;
