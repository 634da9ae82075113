-- rebate_details' key, checked cheaply first after a file's rows went in: a 64-bit hash of (ord_id, broker_code,
-- trade_date) held by two rows on the new file's days means a key may hold twice (or two keys share a hash); only
-- then does load/duplicate_keys.sql group the keys themselves to find one. Grouping one BIGINT costs about half of
-- that GROUP BY of three text columns (1.2 s against 1.8-2.1 s on 10M rows), and like it, it spills past
-- memory_limit (count(DISTINCT) of the hashes was faster still but ran out of memory at 50M rows). Returns one such
-- hash, or nothing.
SELECT key_hash
FROM (
    SELECT hash(ord_id, broker_code, trade_date) AS key_hash
    FROM rebate_details
    WHERE trade_date BETWEEN $min_date AND $max_date
)
GROUP BY key_hash
HAVING count(*) > 1
LIMIT 1;
