-- create_budget_next_at: when the account may make its next create: the latest budget_until of every create it
-- reserved or made (NULL before the first). Each account has its own hour.
SELECT max(budget_until)
FROM create_attempts
WHERE account = $account;
