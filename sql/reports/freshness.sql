-- freshness: one row saying how current the data is, for $account (or every account when NULL):
-- last_load, when the newest load finished; latest_complete_day, the newest day every (account, broker type) the
-- ledger has windows for holds in a loaded window (the oldest of their newest loaded days; NULL when some has none).
WITH scopes AS (
    SELECT DISTINCT account, broker_type FROM rebate_windows WHERE $account IS NULL OR account = $account
),

newest AS (
    SELECT scopes.account, scopes.broker_type, max(windows.end_date) AS end_date
    FROM scopes
    LEFT JOIN rebate_windows AS windows
      ON windows.account = scopes.account AND windows.broker_type = scopes.broker_type AND windows.state = 'loaded'
    GROUP BY scopes.account, scopes.broker_type
)

SELECT
    (SELECT max(loaded_at) FROM rebate_loads WHERE $account IS NULL OR account = $account) AS last_load,
    CASE WHEN count(*) > 0 AND count(end_date) = count(*) THEN min(end_date) END AS latest_complete_day
FROM newest;
