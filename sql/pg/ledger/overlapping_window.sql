-- overlapping_window: a window of the same account and broker type sharing a day with [begin_date, end_date].
SELECT window_id
FROM rebate_windows
WHERE account = %(account)s AND broker_type = %(broker_type)s
    AND begin_date <= %(end_date)s AND end_date >= %(begin_date)s
LIMIT 1;
