-- insert_window: a new window, planned.
INSERT INTO rebate_windows (window_id, account, broker_type, begin_date, end_date, kind, state, planned_at, updated_at)
VALUES (%(window_id)s, %(account)s, %(broker_type)s, %(begin_date)s, %(end_date)s, %(kind)s, 'planned', %(now)s, %(now)s);
