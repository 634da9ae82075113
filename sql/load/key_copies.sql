-- Where a duplicated key's rows come from (window and data row), to say so in the rejection.
SELECT window_id, file_id, source_row
FROM rebate_details
WHERE ord_id = $ord_id AND broker_code = $broker_code AND trade_date = $trade_date
ORDER BY window_id = $window_id DESC, source_row;
