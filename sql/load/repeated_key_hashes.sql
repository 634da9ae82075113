-- rebate_details' key, checked cheaply first after a file's rows went in: fewer distinct hashes of (ord_id,
-- broker_code, trade_date) than rows on the new file's days means a key may hold twice (or two keys share a 64-bit
-- hash); only then does load/duplicate_keys.sql group the keys themselves to find one. Counting distinct hashes costs
-- half of that GROUP BY of three text columns (0.85 s against 1.8 s on 10M rows).
SELECT count(*) > count(DISTINCT hash(ord_id, broker_code, trade_date))
FROM rebate_details
WHERE trade_date BETWEEN $min_date AND $max_date;
