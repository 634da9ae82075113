-- windows_in_period: every ledger window sharing a day with the period, whatever its state, oldest first.
-- $start, $end: the period's days (both included); $account: one account's windows, or NULL for all. The report lists the loaded ones and warns about the others.
SELECT window_id, account, broker_type, begin_date, end_date, state, last_error
FROM rebate_windows
WHERE begin_date <= $end AND end_date >= $start
  AND ($account IS NULL OR account = $account)
ORDER BY begin_date, account, broker_type;
