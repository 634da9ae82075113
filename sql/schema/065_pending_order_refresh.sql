-- pending_order_ranges: ranges of ordIds whose rebate_orders rows (summed_orders) are stale, written by a load in its own
-- transaction (sql/load/collect_window_range.sql). The end of each pass recomputes every order in them and empties
-- the table (pipeline/store/load.py: refresh_orders); a pass that dies in between leaves them for the next pass.
CREATE TABLE IF NOT EXISTS pending_order_ranges (
    first_ord_id VARCHAR NOT NULL,
    last_ord_id  VARCHAR NOT NULL
);

-- Databases from before the ranges listed each stale order; carry a leftover list over as one range, then drop it.
CREATE TABLE IF NOT EXISTS pending_order_refresh (ord_id VARCHAR NOT NULL, broker_code VARCHAR NOT NULL);
INSERT INTO pending_order_ranges
SELECT min(ord_id), max(ord_id) FROM pending_order_refresh HAVING count(*) > 0;
DROP TABLE pending_order_refresh;
