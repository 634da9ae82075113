-- Write a zero-row file with one lake table's columns (the temp view {view}, partition columns left to the folder
-- names) at {target}: the entry point's views are created against these, then read the real lake.
COPY (SELECT * EXCLUDE (account, broker_type, {day_column}) FROM {view} LIMIT 0) TO {target} (FORMAT parquet);
