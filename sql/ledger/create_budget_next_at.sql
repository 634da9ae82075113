-- create_budget_next_at: when the account may make its next create: the latest budget_until of every create
-- reserved or made (NULL before the first).
SELECT max(budget_until)
FROM create_attempts;
