-- known_broker_codes: every broker code the database holds rows of (of $account, or of every account when NULL),
-- with its broker type: what `--broker-code` may name.
SELECT DISTINCT broker_code, broker_type
FROM rebate_details
WHERE $account IS NULL OR account = $account
ORDER BY broker_code, broker_type;
