-- recent_slots: forget the slots older than the limiter's window, then list the ones still inside it, oldest first.
-- Run under the (limiter, account) advisory lock.
WITH expired AS (
    DELETE FROM limiter_slots
    WHERE limiter = $limiter AND account = $account AND granted_at <= $since
)
SELECT granted_at
FROM limiter_slots
WHERE limiter = $limiter AND account = $account AND granted_at > $since
ORDER BY granted_at;
