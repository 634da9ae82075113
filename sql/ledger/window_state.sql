-- window_state: the state a window is in now.
SELECT state
FROM rebate_windows
WHERE window_id = $window_id;
