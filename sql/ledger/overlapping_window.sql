-- overlapping_window: a window of the same broker type sharing a day with [$begin_date, $end_date], if any.
SELECT window_id
FROM rebate_windows
WHERE broker_type = $broker_type AND begin_date <= $end_date AND end_date >= $begin_date
LIMIT 1;
