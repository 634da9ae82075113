-- overlapping_window: a window of the same account and broker type sharing a day with [$begin_date, $end_date].
SELECT window_id
FROM rebate_windows
WHERE account = $account AND broker_type = $broker_type
    AND begin_date <= $end_date AND end_date >= $begin_date
LIMIT 1;
