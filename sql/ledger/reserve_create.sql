-- reserve_create: spend the hour on a window before the POST goes out, so a crash mid-call still counts it.
INSERT INTO create_attempts (window_id, attempted_at, outcome, budget_until)
VALUES ($window_id, $now, 'reserved', $budget_until)
RETURNING attempt_id;
