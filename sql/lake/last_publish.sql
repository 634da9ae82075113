-- What the last publish left the lake holding: every load up to last_load_id, the entry point's fingerprint and the
-- small tables' digest; whether anything came since (a load, or orders a refresh moved); and the lake's folder
-- layout then. No row: never published.
SELECT
    p.last_load_id,
    p.entry_point,
    p.ledger_digest,
    (SELECT coalesce(max(load_id), 0) FROM rebate_loads) > p.last_load_id
        OR EXISTS (SELECT 1 FROM lake_pending_ranges) AS changed,
    p.layout
FROM lake_publishes AS p
ORDER BY p.publish_id DESC
LIMIT 1;
