-- windows: every window of one account (of one broker type when broker_type is not NULL), oldest first.
SELECT *
FROM rebate_windows
WHERE account = %(account)s AND (%(broker_type)s::text IS NULL OR broker_type = %(broker_type)s::text)
ORDER BY begin_date, broker_type;
