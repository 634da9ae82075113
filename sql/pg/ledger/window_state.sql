-- window_state: the state a window is in now, its row locked until the transaction ends, so two workers cannot
-- both move it from the state they read.
SELECT state
FROM rebate_windows
WHERE window_id = %(window_id)s
FOR UPDATE;
