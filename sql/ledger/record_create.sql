-- record_create: what became of a reserved create; the budget stays spent unless $budget_until moves it.
UPDATE create_attempts
SET outcome = $outcome, server_ts = $server_ts, detail = $detail,
    budget_until = coalesce(CAST($budget_until AS TIMESTAMPTZ), budget_until)
WHERE attempt_id = $attempt_id;
