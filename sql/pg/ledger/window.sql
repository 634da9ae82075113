-- window: one window by id.
SELECT *
FROM rebate_windows
WHERE window_id = %(window_id)s;
