-- The publish is done: forget the order ranges it has rewritten and record up to which load the lake holds (one
-- transaction). Parameters go in the last statement only.
DELETE FROM lake_pending_ranges;

INSERT INTO lake_publishes (
    published_at, last_load_id, partitions_written, partitions_removed, bytes_written, entry_point, layout,
    ledger_digest
)
SELECT now(), coalesce((SELECT max(load_id) FROM rebate_loads), 0), $written, $removed, $bytes, $entry_point, $layout,
    $ledger_digest;
