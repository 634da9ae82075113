-- clear_slots: forget every slot of one limiter and account (penalize writes a full window after it).
DELETE FROM limiter_slots
WHERE limiter = $limiter AND account = $account;
