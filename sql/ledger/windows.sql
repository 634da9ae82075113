-- windows: every window of one account (of one broker type when $broker_type is not NULL), oldest first.
SELECT *
FROM rebate_windows
WHERE account = $account AND (CAST($broker_type AS VARCHAR) IS NULL OR broker_type = CAST($broker_type AS VARCHAR))
ORDER BY begin_date, broker_type;
