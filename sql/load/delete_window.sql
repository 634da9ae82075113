-- Remove a window's rows before its new file's rows go in (same transaction).
DELETE FROM rebate_details
WHERE window_id = $window_id AND trade_date BETWEEN $min_date AND $max_date;
