-- The latest load of one window (one row, or none): the file whose rows the window holds and their days, so a load
-- of the same file again is a no-op and a new file replaces exactly those days' rows.
SELECT file_id, min_trade_date, max_trade_date
FROM rebate_loads
WHERE window_id = $window_id
ORDER BY load_id DESC
LIMIT 1;
