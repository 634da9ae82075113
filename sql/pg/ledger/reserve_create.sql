-- reserve_create: spend the account's hour on a window before the POST goes out, so a crash mid-call still counts it.
INSERT INTO create_attempts (window_id, account, attempted_at, outcome, budget_until)
VALUES (%(window_id)s, %(account)s, %(now)s, 'reserved', %(budget_until)s)
RETURNING attempt_id;
