-- record_create: what became of a reserved create; the budget stays spent unless budget_until moves it.
UPDATE create_attempts
SET outcome = %(outcome)s, server_ts = %(server_ts)s, detail = %(detail)s,
    budget_until = coalesce(%(budget_until)s::timestamptz, budget_until)
WHERE attempt_id = %(attempt_id)s;
