-- details_in_scope(first_day, final_day, code, of_account): the rows of rebate_details a report covers, every
-- column: its days (trade_date in REBATES_TZ, both included), one broker code or NULL for all, one account or NULL
-- for all. The report queries read it as `FROM details_in_scope($start, $end, $broker_code, $account)`.
-- A TEMP macro: the report creates it on its own connection before its queries (pipeline/report/data.py,
-- open_database), so it serves a read-only database whatever schema version wrote it.
CREATE OR REPLACE TEMP MACRO details_in_scope(first_day, final_day, code, of_account) AS TABLE
SELECT *
FROM rebate_details
WHERE trade_date BETWEEN first_day AND final_day
  AND (code IS NULL OR broker_code = code)
  AND (of_account IS NULL OR account = of_account);
