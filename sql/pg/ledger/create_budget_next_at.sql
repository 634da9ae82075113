-- create_budget_next_at: when the account may make its next create (NULL before the first).
SELECT max(budget_until)
FROM create_attempts
WHERE account = %(account)s;
