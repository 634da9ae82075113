-- insert_window: a new window, planned.
INSERT INTO rebate_windows (window_id, account, broker_type, begin_date, end_date, kind, state, planned_at, updated_at)
VALUES ($window_id, $account, $broker_type, $begin_date, $end_date, $kind, 'planned', $now, $now);
