-- pending_order_refresh: orders whose rebate_orders row is stale, written by a load in its own transaction.
-- sql/load/refresh_orders.sql drains it; a pass that dies in between leaves it for the next pass. A key may be
-- listed more than once (one per load that touched it).
CREATE TABLE IF NOT EXISTS pending_order_refresh (
    ord_id      VARCHAR NOT NULL,
    broker_code VARCHAR NOT NULL
);
