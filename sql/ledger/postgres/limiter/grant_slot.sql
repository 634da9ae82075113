-- grant_slot: one slot granted now.
INSERT INTO limiter_slots (account, limiter, granted_at)
VALUES ($account, $limiter, $now);
