-- windows: every window of the ledger (of one broker type when $broker_type is not NULL), oldest first.
SELECT *
FROM rebate_windows
WHERE $broker_type IS NULL OR broker_type = $broker_type
ORDER BY begin_date, broker_type;
