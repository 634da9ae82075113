-- rebate_details' key, checked after a file's rows went in when load/repeated_key_hashes.sql says a key may repeat: an
-- (ord_id, broker_code, trade_date) held twice on the new file's days, whether twice in the file or also in another
-- window. Bounded by those days, so the cost does not grow with history. Returns one such key, or nothing (two keys
-- that only shared a hash).
SELECT ord_id, broker_code, trade_date
FROM rebate_details
WHERE trade_date BETWEEN $min_date AND $max_date
GROUP BY ord_id, broker_code, trade_date
HAVING count(*) > 1
LIMIT 1;
