-- windows_in_period: every ledger window sharing a day with the period, whatever its state, oldest first.
-- $start, $end: the period's days (both included). The report lists the loaded ones and warns about the others.
SELECT window_id, broker_type, begin_date, end_date, state, last_error
FROM rebate_windows
WHERE begin_date <= $end AND end_date >= $start
ORDER BY begin_date, broker_type;
